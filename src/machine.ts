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
