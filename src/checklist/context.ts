/**
 * The state one agent's procedures share: what `AgentCore` held in forty private fields, as one record the files
 * of this folder take as their first argument (the way pion cuts one Go agent over several files). Also the small
 * helpers every procedure uses, pair formation (RFC 8445 §6.1.2.2-6.1.2.5, RFC 8838 §10-12) and the rebuild of a
 * stream for an ICE restart (§9).
 * @module
 */
import type { Candidate, LocalCandidate } from '../candidates/candidate.js';
import { InvalidStateError } from '../errors.js';
import { Deadlines } from '../machine.js';
import { isPacingValue, negotiateTa, type PacerClient } from '../stun/pacing.js';
import { shortTermKey } from '../stun/integrity.js';
import { sameAddress, type Datagram, type IceRole, type RandomSource, type TransportAddress } from '../types.js';
import { RemoteAddressBudget } from './address-budget.js';
import { Checklist, DEFAULT_CHECKLIST_LIMIT, canPair, stateForNewPair, type RemoteCandidate } from './checklist.js';
import { CandidatePair, pairPriorityFor, type PairState } from './pair.js';
import type { RtoFormula } from './scheduler.js';
import { TcpConnections } from './tcp-connections.js';
import { Tracer } from './trace.js';
import { CheckTransactions } from './transactions.js';
import type { AgentCoreOptions, AgentEvent, AgentState, DropReason, NominationMode, PairInfo } from './types.js';

/** The agent's named deadlines (see `Deadlines`). The paced check slot is read live, see `AgentCore.pollTimeout`. */
export type AgentTimer = 'command' | 'retransmit' | 'nomination' | 'consent' | 'failure' | 'retired' | 'tcp';

export interface Credentials {
  readonly ufrag: string;
  readonly pwd: string;
  readonly key: Uint8Array;
}

export interface RemoteParams extends Credentials {
  readonly lite: boolean;
  readonly pacingMs: number | undefined;
  readonly options: readonly string[];
}

/** Both sides' credentials of one ICE session (a generation: a restart starts the next one). */
export interface Generation {
  readonly local: Credentials;
  readonly remote: RemoteParams;
}

/** A request accepted before the remote parameters were known (RFC 8445 §7.3: processed once they arrive). */
export interface PendingRequest {
  readonly local: LocalCandidate;
  readonly from: TransportAddress;
  readonly rfrag: string;
  readonly priority: number;
  readonly useCandidate: boolean;
}

/** What the agent knows of one component of a stream. */
export interface ComponentState {
  /** The selected pair of RFC 8445 §8.1.1: the highest-priority nominated valid pair. Fixed once nominated. */
  selected: CandidatePair | undefined;
  /**
   * The pair data goes on now, which `getSelectedPair` reports (RTCIceTransport's "selected candidate pair"): the
   * nominated pair, or during a restart the previous one (§12.1), or before nomination the best valid pair, which
   * RFC 8445 §12.1 allows data on. Derived after every input by `reportSelection`.
   */
  sending: CandidatePair | undefined;
  /** The remote candidate `sending` was last reported with (RFC 8838 §11 may replace a peer-reflexive one). */
  reportedRemote: Candidate | undefined;
  /** RFC 8445 §12.1: the pair used before an ICE restart, kept until the new session selects one. */
  previous: CandidatePair | undefined;
  /**
   * The credentials of the session `previous` belongs to (set once the new session's parameters replaced them on the
   * stream). Consent on the previous pair and answers to the peer's checks on it keep them: the peer's old session
   * rejects the new ones until it applied them, and RFC 8445 §9 keeps the old pair in use until a new one is selected.
   */
  previousGeneration: Generation | undefined;
  /**
   * The previous pair once the new session selected: the peer may keep sending there until its own selection
   * changes (§12.1), so its data is still delivered, until `retiredUntil` (one consent timeout) at the latest.
   */
  retired: CandidatePair | undefined;
  retiredUntil: number;
  /** When the component's first valid pair appeared (the regular nomination timer). */
  firstValidAt: number | undefined;
  /**
   * The valid pair that carried data before any selection (RFC 8445 §12.1). RFC 8445 §11 keepalives and RFC 7675
   * §5.1 consent ("whenever the endpoint sends application data on that pair") run on it too.
   */
  dataPair: CandidatePair | undefined;
}

