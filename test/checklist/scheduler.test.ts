import { describe, expect, it } from 'vitest';
import { Checklist } from '../../src/checklist/checklist.js';
import { CandidatePair } from '../../src/checklist/pair.js';
import { checkRtoMs, hasPendingCheck, pickNextCheck } from '../../src/checklist/scheduler.js';
import { host, signalled } from './harness.js';

describe('check RTO (RFC 8445 §14.3)', () => {
  it('never below 500 ms', () => {
    expect(checkRtoMs(50, 0, 1, 1)).toBe(500);
    expect(checkRtoMs(50, 3, 2, 5, 'rfc8445')).toBe(1250);
  });
  it('linear: Ta x (waiting + in-progress); rfc8445: x N as written', () => {
    expect(checkRtoMs(50, 15, 5, 25)).toBe(1000);
    expect(checkRtoMs(50, 15, 5, 25, 'rfc8445')).toBe(50 * 25 * 20);
  });
});

let n = 0;
function list(index: number, prefs: number[], foundations?: string[]): Checklist {
  const cl = new Checklist(index, 2);
  prefs.forEach((p, i) => {
    const l = host(`10.${index}.0.${i + 1}`, 5000, 1, p, foundations?.[i] ?? `f${index}${i}`);
    const r = { ...signalled(host(`10.${index}.1.${i + 1}`, 6000)), foundation: 'R' };
    const pair = new CandidatePair(`q${n++}`, index, l, r, BigInt(p));
    pair.state = 'waiting';
    cl.insert(pair);
  });
  return cl;
}

describe('pickNextCheck (RFC 8445 §6.1.4.2)', () => {
  it('takes the triggered queue first, then the highest-priority Waiting pair, then the next checklist', () => {
    const a = list(0, [10, 30, 20]);
    const b = list(1, [5]);
    const low = a.pairs[2]!;
    a.enqueueTriggered(low);
    let r = pickNextCheck([a, b], 0)!;
    expect(r.check).toEqual({ pair: low, triggered: true });
    expect(r.cursor).toBe(1);
    r.check.pair.state = 'in-progress';
    r = pickNextCheck([a, b], r.cursor)!;
    expect(r.check.pair).toBe(b.pairs[0]);
    r.check.pair.state = 'in-progress';
    r = pickNextCheck([a, b], r.cursor)!;
    expect(r.check.pair.priority).toBe(30n);
    r.check.pair.state = 'in-progress';
    // Step 4: b has nothing; a is picked without waiting.
    r = pickNextCheck([a, b], 1)!;
    expect(r.check.pair.priority).toBe(20n);
  });

  it('step 2 unfreezes one pair per idle foundation; none while the foundation is in progress', () => {
    const a = list(0, [10, 30, 20], ['x', 'x', 'y']);
    for (const p of a.pairs) p.state = 'frozen';
    const r = pickNextCheck([a], 0)!;
    expect(r.check.pair.priority).toBe(30n); // x's best
    expect(a.pairs.map((p) => `${p.priority}:${p.state}`)).toEqual(['30:waiting', '20:waiting', '10:frozen']);
    for (const p of a.pairs) if (p.state === 'waiting') p.state = 'in-progress';
    expect(hasPendingCheck([a])).toBe(false);
    expect(pickNextCheck([a], 0)).toBeUndefined();
  });

  it('skips checklists that are not running, but for the triggered checks of a Completed one (RFC 5245 §8.1.2)', () => {
    const a = list(0, [10, 20]);
    a.state = 'completed';
    expect(pickNextCheck([a], 0)).toBeUndefined();
    expect(hasPendingCheck([a])).toBe(false);
    a.enqueueTriggered(a.pairs[0]!);
    expect(hasPendingCheck([a])).toBe(true);
    expect(pickNextCheck([a], 0)!.check).toMatchObject({ pair: a.pairs[0], triggered: true });
    a.enqueueTriggered(a.pairs[1]!);
    a.state = 'failed';
    expect(hasPendingCheck([a])).toBe(false);
    expect(pickNextCheck([a], 0)).toBeUndefined();
  });
});
