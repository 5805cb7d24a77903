import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  candidatePriority,
  computePriority,
  DEFAULT_TYPE_PREFERENCES,
  localPreferences,
  orderLocalAddresses,
  splitPriority,
  uniquePriority,
  validateTypePreferences,
} from '../../src/candidates/priority.js';
import { ipFamily } from '../../src/ip.js';

const TYPES = ['host', 'prflx', 'srflx', 'relay'] as const;

describe('priority formula (RFC 8445 §5.1.2.1)', () => {
  it('matches the RFC 8421 §5 example priorities', () => {
    for (const [p, type, comp] of [
      [2129289471, 126, 1],
      [2129289470, 126, 2],
      [1693081855, 100, 1],
      [15360255, 0, 1],
    ] as const) {
      const s = splitPriority(p);
      expect(s.typePreference).toBe(type);
      expect(s.component).toBe(comp);
      expect(computePriority(s.typePreference, s.localPreference, s.component)).toBe(p);
    }
  });

  it('uses the recommended type preferences', () => {
    expect(candidatePriority('host', 65535, 1)).toBe(126 * 2 ** 24 + 65535 * 256 + 255);
    expect(candidatePriority('srflx', 65535, 1)).toBe(1694498815);
    expect(candidatePriority('relay', 0, 1)).toBe(255);
    expect(() => candidatePriority('relay', 0, 256)).toThrow(RangeError);
    expect(() => computePriority(127, 0, 1)).toThrow(RangeError);
    expect(() => computePriority(1, 65536, 1)).toThrow(RangeError);
    expect(() => computePriority(1, 1, 0)).toThrow(RangeError);
  });

  it('validates configurable type preferences', () => {
    expect(() => validateTypePreferences(DEFAULT_TYPE_PREFERENCES)).not.toThrow();
    expect(() => validateTypePreferences({ host: 1, prflx: 2, srflx: 3, relay: 0 })).toThrow(/peer-reflexive/);
    expect(() => validateTypePreferences({ host: 5, prflx: 5, srflx: 3, relay: 0 })).toThrow(RangeError);
    expect(() => validateTypePreferences({ host: 127, prflx: 5, srflx: 3, relay: 0 })).toThrow(RangeError);
  });

  it('type preference order holds whatever the local preference and component', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 65535 }), fc.integer({ min: 1, max: 255 })), { minLength: 4, maxLength: 4 }),
        (lc) => {
          const ps = TYPES.map((t, i) => candidatePriority(t, lc[i]![0], lc[i]![1]));
          // host > prflx > srflx > relay
          expect(ps[0]!).toBeGreaterThan(ps[1]!);
          expect(ps[1]!).toBeGreaterThan(ps[2]!);
          expect(ps[2]!).toBeGreaterThan(ps[3]!);
        },
      ),
    );
  });

  it('uniquePriority keeps type and component and avoids taken values', () => {
    fc.assert(
      fc.property(fc.constantFrom(...TYPES), fc.integer({ min: 1, max: 256 }), fc.array(fc.integer({ min: 0, max: 65535 }), { maxLength: 30 }), (type, comp, lps) => {
        const taken = new Set<number>();
        for (const lp of lps) {
          const want = computePriority(DEFAULT_TYPE_PREFERENCES[type], Math.max(lp, type === 'relay' && comp === 256 ? 1 : 0), comp);
          const p = uniquePriority(want, taken);
          expect(taken.has(p)).toBe(false);
          // Lowered unless everything below the wanted value was taken.
          if (p > want) for (let q = want; q >= 1 && splitPriority(q).typePreference === splitPriority(want).typePreference; q -= 256) expect(taken.has(q)).toBe(true);
          expect(splitPriority(p).typePreference).toBe(DEFAULT_TYPE_PREFERENCES[type]);
          expect(splitPriority(p).component).toBe(comp);
          taken.add(p);
        }
      }),
    );
  });
});

const v4 = fc.ipV4().filter((a) => ipFamily(a) === 4);
const v6 = fc.ipV6().filter((a) => ipFamily(a) === 6);

describe('local preferences (RFC 8421)', () => {
  it('RFC 8421 §4 example: 2 IPv4 and 6 IPv6 put an IPv4 after four IPv6', () => {
    const six = ['2001:db8::1', '2001:db8::2', '2001:db8::3', '2001:db8::4', '2001:db8::5', '2001:db8::6'];
    const four = ['192.0.2.1', '192.0.2.2'];
    const order = orderLocalAddresses([...four, ...six]);
    expect(order.map(ipFamily)).toEqual([6, 6, 6, 6, 4, 6, 4, 6]);
    // Family-internal order is the input order.
    expect(order.filter((a) => ipFamily(a) === 6)).toEqual(six);
    expect(order.filter((a) => ipFamily(a) === 4)).toEqual(four);
  });

  it('a single address gets 65535; unreliable interfaces go last', () => {
    expect([...localPreferences(['10.0.0.1']).values()]).toEqual([65535]);
    const order = orderLocalAddresses([{ address: '2001:db8::9', unreliable: true }, '10.0.0.1', '2001:db8::1', { address: '10.9.9.9', unreliable: true }]);
    expect(order).toEqual(['2001:db8::1', '10.0.0.1', '2001:db8::9', '10.9.9.9']);
    expect(() => localPreferences(['x.local'])).toThrow(RangeError);
  });

  it('interleaving holds for any mix of interfaces', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.oneof(v4, v6), { maxLength: 40, selector: (a) => a.toLowerCase() }), (addrs) => {
        const order = orderLocalAddresses(addrs);
        const prefs = localPreferences(addrs);
        const n = order.length;
        const fam = order.map(ipFamily);
        const n4 = fam.filter((f) => f === 4).length;
        const n6 = n - n4;
        // Unique, in range, strictly decreasing along the order.
        const values = order.map((a) => prefs.get(a)!);
        expect(new Set(values).size).toBe(n);
        for (let i = 1; i < n; i++) expect(values[i]!).toBeLessThan(values[i - 1]!);
        for (const v of values) expect(v).toBeGreaterThanOrEqual(0);
        if (n > 0) expect(values[0]).toBe(65535);
        // IPv6 leads (RFC 8421 §4) and neither family is starved: every prefix holds its fair share minus one.
        if (n6 > 0) expect(fam[0]).toBe(6);
        let c4 = 0;
        let c6 = 0;
        for (let len = 1; len <= n; len++) {
          if (fam[len - 1] === 4) c4++;
          else c6++;
          expect(c4).toBeGreaterThanOrEqual(Math.floor((len * n4) / n) - 1);
          expect(c6).toBeGreaterThanOrEqual(Math.floor((len * n6) / n) - 1);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('priorities are unique per component across a gathered set', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.oneof(v4, v6), { minLength: 1, maxLength: 20, selector: (a) => a.toLowerCase() }),
        fc.integer({ min: 1, max: 2 }),
        fc.integer({ min: 0, max: 3 }),
        (addrs, components, servers) => {
          const prefs = localPreferences(addrs);
          const seen = new Set<string>();
          for (let comp = 1; comp <= components; comp++) {
            for (const [, lp] of prefs) {
              const emit = (type: (typeof TYPES)[number], slot: number) => {
                const p = candidatePriority(type, lp - slot, comp);
                expect(seen.has(`${comp}|${p}`)).toBe(false);
                seen.add(`${comp}|${p}`);
              };
              emit('host', 0);
              for (let s = 0; s < servers; s++) emit('srflx', s);
              for (let s = 0; s < servers; s++) emit('relay', s);
            }
          }
        },
      ),
    );
  });
});
