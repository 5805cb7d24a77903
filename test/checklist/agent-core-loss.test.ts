import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { AgentCore } from '../../src/checklist/agent-core.js';
import { Driver, connectPair, seededRandom } from './harness.js';

const done = (...a: AgentCore[]) => () => a.every((x) => x.state === 'completed');

describe('property: completion under loss', () => {
  it('with up to 30% loss both agents complete on the same pair per component (regular nomination)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 2 }),
        fc.integer({ min: 0, max: 30 }),
        fc.integer({ min: 1, max: 2 ** 30 }),
        fc.integer({ min: 1, max: 60 }),
        (n, comps, lossPct, seed, delay) => {
          // Regular nomination only: with aggressive nomination (RFC 5245) and loss the controlled side may select a
          // pair whose nominating response never reached the controlling side; RFC 5245 repairs that through a new
          // offer, outside ICE proper. The lossless property in agent-core-scenarios covers aggressive nomination.
          const nomination = 'regular';
          const rnd = seededRandom(seed);
          const d = new Driver({ delayMs: delay, drop: () => rnd.bytes(1)[0]! * 100 < lossPct * 256 });
          const lBases = Array.from({ length: n }, (_, i) => ({ address: `10.0.1.${i + 1}`, port: 5000 }));
          // Consent freshness off: under heavy loss RFC 7675 may legitimately expire consent (tested elsewhere).
          const { l, r } = connectPair(d, { lBases, components: comps, l: { nomination, consentIntervalMs: 0 }, r: { consentIntervalMs: 0 } });
          d.run(300_000, done(l, r));
          if (l.state === 'failed' || r.state === 'failed') {
            // A check transaction whose Rc = 7 sends all go unanswered fails its pair (RFC 8445 §7.2.5.2.3); when that
            // pair was needed, or was a nomination (§7.2.5.3.4), the checklist fails. Accept a failure only with that
            // evidence: a transaction of the failed agent sent 7 times, none of whose answers reached it.
            const failed = l.state === 'failed' ? 'L' : 'R';
            const tx = (data: Uint8Array) => Buffer.from(data.subarray(8, 20)).toString('hex');
            const answered = new Set(d.delivered.filter((x) => x.to === failed).map((x) => tx(x.datagram.data)));
            const counts = new Map<string, number>();
            for (const s of d.sent) if (s.agent === failed && s.kind === 'request') counts.set(tx(s.datagram.data), (counts.get(tx(s.datagram.data)) ?? 0) + 1);
            expect([...counts].some(([id, k]) => k === 7 && !answered.has(id))).toBe(true);
            return;
          }
          expect([l.state, r.state]).toEqual(['completed', 'completed']);
          for (let c = 1; c <= comps; c++) {
            const a = l.getSelectedPair(0, c)!;
            const b = r.getSelectedPair(0, c)!;
            expect(`${a.local.address}:${a.local.port}>${a.remote.address}:${a.remote.port}`).toBe(
              `${b.remote.address}:${b.remote.port}>${b.local.address}:${b.local.port}`,
            );
          }
        },
      ),
      // Fixed seed: reproducible in CI; set LOSS_SEED to explore other runs.
      { numRuns: 80, seed: Number(process.env.LOSS_SEED ?? 20261122) },
    );
  });
});
