/**
 * Candidate pairs (RFC 8445 §6.1.2): the pair record, its exact bigint priority (§6.1.2.3) and its states (§6.1.2.6).
 * @module
 */
import type { Candidate, LocalCandidate } from '../candidates/candidate.js';
import type { IceRole } from '../types.js';
import { formatAddress } from '../types.js';

/** Pair states (RFC 8445 §6.1.2.6), W3C spelling. */
export type PairState = 'frozen' | 'waiting' | 'in-progress' | 'succeeded' | 'failed';

const TWO_32 = 1n << 32n;

/**
 * Pair priority (RFC 8445 §6.1.2.3): `2^32*MIN(G,D) + 2*MAX(G,D) + (G>D?1:0)`, where G is the controlling agent's
 * candidate priority and D the controlled agent's. Exact (bigint): the result needs up to 63 bits.
 */
export function pairPriority(controlling: number, controlled: number): bigint {
  const g = BigInt(controlling);
  const d = BigInt(controlled);
  const min = g < d ? g : d;
  const max = g < d ? d : g;
  return TWO_32 * min + 2n * max + (g > d ? 1n : 0n);
}

/** Priority of a pair seen from an agent in `role` with these local and remote candidate priorities. */
export function pairPriorityFor(role: IceRole, localPriority: number, remotePriority: number): bigint {
  return role === 'controlling' ? pairPriority(localPriority, remotePriority) : pairPriority(remotePriority, localPriority);
}

/**
 * A pair's part in nomination (RFC 8445 §8), one state instead of three flags:
 * - `'nominating'`: controlling side, a check with USE-CANDIDATE is queued or in flight for it (§8.1.1);
 * - `'nominate-on-success'`: controlled side, USE-CANDIDATE arrived before the pair succeeded (§7.3.1.5);
 * - `'nominated'`: a valid pair with the nominated flag set (§7.2.5.3.4, §7.3.1.5).
 */
export type PairNomination = 'none' | 'nominating' | 'nominate-on-success' | 'nominated';

/** Counters kept per pair (what `getStats()` reports). */
export interface PairCounters {
  requestsSent: number;
  requestsReceived: number;
  responsesSent: number;
  responsesReceived: number;
  bytesSent: number;
  bytesReceived: number;
  /** Round-trip time of the latest answered check or consent request, in ms. */
  currentRoundTripTime: number | undefined;
}

/**
 * A candidate pair. Mutable by the checklist and the agent core only; everyone else reads it. A pair in a checklist
 * always has a local candidate that is its own base (host or relayed, RFC 8445 §6.1.2.4); a valid pair built from a
 * reflexive mapped address (§7.2.5.3.2) may have a server- or peer-reflexive local candidate and lives only in the
 * valid list.
 */
export class CandidatePair {
  /** Unique within one agent (`p<n>`), stable for the pair's life. */
  readonly id: string;
  readonly stream: number;
  readonly component: number;
  readonly local: LocalCandidate;
  /**
   * The remote candidate. Mutable for one reason: RFC 8838 §11 rule 4.A replaces a peer-reflexive remote with the
   * candidate the peer signals later for the same address, and the pair must then report the signalled one.
   */
  remote: Candidate;
  /** RFC 8445 §6.1.2.6: the pair foundation, local and remote foundations joined. */
  readonly foundation: string;
  priority: bigint;
  state: PairState = 'frozen';
  /** In the valid list (RFC 8445 §7.2.5.3.2). */
  valid = false;
  /** Where the pair stands in nomination (RFC 8445 §8); see {@link PairNomination}. */
  nomination: PairNomination = 'none';
  /** The valid pair this pair's check produced (may be this pair itself). */
  validPair: CandidatePair | undefined;
  /** For a valid pair: the checklist pair whose check produced it (may be this pair itself). */
  checkPair: CandidatePair | undefined;
  /** 487 answers to this pair's checks so far (a peer that keeps answering 487 must not keep it checking forever). */
  roleConflicts = 0;
  /** When the pair's first check was sent (regular nomination judges how overdue its answer is), ms. */
  firstCheckAt: number | undefined;
  /** Last time a response (check or consent) proved the peer consents (RFC 7675), ms. */
  lastConsentAt = -Infinity;
  /** Last time anything was sent on this pair, ms (keepalives, RFC 8445 §11). */
  lastSentAt = -Infinity;
  /** Consent expired (RFC 7675 §5.1): nothing but STUN may be sent on it any more. */
  consentLost = false;
  readonly counters: PairCounters = {
    requestsSent: 0,
    requestsReceived: 0,
    responsesSent: 0,
    responsesReceived: 0,
    bytesSent: 0,
    bytesReceived: 0,
    currentRoundTripTime: undefined,
  };

  constructor(id: string, stream: number, local: LocalCandidate, remote: Candidate, priority: bigint) {
    this.id = id;
    this.stream = stream;
    this.component = local.component;
    this.local = local;
    this.remote = remote;
    this.foundation = `${local.foundation}:${remote.foundation}`;
    this.priority = priority;
  }

  /** The nominated flag (RFC 8445 §7.2.5.3.4, §7.3.1.5). */
  get nominated(): boolean {
    return this.nomination === 'nominated';
  }

  /** `base -> remote`, what identifies the 5-tuple the pair sends on. */
  get key(): string {
    return pairKey(this.stream, this.component, this.local, this.remote);
  }

  toString(): string {
    return `${this.id}(${this.local.type} ${formatAddress(this.local.base)} -> ${this.remote.type} ${this.remote.address}:${this.remote.port} ${this.state})`;
  }
}

/** Key of the 5-tuple a pair uses: stream, component, local base and remote address. */
export function pairKey(stream: number, component: number, local: LocalCandidate, remote: Candidate): string {
  const k = `${stream}/${component}/${formatAddress(local.base)}>${remote.address}|${remote.port}`;
  return local.transport === 'tcp' ? `${k}/tcp` : k;
}

/**
 * Deterministic descending order (RFC 8445 §6.1.2.3 leaves ties arbitrary; we break them by lower component, then
 * the local and remote addresses as strings, then the id), so two runs with the same inputs produce the same list.
 */
export function comparePairs(a: CandidatePair, b: CandidatePair): number {
  if (a.priority !== b.priority) return a.priority > b.priority ? -1 : 1;
  if (a.component !== b.component) return a.component - b.component;
  const ka = a.key;
  const kb = b.key;
  if (ka !== kb) return ka < kb ? -1 : 1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}
