/**
 * STUN client transactions (RFC 8489 §6.2): retransmission with RTO doubling, Rc and Rm on UDP; a single send and
 * Ti on reliable transports. Sans-IO: the caller passes `now` (ms) and sends what `pollTransmit` returns.
 * @module
 */
import type { Datagram, RandomSource } from '../types.js';

/** RFC 8489 §6.2.1 defaults. */
export const DEFAULT_RTO_MS = 500;
export const DEFAULT_RC = 7;
export const DEFAULT_RM = 16;
/** Reliable-transport time-out Ti (RFC 8489 §6.2.2). */
export const DEFAULT_TI_MS = 39_500;

/** Retransmission settings. */
export interface TransactionTiming {
  /** Initial RTO in ms (default 500). */
  readonly rtoMs?: number;
  /** Total number of sends on UDP (default 7). */
  readonly rc?: number;
  /** After the last send, wait `rm * rtoMs` before giving up (default 16). */
  readonly rm?: number;
  /** TCP/TLS: send once and time out after `tiMs` (RFC 8489 §6.2.2). */
  readonly reliable?: boolean;
  readonly tiMs?: number;
  /** Cap on the doubled RTO (none by default; RFC 8445 §14.3 checks may want one). */
  readonly maxRtoMs?: number;
}

/** A fresh 96-bit transaction ID. */
export function newTransactionId(random: RandomSource): Uint8Array {
  return random.bytes(12);
}

/** Transaction IDs as map keys. */
export function transactionKey(id: Uint8Array): string {
  let s = '';
  for (let i = 0; i < id.length; i++) s += (id[i]! < 16 ? '0' : '') + id[i]!.toString(16);
  return s;
}

/**
 * One client transaction's timing. It knows nothing of the bytes it sends: `handleTimeout` says when to resend the
 * request and when the transaction has failed.
 */
export class TransactionTimer {
  readonly #rc: number;
  readonly #rm: number;
  readonly #reliable: boolean;
  readonly #tiMs: number;
  readonly #maxRto: number;
  #rto: number;
  #sends = 0;
  #deadline: number;
  #lastInterval = 0;
  #done = false;

  /** The first send happens at `now`: call `handleTimeout(now)` (or check `pollTimeout`) to get it. */
  constructor(now: number, timing: TransactionTiming = {}) {
    this.#rto = timing.rtoMs ?? DEFAULT_RTO_MS;
    this.#rc = timing.rc ?? DEFAULT_RC;
    this.#rm = timing.rm ?? DEFAULT_RM;
    this.#reliable = timing.reliable ?? false;
    this.#tiMs = timing.tiMs ?? DEFAULT_TI_MS;
    this.#maxRto = timing.maxRtoMs ?? Infinity;
    this.#deadline = now;
  }

  /** Number of times the request has been sent so far. */
  get sends(): number {
    return this.#sends;
  }

  /** When `handleTimeout` must next be called, or undefined once finished. */
  pollTimeout(): number | undefined {
    return this.#done ? undefined : this.#deadline;
  }

