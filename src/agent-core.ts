/**
 * The sans-IO ICE agent (RFC 8445 full and lite, RFC 8838 trickle, RFC 8863 PAC timer, RFC 7675 consent). It owns
 * the checklists, the check transactions and the binding responder; it knows nothing about sockets, timers or TURN.
 *
 * Drain contract (see `SansIoMachine`): after any input or command, drain `pollTransmit`, then `pollEvent`, then
 * re-arm the timer from `pollTimeout`. Datagrams out carry `local` = the local candidate's base (for a relayed
 * candidate: the relayed address, which the composing layer wraps through TURN).
 *
 * Choices where the RFCs leave room (each also commented where it is made):
 * - Check RTO: `MAX(500, Ta' x (Waiting + In-Progress))` by default (`rtoFormula: 'rfc8445'` applies §14.3 with its
 *   N factor); Ta' is Ta, or the agent's real spacing when the global pacer stretched it.
 * - Regular nomination (§8.1.1): the controlling agent nominates a component's best valid pair once no
 *   higher-priority pair of that component is pending, or `nominationTimeoutMs` after its first valid pair.
 * - Failure (§7.2.5.4 + RFC 8838 §8 + RFC 8863): a checklist fails only after the peer's end-of-candidates and the
 *   PAC timer; local end-of-gathering is not tracked (the caller adds candidates as they are signalled).
 * - A failed nomination fails the checklist, as §7.2.5.3.4 requires (the agent state is then `failed`), but not
 *   before the PAC timer ran out (RFC 8863 §4); until then another nomination may still succeed.
 * - The checklist limit applies per checklist (`checklistLimit`), not split across the checklist set.
 * - States follow RTCIceTransportState: `connected` = every component has a valid pair, `completed` = every
 *   checklist Completed; `disconnected` after `disconnectedTimeoutMs` without a consent answer on a selected pair;
 *   `failed` on consent expiry (RFC 7675) or a Failed checklist.
 * - ICE-lite: this core acts as a lite agent facing a full one; two lite agents (§8.2 pairing without checks) are not
 *   supported.
 * @module
 */
import type { Candidate, LocalCandidate } from './candidates/candidate.js';
import { crc32 } from 'node:zlib';
import {
  Checklist,
  DEFAULT_CHECKLIST_LIMIT,
  canPair,
  stateForNewPair,
  unfreezeFoundation,
  type RemoteCandidate,
} from './checklist/checklist.js';
import {
  encodeCheckError,
  encodeCheckRequest,
  encodeCheckSuccess,
  encodeKeepalive,
  errorCodeOf,
  parseCheck,
  prflxPriority,
} from './checklist/checks.js';
import { isPacingValue, negotiateTa, type PacerClient } from './stun/pacing.js';
import { CandidatePair, pairPriorityFor, type PairState } from './checklist/pair.js';
import { checkRtoMs, hasPendingCheck, nextIsTriggered, pickNextCheck, type RtoFormula } from './checklist/scheduler.js';
import type {
  AgentCoreOptions,
  AgentEvent,
  AgentState,
  AgentStats,
  IceParameters,
  LocalIceParameters,
  NominationMode,
  PairInfo,
  PairStats,
} from './checklist/types.js';
import { InvalidStateError } from './errors.js';
import type { SansIoMachine } from './machine.js';
import { Attr, getAttribute, unknownComprehensionRequired } from './stun/attributes.js';
import { ErrorCode, StunMethod } from './stun/constants.js';
import { shortTermKey } from './stun/integrity.js';
import { looksLikeStun, tryDecodeStunMessage, verifyIntegrity, type DecodedStunMessage } from './stun/message.js';
import { TransactionTimer, newTransactionId, transactionKey } from './stun/transaction.js';
import { sameAddress, type Datagram, type IceRole, type RandomSource, type TransportAddress } from './types.js';

export type * from './checklist/types.js';

const ICE_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const MAX_PENDING_REQUESTS = 64;
/**
 * Error responses to requests that could not be authenticated (400, 401), per second and agent. Such requests may
 * carry a forged source address, so every answer is reflected traffic (RFC 8489 §16.1.2); beyond this budget they are
 * dropped and counted. An authenticated peer is never limited.
 */
const MAX_UNAUTHENTICATED_REPLIES_PER_SECOND = 64;

/** Random ice-chars (RFC 8839 §5.4 grammar), 6 bits of entropy each. */
function iceString(random: RandomSource, length: number): string {
  const b = random.bytes(length);
  let s = '';
  for (let i = 0; i < length; i++) s += ICE_CHARS[b[i]! & 63];
  return s;
}

function randomTieBreaker(random: RandomSource): bigint {
  const b = random.bytes(8);
  return new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0);
}

interface Credentials {
  readonly ufrag: string;
  readonly pwd: string;
  readonly key: Uint8Array;
}

interface RemoteParams extends Credentials {
  readonly lite: boolean;
  readonly pacingMs: number | undefined;
  readonly options: readonly string[];
}

/** A request accepted before the remote parameters were known (RFC 8445 §7.3: processed once they arrive). */
interface PendingRequest {
  readonly local: LocalCandidate;
  readonly from: TransportAddress;
  readonly rfrag: string;
  readonly priority: number;
  readonly useCandidate: boolean;
}

interface Stream {
  readonly index: number;
  readonly components: number;
  /** Local credentials of the ICE session this stream runs (differs from the agent's during a restart). */
  local: Credentials;
  remote: RemoteParams | undefined;
  locals: LocalCandidate[];
  remotes: RemoteCandidate[];
  endOfRemote: boolean;
  checklist: Checklist;
  /** Selected pair per component (index = component). */
  selected: (CandidatePair | undefined)[];
  /** RFC 8445 §12.1: the pair used before an ICE restart, kept until the new session selects one. */
  previous: (CandidatePair | undefined)[];
  /** Time the first valid pair of each component appeared (regular nomination timer). */
  firstValidAt: (number | undefined)[];
  pending: PendingRequest[];
  restarting: boolean;
  prflxCount: number;
  /**
   * Per component: the valid pair that carried data before any selection (RFC 8445 §12.1). RFC 8445 §11 keepalives
   * and RFC 7675 §5.1 consent ("whenever the endpoint sends application data on that pair") run on it too.
   */
  dataPairs: (CandidatePair | undefined)[];
}

interface CheckTx {
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

interface ConsentTx {
  readonly kind: 'consent';
  readonly pair: CandidatePair;
  readonly request: Datagram;
  readonly sentAt: number;
  readonly expiresAt: number;
  readonly key: Uint8Array;
}

type Tx = CheckTx | ConsentTx;

/** A 5-tuple (UDP implied) and the pair data on it belongs to: the receive path's one-entry cache. */
interface DataRoute {
  readonly localAddress: string;
  readonly localPort: number;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly pair: CandidatePair;
}

function dataRoute(d: Datagram, pair: CandidatePair): DataRoute {
  return { localAddress: d.local.address, localPort: d.local.port, remoteAddress: d.remote.address, remotePort: d.remote.port, pair };
}

function addrOf(c: Candidate): TransportAddress {
  return { address: c.address, port: c.port };
}

function info(p: CandidatePair): PairInfo {
  return {
    id: p.id,
    stream: p.stream,
    component: p.component,
    local: p.local,
    remote: p.remote,
    priority: p.priority,
    state: p.state,
    nominated: p.nominated,
  };
}

/**
 * The ICE agent core. One instance is one ICE session (with its restarts) over one or more data streams.
 *
 * Time: every input takes `now` (ms, any monotonic origin). Commands without `now` take effect at the next
 * `handleTimeout`; `pollTimeout` then returns a deadline at or before the current time so the driver calls it at
 * once (that is how the first check goes out without waiting for Ta).
 */
export class AgentCore implements SansIoMachine<AgentEvent> {
  readonly #random: RandomSource;
  readonly #lite: boolean;
  readonly #nomination: NominationMode;
  readonly #localPacing: number | undefined;
  readonly #pacer: PacerClient | undefined;
  readonly #checklistLimit: number;
  readonly #remoteLimit: number;
  readonly #consentIntervalMs: number;
  readonly #consentTimeoutMs: number;
  readonly #disconnectedTimeoutMs: number;
  readonly #keepaliveMs: number;
  readonly #failureGraceMs: number;
  readonly #nominationTimeoutMs: number;
  readonly #rtoFormula: RtoFormula;

