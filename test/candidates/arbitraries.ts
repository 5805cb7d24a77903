/** fast-check arbitraries shared by the candidate tests. */
import fc from 'fast-check';
import type { Candidate } from '../../src/candidates/candidate.js';

const iceChar = fc.constantFrom(...'ABCXYZabcxyz0123456789+/');
const tokenChar = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzABC0123456789-.!%*_+`\'~');
const vchar = fc.integer({ min: 0x21, max: 0x7e }).map((n) => String.fromCharCode(n));
const address = fc.oneof(
  fc.ipV4(),
  fc.ipV6(),
  fc.uuid({ version: 4 }).map((u) => `${u}.local`),
);
const extName = fc
  .string({ unit: tokenChar, minLength: 1, maxLength: 12 })
  .filter((n) => n !== 'raddr' && n !== 'rport' && n !== 'tcptype');

/** Arbitrary grammatical candidate records. */
export const candidateArb: fc.Arbitrary<Candidate> = fc
  .record(
    {
      foundation: fc.string({ unit: iceChar, minLength: 1, maxLength: 32 }),
      component: fc.integer({ min: 1, max: 256 }),
      transport: fc.constantFrom('udp' as const, 'tcp' as const),
      upper: fc.boolean(),
      priority: fc.integer({ min: 1, max: 0x7fffffff }),
      address,
      port: fc.integer({ min: 0, max: 65535 }),
      type: fc.constantFrom('host' as const, 'srflx' as const, 'prflx' as const, 'relay' as const),
      relatedAddress: fc.option(address, { nil: undefined }),
      relatedPort: fc.option(fc.integer({ min: 0, max: 65535 }), { nil: undefined }),
      tcpType: fc.option(fc.constantFrom('active' as const, 'passive' as const, 'so' as const), { nil: undefined }),
      extensions: fc.array(fc.tuple(extName, fc.string({ unit: vchar, minLength: 1, maxLength: 10 })), { maxLength: 5 }),
    },
    { requiredKeys: ['foundation', 'component', 'transport', 'upper', 'priority', 'address', 'port', 'type', 'extensions'] },
  )
  .map(({ upper, relatedAddress, relatedPort, tcpType, extensions, ...c }) => ({
    ...c,
    ...(upper ? { transportText: c.transport.toUpperCase() } : {}),
    ...(relatedAddress !== undefined ? { relatedAddress } : {}),
    ...(relatedPort !== undefined ? { relatedPort } : {}),
    ...(tcpType !== undefined ? { tcpType } : {}),
    ...(extensions.length > 0 ? { extensions } : {}),
  }));

