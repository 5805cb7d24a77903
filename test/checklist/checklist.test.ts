import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { LocalCandidate } from '../../src/candidates/candidate.js';
import { Checklist, canPair, computeInitialStates, stateForNewPair, unfreezeFoundation } from '../../src/checklist/checklist.js';
import { CandidatePair, comparePairs, pairPriorityFor } from '../../src/checklist/pair.js';
import { host, signalled, srflx } from './harness.js';

let seq = 0;
function mk(local: LocalCandidate, remote: LocalCandidate, stream = 0): CandidatePair {
  return new CandidatePair(`p${seq++}`, stream, local, signalled(remote), pairPriorityFor('controlling', local.priority, remote.priority));
}

describe('pairing rules (RFC 8445 §6.1.2.2)', () => {
  it('pairs same component and family only', () => {
    expect(canPair(host('10.0.0.1', 1), signalled(host('10.0.0.2', 2)))).toBe(true);
    expect(canPair(host('10.0.0.1', 1, 1), signalled(host('10.0.0.2', 2, 2)))).toBe(false);
    expect(canPair(host('10.0.0.1', 1), signalled(host('2001:db8::2', 2)))).toBe(false);
    expect(canPair(host('2001:db8::1', 1), signalled(host('2001:db8::2', 2)))).toBe(true);
    // ICE-TCP is not implemented: TCP candidates are not paired.
    expect(canPair({ ...host('10.0.0.1', 1), transport: 'tcp' }, { ...signalled(host('10.0.0.2', 2)), transport: 'tcp' })).toBe(false);
  });
  it('IPv6 link-local only with link-local', () => {
    expect(canPair(host('fe80::1', 1), signalled(host('2001:db8::2', 2)))).toBe(false);
    expect(canPair(host('fe80::1', 1), signalled(host('fe80::2', 2)))).toBe(true);
    expect(canPair(host('2001:db8::1', 1), signalled(host('fe80::2', 2)))).toBe(false);
  });
  it('never pairs a local relay with a remote mDNS candidate', () => {
    const relay: LocalCandidate = { ...host('198.51.100.7', 40000), type: 'relay', priority: 5 };
    const mdnsResolved = { ...signalled(host('192.168.1.9', 7000)), mdnsName: 'abc.local' };
    expect(canPair(relay, mdnsResolved)).toBe(false);
    expect(canPair(host('192.168.1.2', 1), mdnsResolved)).toBe(true);
    expect(canPair(host('192.168.1.2', 1), { ...signalled(host('192.168.1.9', 7000)), address: 'abc.local' })).toBe(false);
  });
});

describe('Checklist insert: sort, prune, limit', () => {
  const remotes = [host('10.0.1.1', 100), host('10.0.1.2', 200)];
  it('keeps pairs sorted descending (property) and never drops the best pair of a redundant group', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 1 }), fc.integer({ min: 1, max: 65535 })), { minLength: 1, maxLength: 30 }),
        (specs) => {
          const cl = new Checklist(0, 1);
          const all: CandidatePair[] = [];
          for (const [baseIdx, rIdx, pref] of specs) {
            const local = host(`10.0.0.${baseIdx + 1}`, 5000, 1, pref);
            const p = mk(local, remotes[rIdx]!);
            all.push(p);
            cl.insert(p);
          }
          const ps = cl.pairs;
          for (let i = 1; i < ps.length; i++) expect(comparePairs(ps[i - 1]!, ps[i]!)).toBeLessThan(0);
          // Each redundant group (same base + same remote) keeps exactly its highest-priority member.
          const groups = new Map<string, CandidatePair[]>();
          for (const p of all) groups.set(p.key, [...(groups.get(p.key) ?? []), p]);
          for (const g of groups.values()) {
            const best = [...g].sort(comparePairs)[0]!;
            const kept = ps.filter((p) => p.key === best.key);
            expect(kept).toHaveLength(1);
            expect(kept[0]!.priority).toBe(best.priority);
          }
        },
      ),
    );
  });

  it('srflx local replaced by its base is redundant with the host pair', () => {
    const h = host('192.168.0.2', 5000);
    const s = srflx('203.0.113.5', 40000, h.base);
    const cl = new Checklist(0, 1);
    const r = remotes[0]!;
    expect(cl.insert(mk(h, r)).added).toBe(true);
    // The agent replaces the srflx local by the host candidate of its base before insertion.
    const replaced = mk(h, r);
    expect(cl.insert(replaced).added).toBe(false);
    expect(cl.pairs).toHaveLength(1);
    void s;
  });

  it('does not prune an In-Progress/Succeeded pair in favour of a new one (RFC 8838 §11)', () => {
    const cl = new Checklist(0, 1);
    const low = mk(host('10.0.0.1', 5000, 1, 1), remotes[0]!);
    cl.insert(low);
    low.state = 'in-progress';
    const high = mk(host('10.0.0.1', 5000, 1, 65535), remotes[0]!);
    const res = cl.insert(high);
    expect(res.added).toBe(false);
    expect(res.pair).toBe(low);
  });

  it('enforces the limit: failed pairs first, then lower priority; a pair below all is refused', () => {
    const cl = new Checklist(0, 1, 3);
    const ps = [1000, 900, 800].map((pref, i) => mk(host(`10.0.0.${i + 1}`, 5000, 1, pref), remotes[0]!));
    for (const p of ps) cl.insert(p);
    ps[0]!.state = 'failed';
    const a = mk(host('10.0.0.9', 5000, 1, 10), remotes[0]!);
    expect(cl.insert(a).removed).toEqual([ps[0]]);
    const b = mk(host('10.0.0.10', 5000, 1, 5), remotes[0]!);
    expect(cl.insert(b).added).toBe(false);
    const c = mk(host('10.0.0.11', 5000, 1, 2000), remotes[0]!);
    const res = cl.insert(c);
    expect(res.added).toBe(true);
    expect(res.removed).toEqual([a]);
    expect(cl.pairs).toHaveLength(3);
  });
});