  /** `'send'` when the request must be (re)sent now, `'timeout'` when the transaction failed, else `'wait'`. */
  handleTimeout(now: number): 'send' | 'timeout' | 'wait' {
    if (this.#done || now < this.#deadline) return 'wait';
    if (this.#reliable) {
      if (this.#sends === 0) {
        this.#sends = 1;
        this.#deadline = now + this.#tiMs;
        return 'send';
      }
      this.#done = true;
      return 'timeout';
    }
    if (this.#sends < this.#rc) {
      // Intervals: RTO, 2*RTO, 4*RTO, ...; after the Rc-th send wait Rm*RTO (RFC 8489 §6.2.1).
      const interval = this.#sends === 0 ? this.#rto : Math.min(this.#lastInterval * 2, this.#maxRto);
      this.#sends++;
      this.#lastInterval = interval;
      this.#deadline = this.#deadline + (this.#sends === this.#rc ? this.#rto * this.#rm : interval);
      return 'send';
    }
    this.#done = true;
    return 'timeout';
  }

  /** Stops the timer (response received, or cancelled). */
  finish(): void {
    this.#done = true;
  }

  get finished(): boolean {
    return this.#done;
  }
}

/** What a `TransactionTable` reports. */
export type TransactionEvent<T> =
  | { readonly type: 'timeout'; readonly key: string; readonly context: T };

interface Entry<T> {
  readonly request: Datagram;
  readonly timer: TransactionTimer;
  readonly context: T;
}

/**
 * Outstanding client transactions keyed by transaction ID, with one shared deadline. Each entry carries a caller
 * context (what the request was for). Responses are matched with `take`.
 */
export class TransactionTable<T> {
  readonly #entries = new Map<string, Entry<T>>();
  readonly #transmits: Datagram[] = [];
  readonly #events: TransactionEvent<T>[] = [];

  /** Starts a transaction: `request.data` is sent at once (drain `pollTransmit`) and retransmitted per `timing`. */
  start(now: number, transactionId: Uint8Array, request: Datagram, context: T, timing?: TransactionTiming): string {
    const key = transactionKey(transactionId);
    const timer = new TransactionTimer(now, { ...timing, reliable: timing?.reliable ?? (request.transport !== undefined && request.transport !== 'udp') });
    this.#entries.set(key, { request, timer, context });
    this.#step(now, key, this.#entries.get(key)!);
    return key;
  }

  /** Removes and returns the transaction a response belongs to, or undefined for an unknown ID. */
  take(transactionId: Uint8Array): { context: T; request: Datagram; sends: number } | undefined {
    const key = transactionKey(transactionId);
    const e = this.#entries.get(key);
    if (!e) return undefined;
    e.timer.finish();
    this.#entries.delete(key);
    return { context: e.context, request: e.request, sends: e.timer.sends };
  }

  /** Context of an outstanding transaction without removing it. */
  peek(transactionId: Uint8Array): T | undefined {
    return this.#entries.get(transactionKey(transactionId))?.context;
  }

  /** Drops a transaction silently (no event). Returns whether it existed. */
  cancel(key: string): boolean {
    return this.#entries.delete(key);
  }

  /** Whether an outstanding transaction's context matches. */
  some(predicate: (context: T) => boolean): boolean {
    for (const e of this.#entries.values()) if (predicate(e.context)) return true;
    return false;
  }

  /** Drops every transaction whose context matches. */
  cancelWhere(predicate: (context: T) => boolean): void {
    for (const [k, e] of this.#entries) if (predicate(e.context)) this.#entries.delete(k);
  }

  get size(): number {
    return this.#entries.size;
  }

  handleTimeout(now: number): void {
    for (const [key, e] of this.#entries) this.#step(now, key, e);
  }

  #step(now: number, key: string, e: Entry<T>): void {
    // A late call may owe several sends; one copy on the wire is enough.
    let send = false;
    for (;;) {
      const r = e.timer.handleTimeout(now);
      if (r === 'send') {
        send = true;
        continue;
      }
      // A call so late that the transaction already timed out owes no send: nobody would wait for its answer.
      if (send && r !== 'timeout') this.#transmits.push(e.request);
      if (r === 'timeout') {
        this.#entries.delete(key);
        this.#events.push({ type: 'timeout', key, context: e.context });
      }
      return;
    }
  }

  /** Earliest deadline of any transaction. */
  pollTimeout(): number | undefined {
    let min: number | undefined;
    for (const e of this.#entries.values()) {
      const t = e.timer.pollTimeout();
      if (t !== undefined && (min === undefined || t < min)) min = t;
    }
    return min;
  }

  pollTransmit(): Datagram | undefined {
    return this.#transmits.shift();
  }

  pollEvent(): TransactionEvent<T> | undefined {
    return this.#events.shift();
  }
}
