import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SeededRandom } from '../../src/testing/random.js';

const draw = (r: SeededRandom, n: number): number[] => Array.from({ length: n }, () => r.next());

describe('SeededRandom', () => {
  it('same seed gives the same sequence; numbers and bigints of equal value agree', () => {
    fc.assert(
      fc.property(fc.oneof(fc.integer(), fc.string()), (seed) => {
        expect(draw(new SeededRandom(seed), 16)).toEqual(draw(new SeededRandom(seed), 16));
      }),
    );
    expect(draw(new SeededRandom(42), 8)).toEqual(draw(new SeededRandom(42n), 8));
  });

  it('different seeds diverge', () => {
    const a = draw(new SeededRandom(1), 8);
    const b = draw(new SeededRandom(2), 8);
    const c = draw(new SeededRandom('1'), 8);
    expect(a).not.toEqual(b);
    expect(a).not.toEqual(c);
  });

  it('next() is a 32-bit unsigned integer and float() is in [0, 1)', () => {
    const r = new SeededRandom(7);
    for (let i = 0; i < 10_000; i++) {
      const n = r.next();
      expect(Number.isInteger(n) && n >= 0 && n <= 0xffffffff).toBe(true);
      const f = r.float();
      expect(f >= 0 && f < 1).toBe(true);
    }
  });

  it('is roughly uniform (each of 16 buckets within 10% of the mean over 160k draws)', () => {
    const r = new SeededRandom('uniform');
    const buckets = new Array<number>(16).fill(0);
    for (let i = 0; i < 160_000; i++) buckets[r.next() >>> 28]!++;
    for (const b of buckets) expect(Math.abs(b - 10_000)).toBeLessThan(1_000);
  });

  it('bytes(n) gives n bytes drawn from the same stream', () => {
    const r = new SeededRandom(3);
    const b = r.bytes(7);
    expect(b.length).toBe(7);
    const w = new SeededRandom(3).next();
    expect([...b.subarray(0, 4)]).toEqual([w & 0xff, (w >>> 8) & 0xff, (w >>> 16) & 0xff, w >>> 24]);
    expect(new SeededRandom(3).bytes(7)).toEqual(b);
  });

  it('fork depends on the seed and label only, not on how much the parent drew', () => {
    const p1 = new SeededRandom(9);
    const p2 = new SeededRandom(9);
    draw(p2, 100);
    expect(draw(p1.fork('a'), 5)).toEqual(draw(p2.fork('a'), 5));
    expect(draw(p1.fork('a'), 5)).not.toEqual(draw(p1.fork('b'), 5));
  });

  it('int() stays in range and rejects an empty range', () => {
    const r = new SeededRandom(5);
    const seen = new Set<number>();
    for (let i = 0; i < 1000; i++) {
      const v = r.int(3, 8);
      expect(v >= 3 && v < 8).toBe(true);
      seen.add(v);
    }
    expect(seen.size).toBe(5);
    expect(() => r.int(4, 4)).toThrow(RangeError);
  });
});
