import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CandidatePair, comparePairs, pairPriority, pairPriorityFor } from '../../src/checklist/pair.js';
import { host } from './harness.js';

const prio = fc.integer({ min: 1, max: 2 ** 31 - 1 });

describe('pair priority (RFC 8445 §6.1.2.3)', () => {
  it('matches the formula on a hand-computed value', () => {
    // G = 2130706431 (host, 65535, comp 1), D = 1694498815 (srflx): 2^32*D + 2*G + 1.
    const g = 2130706431;
    const dd = 1694498815;
    expect(pairPriority(g, dd)).toBe(4294967296n * 1694498815n + 2n * 2130706431n + 1n);
    expect(pairPriority(dd, g)).toBe(4294967296n * 1694498815n + 2n * 2130706431n);
  });

  it('both agents compute the same priority for the same pair', () => {
    fc.assert(
      fc.property(prio, prio, (a, b) => {
        // Agent A is controlling with local a, remote b; agent B is controlled with local b, remote a.
        expect(pairPriorityFor('controlling', a, b)).toBe(pairPriorityFor('controlled', b, a));
      }),
    );
  });

  it('is exact beyond 2^53 and ordered like (min, max, g>d)', () => {
    fc.assert(
      fc.property(prio, prio, prio, prio, (g1, d1, g2, d2) => {
        const p1 = pairPriority(g1, d1);
        const p2 = pairPriority(g2, d2);
        const k1 = [Math.min(g1, d1), Math.max(g1, d1), g1 > d1 ? 1 : 0];
        const k2 = [Math.min(g2, d2), Math.max(g2, d2), g2 > d2 ? 1 : 0];
        const cmp = k1[0]! - k2[0]! || k1[1]! - k2[1]! || k1[2]! - k2[2]!;
        expect(Math.sign(Number(p1 - p2))).toBe(Math.sign(cmp));
        expect(p1 < 1n << 63n).toBe(true);
      }),
    );
  });

  it('comparePairs is a strict total order (antisymmetric, deterministic)', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(prio, fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 65535 })), { minLength: 2, maxLength: 20 }), (specs) => {
        const pairs = specs.map(([p, comp, port], i) => new CandidatePair(`p${i}`, 0, host('10.0.0.1', port, comp), host('10.0.0.2', 9, comp), BigInt(p)));
        const a = [...pairs].sort(comparePairs);
        const b = [...pairs].reverse().sort(comparePairs);
        expect(a.map((p) => p.id)).toEqual(b.map((p) => p.id));
        for (let i = 1; i < a.length; i++) expect(a[i - 1]!.priority >= a[i]!.priority).toBe(true);
      }),
    );
  });
});
