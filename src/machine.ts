/**
 * The contract every sans-IO machine in icewire follows (STUN server, TURN client, gatherer, mDNS responder, agent
 * core). Inputs carry `now`, a number of milliseconds from any monotonic origin; outputs are drained by polling.
 *
 * After any input (`handleReceive`, `handleTimeout`, or a command method), the caller drains `pollTransmit` until it
 * returns undefined, then `pollEvent` likewise, then re-arms its timer from `pollTimeout`. Machines never read a
 * clock, open a socket or start a timer.
 * @module
 */
import type { Datagram } from './types.js';

export interface SansIoMachine<Event> {
  /** Offers a received datagram. Returns true when the machine took it (false: not for this machine). */
  handleReceive(now: number, datagram: Datagram): boolean;
  /** Advances timers to `now`. Safe to call early or late. */
  handleTimeout(now: number): void;
  /** Next datagram to send, or undefined when none is queued. */
  pollTransmit(): Datagram | undefined;
  /** Next event, or undefined. */
  pollEvent(): Event | undefined;
  /** Earliest time `handleTimeout` must be called, or undefined when nothing is scheduled. */
  pollTimeout(): number | undefined;
}

/**
 * A machine's named deadlines (quinn-proto keeps the same "timer table"): each concern sets or clears its own
 * entry when its state changes, and `pollTimeout` is the earliest entry, so no poll re-scans every transaction or
 * pair. A name says which timer is due, in a debugger or a trace. An entry may be early (the concern then finds
 * nothing to do and sets it again), never late.
 */
export class Deadlines<Name extends string> {
  readonly #at = new Map<Name, number>();

  /** Sets `name` to fire at `at`; undefined (or Infinity) clears it. */
  set(name: Name, at: number | undefined): void {
    if (at === undefined || at === Infinity) this.#at.delete(name);
    else this.#at.set(name, at);
  }

  /** When `name` fires, or undefined. */
  get(name: Name): number | undefined {
    return this.#at.get(name);
  }

  /** Clears every entry. */
  clear(): void {
    this.#at.clear();
  }

  /** The earliest entry, or undefined when none is set. */
  next(): number | undefined {
    let t = Infinity;
    for (const at of this.#at.values()) if (at < t) t = at;
    return t === Infinity ? undefined : t;
  }
}