describe('initial states and unfreezing (RFC 8445 §6.1.2.6, §7.2.5.3.3; RFC 8838 §12)', () => {
  // Table 1 of RFC 8445 §6.1.2.6: m1 has f1 f2 f3, m2 f1..f4, m3 f1 and f5.
  function table(): Checklist[] {
    const spec: [number, string[]][] = [
      [0, ['f1', 'f2', 'f3']],
      [1, ['f1', 'f2', 'f3', 'f4']],
      [2, ['f1', 'f5']],
    ];
    return spec.map(([m, fs]) => {
      const cl = new Checklist(m, 1);
      fs.forEach((f, i) => {
        const l = host(`10.0.${m}.${i + 1}`, 5000, 1, 1000 - i, f);
        const r = { ...host(`10.9.${m}.${i + 1}`, 6000), foundation: 'r' };
        cl.insert(new CandidatePair(`${m}-${f}`, m, l, signalled(r), pairPriorityFor('controlling', l.priority, r.priority)));
      });
      return cl;
    });
  }
  const states = (cls: Checklist[]) => cls.map((cl) => cl.pairs.map((p) => `${p.foundation.split(':')[0]}=${p.state[0]}`).sort().join(' '));

  it('reproduces Table 1', () => {
    const cls = table();
    computeInitialStates(cls);
    expect(states(cls)).toEqual(['f1=w f2=w f3=w', 'f1=f f2=f f3=f f4=w', 'f1=f f5=w']);
  });

  it('stateForNewPair applied best-first gives the same result as computeInitialStates', () => {
    const cls = table();
    cls.forEach((cl, i) => {
      for (const p of cl.pairs) p.state = stateForNewPair(p, i, cls.slice(0, i + 1));
    });
    expect(states(cls)).toEqual(['f1=w f2=w f3=w', 'f1=f f2=f f3=f f4=w', 'f1=f f5=w']);
  });

  it('success of a foundation unfreezes its pairs everywhere; new pair of a succeeded foundation is Waiting', () => {
    const cls = table();
    computeInitialStates(cls);
    cls[0]!.pairs.find((p) => p.foundation.startsWith('f1'))!.state = 'succeeded';
    const woken = unfreezeFoundation('f1:r', cls);
    expect(woken.map((p) => p.id).sort()).toEqual(['1-f1', '2-f1']);
    const l = host('10.0.7.7', 5000, 1, 1, 'f1');
    const late = new CandidatePair('late', 1, l, signalled({ ...host('10.9.9.9', 1), foundation: 'r' }), 1n);
    cls[1]!.insert(late);
    expect(stateForNewPair(late, 1, cls)).toBe('waiting');
    const l2 = host('10.0.7.8', 5000, 1, 1, 'f3');
    const late2 = new CandidatePair('late2', 2, l2, signalled({ ...host('10.9.9.8', 1), foundation: 'r' }), 1n);
    cls[2]!.insert(late2);
    expect(stateForNewPair(late2, 2, cls)).toBe('frozen');
  });
});