  #role: IceRole;
  #tieBreaker: bigint;
  #creds: Credentials;
  #state: AgentState = 'new';
  readonly #streams: Stream[] = [];
  readonly #pairs = new Map<string, CandidatePair>();
  #pairSeq = 0;
  readonly #txs = new Map<string, Tx>();
  readonly #transmits: Datagram[] = [];
  readonly #events: AgentEvent[] = [];
  readonly #dropped: Record<string, number> = {};
  #now = -Infinity;
  #taMs: number;
  #nextCheckAt = -Infinity;
  #lastCheckAt = -Infinity;
  #pacerDelayed = false;
  #cursor = 0;
  #checksSent = 0;
  /** RFC 8863 PAC timer: undefined until checks start; `null` = start at the next input. */
  #pacDeadline: number | undefined | null;
  readonly #consentNext = new Map<CandidatePair, number>();
  #closed = false;
  /** Receive-path cache: `base|remote` -> pair (entries whose pair is gone are ignored). */
  readonly #dataRoutes = new Map<string, CandidatePair>();
  /** The route of the last data datagram, compared field by field: no key string per datagram on the data path. */
  #lastRoute: DataRoute | undefined;
  /** Work was requested by a command: `pollTimeout` asks for an immediate `handleTimeout`. */
  #dirty = false;
  /** Start of the current one-second window of unauthenticated error responses, and how many went out in it. */
  #unauthWindowStart = -Infinity;
  #unauthReplies = 0;

  constructor(options: AgentCoreOptions) {
    this.#random = options.random;
    this.#lite = options.lite ?? false;
    this.#role = this.#lite ? 'controlled' : (options.role ?? 'controlling');
    this.#nomination = options.nomination ?? 'regular';
    if (options.pacingMs !== undefined && !isPacingValue(options.pacingMs)) throw new RangeError('pacingMs must be an RFC 8839 ice-pacing value (integer 0..9999999999)');
    this.#localPacing = options.pacingMs;
    this.#taMs = negotiateTa(this.#localPacing, undefined);
    this.#pacer = options.pacer?.register();
    this.#checklistLimit = options.checklistLimit ?? DEFAULT_CHECKLIST_LIMIT;
    this.#remoteLimit = options.remoteCandidateLimit ?? 100;
    this.#consentIntervalMs = options.consentIntervalMs ?? 5000;
    if (this.#consentIntervalMs !== 0 && this.#consentIntervalMs < 4000 / 0.8) {
      // RFC 7675 §5.1: the period between checks MUST NOT be below 4 s (0.8 x interval).
      throw new RangeError('consentIntervalMs must be 0 (off) or at least 5000');
    }
    this.#consentTimeoutMs = options.consentTimeoutMs ?? 30_000;
    this.#disconnectedTimeoutMs = options.disconnectedTimeoutMs ?? 10_000;
    this.#keepaliveMs = options.keepaliveIntervalMs ?? 15_000;
    if (this.#keepaliveMs < 15_000) throw new RangeError('keepaliveIntervalMs must be at least 15000 (RFC 8445 §11)');
    this.#failureGraceMs = options.failureGraceMs ?? 39_500;
    this.#nominationTimeoutMs = options.nominationTimeoutMs ?? 1000;
    this.#rtoFormula = options.rtoFormula ?? 'linear';
    this.#tieBreaker = options.tieBreaker ?? randomTieBreaker(this.#random);
    this.#creds = this.#makeCreds(options.ufrag ?? iceString(this.#random, 8), options.pwd ?? iceString(this.#random, 24));
  }

  #makeCreds(ufrag: string, pwd: string): Credentials {
    if (ufrag.length < 4 || ufrag.length > 256) throw new RangeError('ufrag must be 4..256 characters (RFC 8839 §5.4)');
    if (pwd.length < 22 || pwd.length > 256) throw new RangeError('pwd must be 22..256 characters (RFC 8839 §5.4)');
    return { ufrag, pwd, key: shortTermKey(pwd) };
  }

  // ---- getters ----------------------------------------------------------------------------------------------

  /** Current agent state. */
  get state(): AgentState {
    return this.#state;
  }

  /** Current role. */
  get role(): IceRole {
    return this.#role;
  }

  /** Current tie-breaker. */
  get tieBreaker(): bigint {
    return this.#tieBreaker;
  }

  /** Ta in use, ms (RFC 8445 §14.2). */
  get taMs(): number {
    return this.#taMs;
  }

  /** Whether this agent is lite. */
  get lite(): boolean {
    return this.#lite;
  }

  /** Number of streams. */
  get streamCount(): number {
    return this.#streams.length;
  }

  // ---- commands ---------------------------------------------------------------------------------------------

  /** Adds a data stream with `components` components (1..256). Returns its index (0, 1, ...). */
  addStream(components: number): number {
    this.#assertOpen();
    if (!Number.isInteger(components) || components < 1 || components > 256) throw new RangeError('components must be 1..256');
    const index = this.#streams.length;
    this.#streams.push({
      index,
      components,
      local: this.#creds,
      remote: undefined,
      locals: [],
      remotes: [],
      endOfRemote: false,
      checklist: new Checklist(index, components, this.#checklistLimit),
      selected: [],
      previous: [],
      firstValidAt: [],
      pending: [],
      restarting: false,
      prflxCount: 0,
      dataPairs: [],
    });
    return index;
  }

