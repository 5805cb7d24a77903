/**
 * TimerScheduler on a manual clock and a manual host timer: exact, no real time involved.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/node/clock.js';
import { TimerScheduler, type TimerHost } from '../../src/node/driver.js';

/** A host whose single pending timer the test fires by hand. */
class ManualHost implements TimerHost {
  pending: { callback: () => void; delay: number; ref: boolean; id: number } | undefined;
  sets = 0;
  clears = 0;
  #id = 0;
  set(callback: () => void, delayMs: number): unknown {
    if (this.pending !== undefined) throw new Error('scheduler armed a second host timer without clearing the first');
    this.sets++;
    this.pending = { callback, delay: delayMs, ref: true, id: ++this.#id };
    return this.pending.id;
  }
  clear(handle: unknown): void {
    if (this.pending?.id !== handle) throw new Error('cleared a handle that is not the live one');
    this.clears++;
    this.pending = undefined;
  }
  setRef(handle: unknown, ref: boolean): void {
    const p = this.pending;
    if (p === undefined || p.id !== handle) throw new Error('setRef on a handle that is not the live one');
    p.ref = ref;
  }
  /** Fires the pending timer (as Node would once its delay elapsed). */
  fire(): void {
    const p = this.pending;
    if (p === undefined) throw new Error('no host timer armed');
    this.pending = undefined;
    p.callback();
  }
}

function setup() {
  const clock = new ManualClock(1000);
  const host = new ManualHost();
  const errors: unknown[] = [];
  const scheduler = new TimerScheduler({ clock, host, onCallbackError: (e) => errors.push(e) });
  return { clock, host, scheduler, errors };
}

describe('TimerScheduler', () => {
  it('arms one host timer for the earliest deadline and fires entries in deadline order', () => {
    const { clock, host, scheduler } = setup();
    const fired: string[] = [];
    const a = scheduler.createTimer(() => fired.push('a'));
    const b = scheduler.createTimer(() => fired.push('b'));
    const c = scheduler.createTimer(() => fired.push('c'));
    a.schedule(1030);
    expect(host.pending?.delay).toBe(30);
    b.schedule(1010);
    expect(host.pending?.delay).toBe(10); // earlier deadline: re-armed
    c.schedule(1020);
    expect(host.sets).toBe(2); // c is not the earliest: host untouched
    expect(scheduler.stats()).toMatchObject({ entries: 3, hostTimers: 1, armedDeadline: 1010 });

    clock.set(1010);
    host.fire();
    expect(fired).toEqual(['b']);
    expect(host.pending?.delay).toBe(10);
    clock.set(1035); // late: both remaining are due, fire together in deadline order
    host.fire();
    expect(fired).toEqual(['b', 'c', 'a']);
    expect(host.pending).toBeUndefined();
    expect(scheduler.stats()).toMatchObject({ entries: 0, hostTimers: 0, fires: 2 });
    expect(a.deadline).toBeUndefined();
  });

  it('fires equal deadlines in scheduling order', () => {
    const { clock, host, scheduler } = setup();
    const fired: number[] = [];
    const timers = [0, 1, 2, 3, 4].map((i) => scheduler.createTimer(() => fired.push(i)));
    for (const i of [3, 1, 4, 0, 2]) timers[i]!.schedule(1005);
    clock.advance(5);
    host.fire();
    expect(fired).toEqual([3, 1, 4, 0, 2]);
  });

  it('does not touch the host when a timer is rescheduled to the same deadline', () => {
    const { host, scheduler } = setup();
    const t = scheduler.createTimer(() => {});
    t.schedule(1100);
    t.schedule(1100);
    t.schedule(1100);
    expect(host.sets).toBe(1);
    expect(host.clears).toBe(0);
  });

  it('clears the host timer when the last entry is cancelled and re-arms later when the earliest is cancelled', () => {
    const { host, scheduler } = setup();
    const a = scheduler.createTimer(() => {});
    const b = scheduler.createTimer(() => {});
    a.schedule(1010);
    b.schedule(1050);
    a.cancel();
    expect(host.pending?.delay).toBe(50);
    expect(scheduler.size).toBe(1);
    b.cancel();
    expect(host.pending).toBeUndefined();
    expect(scheduler.stats()).toMatchObject({ entries: 0, hostTimers: 0 });
    b.cancel(); // idempotent
    expect(scheduler.size).toBe(0);
  });

  it('re-arms when the host timer fires before the deadline (ceil of a fractional delay)', () => {
    const { clock, host, scheduler } = setup();
    let fired = 0;
    scheduler.createTimer(() => fired++).schedule(1000.4);
    expect(host.pending?.delay).toBe(1); // never 0 for a future deadline
    host.fire(); // clock did not move: too early
    expect(fired).toBe(0);
    expect(host.pending?.delay).toBe(1);
    clock.advance(1);
    host.fire();
    expect(fired).toBe(1);
  });

  it('a past deadline fires on the next host turn, never synchronously', () => {
    const { host, scheduler } = setup();
    let fired = 0;
    scheduler.createTimer(() => fired++).schedule(500);
    expect(fired).toBe(0);
    expect(host.pending?.delay).toBe(0);
    host.fire();
    expect(fired).toBe(1);
  });

  it('an entry rescheduled into the past by its own callback waits for the next turn (no starvation)', () => {
    const { clock, host, scheduler } = setup();
    let fired = 0;
    const t = scheduler.createTimer((now) => {
      fired++;
      t.schedule(now - 1);
    });
    t.schedule(1000);
    host.fire();
    expect(fired).toBe(1);
    expect(host.pending?.delay).toBe(0);
    clock.advance(1);
    host.fire();
    expect(fired).toBe(2);
    t.cancel();
  });

  it('a callback cancelling an entry due in the same batch stops it from running', () => {
    const { clock, host, scheduler } = setup();
    const fired: string[] = [];
    const b = scheduler.createTimer(() => fired.push('b'));
    const a = scheduler.createTimer(() => {
      fired.push('a');
      b.cancel();
    });
    a.schedule(1001);
    b.schedule(1002);
    clock.advance(5);
    host.fire();
    expect(fired).toEqual(['a']);
    expect(scheduler.size).toBe(0);
  });

  it('a throwing callback is reported and does not stop the batch', () => {
    const { clock, host, scheduler, errors } = setup();
    const fired: string[] = [];
    scheduler
      .createTimer(() => {
        throw new Error('boom');
      })
      .schedule(1001);
    scheduler.createTimer(() => fired.push('after')).schedule(1002);
    clock.advance(2);
    host.fire();
    expect(fired).toEqual(['after']);
    expect(errors).toHaveLength(1);
    expect((errors[0] as Error).message).toBe('boom');
  });

  it('keeps the host timer referenced only while a ref entry is live', () => {
    const { host, scheduler } = setup();
    const weak = scheduler.createTimer(() => {}, { ref: false });
    const strong = scheduler.createTimer(() => {});
    weak.schedule(1010);
    expect(host.pending?.ref).toBe(false);
    strong.schedule(1020);
    expect(host.pending?.ref).toBe(true);
    expect(scheduler.stats().refEntries).toBe(1);
    strong.cancel();
    expect(host.pending?.ref).toBe(false);
  });

  it('caps the host delay at 2^31-1 ms and re-arms after a long hop', () => {
    const { clock, host, scheduler } = setup();
    let fired = 0;
    scheduler.createTimer(() => fired++).schedule(1000 + 2 ** 32);
    expect(host.pending?.delay).toBe(2 ** 31 - 1);
    clock.advance(2 ** 31 - 1);
    host.fire();
    expect(fired).toBe(0);
    expect(host.pending?.delay).toBe(2 ** 31 - 1); // 2^31+1 ms remain: still capped
    clock.advance(2 ** 31 - 1);
    host.fire();
    expect(fired).toBe(0);
    expect(host.pending?.delay).toBe(2);
    clock.advance(2);
    host.fire();
    expect(fired).toBe(1);
  });

  it('rejects a NaN deadline', () => {
    const { scheduler } = setup();
    expect(() => scheduler.createTimer(() => {}).schedule(Number.NaN)).toThrow(RangeError);
  });

  it('matches a sorted-list model under random schedule/cancel/advance sequences', () => {
    type Op =
      | { kind: 'schedule'; timer: number; at: number }
      | { kind: 'cancel'; timer: number }
      | { kind: 'advance'; ms: number };
    const op = fc.oneof(
      fc.record({ kind: fc.constant('schedule' as const), timer: fc.nat(7), at: fc.integer({ min: -5, max: 60 }) }),
      fc.record({ kind: fc.constant('cancel' as const), timer: fc.nat(7) }),
      fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 30 }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 80 }), (ops: Op[]) => {
        const { clock, host, scheduler } = setup();
        const fired: number[] = [];
        const timers = Array.from({ length: 8 }, (_, i) => scheduler.createTimer(() => fired.push(i)));
        // Model: timer -> [deadline, seq]
        const model = new Map<number, [number, number]>();
        const expected: number[] = [];
        let seq = 0;
        for (const o of ops) {
          if (o.kind === 'schedule') {
            const deadline = clock.now() + o.at;
            const cur = model.get(o.timer);
            if (cur === undefined || cur[0] !== deadline) model.set(o.timer, [deadline, seq++]);
            timers[o.timer]!.schedule(deadline);
          } else if (o.kind === 'cancel') {
            model.delete(o.timer);
            timers[o.timer]!.cancel();
          } else {
            clock.advance(o.ms);
            // Fire as Node would: the host timer fires once its delay has elapsed on this clock.
            while (host.pending !== undefined && clock.now() >= (scheduler.stats().armedDeadline ?? Infinity)) {
              const now = clock.now();
              const due = [...model.entries()]
                .filter(([, [d]]) => d <= now)
                .sort((x, y) => x[1][0] - y[1][0] || x[1][1] - y[1][1]);
              for (const [t] of due) {
                expected.push(t);
                model.delete(t);
              }
              host.fire();
            }
          }
          expect(scheduler.size).toBe(model.size);
          expect(scheduler.stats().hostTimers).toBe(model.size > 0 ? 1 : 0);
          const earliest = Math.min(...[...model.values()].map(([d]) => d));
          if (model.size > 0) expect(scheduler.stats().armedDeadline).toBe(earliest);
        }
        expect(fired).toEqual(expected);
      }),
      { numRuns: 300 },
    );
  });
});