export interface Stream {
  readonly index: number;
  /**
   * Components declared for the stream (see `componentsInUse` for those the peer uses). Only shrinks, by
   * `dropComponent` (`drop-component.ts`), when RTCP turns out to be multiplexed on the RTP component.
   */
  componentCount: number;
  /** One record per component; component `c` is `components[c - 1]`. */
  components: readonly ComponentState[];
  /** Local credentials of the ICE session this stream runs (differs from the agent's during a restart). */
  local: Credentials;
  remote: RemoteParams | undefined;
  locals: LocalCandidate[];
  remotes: RemoteCandidate[];
  endOfRemote: boolean;
  checklist: Checklist;
  pending: PendingRequest[];
  restarting: boolean;
  /**
   * Local candidates of the next session while a restart with new candidates (`restart({ newCandidates: true })`)
   * waits for the peer's parameters: they replace `locals` when the new session starts, and pair only then, so no
   * check of the old session ever leaves from a new port. Undefined when the restart keeps the candidates.
   */
  nextLocals: LocalCandidate[] | undefined;
  prflxCount: number;
  /**
   * A lite agent's answered requests on 5-tuples it has no pair for yet (it pairs only at nomination): counted into
   * the pair's statistics once the pair exists. Made at the first such request, bounded by
   * `MAX_UNPAIRED_REQUEST_COUNTS`.
   */
  unpairedRequests?: Map<string, number> | undefined;
}

/** Most 5-tuples a lite agent's stream counts requests for before their pairs exist (a flood cannot grow it). */
export const MAX_UNPAIRED_REQUEST_COUNTS = 64;

/** The options of `AgentCore`, validated, with their defaults filled in. */
export interface AgentConfig {
  readonly lite: boolean;
  readonly nomination: NominationMode;
  readonly localPacingMs: number | undefined;
  readonly checklistLimit: number;
  readonly remoteCandidateLimit: number;
  readonly consentIntervalMs: number;
  readonly consentTimeoutMs: number;
  readonly disconnectedTimeoutMs: number;
  readonly keepaliveIntervalMs: number;
  readonly failureGraceMs: number;
  readonly nominationTimeoutMs: number;
  readonly rtoFormula: RtoFormula;
  /** ICE-TCP (RFC 6544): bound on an outgoing connection attempt, ms. */
  readonly tcpConnectTimeoutMs: number;
  /** ICE-TCP: an accepted connection must carry an authenticated check within this, ms. */
  readonly tcpFirstCheckTimeoutMs: number;
  /** ICE-TCP: accepted connections not yet proven by a check, at most. */
  readonly tcpPendingInboundLimit: number;
}

/** Scheduler state (RFC 8445 §6.1.4). */
export interface SchedulerState {
  taMs: number;
  nextCheckAt: number;
  lastCheckAt: number;
  /** The global pacer refused the last request: the next check's RTO uses the real spacing. */
  pacerDelayed: boolean;
  /** Checklist the next pick starts at (§6.1.4.2 step 4, round robin over checklists). */
  cursor: number;
  checksSent: number;
  /** Some checklist has a check to send: `pollTimeout` reads the paced slot live (the pacer is shared). */
  pending: boolean;
}

/** A 5-tuple (UDP implied) and the pair data on it belongs to: the receive path's one-entry cache. */
export interface DataRoute {
  readonly localAddress: string;
  readonly localPort: number;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly pair: CandidatePair;
}

