/**
 * Pacing (RFC 8445 §14.1, §14.2), in one room below gathering, the checklist and the SDP layer:
 * - **Ta**, the per-agent spacing of new transactions: 50 ms unless a different value is proposed (RFC 8839
 *   `a=ice-pacing`); both agents use the higher proposal, no proposal counting as 50 ms (`negotiateTa`). Every
 *   proposal, local or remote, is validated by one rule, the RFC 8839 §5.5 grammar (`isPacingValue`).
 * - **The process-wide 5 ms rule**: "the combination of all transactions from all agents ... MUST NOT be sent more
 *   often than once every 5 ms (as though there were one global Ta value for pacing all agents)" (§14.2).
 *   `GlobalPacer` keeps that rule. Which agents share one is a decision of the edge: `src/node/pacer.ts` owns the
 *   process instance; a sans-IO machine paces globally only when a pacer is injected.
 *
 * Design (sans-IO, deterministic): the pacer hands out send slots at least `intervalMs` apart. An agent that wants
 * to start a check transaction calls `client.request(now, kind)`:
 * - it gets `true` when the slot at `now` is free and it is at the head of the waiting line; it must then send at
 *   once (the grant is recorded at `now`);
 * - otherwise it is put in line (once) and gets `false`; `client.nextSlot()` tells when to ask again, which the
 *   agent folds into its `pollTimeout`.
 * The line has two classes, triggered checks before ordinary ones (RFC 8445 §6.1.4.2 gives triggered checks
 * precedence), FIFO within a class. An agent that got a slot leaves the line and rejoins at the back the next time
 * it asks, so agents wanting slots are served round robin: one agent with 100 pairs cannot starve another's first
 * check. A head that does not claim its slot within one interval (its timer ran late, or it lost interest without
 * withdrawing) is rotated to the back of its class so the line never stalls.
 *
 * Grant time versus send time: a grant is recorded at the `now` the agent was run with, but the datagram leaves
 * later (an edge runs many agents per timer turn, an agent signs its request after the grant, a GC pause may fall in
 * between). The spacing RFC 8445 §14.2 asks for is between datagrams, so the edge reports when a granted datagram
 * really left with `noteSent(at)`: the last grant moves to `max(lastGrant, at)`, and the next slot opens one interval
 * after the datagram, not after the decision. Every later grant is then at a `now` at least `intervalMs` after that
 * send, and its own datagram leaves no earlier than that `now`.
 *
 * The pacer never reads a clock: every decision uses the `now` (or `at`) passed in. All clients of one pacer must
 * share the time origin of `now`. It paces the start of check and gathering transactions; retransmissions
 * (RTO-driven), consent requests and keepalives are not paced here (§14.1: pacing them process-wide would cap a
 * process at a few hundred agents keeping consent).
 * @module
 */

/** Default Ta, ms (RFC 8445 §14.2; RFC 8839 §5.5: the value when `a=ice-pacing` is absent). */
export const DEFAULT_TA_MS = 50;

// The RFC 8839 §5.5 pacing-value rule is defined once, with the other argument rules (src/arguments.ts).
export { MAX_PACING_MS, isPacingValue } from '../arguments.js';

/**
 * Ta both agents use (RFC 8445 §14.2): the higher of the two proposals, a side that proposes none counting as the
 * default 50 ms.
 */
export function negotiateTa(localProposalMs?: number, remoteProposalMs?: number): number {
  return Math.max(localProposalMs ?? DEFAULT_TA_MS, remoteProposalMs ?? DEFAULT_TA_MS);
}

/** Options of `GlobalPacer`. */
export interface GlobalPacerOptions {
  /** Minimum spacing between two transactions of the process, ms (default 5, RFC 8445 §14.2). */
  readonly intervalMs?: number;
  /** When false every request is granted at once (default true). */
  readonly enabled?: boolean;
  /**
   * How late the head of the line may come for its slot before it is rotated to the back (default 20 ms, at least
   * one interval). Real timers fire a few ms late under load; rotating after a single 5 ms interval turned that
   * lateness into unfairness (measured in bench/pacing-realtime.bench.ts).
   */
  readonly headGraceMs?: number;
}

