/**
 * The IO edge's drain loop and its timer wheel.
 *
 * {@link MachineDriver} binds sans-IO machines (see `src/machine.ts`) to a real clock, real timers and a send
 * function. After every input (a received datagram, a due timer, or a command the owner reports with
 * {@link MachineDriver.kick}) it drains `pollTransmit` into `send`, drains `pollEvent` into the machine's event
 * callback, and re-arms the machine's timer from `pollTimeout`.
 *
 * Timers are coalesced: every driver in the process shares one {@link TimerScheduler} (unless given its own), a
 * min-heap of deadlines behind a single Node timer that is re-armed only when the earliest deadline changes. A
 * thousand agents therefore cost one `setTimeout`, not a thousand, and closing a driver removes its heap entries so
 * it leaves nothing behind.
 * @module
 */
import { InvalidStateError } from '../errors.js';
import type { SansIoMachine } from '../machine.js';
import type { Datagram } from '../types.js';
import { monotonicClock, type Clock } from './clock.js';

/** Node caps a timer delay at 2^31-1 ms (a longer one fires after 1 ms); longer waits are split into hops. */
const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

/**
 * How many already-due deadlines a driver runs inline (in the same drain loop) per input before falling back to the
 * timer. Inline matters because Node stretches a 0 ms timer to 1 ms, which would delay every triggered check; the
 * bound stops a machine that keeps returning a past deadline from monopolising the event loop.
 */
export const MAX_INLINE_TIMEOUTS = 8;

/** Where an exception caught by the edge came from. */
export type CallbackErrorSource =
  /** A user event callback threw. */
  | 'event'
  /** The `send` function threw. */
  | 'send'
  /** The `onUnhandled` callback threw. */
  | 'unhandled'
  /** A machine method threw, or returned an invalid deadline: a bug in the machine, reported rather than rethrown. */
  | 'machine'
  /** A raw {@link TimerScheduler} callback threw. */
  | 'timer';

/** Receives exceptions the edge caught so that they cannot unwind through a machine's drain. */
export type CallbackErrorHandler = (error: unknown, source: CallbackErrorSource) => void;

/** Default error sink: a process warning, so a faulty callback is visible but never fatal to the loop. */
export function warnCallbackError(error: unknown, source: CallbackErrorSource): void {
  const message = error instanceof Error ? error.message : String(error);
  const detail = error instanceof Error ? error.stack : undefined;
  process.emitWarning(
    `icewire: ${source} callback threw: ${message}`,
    detail === undefined
      ? { type: 'IcewireCallbackWarning', code: 'ICEWIRE_CALLBACK_ERROR' }
      : { type: 'IcewireCallbackWarning', code: 'ICEWIRE_CALLBACK_ERROR', detail },
  );
}

/** Calls `handler`, falling back to a warning if the handler itself throws. */
function report(handler: CallbackErrorHandler, error: unknown, source: CallbackErrorSource): void {
  try {
    handler(error, source);
  } catch (secondary) {
    warnCallbackError(secondary, source);
  }
}

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