export interface AgentContext {
  readonly config: AgentConfig;
  readonly random: RandomSource;
  readonly pacer: PacerClient | undefined;
  role: IceRole;
  tieBreaker: bigint;
  /** The agent's current local credentials (after `restart()` the new ones). */
  creds: Credentials;
  state: AgentState;
  readonly streams: Stream[];
  /** Every pair in a checklist or valid list, by id. */
  readonly pairs: Map<string, CandidatePair>;
  pairSeq: number;
  readonly txs: CheckTransactions;
  readonly transmits: Datagram[];
  readonly events: AgentEvent[];
  readonly dropped: Partial<Record<DropReason, number>>;
  readonly deadlines: Deadlines<AgentTimer>;
  readonly scheduler: SchedulerState;
  /** Next consent check per pair (RFC 7675 §5.1). */
  readonly consentNext: Map<CandidatePair, number>;
  /** Receive-path cache: `base|remote` -> pair (entries whose pair is gone are ignored). */
  readonly dataRoutes: Map<string, CandidatePair>;
  /** The route of the last data datagram, compared field by field: no key string per datagram on the data path. */
  lastRoute: DataRoute | undefined;
  /** RFC 8863 PAC timer: undefined until checks start; `null` = start at the next input. */
  pacDeadline: number | undefined | null;
  /** Pairs per remote IP address across the checklist set (shared by an `IceSdpSession`'s agents). */
  readonly addressBudget: RemoteAddressBudget;
  /** Leaves `addressBudget` (at close). */
  readonly leaveAddressBudget: () => void;
  /** Start of the current one-second window of unauthenticated error responses, and how many went out in it. */
  unauthWindowStart: number;
  unauthReplies: number;
  now: number;
  closed: boolean;
  /** ICE-TCP connections (RFC 6544), see `tcp-connections.ts`. */
  readonly tcp: TcpConnections;
  /** A TCP candidate was added on either side: RFC 6544 §8 then requires regular nomination. */
  tcpSeen: boolean;
  /** The check trace (`trace.ts`), undefined when no sink was given: every hook is one `if (ctx.trace)`. */
  trace: Tracer | undefined;
}

const ICE_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** Random ice-chars (RFC 8839 §5.4 grammar), 6 bits of entropy each. */
function iceString(random: RandomSource, length: number): string {
  const b = random.bytes(length);
  let s = '';
  for (let i = 0; i < length; i++) s += ICE_CHARS[b[i]! & 63];
  return s;
}

/** A fresh 64-bit tie-breaker (RFC 8445 §7.1.2). */
export function randomTieBreaker(random: RandomSource): bigint {
  const b = random.bytes(8);
  return new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0);
}

/** Local credentials: the given ones, or random ones of RFC 8839 §5.4's lengths (8 and 24 ice-chars). */
export function makeCredentials(random: RandomSource, ufrag?: string, pwd?: string): Credentials {
  const u = ufrag ?? iceString(random, 8);
  const p = pwd ?? iceString(random, 24);
  if (u.length < 4 || u.length > 256) throw new RangeError('ufrag must be 4..256 characters (RFC 8839 §5.4)');
  if (p.length < 22 || p.length > 256) throw new RangeError('pwd must be 22..256 characters (RFC 8839 §5.4)');
  return { ufrag: u, pwd: p, key: shortTermKey(p) };
}

/** Validates `AgentCoreOptions` and fills in the defaults. */
export function configFrom(options: AgentCoreOptions): AgentConfig {
  if (options.pacingMs !== undefined && !isPacingValue(options.pacingMs)) {
    throw new RangeError('pacingMs must be an RFC 8839 ice-pacing value (integer 0..9999999999)');
  }
  const consentIntervalMs = options.consentIntervalMs ?? 5000;
  if (consentIntervalMs !== 0 && consentIntervalMs < 4000 / 0.8) {
    // RFC 7675 §5.1: the period between checks MUST NOT be below 4 s (0.8 x interval).
    throw new RangeError('consentIntervalMs must be 0 (off) or at least 5000');
  }
  const keepaliveIntervalMs = options.keepaliveIntervalMs ?? 15_000;
  if (keepaliveIntervalMs < 15_000) throw new RangeError('keepaliveIntervalMs must be at least 15000 (RFC 8445 §11)');
  return {
    lite: options.lite ?? false,
    nomination: options.nomination ?? 'regular',
    localPacingMs: options.pacingMs,
    checklistLimit: options.checklistLimit ?? DEFAULT_CHECKLIST_LIMIT,
    remoteCandidateLimit: options.remoteCandidateLimit ?? 100,
    consentIntervalMs,
    consentTimeoutMs: options.consentTimeoutMs ?? 30_000,
    disconnectedTimeoutMs: options.disconnectedTimeoutMs ?? 10_000,
    keepaliveIntervalMs,
    failureGraceMs: options.failureGraceMs ?? 39_500,
    nominationTimeoutMs: options.nominationTimeoutMs ?? 1000,
    rtoFormula: options.rtoFormula ?? 'linear',
    tcpConnectTimeoutMs: positive(options.tcpConnectTimeoutMs, 'tcpConnectTimeoutMs') ?? 10_000,
    tcpFirstCheckTimeoutMs: positive(options.tcpFirstCheckTimeoutMs, 'tcpFirstCheckTimeoutMs') ?? 10_000,
    tcpPendingInboundLimit: positive(options.tcpPendingInboundLimit, 'tcpPendingInboundLimit') ?? 32,
  };
}

