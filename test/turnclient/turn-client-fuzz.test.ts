import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AttributeType, decodeStunMessage, encodeStunMessage, StunMethod, type StunAttribute } from '../../src/stun/index.js';
import { TurnAttributeType } from '../../src/turnclient/index.js';
import { datagramFromServer, events, KEY, makeClient, transmits } from './scripted.js';

const TYPES = [...Object.values(TurnAttributeType), ...Object.values(AttributeType)];
const METHODS = [StunMethod.Allocate, StunMethod.Refresh, StunMethod.CreatePermission, StunMethod.ChannelBind, StunMethod.Data, StunMethod.Binding];

describe('TurnClient under hostile server input', () => {
  it('never throws and keeps a consistent state for arbitrary responses to its own transactions', () => {
    const attribute = fc.record({ type: fc.constantFrom(...TYPES), value: fc.uint8Array({ maxLength: 24 }) });
    const step = fc.record({
      cls: fc.constantFrom('success' as const, 'error' as const, 'indication' as const),
      method: fc.constantFrom(...METHODS),
      attributes: fc.array(attribute, { maxLength: 6 }),
      sign: fc.boolean(),
      advanceMs: fc.integer({ min: 0, max: 120_000 }),
      send: fc.boolean(),
    });
    fc.assert(
      fc.property(fc.array(step, { minLength: 1, maxLength: 40 }), (steps) => {
        const c = makeClient();
        c.allocate(0);
        let now = 0;
        let last = decodeStunMessage(transmits(c)[0]!.data);
        for (const s of steps) {
          const attrs: StunAttribute[] = s.attributes;
          const bytes = encodeStunMessage(
            { method: s.method, cls: s.cls, transactionId: last.transactionId, attributes: attrs },
            s.sign ? { integrityKey: KEY, fingerprint: true } : {},
          );
          expect(() => c.handleReceive(now, datagramFromServer(bytes))).not.toThrow();
          now += s.advanceMs;
          expect(() => c.handleTimeout(now)).not.toThrow();
          if (s.send && c.state === 'allocated') c.send(now, { address: '203.0.113.9', port: 1000 }, Uint8Array.of(1));
          const out = transmits(c);
          const req = out.map((d) => decodeStunMessage(d.data)).filter((m) => m.cls === 'request').at(-1);
          if (req) last = req;
          for (const e of events(c)) if (e.type === 'error') expect(e.error.code).toBe('ERR_TURN');
          const t = c.pollTimeout();
          if (t !== undefined) expect(Number.isFinite(t)).toBe(true);
          expect(['idle', 'allocating', 'redirecting', 'allocated', 'closing', 'closed', 'failed']).toContain(c.state);
        }
      }),
      { numRuns: 300 },
    );
  });
});
