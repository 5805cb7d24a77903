/**
 * The edge's coalesced timers: a min-heap of deadlines behind a single host timer, re-armed only when the earliest
 * deadline changes (undici's coalesced timers). Every {@link MachineDriver} of the process shares
 * {@link sharedScheduler}, so a thousand agents cost one `setTimeout`, and removing an entry leaves nothing behind.
 * @module
 */
import { reportCallbackError, warnCallbackError, type CallbackErrorHandler } from './callback-errors.js';
import { monotonicClock, type Clock } from './clock.js';

/** Node caps a timer delay at 2^31-1 ms (a longer one fires after 1 ms); longer waits are split into hops. */
const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

/**
 * The host timer primitive the scheduler sits on. The default uses Node's `setTimeout`; tests may wrap it (e.g. to
 * count how many host timers are live).
 */
export interface TimerHost {
  /** Starts a one-shot timer and returns an opaque handle. */
  set(callback: () => void, delayMs: number): unknown;
  /** Cancels a timer started by `set` (a no-op if it already fired). */
  clear(handle: unknown): void;
  /** Makes the timer keep the event loop alive (`true`) or not (`false`). */
  setRef(handle: unknown, ref: boolean): void;
}

/** {@link TimerHost} backed by Node's global `setTimeout`/`clearTimeout`. */
export const nodeTimerHost: TimerHost = {
  set: (callback, delayMs) => setTimeout(callback, delayMs),
  clear: (handle) => clearTimeout(handle as NodeJS.Timeout),
  setRef: (handle, ref) => {
    const t = handle as NodeJS.Timeout;
    if (ref) t.ref();
    else t.unref();
  },
};

/** One deadline slot in a {@link TimerScheduler}. Scheduling it again moves it; it holds at most one deadline. */
export interface SchedulerTimer {
  /** The pending deadline (in the scheduler clock's ms), or undefined when not scheduled. */
  readonly deadline: number | undefined;
  /** Sets (or moves) the deadline. Deadlines in the past fire on the next timer turn, never synchronously. */
  schedule(deadlineMs: number): void;
  /** Removes the pending deadline, if any. A cancelled timer never fires until scheduled again. */
  cancel(): void;
}

/** Snapshot of a scheduler, for tests and leak checks. */
export interface SchedulerStats {
  /** Live heap entries (scheduled, not yet fired or cancelled). */
  readonly entries: number;
  /** Live entries that keep the event loop alive. */
  readonly refEntries: number;
  /** Host timers currently armed: 0 or 1 by construction. */
  readonly hostTimers: 0 | 1;
  /** The deadline the host timer is armed for, if any. */
  readonly armedDeadline: number | undefined;
  /** How many times a host timer was started since the scheduler was created. */
  readonly arms: number;
  /** How many times the host timer fired since the scheduler was created. */
  readonly fires: number;
}

/** Options of {@link TimerScheduler}. */
export interface TimerSchedulerOptions {
  /** Time source; deadlines are in its milliseconds. Default {@link monotonicClock}. */
  readonly clock?: Clock;
  /** Host timer primitive. Default {@link nodeTimerHost}. */
  readonly host?: TimerHost;
  /** Receives exceptions thrown by timer callbacks. Default {@link warnCallbackError}. */
  readonly onCallbackError?: CallbackErrorHandler;
}

/** Set by {@link TimerScheduler}'s static block: its private heap operations, for the {@link Entry} handles only. */
let scheduleEntry: (scheduler: TimerScheduler, entry: Entry, deadline: number) => void;
let cancelEntry: (scheduler: TimerScheduler, entry: Entry) => void;

/**
 * Heap node, and the {@link SchedulerTimer} handed out for it: one small object per timer with its methods on the
 * prototype (every agent's driver holds one; closures per timer cost ~600 B each). `index` is the heap position, -1
 * when not in the heap; `gen` invalidates entries popped for firing.
 */
class Entry implements SchedulerTimer {
  at = 0;
  seq = 0;
  index = -1;
  gen = 0;
  readonly #scheduler: TimerScheduler;
  readonly ref: boolean;
  readonly callback: (now: number) => void;

  constructor(scheduler: TimerScheduler, ref: boolean, callback: (now: number) => void) {
    this.#scheduler = scheduler;
    this.ref = ref;
    this.callback = callback;
  }

  get deadline(): number | undefined {
    return this.index >= 0 ? this.at : undefined;
  }