function positive(v: number | undefined, name: string): number | undefined {
  if (v !== undefined && (!Number.isInteger(v) || v < 1)) throw new RangeError(`${name} must be a positive integer`);
  return v;
}

/** A fresh context for `options`. */
export function createContext(options: AgentCoreOptions): AgentContext {
  const config = configFrom(options);
  const random = options.random;
  const addressBudget = options.remoteAddressBudget ?? new RemoteAddressBudget(options.remoteAddressPairLimit);
  const streams: Stream[] = [];
  const ctx: AgentContext = {
    config,
    random,
    pacer: options.pacer?.register(),
    role: config.lite ? 'controlled' : (options.role ?? 'controlling'),
    tieBreaker: options.tieBreaker ?? randomTieBreaker(random),
    creds: makeCredentials(random, options.ufrag, options.pwd),
    state: 'new',
    streams,
    pairs: new Map(),
    pairSeq: 0,
    txs: new CheckTransactions(),
    transmits: [],
    events: [],
    dropped: {},
    deadlines: new Deadlines(),
    scheduler: {
      taMs: negotiateTa(config.localPacingMs, undefined),
      nextCheckAt: -Infinity,
      lastCheckAt: -Infinity,
      pacerDelayed: false,
      cursor: 0,
      checksSent: 0,
      pending: false,
    },
    consentNext: new Map(),
    dataRoutes: new Map(),
    lastRoute: undefined,
    addressBudget,
    leaveAddressBudget: addressBudget.join((ip) => pairsToAddress(streams, ip)),
    pacDeadline: undefined,
    unauthWindowStart: -Infinity,
    unauthReplies: 0,
    now: -Infinity,
    closed: false,
    tcp: new TcpConnections(),
    tcpSeen: false,
    trace: undefined,
  };
  if (options.trace) ctx.trace = new Tracer(options.trace, ctx);
  return ctx;
}

// ---- small helpers ----------------------------------------------------------------------------------------------

export function assertOpen(ctx: AgentContext): void {
  if (ctx.closed) throw new InvalidStateError('agent is closed');
}

export function streamAt(ctx: AgentContext, index: number): Stream {
  const s = ctx.streams[index];
  if (!s) throw new RangeError(`no stream ${index}`);
  return s;
}

/** The record of component `c` (1-based), or undefined for a component the stream does not have. */
export function componentOf(s: Stream, c: number): ComponentState | undefined {
  return s.components[c - 1];
}

/** New component records, one per component. */
export function newComponents(count: number): ComponentState[] {
  return Array.from({ length: count }, () => ({ selected: undefined, sending: undefined, reportedRemote: undefined, previous: undefined, previousGeneration: undefined, retired: undefined, retiredUntil: -Infinity, firstValidAt: undefined, dataPair: undefined }));
}

/**
 * Components in use (RFC 8445 §6.1.2.2): when the peer provides candidates for fewer components (e.g. RTP/RTCP mux
 * answered with one component) the count is the smaller maximum component ID. Known once the peer signalled
 * end-of-candidates; until then every declared component is expected.
 */
export function componentsInUse(s: Stream): number {
  if (!s.endOfRemote) return s.componentCount;
  let maxRemote = 0;
  for (const r of s.remotes) if (r.type !== 'prflx' && r.component > maxRemote) maxRemote = r.component;
  let maxLocal = 0;
  for (const l of s.locals) if (l.component > maxLocal) maxLocal = l.component;
  const n = Math.min(s.componentCount, maxRemote || s.componentCount, maxLocal || s.componentCount);
  return Math.max(1, n);
}

/** RFC 8445 §12.1.1: a lite agent sends nothing until every component in use has a valid pair. */
export function liteWaitsForValidPairs(ctx: AgentContext, s: Stream): boolean {
  if (!ctx.config.lite) return false;
  for (let c = 1; c <= componentsInUse(s); c++) if (!s.checklist.bestValid(c)) return true;
  return false;
}