  /** Local ICE parameters (agent-wide; after `restart()` the new ones). */
  getLocalParameters(_stream?: number): LocalIceParameters {
    // RFC 8445 §10: 'ice2' says the agent "will not use the aggressive nomination procedure defined in RFC 5245".
    const options = this.#nomination === 'aggressive' ? ['trickle'] : ['ice2', 'trickle'];
    const base = { ufrag: this.#creds.ufrag, pwd: this.#creds.pwd, lite: this.#lite, options };
    return this.#localPacing === undefined ? base : { ...base, pacingMs: this.#localPacing };
  }

  /**
   * Adds a local candidate (call it once the candidate has been signalled to the peer, RFC 8838 §10 rule 1).
   * Server-reflexive candidates are paired through their base (RFC 8445 §6.1.2.4). A lite agent takes host
   * candidates only.
   */
  addLocalCandidate(stream: number, candidate: LocalCandidate): void {
    this.#assertOpen();
    const s = this.#stream(stream);
    if (candidate.component < 1 || candidate.component > s.components) throw new RangeError(`component ${candidate.component} out of range`);
    if (this.#lite && candidate.type !== 'host') throw new InvalidStateError('a lite agent uses host candidates only (RFC 8445 §5.2)');
    if (s.locals.some((c) => c.type === candidate.type && c.component === candidate.component && c.address === candidate.address && c.port === candidate.port)) return;
    s.locals.push(candidate);
    if (s.remote && !this.#lite) for (const r of s.remotes) this.#formPair(s, candidate, r);
    this.#dirty = true;
  }

  /**
   * Sets the peer's parameters for a stream. A ufrag different from the current one starts a new ICE session for
   * the stream (ICE restart, RFC 8445 §9): checklists are rebuilt, the previous selected pairs keep carrying data
   * until new ones are selected.
   */
  setRemoteParameters(stream: number, params: IceParameters): void {
    this.#assertOpen();
    const s = this.#stream(stream);
    const remote: RemoteParams = {
      ufrag: params.ufrag,
      pwd: params.pwd,
      key: shortTermKey(params.pwd),
      lite: params.lite ?? false,
      pacingMs: params.pacingMs,
      options: params.options ?? [],
    };
    if (s.remote && s.remote.ufrag === remote.ufrag && !s.restarting) {
      s.remote = remote;
      return;
    }
    // Requests that arrived before these parameters (RFC 8445 §7.3: answered, then processed once the parameters are
    // known) survive the rebuild of a restart: the peer's first checks of the new session are often among them.
    const early = s.pending;
    if (s.remote) this.#rebuild(s);
    s.local = this.#creds;
    s.restarting = false;
    s.remote = remote;
    this.#taMs = negotiateTa(this.#localPacing, remote.pacingMs);
    // RFC 8445 §6.1.1: facing a lite peer, a full agent MUST be controlling.
    if (remote.lite && !this.#lite && this.#role === 'controlled') this.#switchRole('controlling');
    if (!this.#lite) for (const l of s.locals) for (const r of s.remotes) this.#formPair(s, l, r);
    s.pending = [];
    for (const p of early) {
      if (p.rfrag === remote.ufrag && s.locals.includes(p.local)) this.#afterAcceptedRequest(s, p.local, p.from, p.priority, p.useCandidate);
    }
    if (this.#pacDeadline === undefined) this.#pacDeadline = null;
    this.#dirty = true;
  }

  /**
   * Adds a remote candidate (trickle-aware). Ignored after `endOfRemoteCandidates` (RFC 8838 §14), beyond the
   * remote-candidate limit, or for a component the stream does not have. `mdnsName` marks a candidate that was
   * signalled as a `.local` name and resolved by the caller.
   */
  addRemoteCandidate(stream: number, candidate: RemoteCandidate): void {
    this.#assertOpen();
    const s = this.#stream(stream);
    if (s.endOfRemote) return this.#drop('remote-after-end');
    if (candidate.component < 1 || candidate.component > s.components) return this.#drop('remote-bad-component');
    const same = s.remotes.findIndex(
      (r) => r.component === candidate.component && r.transport === candidate.transport && r.address === candidate.address && r.port === candidate.port,
    );
    if (same >= 0) {
      const old = s.remotes[same]!;
      if (old.type !== 'prflx' || candidate.type === 'prflx') return;
      // RFC 8838 §11 rule 4.A: the signalled candidate replaces the peer-reflexive one; existing pairs keep their
      // state (and foundation) but now name the signalled candidate and take its priority.
      s.remotes[same] = candidate;
      for (const p of s.checklist.pairs) {
        if (p.remote !== old) continue;
        p.remote = candidate;
        p.priority = this.#priorityOf(p.local.priority, candidate.priority);
      }
      s.checklist.resort();
      return;
    }
    if (s.remotes.length >= this.#remoteLimit) return this.#drop('remote-limit');
    s.remotes.push(candidate);
    if (s.remote && !this.#lite) for (const l of s.locals) this.#formPair(s, l, candidate);
    this.#dirty = true;
  }

  /** The peer signalled end-of-candidates for this stream (RFC 8838 §14): failure may now be declared. */
  endOfRemoteCandidates(stream: number): void {
    this.#assertOpen();
    this.#stream(stream).endOfRemote = true;
    this.#dirty = true;
  }

  /**
   * ICE restart (RFC 8445 §9): new local ufrag and pwd, local candidates kept. Each stream's checklist is rebuilt
   * when the peer's new parameters arrive; until then checks from the peer under the old credentials are answered
   * and data keeps flowing on the selected pairs.
   */
  restart(): void {
    this.#assertOpen();
    this.#creds = this.#makeCreds(iceString(this.#random, 8), iceString(this.#random, 24));
    for (const s of this.#streams) s.restarting = true;
    this.#dirty = true;
  }

  /** Closes the agent: pending transactions are dropped, nothing more is sent, state `closed`. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#txs.clear();
    this.#transmits.length = 0;
    this.#pacer?.withdraw();
    this.#setState('closed');
  }

  /**
   * Queues `data` on the selected pair of (stream, component), or before selection on the best valid pair
   * (RFC 8445 §12.1). Returns false when no pair may carry it (none valid, or consent lost/expired, RFC 7675).
   * Throws `InvalidStateError` after `close()`.
   */
  send(now: number, stream: number, component: number, data: Uint8Array): boolean {
    if (this.#closed) throw new InvalidStateError('send() after close()');
    this.#advance(now);
    const s = this.#stream(stream);
    if (this.#lite) {
      // RFC 8445 §12.1.1: a lite agent sends only once every component has a valid pair.
      for (let c = 1; c <= this.#componentCount(s); c++) if (!s.checklist.bestValid(c)) return false;
    }
    const pair = this.#sendingPair(s, component, now);
    if (!pair) return false;
    if (pair !== s.selected[component] && pair !== s.previous[component] && pair !== s.dataPairs[component]) {
      s.dataPairs[component] = pair;
      // RFC 7675 §5.1: first refresh one interval after the check that gave consent.
      if (this.#consentEnabled && !this.#consentNext.has(pair)) this.#consentNext.set(pair, pair.lastConsentAt + this.#consentJitter());
    }
    this.#transmits.push({ local: pair.local.base, remote: addrOf(pair.remote), data });
    pair.lastSentAt = now;
    pair.counters.bytesSent += data.length;
    return true;
  }

  /** The selected pair of a component (after a restart, the previous one until a new one is selected). */
  getSelectedPair(stream: number, component: number): PairInfo | undefined {
    const s = this.#streams[stream];
    const p = s?.selected[component] ?? s?.previous[component];
    return p ? info(p) : undefined;
  }

  /** Statistics of every pair in a checklist or valid list, and drop counters. */
  getStats(): AgentStats {
    const pairs: PairStats[] = [];
    for (const p of this.#pairs.values()) {
      pairs.push({ ...info(p), valid: p.valid, ...p.counters });
    }
    return { pairs, dropped: { ...this.#dropped }, taMs: this.#taMs, checksSent: this.#checksSent };
  }

  /** The checklist of a stream (read-only use: tests and diagnostics). */
  getChecklist(stream: number): Checklist {
    return this.#stream(stream).checklist;
  }

  // ---- SansIoMachine ----------------------------------------------------------------------------------------

  /**
   * Offers a datagram received on base `datagram.local`. STUN Binding traffic for this agent is processed (true);
   * non-STUN data from a known remote candidate becomes a `data` event (true); anything else returns false.
   */
  handleReceive(now: number, datagram: Datagram): boolean {
    if (this.#closed) return false;
    this.#advance(now);
    const data = datagram.data;
    if (!looksLikeStun(data)) return this.#receiveData(datagram);
    const r = tryDecodeStunMessage(data);
    if (!r.ok) {
      this.#drop(`stun-${r.reason}`);
      return false;
    }
    const m = r.message;
    if (m.method !== StunMethod.Binding) return false;
    let taken: boolean;
    switch (m.cls) {
      case 'request':
        taken = this.#handleRequest(now, datagram, m);
        break;
      case 'indication':
        taken = true; // keepalive (RFC 8445 §11): no processing
        break;
      default:
        taken = this.#handleResponse(now, datagram, m);
    }
    if (!this.#lite) this.#maybeNominate(now);
    this.#update(now);
    return taken;
  }

  /** Advances timers: retransmissions, the next paced check, nomination, consent, keepalives, state. */
  handleTimeout(now: number): void {
    if (this.#closed) return;
    this.#advance(now);
    this.#dirty = false;
    this.#runTransactions(now);
    if (!this.#lite) {
      this.#runChecks(now);
      this.#maybeNominate(now);
    }
    // RFC 8445 §11: "All endpoints MUST send keepalives", a lite agent too (it has no consent checks, RFC 7675 §5.1).
    this.#runConsent(now);
    this.#update(now);
  }

  /** Next datagram to send. */
  pollTransmit(): Datagram | undefined {
    return this.#transmits.shift();
  }

  /** Next event. */
  pollEvent(): AgentEvent | undefined {
    return this.#events.shift();
  }

  /** Earliest time `handleTimeout` must be called. */
  pollTimeout(): number | undefined {
    if (this.#closed) return undefined;
    let t = Infinity;
    const at = (x: number | undefined): void => {
      if (x !== undefined && x < t) t = x;
    };
    if (this.#dirty) at(this.#now === -Infinity ? 0 : this.#now);
    for (const tx of this.#txs.values()) at(tx.kind === 'check' ? tx.timer.pollTimeout() : tx.expiresAt);
    if (!this.#lite) {
      if (hasPendingCheck(this.#checklists())) {
        const slot = this.#pacer?.nextSlot();
        at(Math.max(this.#nextCheckAt, slot ?? -Infinity, this.#now));
      }
      if (this.#role === 'controlling' && this.#mode === 'regular') {
        for (const s of this.#streams) {
          if (s.checklist.state !== 'running') continue;
          for (let c = 1; c <= this.#componentCount(s); c++) {
            const f = s.firstValidAt[c];
            // Only a future deadline: a passed one is acted on by every handleTimeout (never spin on it).
            if (f !== undefined && f + this.#nominationTimeoutMs > this.#now && !this.#componentNominating(s, c)) at(f + this.#nominationTimeoutMs);
          }
        }
      }
      for (const p of this.#activePairs()) {
        if (this.#consentEnabled && !p.consentLost) {
          at(this.#consentNext.get(p));
          at(p.lastConsentAt + this.#consentTimeoutMs);
          const disc = p.lastConsentAt + this.#disconnectedTimeoutMs;
          if (disc > this.#now) at(disc);
        }
        if (!this.#consentEnabled) at(p.lastSentAt + this.#keepaliveMs);
      }
    } else {
      for (const p of this.#activePairs()) at(p.lastSentAt + this.#keepaliveMs); // RFC 8445 §11
    }
    if (typeof this.#pacDeadline === 'number' && this.#pacDeadline > this.#now && this.#state !== 'connected' && this.#state !== 'completed') {
      at(this.#pacDeadline);
    }
    if (this.#pacDeadline === null) at(this.#now === -Infinity ? 0 : this.#now);
    return t === Infinity ? undefined : t;
  }

  // ---- internals: helpers -----------------------------------------------------------------------------------

  /** Nomination in force: facing a lite peer a full agent nominates regularly (RFC 8445 §6.1.1, §8.2). */
  get #mode(): NominationMode {
    // RFC 8445 §10: a peer that signals ice2 must not face aggressive nomination (RFC 5245 §14 for unknown options).
    return this.#streams.some((s) => s.remote?.lite || s.remote?.options.includes('ice2')) ? 'regular' : this.#nomination;
  }

  get #aggressiveControlling(): boolean {
    return this.#role === 'controlling' && this.#mode === 'aggressive';
  }

  #liveCheck(p: CandidatePair): boolean {
    for (const tx of this.#txs.values()) if (tx.kind === 'check' && tx.pair === p && !tx.cancelled) return true;
    return false;
  }

  get #consentEnabled(): boolean {
    return !this.#lite && this.#consentIntervalMs > 0;
  }

  #assertOpen(): void {
    if (this.#closed) throw new InvalidStateError('agent is closed');
  }

  #stream(index: number): Stream {
    const s = this.#streams[index];
    if (!s) throw new RangeError(`no stream ${index}`);
    return s;
  }

  /**
   * Components in use (RFC 8445 §6.1.2.2): when the peer provides candidates for fewer components (e.g. RTP/RTCP mux
   * answered with one component) the count is the smaller maximum component ID. Known once the peer signalled
   * end-of-candidates; until then every declared component is expected.
   */
  #componentCount(s: Stream): number {
    if (!s.endOfRemote) return s.components;
    let maxRemote = 0;
    for (const r of s.remotes) if (r.type !== 'prflx' && r.component > maxRemote) maxRemote = r.component;
    let maxLocal = 0;
    for (const l of s.locals) if (l.component > maxLocal) maxLocal = l.component;
    const n = Math.min(s.components, maxRemote || s.components, maxLocal || s.components);
    return Math.max(1, n);
  }

  #checklists(): Checklist[] {
    return this.#streams.map((s) => s.checklist);
  }

  #advance(now: number): void {
    if (now > this.#now) this.#now = now;
    if (this.#pacDeadline === null) this.#pacDeadline = now + this.#failureGraceMs;
  }

  #drop(reason: string): void {
    this.#dropped[reason] = (this.#dropped[reason] ?? 0) + 1;
  }

  #priorityOf(localPriority: number, remotePriority: number): bigint {
    return pairPriorityFor(this.#role, localPriority, remotePriority);
  }

  #setPairState(p: CandidatePair, state: PairState): void {
    if (p.state === state) return;
    p.state = state;
    this.#events.push({ type: 'pair-state', stream: p.stream, component: p.component, pairId: p.id, state });
  }

  #setState(state: AgentState): void {
    if (this.#state === state) return;
    this.#state = state;
    this.#events.push({ type: 'state', state });
  }

  #newPair(s: Stream, local: LocalCandidate, remote: Candidate): CandidatePair {
    const p = new CandidatePair(`p${this.#pairSeq++}`, s.index, local, remote, this.#priorityOf(local.priority, remote.priority));
    return p;
  }

  /** The candidate that is its own base for `base` (host or relayed), preferred for checklist pairs. */
  #baseCandidate(s: Stream, component: number, base: TransportAddress): LocalCandidate | undefined {
    let fallback: LocalCandidate | undefined;
    for (const c of s.locals) {
      if (c.component !== component || !sameAddress(c.base, base)) continue;
      if (c.address === base.address && c.port === base.port && (c.type === 'host' || c.type === 'relay')) return c;
      fallback ??= c;
    }
    return fallback;
  }

  /** Pairs a local and a remote candidate into the checklist (RFC 8445 §6.1.2.2-5, RFC 8838 §10-12). */
  #formPair(s: Stream, local: LocalCandidate, remote: RemoteCandidate): CandidatePair | undefined {
    if (!canPair(local, remote)) return undefined;
    // RFC 8445 §6.1.2.4: a reflexive local candidate is replaced by its base.
    const checkLocal = local.type === 'srflx' || local.type === 'prflx' ? (this.#baseCandidate(s, local.component, local.base) ?? local) : local;
    // RFC 8445 §8.1.2: once a component is nominated its other pairs are gone; none are added back.
    if (s.selected[local.component]) return undefined;
    const pair = this.#newPair(s, checkLocal, remote);
    const res = s.checklist.insert(pair);
    for (const r of res.removed) this.#forgetPair(r);
    if (!res.added) return res.pair === pair ? undefined : res.pair;
    this.#pairs.set(pair.id, pair);
    const idx = this.#streams.indexOf(s);
    this.#setPairState(pair, stateForNewPair(pair, idx, this.#checklists()));
    if (pair.state === 'frozen') this.#events.push({ type: 'pair-state', stream: pair.stream, component: pair.component, pairId: pair.id, state: 'frozen' });
    if (s.checklist.state === 'failed') s.checklist.state = 'running';
    return pair;
  }

  #forgetPair(p: CandidatePair): void {
    if (p.validPair === p || !p.valid) this.#pairs.delete(p.id);
    for (const tx of this.#txs.values()) if (tx.pair === p && tx.kind === 'check') tx.cancelled = true;
  }

  #switchRole(role: IceRole): void {
    if (this.#role === role) return;
    this.#role = role;
    // RFC 8445 §7.2.5.1 / §7.3.1.1 notes: pair priorities depend on the role.
    for (const p of this.#pairs.values()) p.priority = this.#priorityOf(p.local.priority, p.remote.priority);
    for (const s of this.#streams) s.checklist.resort();
    if (role === 'controlled') for (const p of this.#pairs.values()) p.nominating = false;
    this.#events.push({ type: 'role-change', role });
  }

  /** Starts a new ICE session on a stream (restart): old pairs go, selected pairs become "previous". */
  #rebuild(s: Stream): void {
    for (let c = 1; c <= s.components; c++) {
      // RFC 8445 §12.1 keeps the previous selected pair; before any selection the valid pair data was using
      // (§12.1 allows any valid pair) carries on the same way, so a restart never interrupts a working path.
      const keep = s.selected[c] ?? s.previous[c] ?? s.checklist.bestValid(c);
      s.previous[c] = keep && !keep.consentLost ? keep : undefined;
      if (s.previous[c] && this.#consentEnabled && !this.#consentNext.has(s.previous[c]!)) {
        this.#consentNext.set(s.previous[c]!, this.#now + this.#consentJitter());
      }
    }
    const keep = new Set(s.previous.filter((p): p is CandidatePair => p !== undefined));
    for (const [k, tx] of this.#txs) if (tx.pair.stream === s.index && !(tx.kind === 'consent' && keep.has(tx.pair))) this.#txs.delete(k);
    for (const [id, p] of this.#pairs) if (p.stream === s.index && !keep.has(p)) this.#pairs.delete(id);
    for (const p of this.#consentNext.keys()) if (p.stream === s.index && !keep.has(p)) this.#consentNext.delete(p);
    s.checklist = new Checklist(s.index, s.components, this.#checklistLimit);
    this.#dataRoutes.clear();
    this.#lastRoute = undefined;
    s.selected = [];
    s.firstValidAt = [];
    s.remotes = [];
    s.endOfRemote = false;
    s.pending = [];
    s.prflxCount = 0;
    s.dataPairs = [];
    // Peer-reflexive local candidates belong to the old session.
    s.locals = s.locals.filter((c) => c.type !== 'prflx');
    this.#pacDeadline = null;
  }

  // ---- incoming requests (RFC 8445 §7.3) --------------------------------------------------------------------

  #respond(d: Datagram, data: Uint8Array): void {
    this.#transmits.push({ local: d.local, remote: d.remote, data, ...(d.transport ? { transport: d.transport } : {}) });
  }

  /** Answers a request that could not be authenticated, within the reflection budget. */
  #respondUnauthenticated(now: number, d: Datagram, transactionId: Uint8Array, code: number, reason: string): void {
    if (now - this.#unauthWindowStart >= 1000) {
      this.#unauthWindowStart = now;
      this.#unauthReplies = 0;
    }
    if (this.#unauthReplies >= MAX_UNAUTHENTICATED_REPLIES_PER_SECOND) return this.#drop('unauthenticated-reply-limit');
    this.#unauthReplies++;
    this.#respond(d, encodeCheckError(transactionId, code, reason));
  }

  #handleRequest(now: number, d: Datagram, m: DecodedStunMessage): boolean {
    // RFC 8445 §7.3: ICE uses FINGERPRINT; without it this is not a check for us.
    if (!m.hasFingerprint) {
      this.#drop('request-no-fingerprint');
      return false;
    }
    const check = parseCheck(m);
    // RFC 8489 §9.1.3: USERNAME and MESSAGE-INTEGRITY are both required, else 400.
    if (check.username === undefined || (m.integrityOffset < 0 && m.integritySha256Offset < 0)) {
      this.#respondUnauthenticated(now, d, m.transactionId, ErrorCode.BadRequest, 'Bad Request');
      this.#drop('request-bad');
      return true;
    }
    const colon = check.username.indexOf(':');
    const lfrag = colon > 0 ? check.username.slice(0, colon) : undefined;
    const rfrag = colon > 0 ? check.username.slice(colon + 1) : '';
    const creds = lfrag === undefined ? undefined : this.#credentialsFor(lfrag);
    if (!creds || verifyIntegrity(m, creds.key) !== 'ok') {
      // RFC 8489 §9.1.3: unknown username or bad integrity: 401, no state change.
      this.#respondUnauthenticated(now, d, m.transactionId, ErrorCode.Unauthorized, 'Unauthorized');
      this.#drop(creds ? 'request-integrity' : 'request-username');
      return true;
    }
    // RFC 8489 §6.3.1.1: after authentication, unknown comprehension-required attributes get a 420.
    const unknown = unknownComprehensionRequired(m);
    if (unknown.length > 0) {
      this.#respond(d, encodeCheckError(m.transactionId, ErrorCode.UnknownAttribute, 'Unknown Attribute', creds.key, unknown));
      this.#drop('request-unknown-attribute');
      return true;
    }
    const found = this.#localForBase(d.local);
    if (found) this.#findPairStats(found.stream, found.local, d.remote, (p) => p.counters.requestsReceived++);
    if (!this.#lite && this.#repairRoleConflict(check.controlling, check.controlled)) {
      this.#respond(d, encodeCheckError(m.transactionId, ErrorCode.RoleConflict, 'Role Conflict', creds.key));
      return true;
    }
    this.#respond(d, encodeCheckSuccess(m.transactionId, d.remote, creds.key));
    if (found) this.#findPairStats(found.stream, found.local, d.remote, (p) => p.counters.responsesSent++);
    if (!found) {
      this.#drop('request-unknown-base');
      return true;
    }
    const s = found.stream;
    const priority = check.priority ?? 0;
    if (this.#lite) {
      this.#liteRequest(now, s, found.local, d.remote, priority, check.useCandidate);
      return true;
    }
    if (!s.remote || s.remote.ufrag !== rfrag) {
      if (s.pending.length < MAX_PENDING_REQUESTS) s.pending.push({ local: found.local, from: d.remote, rfrag, priority, useCandidate: check.useCandidate });
      return true;
    }
    this.#afterAcceptedRequest(s, found.local, d.remote, priority, check.useCandidate);
    return true;
  }

  #findPairStats(s: Stream, local: LocalCandidate, from: TransportAddress, f: (p: CandidatePair) => void): void {
    const p = s.checklist.find(local.component, local.base.address, local.base.port, from.address, from.port);
    if (p) f(p);
  }

  /** Credentials of the session `lfrag` names: the agent's current ones or those a stream still runs. */
  #credentialsFor(lfrag: string): Credentials | undefined {
    if (lfrag === this.#creds.ufrag) return this.#creds;
    for (const s of this.#streams) if (s.local.ufrag === lfrag) return s.local;
    return undefined;
  }

  #localForBase(base: TransportAddress): { stream: Stream; local: LocalCandidate } | undefined {
    for (const s of this.#streams) {
      for (let c = 1; c <= s.components; c++) {
        const l = this.#baseCandidate(s, c, base);
        if (l) return { stream: s, local: l };
      }
    }
    return undefined;
  }

  /**
   * RFC 8445 §7.3.1.1. Returns true when the request must be answered with 487 (the agent keeps its role); may
   * switch the role instead.
   */
  #repairRoleConflict(controlling: bigint | undefined, controlled: bigint | undefined): boolean {
    if (this.#role === 'controlling' && controlling !== undefined) {
      if (this.#tieBreaker >= controlling) return true;
      this.#switchRole('controlled');
    } else if (this.#role === 'controlled' && controlled !== undefined) {
      if (this.#tieBreaker >= controlled) this.#switchRole('controlling');
      else return true;
    }
    return false;
  }

  /** RFC 8445 §7.3.1.3-7.3.1.5 for an accepted request on a full agent. */
  #afterAcceptedRequest(s: Stream, local: LocalCandidate, from: TransportAddress, priority: number, useCandidate: boolean): void {
    const component = local.component;
    let remote = s.remotes.find((r) => r.component === component && r.address === from.address && r.port === from.port);
    if (!remote) {
      if (s.remotes.length >= this.#remoteLimit) return this.#drop('prflx-remote-limit');
      // RFC 8445 §7.3.1.3: a peer-reflexive remote candidate, foundation unlike every other remote one.
      let foundation: string;
      do foundation = `prflx${++s.prflxCount}`;
      while (s.remotes.some((r) => r.foundation === foundation));
      const cand: RemoteCandidate = { foundation, component, transport: local.transport, priority, address: from.address, port: from.port, type: 'prflx' };
      remote = cand;
      s.remotes.push(cand);
      this.#events.push({ type: 'prflx-remote', stream: s.index, candidate: cand });
    }
    // After nomination (RFC 8445 §8.1.2) pairs of the component are gone; only a new nomination re-adds one.
    if (s.selected[component] && !useCandidate) {
      const existing = s.checklist.find(component, local.base.address, local.base.port, from.address, from.port);
      if (!existing) return;
    }
    // RFC 8445 §7.3.1.4: triggered checks.
    let pair = s.checklist.find(component, local.base.address, local.base.port, from.address, from.port);
    if (!pair) {
      if (!canPair(local, remote)) return;
      pair = this.#newPair(s, local, remote);
      const res = s.checklist.insert(pair);
      for (const r of res.removed) this.#forgetPair(r);
      if (!res.added) return this.#drop('checklist-full');
      this.#pairs.set(pair.id, pair);
      this.#setPairState(pair, 'waiting');
      s.checklist.enqueueTriggered(pair);
    } else if (pair.state === 'in-progress') {
      for (const tx of this.#txs.values()) if (tx.kind === 'check' && tx.pair === pair) tx.cancelled = true;
      this.#setPairState(pair, 'waiting');
      s.checklist.enqueueTriggered(pair);
    } else if (pair.state !== 'succeeded') {
      this.#setPairState(pair, 'waiting');
      s.checklist.enqueueTriggered(pair);
    }
    if (s.checklist.state === 'failed' && pair.state === 'waiting') s.checklist.state = 'running';
    // RFC 8445 §7.3.1.5: the controlled agent honours USE-CANDIDATE.
    if (useCandidate && this.#role === 'controlled') {
      // A Succeeded pair is valid through its own check, or is itself the valid pair another check produced
      // (RFC 8445 §7.2.5.3.2 case 2): either way that valid pair is the one nominated.
      const valid = pair.validPair ?? (pair.valid ? pair : undefined);
      if (pair.state === 'succeeded' && valid) {
        valid.nominated = true;
        this.#updateSelection(s, component);
      } else {
        pair.nominateOnSuccess = true;
        // RFC 8445 §8.1.1: an RFC 5245 peer may nominate again (aggressive); the highest-priority nomination wins,
        // so a completed checklist runs again for this triggered check.
        if (s.checklist.state === 'completed') s.checklist.state = 'running';
      }
    }
    this.#dirty = true;
  }

  /** RFC 8445 §7.3.2: a lite agent puts the nominated pair straight into the valid list. */
  #liteRequest(now: number, s: Stream, local: LocalCandidate, from: TransportAddress, priority: number, useCandidate: boolean): void {
    if (!useCandidate) return;
    let pair = s.checklist.find(local.component, local.base.address, local.base.port, from.address, from.port);
    if (!pair) {
      let remote: Candidate | undefined = s.remotes.find((r) => r.component === local.component && r.address === from.address && r.port === from.port);
      remote ??= { foundation: `prflx${++s.prflxCount}`, component: local.component, transport: local.transport, priority, address: from.address, port: from.port, type: 'prflx' };
      pair = this.#newPair(s, local, remote);
      const res = s.checklist.insert(pair);
      if (!res.added) return this.#drop('checklist-full');
      this.#pairs.set(pair.id, pair);
    }
    this.#setPairState(pair, 'succeeded');
    pair.validPair = pair;
    pair.checkPair = pair;
    s.checklist.addValid(pair);
    pair.nominated = true;
    pair.lastConsentAt = now;
    pair.lastSentAt = now; // the response to this request is the last packet sent on the pair (RFC 8445 §11)
    this.#updateSelection(s, local.component);
  }

  // ---- responses (RFC 8445 §7.2.5) --------------------------------------------------------------------------

  #handleResponse(now: number, d: Datagram, m: DecodedStunMessage): boolean {
    const key = transactionKey(m.transactionId);
    const tx = this.#txs.get(key);
    if (!tx) return false;
    if (verifyIntegrity(m, tx.key) !== 'ok') {
      // Not authenticated: ignore it (keep waiting for a genuine answer).
      this.#drop('response-integrity');
      return true;
    }
    this.#txs.delete(key);
    const pair = tx.pair;
    pair.counters.responsesReceived++;
    // RFC 8445 §7.2.5.2.1: the response must come from where the request went, to where it came from.
    const symmetric = sameAddress(d.remote, tx.request.remote) && sameAddress(d.local, tx.request.local);
    if (tx.kind === 'consent') {
      if (symmetric && m.cls === 'success' && !pair.consentLost) {
        pair.lastConsentAt = now;
        pair.counters.currentRoundTripTime = (now - tx.sentAt) / 1000; // seconds, as RTCIceCandidatePairStats
      } else if (symmetric && m.cls === 'error' && errorCodeOf(m) === ErrorCode.Forbidden) {
        this.#loseConsent(pair); // RFC 7675 §5.2: immediate revocation
      }
      return true;
    }
    const s = this.#streams[pair.stream];
    if (!s || !this.#pairs.has(pair.id)) return true;
    if (!symmetric) {
      this.#drop('response-asymmetric');
      if (!tx.cancelled) this.#checkFailed(s, tx);
      return true;
    }
    if (m.cls === 'error') {
      const code = errorCodeOf(m);
      if (code === ErrorCode.RoleConflict) {
        // RFC 8445 §7.2.5.1: switch to the other role than the one the request claimed, new tie-breaker, retry.
        this.#switchRole(tx.role === 'controlling' ? 'controlled' : 'controlling');
        this.#tieBreaker = randomTieBreaker(this.#random);
        this.#setPairState(pair, 'waiting');
        s.checklist.enqueueTriggered(pair);
        return true;
      }
      if (!tx.cancelled) this.#checkFailed(s, tx);
      return true;
    }
    const mapped = getAttribute(m, Attr.XOR_MAPPED_ADDRESS);
    if (!mapped) {
      this.#drop('response-no-mapped');
      this.#checkFailed(s, tx);
      return true;
    }
    this.#checkSucceeded(now, s, tx, mapped);
    return true;
  }

  #checkFailed(s: Stream, tx: CheckTx): void {
    const pair = tx.pair;
    // A failed nomination of an already valid pair (regular), or of the controlled side's triggered check.
    const nominationFailed = (tx.useCandidate && pair.validPair !== undefined) || (this.#role === 'controlled' && pair.nominateOnSuccess);
    if (pair.state === 'succeeded' && !nominationFailed) return; // a stale cancelled duplicate
    this.#setPairState(pair, 'failed');
    s.checklist.dequeue(pair);
    if (nominationFailed) {
      // RFC 8445 §7.2.5.3.4 / §7.3.1.5: remove from the valid list, pair and checklist Failed. RFC 8863 §4 updates
      // the last part: while the PAC timer runs the checklist MUST NOT go from Running to Failed (a new nomination
      // may still succeed); afterwards the usual failure rules apply (§7.2.5.4 in `#update`).
      if (pair.validPair) s.checklist.removeValid(pair.validPair);
      pair.nominating = false;
      pair.nominateOnSuccess = false;
      const pacOver = typeof this.#pacDeadline === 'number' && this.#now >= this.#pacDeadline;
      if (pacOver) s.checklist.state = 'failed';
    }
  }

  #checkSucceeded(now: number, s: Stream, tx: CheckTx, mapped: TransportAddress): void {
    const pair = tx.pair;
    pair.counters.currentRoundTripTime = (now - tx.sentAt) / 1000; // seconds, as RTCIceCandidatePairStats
    // RFC 8445 §7.2.5.3.1: the mapped address may be a new (peer-reflexive) local candidate.
    let local = s.locals.find((c) => c.component === pair.component && c.address === mapped.address && c.port === mapped.port);
    if (!local) {
      const base = pair.local.base;
      const foundation = `x${(crc32(`prflx|${base.address}|${pair.local.transport}`) >>> 0).toString(16)}`;
      const prflx: LocalCandidate = {
        foundation,
        component: pair.component,
        transport: pair.local.transport,
        priority: tx.priority,
        address: mapped.address,
        port: mapped.port,
        type: 'prflx',
        relatedAddress: base.address,
        relatedPort: base.port,
        base,
        socket: pair.local.socket,
        ...(pair.local.relayServer ? { relayServer: pair.local.relayServer } : {}),
      };
      local = prflx;
      s.locals.push(prflx);
      this.#events.push({ type: 'prflx-local', stream: s.index, candidate: prflx });
    }
    // RFC 8445 §7.2.5.3.2: the valid pair.
    let valid: CandidatePair | undefined;
    if (local === pair.local) valid = pair;
    else {
      valid =
        s.checklist.valid.find((v) => v.local === local && v.remote === pair.remote) ??
        s.checklist.pairs.find((p) => p.local === local && p.remote === pair.remote);
      if (!valid) {
        valid = this.#newPair(s, local, pair.remote);
        this.#pairs.set(valid.id, valid);
      }
    }
    // RFC 8445 §7.2.5.3.3.
    this.#setPairState(pair, 'succeeded');
    this.#setPairState(valid, 'succeeded');
    pair.validPair = valid;
    valid.checkPair = pair;
    s.checklist.addValid(valid);
    valid.lastConsentAt = now;
    pair.lastConsentAt = now;
    if (s.firstValidAt[pair.component] === undefined) s.firstValidAt[pair.component] = now;
    for (const p of unfreezeFoundation(pair.foundation, this.#checklists())) {
      this.#events.push({ type: 'pair-state', stream: p.stream, component: p.component, pairId: p.id, state: 'waiting' });
    }
    if (!pair.nominating || tx.useCandidate) s.checklist.dequeue(pair);
    // RFC 8445 §7.2.5.3.4.
    if ((tx.useCandidate && this.#role === 'controlling') || (pair.nominateOnSuccess && this.#role === 'controlled')) {
      valid.nominated = true;
      pair.nominating = false;
    }
    this.#updateSelection(s, pair.component);
  }

  // ---- nomination and selection (RFC 8445 §8) ---------------------------------------------------------------

  #componentNominating(s: Stream, c: number): boolean {
    if (s.selected[c]) return true;
    return s.checklist.pairs.some((p) => p.component === c && p.nominating) || s.checklist.valid.some((p) => p.component === c && p.nominated);
  }

  /** Controlling, regular nomination (RFC 8445 §8.1.1): pick one valid pair per component and repeat its check. */
  #maybeNominate(now: number): void {
    if (this.#role !== 'controlling' || this.#mode !== 'regular') return;
    for (const s of this.#streams) {
      if (s.checklist.state !== 'running' || !s.remote) continue;
      for (let c = 1; c <= this.#componentCount(s); c++) {
        if (this.#componentNominating(s, c)) continue;
        // RFC 7675 §5.1: a pair whose consent expired (data carried before selection) is not used again.
        const best = s.checklist.valid.find((v) => v.component === c && !v.consentLost);
        const cp = best?.checkPair;
        if (!best || !cp) continue;
        const pendingAbove = s.checklist.pairs.some(
          (p) => p.component === c && p.priority > cp.priority && (p.state === 'frozen' || p.state === 'waiting' || p.state === 'in-progress'),
        );
        const waited = now >= (s.firstValidAt[c] ?? Infinity) + this.#nominationTimeoutMs;
        if (pendingAbove && !waited) continue;
        cp.nominating = true;
        s.checklist.enqueueTriggered(cp);
        this.#dirty = true;
      }
    }
  }

  /** Selected pair = highest-priority nominated valid pair (RFC 8445 §8.1.1); conclude the component (§8.1.2). */
  #updateSelection(s: Stream, component: number): void {
    const best = s.checklist.bestValid(component, true);
    if (!best || best === s.selected[component]) {
      this.#maybeComplete(s);
      return;
    }
    const old = s.selected[component] ?? s.previous[component];
    if (old && old !== best) this.#consentNext.delete(old);
    s.selected[component] = best;
    s.previous[component] = undefined;
    this.#events.push({ type: 'selected-pair', stream: s.index, component, pair: info(best) });
    if (this.#consentEnabled) this.#consentNext.set(best, this.#now + this.#consentJitter());
    // RFC 8445 §8.1.2: remove the component's other Frozen/Waiting pairs, cancel its In-Progress checks.
    for (const p of [...s.checklist.pairs]) {
      if (p.component !== component || p === best || p === best.checkPair) continue;
      // RFC 5245 §8.1.2 (aggressive): checks and pending nominations on higher-priority pairs go on, they may
      // still be nominated and would then be selected.
      if ((p.nominateOnSuccess || this.#aggressiveControlling) && p.priority > best.priority && p.state !== 'failed') continue;
      if (p.state === 'frozen' || p.state === 'waiting') {
        s.checklist.remove(p);
        this.#pairs.delete(p.id);
      } else if (p.state === 'in-progress') {
        for (const tx of this.#txs.values()) if (tx.kind === 'check' && tx.pair === p) tx.cancelled = true;
      }
    }
    this.#maybeComplete(s);
  }

  /** RFC 8445 §8.1.2: Completed once every component has a nominated (selected) pair and nothing is pending. */
  #maybeComplete(s: Stream): void {
    if (s.checklist.state !== 'running') return;
    for (let c = 1; c <= this.#componentCount(s); c++) if (!s.selected[c]) return;
    if (s.checklist.triggered.length > 0) return;
    // A nomination still being checked on a higher-priority pair (RFC 5245 aggressive peer) may change the choice.
    for (const p of s.checklist.pairs) {
      const sel = s.selected[p.component]!;
      if (p.priority <= sel.priority || (p.state !== 'waiting' && p.state !== 'in-progress')) continue;
      const pending = p.state === 'waiting' || this.#liveCheck(p);
      if (pending && (p.nominateOnSuccess || this.#aggressiveControlling)) return;
    }
    s.checklist.state = 'completed';
  }

  // ---- sending checks ---------------------------------------------------------------------------------------

  #runChecks(now: number): void {
    const lists = this.#checklists();
    if (now < this.#nextCheckAt || !hasPendingCheck(lists)) {
      if (!hasPendingCheck(lists)) this.#pacer?.withdraw();
      return;
    }
    if (this.#pacer && !this.#pacer.request(now, nextIsTriggered(lists) ? 'triggered' : 'ordinary')) {
      this.#pacerDelayed = true;
      return;
    }
    // When the global pacer stretches this agent's spacing beyond Ta, the RTO scales with the real spacing, so each
    // pair still gets its first check before any retransmission (the intent of RFC 8445 §14.3).
    const effectiveTa = this.#pacerDelayed && this.#lastCheckAt > -Infinity ? Math.max(this.#taMs, now - this.#lastCheckAt) : this.#taMs;
    this.#pacerDelayed = false;
    this.#lastCheckAt = now;
    const picked = pickNextCheck(lists, this.#cursor);
    // Cannot happen while hasPendingCheck and pickNextCheck agree; never spin on it.
    if (!picked) {
      this.#nextCheckAt = now + this.#taMs;
      return;
    }
    this.#cursor = picked.cursor;
    this.#sendCheck(now, picked.check.pair, effectiveTa);
    this.#nextCheckAt = now + this.#taMs;
  }

  #sendCheck(now: number, pair: CandidatePair, effectiveTa: number): void {
    const s = this.#streams[pair.stream]!;
    const remote = s.remote!;
    const useCandidate = this.#role === 'controlling' && (pair.nominating || this.#mode === 'aggressive');
    const priority = prflxPriority(pair.local.priority);
    const id = newTransactionId(this.#random);
    const data = encodeCheckRequest({
      transactionId: id,
      username: `${remote.ufrag}:${s.local.ufrag}`,
      priority,
      role: this.#role,
      tieBreaker: this.#tieBreaker,
      useCandidate,
      key: remote.key,
    });
    if (pair.state !== 'succeeded') this.#setPairState(pair, 'in-progress');
    let waiting = 0;
    let inProgress = 0;
    let total = 0;
    for (const cl of this.#checklists()) {
      waiting += cl.count('waiting');
      inProgress += cl.count('in-progress');
      total += cl.pairs.length;
    }
    const rtoMs = checkRtoMs(effectiveTa, waiting, inProgress, total, this.#rtoFormula);
    const timer = new TransactionTimer(now, { rtoMs });
    timer.handleTimeout(now); // the first send, now
    const request: Datagram = { local: pair.local.base, remote: addrOf(pair.remote), data };
    for (const tx of this.#txs.values()) if (tx.kind === 'check' && tx.pair === pair) tx.cancelled = true;
    this.#txs.set(transactionKey(id), { kind: 'check', pair, timer, request, useCandidate, role: this.#role, priority, sentAt: now, key: remote.key, cancelled: false });
    this.#transmits.push(request);
    pair.counters.requestsSent++;
    pair.lastSentAt = now;
    this.#checksSent++;
  }

  #runTransactions(now: number): void {
    for (const [k, tx] of this.#txs) {
      if (tx.kind === 'consent') {
        if (now >= tx.expiresAt) this.#txs.delete(k);
        continue;
      }
      const r = tx.timer.handleTimeout(now);
      if (r === 'send') {
        if (!tx.cancelled) {
          this.#transmits.push(tx.request);
          tx.pair.counters.requestsSent++;
          tx.pair.lastSentAt = now;
        }
        // Owed sends collapse into one; skip the rest.
        while (tx.timer.handleTimeout(now) === 'send');
        if (tx.timer.finished) this.#txTimedOut(k, tx);
      } else if (r === 'timeout') {
        this.#txTimedOut(k, tx);
      }
    }
  }

  #txTimedOut(key: string, tx: CheckTx): void {
    this.#txs.delete(key);
    if (tx.cancelled) {
      // A check cancelled by RFC 8445 §8.1.2 that never got its late answer: the pair is done with, not pending.
      const p = tx.pair;
      const queued = this.#streams[p.stream]?.checklist.triggered.includes(p) ?? false;
      if (p.state === 'in-progress' && !queued && !this.#liveCheck(p) && this.#pairs.has(p.id)) this.#setPairState(p, 'failed');
      return;
    }
    const s = this.#streams[tx.pair.stream];
    // RFC 8445 §7.2.5.2.3.
    if (s && this.#pairs.has(tx.pair.id)) this.#checkFailed(s, tx);
  }

  // ---- consent and keepalives (RFC 7675, RFC 8445 §11) ------------------------------------------------------

  #activePairs(): CandidatePair[] {
    const out: CandidatePair[] = [];
    for (const s of this.#streams) {
      for (let c = 1; c <= s.components; c++) {
        const d = s.dataPairs[c];
        const p = s.selected[c] ?? s.previous[c] ?? (d?.valid && s.checklist.state !== 'failed' ? d : undefined);
        if (p) out.push(p);
      }
    }
    return out;
  }

  #consentJitter(): number {
    // RFC 7675 §5.1: uniformly within 0.8..1.2 x the period.
    const b = this.#random.bytes(2);
    const u = ((b[0]! << 8) | b[1]!) / 65535;
    return Math.round(this.#consentIntervalMs * (0.8 + 0.4 * u));
  }

  #runConsent(now: number): void {
    for (const p of this.#activePairs()) {
      if (p.consentLost) continue;
      if (this.#consentEnabled) {
        if (now - p.lastConsentAt >= this.#consentTimeoutMs) {
          this.#loseConsent(p);
          continue;
        }
        const next = this.#consentNext.get(p) ?? now;
        if (now >= next) {
          this.#sendConsent(now, p);
          this.#consentNext.set(p, now + this.#consentJitter());
        }
      } else if (now - p.lastSentAt >= this.#keepaliveMs) {
        this.#transmits.push({ local: p.local.base, remote: addrOf(p.remote), data: encodeKeepalive(newTransactionId(this.#random)) });
        p.lastSentAt = now;
      }
    }
  }

  #sendConsent(now: number, p: CandidatePair): void {
    const s = this.#streams[p.stream]!;
    const remote = s.remote;
    if (!remote) return;
    const id = newTransactionId(this.#random);
    const data = encodeCheckRequest({
      transactionId: id,
      username: `${remote.ufrag}:${s.local.ufrag}`,
      priority: prflxPriority(p.local.priority),
      role: this.#role,
      tieBreaker: this.#tieBreaker,
      useCandidate: false,
      key: remote.key,
    });
    const request: Datagram = { local: p.local.base, remote: addrOf(p.remote), data };
    // RFC 7675 §5.1: sent once, new transaction ID each time; a late answer still refreshes consent.
    this.#txs.set(transactionKey(id), { kind: 'consent', pair: p, request, sentAt: now, expiresAt: now + this.#consentTimeoutMs, key: remote.key });
    this.#transmits.push(request);
    p.counters.requestsSent++;
    p.lastSentAt = now;
  }

  #loseConsent(p: CandidatePair): void {
    if (p.consentLost) return;
    p.consentLost = true;
    this.#consentNext.delete(p);
    for (const [k, tx] of this.#txs) if (tx.kind === 'consent' && tx.pair === p) this.#txs.delete(k);
    this.#events.push({ type: 'consent-lost', stream: p.stream, component: p.component, pair: info(p) });
  }

  // ---- data -------------------------------------------------------------------------------------------------

  #sendingPair(s: Stream, component: number, now: number): CandidatePair | undefined {
    // RFC 8445 §12.1: the previous selected pair stands in only while the new checklist is Running.
    const active = s.selected[component] ?? (s.checklist.state === 'failed' ? undefined : s.previous[component]);
    if (active) return this.#fresh(active, now) ? active : undefined;
    if (s.checklist.state === 'failed') return undefined;
    // RFC 8445 §12.1: before selection, any valid pair may carry data.
    for (const v of s.checklist.valid) if (v.component === component && this.#fresh(v, now)) return v;
    return undefined;
  }

  /** The pair may carry data: consent not lost nor expired (RFC 7675 §5.1). A method, not a closure per send. */
  #fresh(p: CandidatePair, now: number): boolean {
    return !p.consentLost && (!this.#consentEnabled || now - p.lastConsentAt < this.#consentTimeoutMs);
  }

  #receiveData(d: Datagram): boolean {
    // Fastest path: the same 5-tuple as the previous datagram (the usual case for media on one component).
    const lr = this.#lastRoute;
    if (
      lr !== undefined &&
      lr.remotePort === d.remote.port &&
      lr.remoteAddress === d.remote.address &&
      lr.localPort === d.local.port &&
      lr.localAddress === d.local.address &&
      this.#pairs.has(lr.pair.id)
    ) {
      const p = lr.pair;
      p.counters.bytesReceived += d.data.length;
      this.#events.push({ type: 'data', stream: p.stream, component: p.component, data: d.data, from: d.remote, local: d.local });
      return true;
    }
    // Fast path: media keeps arriving on the same few 5-tuples (one per component).
    const routeKey = `${d.local.address}|${d.local.port}|${d.remote.address}|${d.remote.port}`;
    const last = this.#dataRoutes.get(routeKey);
    if (last && this.#pairs.has(last.id)) {
      this.#lastRoute = dataRoute(d, last);
      last.counters.bytesReceived += d.data.length;
      this.#events.push({ type: 'data', stream: last.stream, component: last.component, data: d.data, from: d.remote, local: d.local });
      return true;
    }
    for (const s of this.#streams) {
      const candidates: CandidatePair[] = [...this.#activePairs().filter((p) => p.stream === s.index), ...s.checklist.valid, ...s.checklist.pairs];
      const p = candidates.find((x) => sameAddress(x.local.base, d.local) && x.remote.address === d.remote.address && x.remote.port === d.remote.port);
      if (p) {
        if (this.#dataRoutes.size >= 64) this.#dataRoutes.clear();
        this.#dataRoutes.set(routeKey, p);
        this.#lastRoute = dataRoute(d, p);
        p.counters.bytesReceived += d.data.length;
        this.#events.push({ type: 'data', stream: s.index, component: p.component, data: d.data, from: d.remote, local: d.local });
        return true;
      }
    }
    // RFC 8445 §12.2: be prepared to receive on any signalled candidate, paired or not (e.g. a pair removed once
    // the component was nominated while the peer had not switched yet).
    for (const s of this.#streams) {
      const r = s.remotes.find((x) => x.address === d.remote.address && x.port === d.remote.port);
      if (r && s.locals.some((l) => l.component === r.component && sameAddress(l.base, d.local))) {
        this.#events.push({ type: 'data', stream: s.index, component: r.component, data: d.data, from: d.remote, local: d.local });
        return true;
      }
    }
    this.#drop('data-unknown-path');
    return false;
  }

  // ---- state (W3C RTCIceTransportState over RFC 8445 §6.1.3 / §8.1.2) ---------------------------------------

  #update(now: number): void {
    if (this.#closed) return;
    // RFC 8445 §7.2.5.4 with RFC 8838 §8 (no failure before end-of-candidates) and RFC 8863 (PAC timer).
    const pacOver = typeof this.#pacDeadline === 'number' && now >= this.#pacDeadline;
    for (const s of this.#streams) {
      if (s.checklist.state !== 'running' || !s.remote) continue;
      this.#maybeComplete(s);
      if (s.checklist.state !== 'running') continue;
      const r = s.checklist.evaluate(s.endOfRemote && pacOver && !this.#lite, this.#componentCount(s));
      if (r === 'failed') s.checklist.state = 'failed';
    }
    this.#setState(this.#deriveState(now));
  }

  #deriveState(now: number): AgentState {
    if (this.#streams.length === 0) return 'new';
    let allUsable = true;
    let allSelected = true;
    let lost = false;
    let stale = false;
    let anyFailed = false;
    let anyRemote = false;
    for (const s of this.#streams) {
      if (s.remote) anyRemote = true;
      // RFC 8445 §8.1.2, §12.1: a Failed checklist produces no selected pairs, so the stream may not carry data.
      // (A previous selected pair kept over a restart stands in only while the new checklist is Running, §12.1.)
      if (s.checklist.state === 'failed') anyFailed = true;
      for (let c = 1; c <= this.#componentCount(s); c++) {
        const active = s.selected[c] ?? s.previous[c];
        if (active?.consentLost) lost = true;
        // Completed: the stream's checklist concluded (RFC 8445 §8.1.2), or a restart still rides on the old pair.
        const concluded = s.selected[c] ? s.checklist.state === 'completed' : s.previous[c]?.nominated === true;
        if (!active || active.consentLost || !concluded) allSelected = false;
        const usable = active && !active.consentLost ? active : s.checklist.valid.find((v) => v.component === c && !v.consentLost);
        if (!usable) allUsable = false;
        else if (usable === active && this.#consentEnabled && now - usable.lastConsentAt >= this.#disconnectedTimeoutMs) stale = true;
      }
    }
    if (lost || anyFailed) return 'failed';
    if (allUsable) return stale ? 'disconnected' : allSelected ? 'completed' : 'connected';
    return anyRemote ? 'checking' : 'new';
  }
}