/** Which class a request belongs to. */
export type PacerRequestKind = 'triggered' | 'ordinary';

interface Waiter {
  readonly client: PacerClient;
  kind: PacerRequestKind;
  since: number;
  /**
   * When this waiter reached the head of the line (undefined while it is not). A head's grace runs from then, not
   * from when it joined: a waiter that reaches the front through others' grants gets its full chance.
   */
  headAt: number | undefined;
  /** Slots let pass in a row without asking again; a client that keeps missing them is dropped from the line. */
  misses: number;
  /** Time of this client's latest request: its next slot is never before it plus one interval (no busy wake-ups). */
  lastAsk: number;
}

/** A waiter rotated this many times in a row without asking again has gone away (e.g. dropped without close()). */
const MAX_MISSES = 3;

/** A shared slot allocator for every agent of one process. */
export class GlobalPacer {
  /** Minimum spacing between grants, ms. */
  readonly intervalMs: number;
  /** See {@link GlobalPacerOptions.headGraceMs}. */
  readonly headGraceMs: number;
  enabled: boolean;
  #lastGrant = -Infinity;
  #nextId = 0;
  readonly #triggered: Waiter[] = [];
  readonly #ordinary: Waiter[] = [];
  #grants = 0;
  #minSpacing = Infinity;

  constructor(options: GlobalPacerOptions = {}) {
    const interval = options.intervalMs ?? 5;
    if (!(interval >= 0) || !Number.isFinite(interval)) throw new RangeError('intervalMs must be a finite number >= 0');
    this.intervalMs = interval;
    this.headGraceMs = Math.max(interval, options.headGraceMs ?? 20);
    this.enabled = options.enabled ?? true;
  }