export function checklists(ctx: AgentContext): Checklist[] {
  return ctx.streams.map((s) => s.checklist);
}

export function drop(ctx: AgentContext, reason: DropReason): void {
  ctx.dropped[reason] = (ctx.dropped[reason] ?? 0) + 1;
}

/** Drops a signalled remote candidate: counted under `reason`, and reported with `why` (IceAgent's `warning`). */
export function dropRemote(ctx: AgentContext, stream: number, candidate: Candidate, reason: DropReason, why: string): void {
  drop(ctx, reason);
  ctx.events.push({ type: 'remote-candidate-dropped', stream, candidate, reason: why });
}

/** Work was requested outside a timer (a command, a triggered check): `pollTimeout` asks for it at once. */
export function markDirty(ctx: AgentContext): void {
  ctx.deadlines.set('command', ctx.now === -Infinity ? 0 : ctx.now);
}

/** Nomination in force: facing a lite peer a full agent nominates regularly (RFC 8445 §6.1.1, §8.2). */
export function nominationMode(ctx: AgentContext): NominationMode {
  // RFC 8445 §10: a peer that signals ice2 must not face aggressive nomination (RFC 5245 §14 for unknown options).
  // RFC 6544 §8: with TCP candidates the controlling agent MUST use regular nomination.
  if (ctx.tcpSeen) return 'regular';
  return ctx.streams.some((s) => s.remote?.lite || s.remote?.options.includes('ice2')) ? 'regular' : ctx.config.nomination;
}

/** RFC 7675 consent freshness runs (a lite agent sends no checks, so keepalives only). */
export function consentEnabled(ctx: AgentContext): boolean {
  return !ctx.config.lite && ctx.config.consentIntervalMs > 0;
}

export function addrOf(c: Candidate): TransportAddress {
  return { address: c.address, port: c.port };
}