/** Heap node. `index` is the heap position, -1 when not in the heap; `gen` invalidates entries popped for firing. */
interface Entry {
  deadline: number;
  seq: number;
  index: number;
  gen: number;
  readonly ref: boolean;
  readonly callback: (now: number) => void;
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
   * Creates a timer slot. `callback` runs with the scheduler's `now` when the deadline passes. With `ref: false`
   * the entry does not keep the process alive (the single host timer is unref'd while only such entries are live).
   */
  createTimer(callback: (now: number) => void, options: { readonly ref?: boolean } = {}): SchedulerTimer {
    const entry: Entry = { deadline: 0, seq: 0, index: -1, gen: 0, ref: options.ref ?? true, callback };
    const scheduler = this;
    return {
      get deadline() {
        return entry.index >= 0 ? entry.deadline : undefined;
      },
      schedule(deadlineMs: number) {
        scheduler.#schedule(entry, deadlineMs);
      },
      cancel() {
        scheduler.#cancel(entry);
      },
    };
  }

  #schedule(entry: Entry, deadline: number): void {
    if (Number.isNaN(deadline)) throw new RangeError('TimerScheduler: deadline is NaN');
    if (entry.index >= 0 && entry.deadline === deadline) return; // unchanged: no heap or host-timer churn
    entry.gen++;
    entry.deadline = deadline;
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
    return a.deadline < b.deadline || (a.deadline === b.deadline && a.seq < b.seq);
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
    if (this.#armed && this.#armedDeadline === top.deadline) {
      if (this.#handleRef !== wantRef) {
        this.#host.setRef(this.#handle, wantRef);
        this.#handleRef = wantRef;
      }
      return;
    }
    if (this.#armed) this.#host.clear(this.#handle);
    // Ceil so the timer never fires before the deadline on a sub-millisecond clock (which would cost a re-arm).
    const delay = Math.min(MAX_TIMER_DELAY_MS, Math.max(0, Math.ceil(top.deadline - this.#clock.now())));
    this.#handle = this.#host.set(this.#fire, delay);
    this.#armed = true;
    this.#armedDeadline = top.deadline;
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
    for (let top = this.#heap[0]; top !== undefined && top.deadline <= now; top = this.#heap[0]) {
      this.#removeAt(0);
      due.push([top, top.gen]);
    }
    this.#firing = true;
    try {
      for (const [entry, gen] of due) {
        if (entry.gen !== gen) continue; // cancelled or rescheduled by an earlier callback in this batch
        try {
          entry.callback(now);
        } catch (error) {
          report(this.#onError, error, 'timer');
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

/** Options of {@link MachineDriver}. */
export interface MachineDriverOptions {
  /** Sends a datagram (`datagram.local` names the socket). Exceptions are caught and reported as `'send'`. */
  readonly send: (datagram: Datagram) => void;
  /** Receives datagrams that no attached machine accepted. Exceptions are reported as `'unhandled'`. */
  readonly onUnhandled?: (datagram: Datagram) => void;
  /** Receives every exception caught by the driver. Default {@link warnCallbackError} (a process warning). */
  readonly onCallbackError?: CallbackErrorHandler;
  /** Scheduler to use. Default {@link sharedScheduler}; its clock is the driver's clock. */
  readonly scheduler?: TimerScheduler;
  /** When true, this driver's timers do not keep the process alive. Default false. */
  readonly unref?: boolean;
}

/** A machine bound to a driver. */
interface Binding {
  readonly machine: SansIoMachine<unknown>;
  readonly onEvent: ((event: unknown) => void) | undefined;
  readonly timer: SchedulerTimer;
  attached: boolean;
  /** Its deadline passed; call `handleTimeout` before the next drain. */
  timedOut: boolean;
  /** Already-due deadlines it may still run inline before the next external input (see MAX_INLINE_TIMEOUTS). */
  inlineBudget: number;
}

/**
 * Runs the sans-IO drain contract for one or more machines against the real world.
 *
 * A deadline that is already due when a drain ends (a command or a received check asked for immediate work) runs at
 * once in the same loop, up to {@link MAX_INLINE_TIMEOUTS} times per input, instead of waiting for a timer turn.
 *
 * Re-entrancy: inputs that arrive while a drain is running (an event callback issuing a command and calling
 * `kick()`, a `send` that loops back synchronously into `receive()`) are queued and processed by the loop already
 * running, after the current drain step; the driver never recurses into a machine's drain. Exceptions from user
 * callbacks are caught and reported, so they cannot leave a machine half-drained.
 */
export class MachineDriver {
  readonly #send: (datagram: Datagram) => void;
  readonly #onUnhandled: ((datagram: Datagram) => void) | undefined;
  readonly #onError: CallbackErrorHandler;
  readonly #scheduler: TimerScheduler;
  readonly #ref: boolean;
  readonly #bindings = new Map<SansIoMachine<unknown>, Binding>();
  /** Bindings that need a drain, in the order they asked (a Set keeps insertion order and dedups). */
  readonly #pending = new Set<Binding>();
  #inbox: Datagram[] = [];
  #running = false;
  #closed = false;

  /** Creates a driver with no machine attached. */
  constructor(options: MachineDriverOptions) {
    this.#send = options.send;
    this.#onUnhandled = options.onUnhandled;
    this.#onError = options.onCallbackError ?? warnCallbackError;
    this.#scheduler = options.scheduler ?? sharedScheduler;
    this.#ref = options.unref !== true;
  }

  /** The driver's current time (ms, monotonic): the `now` it passes to machines. */
  now(): number {
    return this.#scheduler.clock.now();
  }

  /** True after {@link close}. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Number of attached machines. */
  get machineCount(): number {
    return this.#bindings.size;
  }

  /**
   * Binds `machine`: drains it at once (it may already hold transmits or a deadline) and from then on after every
   * input. Datagrams given to {@link receive} are offered to machines in attach order.
   * @throws InvalidStateError after `close()`, or when the machine is already attached.
   */
  attach<Event>(machine: SansIoMachine<Event>, onEvent?: (event: Event) => void): void {
    if (this.#closed) throw new InvalidStateError('MachineDriver.attach() after close()');
    if (this.#bindings.has(machine)) throw new InvalidStateError('machine is already attached to this driver');
    const binding: Binding = {
      machine,
      onEvent: onEvent as ((event: unknown) => void) | undefined,
      attached: true,
      timedOut: false,
      inlineBudget: MAX_INLINE_TIMEOUTS,
      timer: this.#scheduler.createTimer(() => this.#onTimer(binding), { ref: this.#ref }),
    };
    this.#bindings.set(machine, binding);
    this.#pending.add(binding);
    this.#run();
  }

  /** Unbinds `machine` and removes its timer. Queued work for it is dropped. Unknown machines are ignored. */
  detach(machine: SansIoMachine<unknown>): void {
    const binding = this.#bindings.get(machine);
    if (binding === undefined) return;
    binding.attached = false;
    binding.timer.cancel();
    this.#pending.delete(binding);
    this.#bindings.delete(machine);
  }

  /**
   * Offers a received datagram to the attached machines (first taker wins), then drains. Datagrams nobody takes go
   * to `onUnhandled`. Ignored after `close()` (packets may still be in flight when a socket closes).
   */
  receive(datagram: Datagram): void {
    if (this.#closed) return;
    this.#inbox.push(datagram);
    this.#run();
  }

  /**
   * Reports that the owner called a command on `machine` (or on all machines when omitted), so its outputs must be
   * drained. Safe to call from inside an event callback: the drain is queued, not recursed into. Ignored after
   * `close()`.
   */
  kick(machine?: SansIoMachine<unknown>): void {
    if (this.#closed) return;
    if (machine === undefined) {
      for (const b of this.#bindings.values()) this.#wake(b);
    } else {
      const b = this.#bindings.get(machine);
      if (b === undefined) throw new InvalidStateError('kick(): machine is not attached to this driver');
      this.#wake(b);
    }
    this.#run();
  }

  /**
   * Detaches every machine and removes every scheduler entry, so a closed driver leaves no timer behind. Idempotent;
   * safe to call from a callback (the running drain stops at its next step).
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const b of this.#bindings.values()) {
      b.attached = false;
      b.timer.cancel();
    }
    this.#bindings.clear();
    this.#pending.clear();
    this.#inbox = [];
  }

  #onTimer(binding: Binding): void {
    if (!binding.attached) return;
    binding.timedOut = true;
    this.#wake(binding);
    this.#run();
  }

  /** Queues a drain after an external input, which also refills the inline-timeout budget. */
  #wake(b: Binding): void {
    b.inlineBudget = MAX_INLINE_TIMEOUTS;
    this.#pending.add(b);
  }

  /** The one loop that touches machines. Never re-entered: nested calls only enqueue. */
  #run(): void {
    if (this.#running || this.#closed) return;
    this.#running = true;
    try {
      while (!this.#closed) {
        if (this.#inbox.length > 0) {
          const inbox = this.#inbox;
          this.#inbox = [];
          for (let i = 0; i < inbox.length && !this.#closed; i++) this.#offer(inbox[i]!);
          continue;
        }
        const next = this.#pending.values().next();
        if (next.done === true) break;
        const binding = next.value;
        this.#pending.delete(binding);
        if (binding.attached) this.#step(binding);
      }
    } finally {
      this.#running = false;
    }
  }

  #offer(datagram: Datagram): void {
    const now = this.now();
    let taken = false;
    for (const b of this.#bindings.values()) {
      let took: boolean;
      try {
        took = b.machine.handleReceive(now, datagram);
      } catch (error) {
        report(this.#onError, error, 'machine');
        took = false;
      }
      // Drain even a machine that declined: the contract asks for a drain after any input.
      this.#wake(b);
      if (took) {
        taken = true;
        break;
      }
    }
    if (!taken && this.#onUnhandled !== undefined) {
      try {
        this.#onUnhandled(datagram);
      } catch (error) {
        report(this.#onError, error, 'unhandled');
      }
    }
  }

  /** handleTimeout if due, then drain transmits and events until quiet, then re-arm. */
  #step(b: Binding): void {
    const m = b.machine;
    try {
      if (b.timedOut) {
        b.timedOut = false;
        m.handleTimeout(this.now());
      }
      // Loop because an event callback may issue a command (without kicking) that queues more transmits.
      for (;;) {
        for (let d = m.pollTransmit(); d !== undefined; d = m.pollTransmit()) {
          try {
            this.#send(d);
          } catch (error) {
            report(this.#onError, error, 'send');
          }
          if (!b.attached) return;
        }
        let events = 0;
        for (let e = m.pollEvent(); e !== undefined; e = m.pollEvent()) {
          events++;
          if (b.onEvent !== undefined) {
            try {
              b.onEvent(e);
            } catch (error) {
              report(this.#onError, error, 'event');
            }
          }
          if (!b.attached) return;
        }
        if (events === 0) break;
      }
    } catch (error) {
      report(this.#onError, error, 'machine');
    }
    if (!b.attached) return;
    this.#rearmBinding(b);
  }

  #rearmBinding(b: Binding): void {
    let deadline: number | undefined;
    try {
      deadline = b.machine.pollTimeout();
    } catch (error) {
      report(this.#onError, error, 'machine');
      deadline = undefined;
    }
    if (deadline === undefined) {
      b.timer.cancel();
    } else if (Number.isNaN(deadline)) {
      report(this.#onError, new RangeError('pollTimeout() returned NaN'), 'machine');
      b.timer.cancel();
    } else if (b.inlineBudget > 0 && deadline <= this.now()) {
      // Already due: run it in this loop (after other queued work) rather than a >= 1 ms timer turn later.
      b.inlineBudget--;
      b.timer.cancel();
      b.timedOut = true;
      this.#pending.add(b);
    } else {
      b.timer.schedule(deadline);
    }
  }
}