  /** A handle for one agent. */
  register(): PacerClient {
    return new PacerClient(this, this.#nextId++);
  }

  /** Number of slots granted so far. */
  get grants(): number {
    return this.#grants;
  }

  /**
   * Smallest spacing observed between a grant and the one before it, or the reported send of the one before it when
   * that was later (Infinity before the second grant).
   */
  get minSpacingMs(): number {
    return this.#minSpacing;
  }

  /** Number of clients waiting for a slot. */
  get waiting(): number {
    return this.#triggered.length + this.#ordinary.length;
  }

  /**
   * The edge's report that a datagram of a granted transaction (`Datagram.paced`) left at `at` (same time origin as
   * `now`): the next slot opens no earlier than `at + intervalMs`. A report for a datagram that left before the last
   * grant changes nothing. RFC 8445 §14.2 spaces datagrams on the wire, and only the edge knows when they leave.
   */
  noteSent(at: number): void {
    if (Number.isNaN(at)) throw new RangeError('noteSent: at is NaN');
    if (at > this.#lastGrant) this.#lastGrant = at;
  }

  /** @internal */
  _request(client: PacerClient, now: number, kind: PacerRequestKind): boolean {
    if (!this.enabled) {
      this._withdraw(client);
      this.#record(now);
      return true;
    }
    this.#markHead(now);
    this.#enqueue(client, now, kind);
    this.#markHead(now);
    const slot = this.#lastGrant + this.intervalMs;
    if (now < slot) return false;
    // Rotate heads that let their slot pass by more than one interval.
    for (let guard = this.waiting; guard > 0; guard--) {
      const head = this.#head();
      if (!head || head.client === client) break;
      const open = Math.max(slot, head.headAt ?? now);
      if (now < open + this.headGraceMs) break;
      const q = head.kind === 'triggered' ? this.#triggered : this.#ordinary;
      q.shift();
      head.since = now;
      head.headAt = undefined;
      if (++head.misses < MAX_MISSES) q.push(head);
      this.#markHead(now);
    }
    if (this.#head()?.client !== client) return false;
    this._withdraw(client);
    this.#record(now);
    this.#markHead(now);
    return true;
  }

  /** The current head reached the front no later than `now`. */
  #markHead(now: number): void {
    const h = this.#head();
    if (h && h.headAt === undefined) h.headAt = now;
  }

  #record(now: number): void {
    if (this.#grants > 0) this.#minSpacing = Math.min(this.#minSpacing, now - this.#lastGrant);
    this.#lastGrant = Math.max(this.#lastGrant, now);
    this.#grants++;
  }

  #head(): Waiter | undefined {
    return this.#triggered[0] ?? this.#ordinary[0];
  }

  #enqueue(client: PacerClient, now: number, kind: PacerRequestKind): void {
    const t = this.#triggered.findIndex((w) => w.client === client);
    if (t >= 0) {
      this.#triggered[t]!.misses = 0;
      this.#triggered[t]!.lastAsk = now;
      return;
    }
    const o = this.#ordinary.findIndex((w) => w.client === client);
    if (o >= 0) {
      this.#ordinary[o]!.misses = 0;
      this.#ordinary[o]!.lastAsk = now;
      if (kind === 'ordinary') return;
      // Upgraded to a triggered check: it joins the triggered class.
      if (this.#triggered.length === 0 && this.#ordinary[0]) this.#ordinary[0].headAt = undefined;
      const [w] = this.#ordinary.splice(o, 1);
      w!.kind = 'triggered';
      w!.since = now;
      w!.headAt = undefined;
      this.#triggered.push(w!);
      return;
    }
    // A triggered request arriving at an empty triggered class takes the front from the ordinary head.
    if (kind === 'triggered' && this.#triggered.length === 0 && this.#ordinary[0]) this.#ordinary[0].headAt = undefined;
    (kind === 'triggered' ? this.#triggered : this.#ordinary).push({ client, kind, since: now, misses: 0, lastAsk: now, headAt: undefined });
  }

  /** @internal */
  _withdraw(client: PacerClient): void {
    const t = this.#triggered.findIndex((w) => w.client === client);
    if (t >= 0) this.#triggered.splice(t, 1);
    const o = this.#ordinary.findIndex((w) => w.client === client);
    if (o >= 0) this.#ordinary.splice(o, 1);
  }

  /** @internal */
  _nextSlot(client: PacerClient): number | undefined {
    if (!this.enabled) return undefined;
    let pos = this.#triggered.findIndex((w) => w.client === client);
    let waiter = pos >= 0 ? this.#triggered[pos] : undefined;
    if (pos < 0) {
      const o = this.#ordinary.findIndex((w) => w.client === client);
      if (o < 0) return undefined;
      pos = this.#triggered.length + o;
      waiter = this.#ordinary[o];
    }
    // The head's slot opens at `open`; each position behind it is served one interval later if everyone is on time.
    // A late head holds the line for up to `headGraceMs`, so this is an estimate: a client that asks too early is
    // refused and asks again, but never sooner than one interval after its previous request.
    const open = Math.max(this.#lastGrant + this.intervalMs, this.#head()!.headAt ?? -Infinity);
    const estimate = open + pos * this.intervalMs;
    return estimate > waiter!.lastAsk ? estimate : waiter!.lastAsk + this.intervalMs;
  }
}

/** One agent's handle on the `GlobalPacer`. */
export class PacerClient {
  readonly #pacer: GlobalPacer;
  /** Registration number (diagnostics). */
  readonly id: number;

  /** @internal Use `GlobalPacer.register()`. */
  constructor(pacer: GlobalPacer, id: number) {
    this.#pacer = pacer;
    this.id = id;
  }

  /** Asks for a slot at `now`. True: send the transaction now. False: wait in line and ask again at `nextSlot()`. */
  request(now: number, kind: PacerRequestKind): boolean {
    return this.#pacer._request(this, now, kind);
  }

  /** When this client should ask again, or undefined when it is not waiting (or pacing is disabled). */
  nextSlot(): number | undefined {
    return this.#pacer._nextSlot(this);
  }

  /** Leaves the line (nothing to send any more). */
  withdraw(): void {
    this.#pacer._withdraw(this);
  }
}