/** A read-only snapshot of a pair. */
export function pairInfo(p: CandidatePair): PairInfo {
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

export function priorityOf(ctx: AgentContext, localPriority: number, remotePriority: number): bigint {
  return pairPriorityFor(ctx.role, localPriority, remotePriority);
}

export function setPairState(ctx: AgentContext, p: CandidatePair, state: PairState): void {
  if (p.state === state) return;
  if (ctx.trace) ctx.trace.pairState(p, state);
  p.state = state;
  ctx.events.push({ type: 'pair-state', stream: p.stream, component: p.component, pairId: p.id, state });
}

export function setAgentState(ctx: AgentContext, state: AgentState): void {
  if (ctx.state === state) return;
  // `connected` always comes before `completed` (an aggressive peer or a lite agent can nominate the first valid
  // pair at once): code that waits for `connected` must run.
  if (state === 'completed' && (ctx.state === 'new' || ctx.state === 'checking')) ctx.events.push({ type: 'state', state: 'connected' });
  ctx.state = state;
  if (ctx.trace) ctx.trace.agentState(state);
  ctx.events.push({ type: 'state', state });
}

// ---- pairs (RFC 8445 §6.1.2) ------------------------------------------------------------------------------------

export function newPair(ctx: AgentContext, s: Stream, local: LocalCandidate, remote: Candidate): CandidatePair {
  return new CandidatePair(`p${ctx.pairSeq++}`, s.index, local, remote, priorityOf(ctx, local.priority, remote.priority));
}

/** The candidate that is its own base for `base` (host or relayed), preferred for checklist pairs. */
export function baseCandidate(s: Stream, component: number, base: TransportAddress): LocalCandidate | undefined {
  let fallback: LocalCandidate | undefined;
  for (const c of s.locals) {
    if (c.component !== component || !sameAddress(c.base, base)) continue;
    if (c.address === base.address && c.port === base.port && (c.type === 'host' || c.type === 'relay')) return c;
    fallback ??= c;
  }
  return fallback;
}

/**
 * Inserts a new pair into the stream's checklist (RFC 8445 §6.1.2.4-5: redundant pairs pruned, the checklist limit
 * kept). Returns the pair when it was added, or undefined when the checklist kept another pair instead.
 */
export function insertPair(ctx: AgentContext, s: Stream, local: LocalCandidate, remote: Candidate): { readonly added: CandidatePair | undefined; readonly kept: CandidatePair | undefined } {
  const pair = newPair(ctx, s, local, remote);
  const res = s.checklist.insert(pair);
  for (const r of res.removed) forgetPair(ctx, r);
  if (!res.added) return { added: undefined, kept: res.pair === pair ? undefined : res.pair };
  ctx.pairs.set(pair.id, pair);
  if (ctx.trace) ctx.trace.pairFormed(pair);
  return { added: pair, kept: undefined };
}

/** Pairs a local and a remote candidate into the checklist (RFC 8445 §6.1.2.2-5, RFC 8838 §10-12). */
export function formPair(ctx: AgentContext, s: Stream, local: LocalCandidate, remote: RemoteCandidate): CandidatePair | undefined {
  if (!canPair(local, remote)) return undefined;
  // RFC 6544 §6.2: pruning removes every pair whose local candidate is passive (it never opens a connection; the
  // peer's checks on accepted connections form its pairs, in responder.ts).
  if (local.tcpType === 'passive') return undefined;
  // RFC 8445 §6.1.2.4: a reflexive local candidate is replaced by its base.
  const checkLocal = local.type === 'srflx' || local.type === 'prflx' ? (baseCandidate(s, local.component, local.base) ?? local) : local;
  // RFC 8445 §8.1.2: once a component is nominated its other pairs are gone; none are added back.
  if (componentOf(s, local.component)?.selected) return undefined;
  if (!withinAddressBudget(ctx, s, checkLocal, remote)) return undefined;
  const { added: pair, kept } = insertPair(ctx, s, checkLocal, remote);
  if (!pair) return kept;
  setPairState(ctx, pair, stateForNewPair(pair, s.index, checklists(ctx)));
  if (pair.state === 'frozen') ctx.events.push({ type: 'pair-state', stream: pair.stream, component: pair.component, pairId: pair.id, state: 'frozen' });
  if (s.checklist.state === 'failed') s.checklist.state = 'running';
  return pair;
}

/** Live checklist pairs of `streams` whose remote candidate has IP address `ip`. */
function pairsToAddress(streams: readonly Stream[], ip: string): number {
  let n = 0;
  for (const s of streams) for (const p of s.checklist.pairs) if (p.remote.address === ip) n++;
  return n;
}

/**
 * The cap on pairs aimed at one remote IP address (RFC 8445 §19.5.1; see `address-budget.ts`), for a pair formed
 * from signalled candidates. A pair redundant with an existing one costs nothing. At the cap, the new pair takes
 * the place of this agent's lowest-priority pair to that address that has sent nothing yet (Frozen or Waiting) and
 * ranks below it, the way §6.1.2.5 discards lower-priority pairs; otherwise it is not formed. Pairs that sent
 * checks are never traded, so a trickling peer cannot make us aim more than the cap at one address at once.
 * Peer-reflexive pairs (from the address's own authenticated checks) are counted but never refused.
 */
function withinAddressBudget(ctx: AgentContext, s: Stream, local: LocalCandidate, remote: RemoteCandidate): boolean {
  const budget = ctx.addressBudget;
  if (s.checklist.find(local.component, local.base.address, local.base.port, remote.address, remote.port, local.transport)) return true;
  if (budget.pairsTo(remote.address) < budget.limit) return true;
  const priority = priorityOf(ctx, local.priority, remote.priority);
  let victim: CandidatePair | undefined;
  let victimStream: Stream | undefined;
  for (const t of ctx.streams) {
    for (const p of t.checklist.pairs) {
      if (p.remote.address !== remote.address || (p.state !== 'frozen' && p.state !== 'waiting') || p.priority >= priority) continue;
      if (victim === undefined || p.priority < victim.priority) {
        victim = p;
        victimStream = t;
      }
    }
  }
  drop(ctx, 'remote-address-limit');
  if (!victim || !victimStream) return false;
  victimStream.checklist.remove(victim);
  forgetPair(ctx, victim);
  return true;
}

/**
 * Makes room at the remote-candidate limit for a candidate the peer proved with an authenticated check: the
 * lowest-priority signalled remote candidate none of whose pairs is in progress, succeeded or valid goes, with its
 * pairs. Signalled junk (a hostile or broken signalling channel's 100 candidates) then cannot lock out the real
 * peer's path. Peer-reflexive candidates never make room for each other: a credentialed peer sending from ever new
 * ports would otherwise churn state without end (the cap then holds). Returns false when nothing may go.
 */
export function evictIdleRemote(ctx: AgentContext, s: Stream): boolean {
  const busy = new Set<Candidate>();
  for (const p of ctx.pairs.values()) {
    if (p.stream === s.index && (p.valid || p.state === 'in-progress' || p.state === 'succeeded')) busy.add(p.remote);
  }
  let victim: number | undefined;
  s.remotes.forEach((r, i) => {
    if (busy.has(r) || r.type === 'prflx') return;
    if (victim === undefined || r.priority <= s.remotes[victim]!.priority) victim = i;
  });
  if (victim === undefined) return false;
  const [gone] = s.remotes.splice(victim, 1);
  for (const p of [...s.checklist.pairs]) {
    if (p.remote !== gone) continue;
    s.checklist.remove(p);
    forgetPair(ctx, p);
  }
  dropRemote(ctx, s.index, gone!, 'remote-evicted', 'evicted-for-peer-reflexive');
  return true;
}

/**
 * Each checklist's share of the pair limit. RFC 8445 §6.1.2.5: the limit (`checklistLimit`) holds for the whole
 * checklist set, and discarding "SHOULD be done evenly": an equal share per data stream.
 */
export function checklistShare(ctx: AgentContext): number {
  return Math.max(1, Math.floor(ctx.config.checklistLimit / Math.max(1, ctx.streams.length)));
}

/** After a stream was added: every checklist gets its new, smaller share, and sheds pairs beyond it. */
export function reshareChecklistLimit(ctx: AgentContext): void {
  const share = checklistShare(ctx);
  for (const s of ctx.streams) for (const p of s.checklist.setLimit(share)) forgetPair(ctx, p);
}

export function forgetPair(ctx: AgentContext, p: CandidatePair): void {
  if (ctx.trace) ctx.trace.pairPruned(p);
  if (p.validPair === p || !p.valid) ctx.pairs.delete(p.id);
  ctx.txs.cancelChecks(p);
}

/**
 * Starts a new ICE session on a stream (restart, RFC 8445 §9): old pairs go, selected pairs become "previous" and
 * keep the old session's credentials (`previousGeneration`). Call it before `s.local` and `s.remote` change.
 */
export function rebuildStream(ctx: AgentContext, s: Stream, consentJitter: () => number): void {
  s.components.forEach((comp, i) => {
    // RFC 8445 §12.1 keeps the previous selected pair; before any selection the valid pair data was using
    // (§12.1 allows any valid pair) carries on the same way, so a restart never interrupts a working path.
    const keep = comp.selected ?? comp.previous ?? s.checklist.bestValid(i + 1);
    // A previous pair kept over a second restart keeps the generation it was checked under.
    const generation = keep !== undefined && keep === comp.previous ? comp.previousGeneration : s.remote ? { local: s.local, remote: s.remote } : undefined;
    comp.previous = keep && !keep.consentLost ? keep : undefined;
    comp.previousGeneration = comp.previous ? generation : undefined;
    if (comp.previous && consentEnabled(ctx) && !ctx.consentNext.has(comp.previous)) {
      ctx.consentNext.set(comp.previous, ctx.now + consentJitter());
    }
  });
  const keep = new Set<CandidatePair>();
  for (const comp of s.components) if (comp.previous) keep.add(comp.previous);
  ctx.txs.dropStream(s.index, keep);
  for (const [id, p] of ctx.pairs) if (p.stream === s.index && !keep.has(p)) ctx.pairs.delete(id);
  for (const p of ctx.consentNext.keys()) if (p.stream === s.index && !keep.has(p)) ctx.consentNext.delete(p);
  s.checklist = new Checklist(s.index, s.componentCount, checklistShare(ctx));
  ctx.dataRoutes.clear();
  ctx.lastRoute = undefined;
  for (const comp of s.components) {
    comp.selected = undefined;
    comp.firstValidAt = undefined;
    comp.dataPair = undefined;
  }
  s.remotes = [];
  s.endOfRemote = false;
  s.pending = [];
  s.prflxCount = 0;
  s.unpairedRequests = undefined;
  // Peer-reflexive local candidates belong to the old session, and all of them when the restart gathered anew.
  s.locals = s.nextLocals ?? s.locals.filter((c) => c.type !== 'prflx');
  s.nextLocals = undefined;
  ctx.pacDeadline = null;
}
