/**
 * The IO edge's drain loop. The timer wheel is in `timer-scheduler.ts` and the error sink in `callback-errors.ts`;
 * both stay importable from here.
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
import type { GlobalPacer } from '../stun/pacing.js';
import type { Datagram } from '../types.js';
import { reportCallbackError, warnCallbackError, type CallbackErrorHandler } from './callback-errors.js';
import { sharedScheduler, type SchedulerTimer, type TimerScheduler } from './timer-scheduler.js';

// Reachable from here as before the split.
export { warnCallbackError, type CallbackErrorHandler, type CallbackErrorSource } from './callback-errors.js';
export {
  nodeTimerHost,
  sharedScheduler,
  TimerScheduler,
  type SchedulerStats,
  type SchedulerTimer,
  type TimerHost,
  type TimerSchedulerOptions,
} from './timer-scheduler.js';

/**
 * How many already-due deadlines a driver runs inline (in the same drain loop) per input before falling back to the
 * timer. Inline matters because Node stretches a 0 ms timer to 1 ms, which would delay every triggered check; the
 * bound stops a machine that keeps returning a past deadline from monopolising the event loop.
 */
export const MAX_INLINE_TIMEOUTS = 8;

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
  /**
   * The process-wide pacer the attached machines ask for slots (RFC 8445 §14.2). After `send` returns for a datagram
   * marked `paced` (the first send of a gathering or check transaction), the driver reports the clock to it with
   * `noteSent`, so the next slot is spaced from the datagram, not from the `now` its grant was decided at.
   */
  readonly pacer?: Pick<GlobalPacer, 'noteSent'>;
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
  readonly #pacer: Pick<GlobalPacer, 'noteSent'> | undefined;
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
    this.#pacer = options.pacer;
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
        reportCallbackError(this.#onError, error, 'machine');
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
        reportCallbackError(this.#onError, error, 'unhandled');
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
            reportCallbackError(this.#onError, error, 'send');
          }
          // The datagram has left (node:dgram sends IP literals synchronously): stamp the grant with now, not with the
          // earlier time the machine decided to send (RFC 8445 §14.2 spaces datagrams). A failed send still holds
          // its slot: the pacer only errs late.
          if (d.paced === true) this.#pacer?.noteSent(this.now());
          if (!b.attached) return;
        }
        let events = 0;
        for (let e = m.pollEvent(); e !== undefined; e = m.pollEvent()) {
          events++;
          if (b.onEvent !== undefined) {
            try {
              b.onEvent(e);
            } catch (error) {
              reportCallbackError(this.#onError, error, 'event');
            }
          }
          if (!b.attached) return;
        }
        if (events === 0) break;
      }
    } catch (error) {
      reportCallbackError(this.#onError, error, 'machine');
    }
    if (!b.attached) return;
    this.#rearmBinding(b);
  }

  #rearmBinding(b: Binding): void {
    let deadline: number | undefined;
    try {
      deadline = b.machine.pollTimeout();
    } catch (error) {
      reportCallbackError(this.#onError, error, 'machine');
      deadline = undefined;
    }
    if (deadline === undefined) {
      b.timer.cancel();
    } else if (Number.isNaN(deadline)) {
      reportCallbackError(this.#onError, new RangeError('pollTimeout() returned NaN'), 'machine');
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