  schedule(deadlineMs: number): void {
    scheduleEntry(this.#scheduler, this, deadlineMs);
  }

  cancel(): void {
    cancelEntry(this.#scheduler, this);
  }
}

/**
 * A min-heap of deadlines behind a single host timer (undici-style coalesced timers). The host timer is re-armed
 * only when the earliest deadline changes, and cleared when the heap empties. Entries with equal deadlines fire in
 * the order they were scheduled.
 */
export class TimerScheduler {
  readonly #clock: Clock;
  readonly #host: TimerHost;
  readonly #onError: CallbackErrorHandler;
  readonly #heap: Entry[] = [];
  #seq = 0;
  #refEntries = 0;
  #handle: unknown = undefined;
  #armed = false;
  #armedDeadline: number | undefined = undefined;
  #handleRef = true;
  #firing = false;
  #arms = 0;
  #fires = 0;

  /** Creates an independent scheduler. Most code should use {@link sharedScheduler}. */
  constructor(options: TimerSchedulerOptions = {}) {
    this.#clock = options.clock ?? monotonicClock;
    this.#host = options.host ?? nodeTimerHost;
    this.#onError = options.onCallbackError ?? warnCallbackError;
  }

  /** The clock deadlines are measured on. */
  get clock(): Clock {
    return this.#clock;
  }

  /** Number of live entries (the leak-test hook: zero once every driver using this scheduler is closed). */
  get size(): number {
    return this.#heap.length;
  }

  /** Counters for tests. */
  stats(): SchedulerStats {
    return {
      entries: this.#heap.length,
      refEntries: this.#refEntries,
      hostTimers: this.#armed ? 1 : 0,
      armedDeadline: this.#armedDeadline,
      arms: this.#arms,
      fires: this.#fires,
    };
  }

  /**
   * Creates a timer slot. `callback` runs with the clock read just before it runs, once the deadline has passed. With `ref: false`
   * the entry does not keep the process alive (the single host timer is unref'd while only such entries are live).
   */
  createTimer(callback: (now: number) => void, options: { readonly ref?: boolean } = {}): SchedulerTimer {
    return new Entry(this, options.ref ?? true, callback);
  }

  static {
    scheduleEntry = (scheduler, entry, deadline) => scheduler.#schedule(entry, deadline);
    cancelEntry = (scheduler, entry) => scheduler.#cancel(entry);
  }

  #schedule(entry: Entry, deadline: number): void {
    if (Number.isNaN(deadline)) throw new RangeError('TimerScheduler: deadline is NaN');
    if (entry.index >= 0 && entry.at === deadline) return; // unchanged: no heap or host-timer churn
    entry.gen++;
    entry.at = deadline;
    entry.seq = this.#seq++;
    if (entry.index >= 0) {
      this.#siftUp(entry.index);
      this.#siftDown(entry.index);
    } else {
      entry.index = this.#heap.length;
      this.#heap.push(entry);
      if (entry.ref) this.#refEntries++;
      this.#siftUp(entry.index);
    }
    this.#rearm();
  }

  #cancel(entry: Entry): void {
    entry.gen++; // also stops it if it was popped into the batch currently firing
    if (entry.index < 0) return;
    this.#removeAt(entry.index);
    this.#rearm();
  }

  #removeAt(i: number): Entry {
    const heap = this.#heap;
    const entry = heap[i]!;
    const last = heap.pop()!;
    if (last !== entry) {
      heap[i] = last;
      last.index = i;
      this.#siftUp(i);
      this.#siftDown(last.index);
    }
    entry.index = -1;
    if (entry.ref) this.#refEntries--;
    return entry;
  }

  static #less(a: Entry, b: Entry): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  #siftUp(i: number): void {
    const heap = this.#heap;
    const entry = heap[i]!;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = heap[p]!;
      if (!TimerScheduler.#less(entry, parent)) break;
      heap[i] = parent;
      parent.index = i;
      i = p;
    }
    heap[i] = entry;
    entry.index = i;
  }

  #siftDown(i: number): void {
    const heap = this.#heap;
    const n = heap.length;
    const entry = heap[i]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && TimerScheduler.#less(heap[r]!, heap[l]!) ? r : l;
      const child = heap[c]!;
      if (!TimerScheduler.#less(child, entry)) break;
      heap[i] = child;
      child.index = i;
      i = c;
    }
    heap[i] = entry;
    entry.index = i;
  }

  /** Makes the single host timer match the heap top; touches the host only when something changed. */
  #rearm(): void {
    if (this.#firing) return; // the firing loop re-arms once at its end
    const top = this.#heap[0];
    if (top === undefined) {
      if (this.#armed) {
        this.#host.clear(this.#handle);
        this.#handle = undefined;
        this.#armed = false;
        this.#armedDeadline = undefined;
      }
      return;
    }
    const wantRef = this.#refEntries > 0;
    if (this.#armed && this.#armedDeadline === top.at) {
      if (this.#handleRef !== wantRef) {
        this.#host.setRef(this.#handle, wantRef);
        this.#handleRef = wantRef;
      }
      return;
    }
    if (this.#armed) this.#host.clear(this.#handle);
    // Ceil so the timer never fires before the deadline on a sub-millisecond clock (which would cost a re-arm).
    const delay = Math.min(MAX_TIMER_DELAY_MS, Math.max(0, Math.ceil(top.at - this.#clock.now())));
    this.#handle = this.#host.set(this.#fire, delay);
    this.#armed = true;
    this.#armedDeadline = top.at;
    this.#arms++;
    this.#handleRef = true;
    if (!wantRef) {
      this.#host.setRef(this.#handle, false);
      this.#handleRef = false;
    }
  }

  readonly #fire = (): void => {
    this.#armed = false;
    this.#handle = undefined;
    this.#armedDeadline = undefined;
    this.#fires++;
    const now = this.#clock.now();
    // Pop everything due first, then run: entries scheduled by callbacks (even already due) wait for the next turn,
    // so a callback that keeps rescheduling itself in the past cannot starve the event loop.
    const due: [Entry, number][] = [];
    for (let top = this.#heap[0]; top !== undefined && top.at <= now; top = this.#heap[0]) {
      this.#removeAt(0);
      due.push([top, top.gen]);
    }
    this.#firing = true;
    try {
      for (const [entry, gen] of due) {
        if (entry.gen !== gen) continue; // cancelled or rescheduled by an earlier callback in this batch
        try {
          // A fresh reading per callback: a batch of many machines takes time, and a machine given the batch's
          // start would decide (and ask the pacer, RFC 8445 §14.2) at a time already past.
          entry.callback(this.#clock.now());
        } catch (error) {
          reportCallbackError(this.#onError, error, 'timer');
        }
      }
    } finally {
      this.#firing = false;
      this.#rearm();
    }
  };
}

/** The process-wide scheduler every {@link MachineDriver} uses unless given another. */
export const sharedScheduler: TimerScheduler = new TimerScheduler();
