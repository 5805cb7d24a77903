/**
 * Public value types of the agent core: states, events, options, parameters and stats.
 * @module
 */
import type { Candidate, LocalCandidate } from '../candidates/candidate.js';
import type { IceRole, TransportAddress } from '../types.js';
import type { RtoFormula } from './scheduler.js';
import type { GlobalPacer } from '../stun/pacing.js';
import type { PairState } from './pair.js';
import type { RandomSource } from '../types.js';
import type { StunDecodeReason } from '../errors.js';
import type { RemoteAddressBudget } from './address-budget.js';
import type { TraceSink } from './trace.js';

export type { RemoteCandidate } from './checklist.js';

/** Agent states, as in the W3C RTCIceTransport (`RTCIceTransportState`). */
export type AgentState = 'new' | 'checking' | 'connected' | 'completed' | 'disconnected' | 'failed' | 'closed';

/** Nomination procedure of a controlling agent. */
export type NominationMode = 'regular' | 'aggressive';

/** A read-only snapshot of a candidate pair. */
export interface PairInfo {
  readonly id: string;
  readonly stream: number;
  readonly component: number;
  readonly local: LocalCandidate;
  readonly remote: Candidate;
  readonly priority: bigint;
  readonly state: PairState;
  readonly nominated: boolean;
}

/** Events of `AgentCore` (discriminated on `type`). */
export type AgentEvent =
  | { readonly type: 'state'; readonly state: AgentState }
  | { readonly type: 'selected-pair'; readonly stream: number; readonly component: number; readonly pair: PairInfo }
  | {
      readonly type: 'data';
      readonly stream: number;
      readonly component: number;
      readonly data: Uint8Array;
      readonly from: TransportAddress;
      readonly local: TransportAddress;
    }
  | { readonly type: 'pair-state'; readonly stream: number; readonly component: number; readonly pairId: string; readonly state: PairState }
  | { readonly type: 'prflx-remote'; readonly stream: number; readonly candidate: Candidate }
  /**
   * A signalled remote candidate was dropped and will never be paired; `reason` says why (`component-out-of-range`,
   * `after-end-of-candidates`, `remote-candidate-limit`, `evicted-for-peer-reflexive`, `no-ipv4-base`/`no-ipv6-base`,
   * `unspecified-address`, `mdns-unresolved`, ...). `IceAgent` reports it as a `warning`.
   */
  | { readonly type: 'remote-candidate-dropped'; readonly stream: number; readonly candidate: Candidate; readonly reason: string }
  | { readonly type: 'prflx-local'; readonly stream: number; readonly candidate: LocalCandidate }
  | { readonly type: 'role-change'; readonly role: IceRole }
  | { readonly type: 'consent-lost'; readonly stream: number; readonly component: number; readonly pair: PairInfo }
  /**
   * ICE-TCP (RFC 6544 §7.1): open a TCP connection from `local` (an interface address; port 0 for any port, or the
   * simultaneous-open candidate's port) to `remote`, then call `tcpConnected` or `tcpConnectFailed` with `id`.
   */
  | { readonly type: 'tcp-connect'; readonly id: string; readonly local: TransportAddress; readonly remote: TransportAddress }
  /** ICE-TCP: close (or stop opening) connection `id`, on its 5-tuple `local`/`remote`. */
  | { readonly type: 'tcp-close'; readonly id: string; readonly local: TransportAddress; readonly remote: TransportAddress; readonly reason: string };

