/**
 * The Node edge's time source. Core machines take `now` as a number of milliseconds from any monotonic origin; the
 * edge reads it from a {@link Clock} so tests can substitute a controllable one.
 * @module
 */
import { performance } from 'node:perf_hooks';

/** A monotonic millisecond clock. Values only need to be comparable with each other, not with wall time. */
export interface Clock {
  /** Milliseconds since an arbitrary fixed origin; never decreases. May be fractional. */
  now(): number;
}

/**
 * The production clock: `performance.now()`, which is monotonic (unlike `Date.now()`, it does not jump when the
 * system time is set), so timers never fire early or late because of a wall-clock step.
 */
export const monotonicClock: Clock = { now: () => performance.now() };

/**
 * A clock that only moves when told to. Useful for unit tests of code that reads a {@link Clock} but whose timers are
 * driven by hand.
 */
export class ManualClock implements Clock {
  #now: number;

  /** Starts at `startMs` (default 0). */
  constructor(startMs = 0) {
    this.#now = startMs;
  }

  /** The current time. */
  now(): number {
    return this.#now;
  }

  /** Moves time forward by `ms` (must be non-negative: a monotonic clock never goes back). */
  advance(ms: number): void {
    if (!(ms >= 0)) throw new RangeError(`ManualClock.advance: ms must be >= 0, got ${ms}`);
    this.#now += ms;
  }

  /** Sets the time to `ms`, which must not be earlier than the current time. */
  set(ms: number): void {
    if (!(ms >= this.#now)) throw new RangeError(`ManualClock.set: ${ms} is earlier than ${this.#now}`);
    this.#now = ms;
  }
}
