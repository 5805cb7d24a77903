/**
 * The agent's outstanding STUN transactions: connectivity checks (RFC 8445 §7.2, retransmitted by RTO, §14.3) and
 * consent checks (RFC 7675 §5.1, sent once each). A container only: what a response or a time-out means is decided
 * in `responses.ts`. It keeps the earliest deadline of its transactions, so `pollTimeout` never scans them.
 * @module
 */
import { transactionKey } from '../stun/transaction.js';
import type { TransactionTimer } from '../stun/transaction.js';
import type { Datagram, IceRole } from '../types.js';
import type { CandidatePair } from './pair.js';

export interface CheckTx {
  readonly kind: 'check';
  readonly pair: CandidatePair;
  readonly timer: TransactionTimer;
  readonly request: Datagram;
  readonly useCandidate: boolean;
  /** Role claimed in the request (ICE-CONTROLLING or ICE-CONTROLLED). */
  readonly role: IceRole;
  readonly priority: number;
  readonly sentAt: number;
  readonly key: Uint8Array;
  /** RFC 8445 §7.3.1.4: no retransmission, no failure on timeout, but a late response still counts. */
  cancelled: boolean;
}

export interface ConsentTx {
  readonly kind: 'consent';
  readonly pair: CandidatePair;
  readonly request: Datagram;
  readonly sentAt: number;
  readonly expiresAt: number;
  readonly key: Uint8Array;
}

export type Tx = CheckTx | ConsentTx;

/** When a transaction next needs attention: its retransmission or time-out, or a consent check's expiry. */
export function txDeadline(tx: Tx): number | undefined {
  return tx.kind === 'check' ? tx.timer.pollTimeout() : tx.expiresAt;
}

/** Outstanding transactions by transaction id. */
export class CheckTransactions {
  readonly #byId = new Map<string, Tx>();
  /** No transaction needs attention before this (may be early after a removal, never late). */
  #earliest = Infinity;

  get size(): number {
    return this.#byId.size;
  }

  /** The earliest deadline of any transaction, or undefined. */
  get earliest(): number | undefined {
    return this.#byId.size === 0 || this.#earliest === Infinity ? undefined : this.#earliest;
  }

  add(id: Uint8Array, tx: Tx): void {
    this.#byId.set(transactionKey(id), tx);
    const t = txDeadline(tx);
    if (t !== undefined && t < this.#earliest) this.#earliest = t;
  }

  /** Takes the transaction a response names (it is then done), or undefined. */
  get(id: Uint8Array): Tx | undefined {
    return this.#byId.get(transactionKey(id));
  }

  delete(id: Uint8Array): void {
    this.#byId.delete(transactionKey(id));
  }

  /** Every transaction, for a pass that handles their deadlines; call `setEarliest` after it. */
  entries(): IterableIterator<[string, Tx]> {
    return this.#byId.entries();
  }

  deleteKey(key: string): void {
    this.#byId.delete(key);
  }

  /** Records the earliest deadline found by a full pass. */
  setEarliest(t: number): void {
    this.#earliest = t;
  }

  /** RFC 8445 §7.3.1.4, §8.1.2: the pair's checks in flight are cancelled (a late answer still counts). */
  cancelChecks(pair: CandidatePair): void {
    for (const tx of this.#byId.values()) if (tx.kind === 'check' && tx.pair === pair) tx.cancelled = true;
  }

  /** A check of `pair` is in flight and not cancelled. */
  hasLiveCheck(pair: CandidatePair): boolean {
    for (const tx of this.#byId.values()) if (tx.kind === 'check' && tx.pair === pair && !tx.cancelled) return true;
    return false;
  }

  /** Drops every transaction of `pair`, checks and consent checks: no retransmission, and a late answer is ignored. */
  dropPair(pair: CandidatePair): void {
    for (const [k, tx] of this.#byId) if (tx.pair === pair) this.#byId.delete(k);
  }

  /** A restart: the stream's transactions go, but for consent checks on the pairs kept (RFC 8445 §12.1). */
  dropStream(stream: number, keep: ReadonlySet<CandidatePair>): void {
    for (const [k, tx] of this.#byId) if (tx.pair.stream === stream && !(tx.kind === 'consent' && keep.has(tx.pair))) this.#byId.delete(k);
  }

  clear(): void {
    this.#byId.clear();
    this.#earliest = Infinity;
  }
}
