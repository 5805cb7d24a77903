import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FoundationRegistry, foundationKey, type FoundationInput } from '../../src/candidates/foundation.js';
import { canonicalIp } from '../../src/ip.js';

const ip = fc.constantFrom('10.0.0.1', '10.0.0.2', '2001:db8::1', '2001:DB8:0::1', '192.0.2.7');
const input: fc.Arbitrary<FoundationInput> = fc
  .record({
    type: fc.constantFrom('host' as const, 'srflx' as const, 'prflx' as const, 'relay' as const),
    baseAddress: ip,
    server: fc.option(ip, { nil: undefined }),
    transport: fc.constantFrom('udp', 'tcp', 'UDP'),
  })
  .map(({ server, ...r }) => ({ ...r, ...(server !== undefined ? { serverAddress: server } : {}) }));

/** RFC 8445 §5.1.1.3 written out as a predicate. */
function sameFoundationPerRfc(a: FoundationInput, b: FoundationInput): boolean {
  const serverMatters = a.type === 'srflx' || a.type === 'relay';
  return (
    a.type === b.type &&
    canonicalIp(a.baseAddress) === canonicalIp(b.baseAddress) &&
    (!serverMatters || canonicalIp(a.serverAddress ?? '') === canonicalIp(b.serverAddress ?? '')) &&
    a.transport.toLowerCase() === b.transport.toLowerCase()
  );
}

describe('foundations (RFC 8445 §5.1.1.3)', () => {
  it('equal exactly when the RFC says', () => {
    fc.assert(
      fc.property(fc.array(input, { minLength: 2, maxLength: 12 }), (inputs) => {
        const reg = new FoundationRegistry();
        const fs = inputs.map((i) => reg.foundationFor(i));
        for (let i = 0; i < inputs.length; i++) {
          expect(fs[i]).toMatch(/^[A-Za-z0-9+/]{1,32}$/);
          for (let j = 0; j < inputs.length; j++) {
            expect(fs[i] === fs[j]).toBe(sameFoundationPerRfc(inputs[i]!, inputs[j]!));
          }
        }
        expect(reg.size).toBe(new Set(fs).size);
      }),
      { numRuns: 300 },
    );
  });

  it('is deterministic and ignores ports and the server for host candidates', () => {
    const a = new FoundationRegistry();
    const b = new FoundationRegistry();
    const seq: FoundationInput[] = [
      { type: 'host', baseAddress: '10.0.0.1', transport: 'udp' },
      { type: 'srflx', baseAddress: '10.0.0.1', serverAddress: '192.0.2.1', transport: 'udp' },
      { type: 'host', baseAddress: '10.0.0.1', serverAddress: '192.0.2.9', transport: 'udp' },
    ];
    expect(seq.map((s) => a.foundationFor(s))).toEqual(['1', '2', '1']);
    expect(seq.map((s) => b.foundationFor(s))).toEqual(['1', '2', '1']);
    expect(foundationKey(seq[0]!)).toBe(foundationKey(seq[2]!));
  });
});