/** Options of `AgentCore`. */
export interface AgentCoreOptions {
  readonly random: RandomSource;
  /** Initial role (default `'controlling'`; a lite agent is always controlled). */
  readonly role?: IceRole;
  /** Act as an ICE-lite agent (RFC 8445 §2.5): answer checks, send none, host candidates only. */
  readonly lite?: boolean;
  /** Nomination used when controlling (default `'regular'`; `'aggressive'` only for RFC 5245 peers). */
  readonly nomination?: NominationMode;
  /** Local Ta proposal in ms (RFC 8445 §14.2). Unset: the default 50 ms, not signalled. */
  readonly pacingMs?: number;
  /**
   * The process-wide pacer (RFC 8445 §14.2 5 ms rule) this agent's new checks go through. Absent: only Ta paces
   * them (the Node edge injects the process instance). Agents sharing a pacer must share the time origin of `now`.
   */
  readonly pacer?: GlobalPacer;
  /** Maximum candidate pairs in the checklist set, split evenly over the streams (default 100, RFC 8445 §6.1.2.5). */
  readonly checklistLimit?: number;
  /** Maximum remote candidates per stream, peer-reflexive ones included (default 100). */
  readonly remoteCandidateLimit?: number;
  /**
   * Most candidate pairs aimed at one remote IP address across the checklist set (default 32; RFC 8445 §19.5.1): a
   * bound on the checks hostile signalling can direct at a third party. Ignored when `remoteAddressBudget` is given.
   */
  readonly remoteAddressPairLimit?: number;
  /** A budget shared with other agents of one checklist set (an `IceSdpSession`): its limit holds for all of them. */
  readonly remoteAddressBudget?: RemoteAddressBudget;
  /** Consent check period (RFC 7675, default 5000 ms, randomised ±20%). 0 disables consent freshness. */
  readonly consentIntervalMs?: number;
  /** Consent expiry (RFC 7675, default 30000 ms). */
  readonly consentTimeoutMs?: number;
  /** Silence on the selected pair after which the state is `disconnected` (default 10000 ms). */
  readonly disconnectedTimeoutMs?: number;
  /** Keepalive period Tr (RFC 8445 §11, default 15000 ms, at least 15000). */
  readonly keepaliveIntervalMs?: number;
  /** RFC 8863 PAC timer: minimum time from the start of checks before declaring failure (default 39500 ms). */
  readonly failureGraceMs?: number;
  /**
   * Controlling, regular nomination: nominate the best valid pair of a component once no higher-priority pair of
   * that component is still pending, or this long after the component's first valid pair (default 1000 ms).
   */
  readonly nominationTimeoutMs?: number;
  /** Check RTO formula (RFC 8445 §14.3; default `'linear'`, see `checkRtoMs`). */
  readonly rtoFormula?: RtoFormula;
  /** ICE-TCP (RFC 6544): how long an outgoing connection may take to open before its pairs fail (ms, default 10000). */
  readonly tcpConnectTimeoutMs?: number;
  /**
   * ICE-TCP: an accepted connection that carries no authenticated check within this is closed (ms, default 10000).
   */
  readonly tcpFirstCheckTimeoutMs?: number;
  /** ICE-TCP: accepted connections not yet proven by an authenticated check, at most (default 32); more are refused. */
  readonly tcpPendingInboundLimit?: number;
  /** Local credentials (generated when absent). */
  readonly ufrag?: string;
  readonly pwd?: string;
  /** 64-bit tie-breaker (random when absent). */
  readonly tieBreaker?: bigint;
  /**
   * Receives the structured check trace (`TraceEvent`: candidates, pairs, every check and its answer, nomination,
   * selection, states, consent), timed by `now`. Off when absent, and then free: no event is built.
   */
  readonly trace?: TraceSink;
}

/** ICE parameters of one side (what SDP `a=ice-ufrag`, `a=ice-pwd`, `a=ice-lite`, `a=ice-options`, `a=ice-pacing` carry). */
export interface IceParameters {
  readonly ufrag: string;
  readonly pwd: string;
  readonly lite?: boolean;
  /** Proposed Ta in ms (RFC 8839 `a=ice-pacing`). */
  readonly pacingMs?: number;
  readonly options?: readonly string[];
}

/** Local parameters as returned by `getLocalParameters`. */
export interface LocalIceParameters {
  readonly ufrag: string;
  readonly pwd: string;
  readonly lite: boolean;
  readonly options: readonly string[];
  readonly pacingMs?: number;
}

/** Per-pair statistics. */
export interface PairStats extends PairInfo {
  readonly valid: boolean;
  readonly requestsSent: number;
  readonly requestsReceived: number;
  readonly responsesSent: number;
  readonly responsesReceived: number;
  readonly bytesSent: number;
  readonly bytesReceived: number;
  /** Round-trip time of the latest check or consent transaction, in seconds (as RTCIceCandidatePairStats). */
  readonly currentRoundTripTime: number | undefined;
}

/** Why the agent dropped an input (counted in `getStats().dropped`). */
export type DropReason =
  | `stun-${StunDecodeReason}`
  | 'stun-oversized'
  | 'remote-after-end'
  | 'remote-bad-component'
  | 'remote-limit'
  | 'request-no-fingerprint'
  | 'request-bad'
  | 'request-username'
  | 'request-integrity'
  | 'request-unknown-attribute'
  | 'request-unknown-base'
  | 'unauthenticated-reply-limit'
  | 'prflx-remote-limit'
  | 'remote-evicted'
  | 'checklist-full'
  | 'remote-address-limit'
  | 'response-integrity'
  | 'response-asymmetric'
  | 'response-no-mapped'
  | 'data-unknown-path'
  /** Without ICE: data from a source other than the one the component latched on to (`src/without-ice.ts`). */
  | 'no-ice-other-source'
  | 'tcp-unknown-connection'
  | 'tcp-bad-frame'
  | 'tcp-accept-limit'
  | 'tcp-first-frame'
  | 'tcp-oversized';

/** Agent statistics. */
export interface AgentStats {
  readonly pairs: readonly PairStats[];
  /** Input dropped, counted by reason. */
  readonly dropped: Readonly<Partial<Record<DropReason, number>>>;
  /** Ta in use (ms). */
  readonly taMs: number;
  readonly checksSent: number;
}
