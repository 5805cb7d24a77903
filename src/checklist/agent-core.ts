/**
 * The sans-IO ICE agent (RFC 8445 full and lite, RFC 8838 trickle, RFC 8863 PAC timer, RFC 7675 consent). It owns
 * the checklists, the check transactions and the binding responder; it knows nothing about sockets, timers or TURN.
 *
 * This class holds the commands and the `SansIoMachine` verbs; the procedures live beside it, one RFC concept a
 * file, over one shared `AgentContext` (`context.ts`):
 *
 * | RFC 8445 | file |
 * | --- | --- |
 * | §6.1.1 roles, §7.3.1.1, §7.2.5.1 role conflicts | `role.ts` |
 * | §6.1.2 pairs and pruning, §9 restart rebuild | `context.ts`, `checklist.ts`, `pair.ts` |
 * | §6.1.4 sending checks, §14.2 Ta, §14.3 RTO | `scheduler.ts` (pacing itself: `stun/pacing.ts`) |
 * | §7.2 check transactions | `transactions.ts`, `checks.ts` (messages) |
 * | §7.2.5 responses, time-outs | `responses.ts` |
 * | §7.3 the responder, §7.3.2 lite | `responder.ts` |
 * | §8 nomination and selection | `nomination.ts` |
 * | §11 keepalives, RFC 7675 consent | `consent.ts` |
 * | §12 the data path | `data-path.ts` |
 * | §7.2.5.4, §8.1.2 states, RFC 8863 PAC | `state.ts` |
 *
 * Drain contract (see `SansIoMachine`): after any input or command, drain `pollTransmit`, then `pollEvent`, then
 * re-arm the timer from `pollTimeout`. Datagrams out carry `local` = the local candidate's base (for a relayed
 * candidate: the relayed address, which the composing layer wraps through TURN).
 *
 * Choices where the RFCs leave room are listed in docs/deviations.md and commented where they are made.
 * @module
 */
import { arg, is } from '../arguments.js';
import type { LocalCandidate } from '../candidates/candidate.js';
import { InvalidStateError } from '../errors.js';
import { canonicalIp } from '../ip.js';
import type { SansIoMachine } from '../machine.js';
import { StunMethod } from '../stun/constants.js';
import { shortTermKey } from '../stun/integrity.js';
import { looksLikeStun, tryDecodeStunMessage } from '../stun/message.js';
import { negotiateTa } from '../stun/pacing.js';
import { frameRfc4571 } from '../stun/rfc4571.js';
import type { Datagram, IceRole, TransportAddress } from '../types.js';
import { Checklist, type RemoteCandidate } from './checklist.js';
import { MAX_CHECK_MESSAGE_BYTES } from './checks.js';
import { consentDeadline, consentJitter, runConsent } from './consent.js';
import {
  assertOpen,
  checklists,
  componentOf,
  createContext,
  drop,
  dropRemote,
  formPair,
  makeCredentials,
  markDirty,
  newComponents,
  pairInfo,
  priorityOf,
  rebuildStream,
  reshareChecklistLimit,
  setAgentState,
  streamAt,
  type AgentContext,
  type RemoteParams,
} from './context.js';
import { dropComponent } from './drop-component.js';
import { expireRetired, receiveData, retiredDeadline, sendData, takeSend, type DataEvent } from './data-path.js';
import { nominatorFor } from './nomination.js';
import { handleRequest, processEarlyRequests } from './responder.js';
import { handleResponse, runTransactions } from './responses.js';
import { facePeer } from './role.js';
import { checkDeadline, hasPendingCheck, runChecks } from './scheduler.js';
import { failureDeadline, startPacTimer, updateStates } from './state.js';
import { wireKey } from './tcp-connections.js';
import { closeUnselected, runTcp, tcpAccepted, tcpClosed, tcpConnected, tcpConnectFailed, tcpReceive, type TcpReceived } from './tcp.js';
import type { AgentCoreOptions, AgentEvent, AgentState, AgentStats, IceParameters, LocalIceParameters, PairInfo, PairStats } from './types.js';

export type * from './types.js';

export { MAX_CHECK_MESSAGE_BYTES };

/**
 * The candidate with its addresses in canonical text. Peers may write IPv6 in any case or zero-compression
 * (`2001:DB8::2`) while sockets report the canonical form; every comparison and key in the agent then agrees.
 */
function canonicalAddresses(c: RemoteCandidate): RemoteCandidate {
  const address = canonicalIp(c.address);
  const relatedAddress = c.relatedAddress === undefined ? undefined : canonicalIp(c.relatedAddress);
  if (address === c.address && relatedAddress === c.relatedAddress) return c;
  return { ...c, address, ...(relatedAddress === undefined ? {} : { relatedAddress }) };
}

/**
 * The ICE agent core. One instance is one ICE session (with its restarts) over one or more data streams.
 *
 * Time: every input takes `now` (ms, any monotonic origin). Commands without `now` take effect at the next
 * `handleTimeout`; `pollTimeout` then returns a deadline at or before the current time so the driver calls it at
 * once (that is how the first check goes out without waiting for Ta).
 */
export class AgentCore implements SansIoMachine<AgentEvent> {
  readonly #ctx: AgentContext;

  constructor(options: AgentCoreOptions) {
    this.#ctx = createContext(options);
  }

  // ---- getters ----------------------------------------------------------------------------------------------

  /** Current agent state. */
  get state(): AgentState {
    return this.#ctx.state;
  }

  /** Current role. */
  get role(): IceRole {
    return this.#ctx.role;
  }

  /** Current tie-breaker. */
  get tieBreaker(): bigint {
    return this.#ctx.tieBreaker;
  }

  /** Ta in use, ms (RFC 8445 §14.2). */
  get taMs(): number {
    return this.#ctx.scheduler.taMs;
  }

  /** Whether this agent is lite. */
  get lite(): boolean {
    return this.#ctx.config.lite;
  }

  /** Number of streams. */
  get streamCount(): number {
    return this.#ctx.streams.length;
  }

  // ---- commands ---------------------------------------------------------------------------------------------

  /** Adds a data stream with `components` components (1..256). Returns its index (0, 1, ...). */
  addStream(components: number): number {
    const ctx = this.#ctx;
    assertOpen(ctx);
    if (!Number.isInteger(components) || components < 1 || components > 256) throw new RangeError('components must be 1..256');
    const index = ctx.streams.length;
    ctx.streams.push({
      index,
      componentCount: components,
      components: newComponents(components),
      local: ctx.creds,
      remote: undefined,
      locals: [],
      remotes: [],
      endOfRemote: false,
      checklist: new Checklist(index, components, ctx.config.checklistLimit),
      pending: [],
      restarting: false,
      nextLocals: undefined,
      prflxCount: 0,
    });
    reshareChecklistLimit(ctx);
    return index;
  }

  /** Local ICE parameters (agent-wide; after `restart()` the new ones). */
  getLocalParameters(_stream?: number): LocalIceParameters {
    const { config, creds } = this.#ctx;
    // RFC 8445 §10: 'ice2' says the agent "will not use the aggressive nomination procedure defined in RFC 5245".
    const options = config.nomination === 'aggressive' ? ['trickle'] : ['ice2', 'trickle'];
    const base = { ufrag: creds.ufrag, pwd: creds.pwd, lite: config.lite, options };
    return config.localPacingMs === undefined ? base : { ...base, pacingMs: config.localPacingMs };
  }

  /**
   * Adds a local candidate (call it once the candidate has been signalled to the peer, RFC 8838 §10 rule 1).
   * Server-reflexive candidates are paired through their base (RFC 8445 §6.1.2.4). A lite agent takes host
   * candidates only.
   */
  addLocalCandidate(stream: number, candidate: LocalCandidate): void {
    const ctx = this.#ctx;
    assertOpen(ctx);
    const s = streamAt(ctx, stream);
    if (candidate.component < 1 || candidate.component > s.componentCount) throw new RangeError(`component ${candidate.component} out of range`);
    if (ctx.config.lite && candidate.type !== 'host') throw new InvalidStateError('a lite agent uses host candidates only (RFC 8445 §5.2)');
    const list = s.nextLocals ?? s.locals;
    // The same address and port on UDP and TCP are two candidates (a listener may get the UDP socket's port number).
    if (list.some((c) => c.type === candidate.type && c.component === candidate.component && c.transport === candidate.transport && c.tcpType === candidate.tcpType && c.address === candidate.address && c.port === candidate.port)) return;
    list.push(candidate);
    if (candidate.transport === 'tcp') ctx.tcpSeen = true;
    if (s.nextLocals) return; // the next session's: paired when it starts
    if (s.remote && !ctx.config.lite) for (const r of s.remotes) formPair(ctx, s, candidate, r);
    markDirty(ctx);
  }

  /**
   * Sets the peer's parameters for a stream. A ufrag different from the current one starts a new ICE session for
   * the stream (ICE restart, RFC 8445 §9): checklists are rebuilt, the previous selected pairs keep carrying data
   * until new ones are selected. When the peer restarted and this agent did not, it restarts too: RFC 8839
   * §4.4.1.1.1 requires new credentials in the answer to a restart (read them back from `getLocalParameters`).
   */
  setRemoteParameters(stream: number, params: IceParameters): void {
    arg(params, 'params', is.iceParameters); // the SDP reader's rule for ufrag/pwd (RFC 8839 §5.4)
    const ctx = this.#ctx;
    assertOpen(ctx);
    const s = streamAt(ctx, stream);
    const remote: RemoteParams = {
      ufrag: params.ufrag,
      pwd: params.pwd,
      key: shortTermKey(params.pwd),
      lite: params.lite ?? false,
      pacingMs: params.pacingMs,
      options: params.options ?? [],
    };
    const peerRestarted = s.remote !== undefined && (s.remote.ufrag !== remote.ufrag || s.remote.pwd !== remote.pwd);
    if (peerRestarted && !s.restarting) this.restart();
    if (s.remote && !s.restarting) {
      s.remote = remote;
      return;
    }
    // Requests that arrived before these parameters (RFC 8445 §7.3: answered, then processed once the parameters are
    // known) survive the rebuild of a restart: the peer's first checks of the new session are often among them.
    const early = s.pending;
    if (s.remote) rebuildStream(ctx, s, () => consentJitter(ctx));
    s.local = ctx.creds;
    s.restarting = false;
    s.remote = remote;
    ctx.scheduler.taMs = negotiateTa(ctx.config.localPacingMs, remote.pacingMs);
    facePeer(ctx, remote.lite);
    if (!ctx.config.lite) for (const l of s.locals) for (const r of s.remotes) formPair(ctx, s, l, r);
    s.pending = [];
    processEarlyRequests(ctx, s, early);
    if (ctx.pacDeadline === undefined) ctx.pacDeadline = null;
    markDirty(ctx);
  }

  /**
   * Adds a remote candidate (trickle-aware). Ignored after `endOfRemoteCandidates` (RFC 8838 §14), beyond the
   * remote-candidate limit, or for a component the stream does not have. `mdnsName` marks a candidate that was
   * signalled as a `.local` name and resolved by the caller.
   */
  addRemoteCandidate(stream: number, signalledCandidate: RemoteCandidate): void {
    const ctx = this.#ctx;
    assertOpen(ctx);
    const s = streamAt(ctx, stream);
    const candidate = canonicalAddresses(signalledCandidate);
    // RFC 8838 §14: nothing is added after end-of-candidates. Every drop is reported, not only counted.
    if (s.endOfRemote) return dropRemote(ctx, stream, signalledCandidate, 'remote-after-end', 'after-end-of-candidates');
    if (candidate.component < 1 || candidate.component > s.componentCount) {
      return dropRemote(ctx, stream, signalledCandidate, 'remote-bad-component', `component-out-of-range (the stream has ${s.componentCount})`);
    }
    const same = s.remotes.findIndex(
      (r) => r.component === candidate.component && r.transport === candidate.transport && r.address === candidate.address && r.port === candidate.port,
    );
    if (same >= 0) {
      const old = s.remotes[same]!;
      if (old.type !== 'prflx' || candidate.type === 'prflx') return;
      // RFC 8838 §11 rule 4.A: the signalled candidate replaces the peer-reflexive one; existing pairs keep their
      // state (and foundation) but now name the signalled candidate and take its priority.
      // Every pair of the stream, valid-list-only pairs included: the selected pair must report it too.
      s.remotes[same] = candidate;
      for (const p of ctx.pairs.values()) {
        if (p.stream !== s.index || p.remote !== old) continue;
        p.remote = candidate;
        p.priority = priorityOf(ctx, p.local.priority, candidate.priority);
      }
      s.checklist.resort();
      markDirty(ctx); // the selected pair is reported again with its new remote candidate
      return;
    }
    if (s.remotes.length >= ctx.config.remoteCandidateLimit) return dropRemote(ctx, stream, signalledCandidate, 'remote-limit', 'remote-candidate-limit');
    s.remotes.push(candidate);
    if (candidate.transport === 'tcp') ctx.tcpSeen = true;
    if (ctx.trace) ctx.trace.remoteCandidate(stream, candidate, 'signalled');
    if (s.remote && !ctx.config.lite) for (const l of s.locals) formPair(ctx, s, l, candidate);
    markDirty(ctx);
  }

  /** The peer signalled end-of-candidates for this stream (RFC 8838 §14): failure may now be declared. */
  endOfRemoteCandidates(stream: number): void {
    assertOpen(this.#ctx);
    streamAt(this.#ctx, stream).endOfRemote = true;
    markDirty(this.#ctx);
  }

  /**
   * Drops the last component of a stream (never component 1): its candidates, pairs, checks, consent and selection
   * go. Used when the answer accepts `a=rtcp-mux` (RFC 5761 §5.1.3) for an offer that also gathered RTCP candidates.
   * Throws `InvalidStateError` for any other component.
   */
  dropComponent(stream: number, component: number): void {
    const ctx = this.#ctx;
    assertOpen(ctx);
    dropComponent(ctx, streamAt(ctx, stream), component);
  }

  /** Number of components a stream has now (lowered by `dropComponent`). */
  componentCount(stream: number): number {
    return streamAt(this.#ctx, stream).componentCount;
  }

  /**
   * ICE restart (RFC 8445 §9): new local ufrag and pwd. Each stream's checklist is rebuilt when the peer's new
   * parameters arrive; until then checks from the peer under the old credentials are answered and data keeps flowing
   * on the selected pairs. The local candidates are kept, unless `newCandidates`: then the candidates added from now
   * on (the caller gathers on new ports, as libwebrtc does) are the new session's, and the old ones stay only under
   * the previous pairs.
   */
  restart(options: { readonly newCandidates?: boolean } = {}): void {
    const ctx = this.#ctx;
    assertOpen(ctx);
    ctx.creds = makeCredentials(ctx.random);
    for (const s of ctx.streams) {
      s.restarting = true;
      if (options.newCandidates) s.nextLocals = [];
    }
    markDirty(ctx);
  }

  /**
   * Whether a session a restart replaced still carries data (a restart waits for the peer, or a previous pair waits
   * for the new session to select): the old candidates' sockets are still needed.
   */
  get holdsPreviousSession(): boolean {
    return this.#ctx.streams.some((s) => s.restarting || s.components.some((c) => c.previous !== undefined));
  }

  /** Closes the agent: pending transactions are dropped, nothing more is sent, state `closed`. */
  close(): void {
    const ctx = this.#ctx;
    if (ctx.closed) return;
    ctx.closed = true;
    ctx.txs.clear();
    ctx.tcp.clear(); // the edge closes the sockets of a closed agent
    ctx.transmits.length = 0;
    ctx.deadlines.clear();
    ctx.pacer?.withdraw();
    ctx.leaveAddressBudget();
    setAgentState(ctx, 'closed');
  }

  /**
   * Queues `data` on the selected pair of (stream, component), or before selection on the best valid pair
   * (RFC 8445 §12.1). Returns false when no pair may carry it (none valid, or consent lost/expired, RFC 7675).
   * Throws `InvalidStateError` after `close()`.
   */
  send(now: number, stream: number, component: number, data: Uint8Array): boolean {
    const ctx = this.#ctx;
    if (ctx.closed) throw new InvalidStateError('send() after close()');
    this.#advance(now);
    return sendData(ctx, now, streamAt(ctx, stream), component, data);
  }

  /**
   * The direct data path of the edge: a non-STUN datagram's `data` event, handed back instead of queued (undefined:
   * not on a known path, counted as dropped). Same rules as `handleReceive`.
   */
  takeData(now: number, datagram: Datagram): DataEvent | undefined {
    const ctx = this.#ctx;
    if (ctx.closed) return undefined;
    if (datagram.transport === 'tcp') throw new InvalidStateError('takeData() takes UDP datagrams; TCP bytes go to handleReceive()');
    this.#advance(now);
    return receiveData(ctx, datagram);
  }

  /**
   * The direct route of ICE-TCP bytes (the edge's, as `takeData` is for UDP): the chunk's application data frames on
   * a proven connection become `data` events appended to `out`, not queued; anything else (checks, answers, a closed
   * connection) is handled as `handleReceive` does. Returns what it did: after `control` drain the machine and re-arm
   * its timer; after `data` nothing else changed.
   */
  takeTcp(now: number, datagram: Datagram, out: DataEvent[]): TcpReceived {
    const ctx = this.#ctx;
    if (ctx.closed) return 'unknown';
    this.#advance(now);
    const r = tcpReceive(ctx, datagram, this.#onFrame, out);
    if (r === 'control') this.#settle(now);
    return r;
  }

  /** The direct send path of the edge: the datagram carrying `data`, handed back instead of queued (as `send`). */
  takeSend(now: number, stream: number, component: number, data: Uint8Array): Datagram | undefined {
    const ctx = this.#ctx;
    if (ctx.closed) throw new InvalidStateError('send() after close()');
    this.#advance(now);
    const d = takeSend(ctx, now, streamAt(ctx, stream), component, data);
    return d?.transport === 'tcp' ? { ...d, data: frameRfc4571(d.data) } : d;
  }

  /**
   * The pair a component sends on (RTCIceTransport's selected candidate pair): from its first valid pair on, then
   * the best valid pair, then the nominated one (`nominated: true`), which stays; after a restart, the previous
   * pair until the new session nominates one (RFC 8445 §12.1).
   */
  getSelectedPair(stream: number, component: number): PairInfo | undefined {
    const s = this.#ctx.streams[stream];
    const p = s && componentOf(s, component)?.sending;
    return p ? pairInfo(p) : undefined;
  }

  /** Statistics of every pair in a checklist or valid list, and drop counters. */
  getStats(): AgentStats {
    const ctx = this.#ctx;
    const pairs: PairStats[] = [];
    for (const p of ctx.pairs.values()) pairs.push({ ...pairInfo(p), valid: p.valid, ...p.counters });
    return { pairs, dropped: { ...ctx.dropped }, taMs: ctx.scheduler.taMs, checksSent: ctx.scheduler.checksSent };
  }

  /** The checklist of a stream (read-only use: tests and diagnostics). */
  getChecklist(stream: number): Checklist {
    return streamAt(this.#ctx, stream).checklist;
  }

  // ---- SansIoMachine ----------------------------------------------------------------------------------------

  /**
   * Offers a datagram received on base `datagram.local`. STUN Binding traffic for this agent is processed (true);
   * non-STUN data from a known remote candidate becomes a `data` event (true); anything else returns false.
   */
  handleReceive(now: number, datagram: Datagram): boolean {
    const ctx = this.#ctx;
    if (ctx.closed) return false;
    this.#advance(now);
    if (datagram.transport === 'tcp') {
      // ICE-TCP: bytes of a connection, RFC 4571 frames inside (tcp.ts). Data frames alone change no state or
      // deadline (as a UDP data datagram): only a STUN message or a closed connection needs the settling pass.
      const r = tcpReceive(ctx, datagram, this.#onFrame);
      if (r === 'control') this.#settle(now);
      return r !== 'unknown';
    }
    const data = datagram.data;
    if (!looksLikeStun(data)) {
      const e = receiveData(ctx, datagram);
      if (e === undefined) return false;
      ctx.events.push(e);
      return true;
    }
    const taken = this.#handleMessage(now, datagram);
    this.#settle(now);
    return taken;
  }

  /** A frame of a TCP connection (bound once: no closure per chunk). */
  readonly #onFrame = (frame: Datagram): void => {
    this.#handleMessage(this.#ctx.now, frame);
  };

  /** One message (a UDP datagram, or one frame of a TCP connection). */
  #handleMessage(now: number, datagram: Datagram): boolean {
    const ctx = this.#ctx;
    const data = datagram.data;
    if (!looksLikeStun(data)) {
      const e = receiveData(ctx, datagram);
      if (e === undefined) return false;
      ctx.events.push(e);
      return true;
    }
    if (data.length > MAX_CHECK_MESSAGE_BYTES) {
      drop(ctx, 'stun-oversized'); // before decoding or any HMAC over it
      return false;
    }
    const r = tryDecodeStunMessage(data);
    if (!r.ok) {
      drop(ctx, `stun-${r.reason}`);
      return false;
    }
    const m = r.message;
    if (m.method !== StunMethod.Binding) return false;
    let taken: boolean;
    switch (m.cls) {
      case 'request':
        taken = handleRequest(ctx, now, datagram, m);
        break;
      case 'indication':
        taken = true; // keepalive (RFC 8445 §11): no processing
        break;
      default:
        taken = handleResponse(ctx, now, datagram, m);
    }
    return taken;
  }

  /** After an input: nomination, states, and the deadlines. */
  #settle(now: number): void {
    const ctx = this.#ctx;
    if (ctx.closed) return;
    if (!ctx.config.lite) nominatorFor(ctx).tick(ctx, now);
    updateStates(ctx, now);
    closeUnselected(ctx);
    this.#rearm();
  }

  // ---- ICE-TCP (RFC 6544): the edge's answers to `tcp-connect`, and connections it accepted ------------------

  /** Connection `id` (a `tcp-connect`) is open from `local`. Returns false when it is no longer wanted: close it. */
  tcpConnected(now: number, id: string, local: TransportAddress): boolean {
    const ctx = this.#ctx;
    if (ctx.closed) return false;
    this.#advance(now);
    const wanted = tcpConnected(ctx, now, id, local);
    this.#settle(now);
    return wanted;
  }

  /** Connection `id` could not be opened: its pairs fail (RFC 6544 §7.1). */
  tcpConnectFailed(now: number, id: string): void {
    const ctx = this.#ctx;
    if (ctx.closed) return;
    this.#advance(now);
    tcpConnectFailed(ctx, id);
    this.#settle(now);
  }

  /**
   * A connection accepted on a passive or simultaneous-open base (`local`) from `remote`. Returns its id (quote it
   * in `tcpClosed`), or undefined when the agent refuses it: close it.
   */
  tcpAccepted(now: number, local: TransportAddress, remote: TransportAddress): string | undefined {
    const ctx = this.#ctx;
    if (ctx.closed) return undefined;
    this.#advance(now);
    const id = tcpAccepted(ctx, now, local, remote);
    this.#rearm();
    return id;
  }

  /**
   * Connection `id` closed by itself (the peer closed or reset it): its pairs fail (RFC 6544 §7.1), except a selected
   * pair, whose connection is reopened (§11.1, `tcp-reopen.ts`).
   */
  tcpClosed(now: number, id: string): void {
    const ctx = this.#ctx;
    if (ctx.closed) return;
    this.#advance(now);
    tcpClosed(ctx, id);
    this.#settle(now);
  }

  /** Whether `datagram` (transport `tcp`) belongs to one of the agent's ICE-TCP connections. */
  ownsTcp(datagram: Datagram): boolean {
    return this.#ctx.tcp.byWire.has(wireKey(datagram.local, datagram.remote));
  }

  /** ICE-TCP connections open or being opened (diagnostics). */
  get tcpConnections(): number {
    return this.#ctx.tcp.size;
  }

  /** Advances timers: retransmissions, the next paced check, nomination, consent, keepalives, state. */
  handleTimeout(now: number): void {
    const ctx = this.#ctx;
    if (ctx.closed) return;
    this.#advance(now);
    ctx.deadlines.set('command', undefined);
    runTransactions(ctx, now);
    if (!ctx.config.lite) {
      runChecks(ctx, now);
      nominatorFor(ctx).tick(ctx, now);
    }
    // RFC 8445 §11: "All endpoints MUST send keepalives", a lite agent too (it has no consent checks, RFC 7675 §5.1).
    runConsent(ctx, now);
    expireRetired(ctx, now);
    runTcp(ctx, now);
    updateStates(ctx, now);
    closeUnselected(ctx);
    this.#rearm();
  }

  /** Next datagram to send. */
  pollTransmit(): Datagram | undefined {
    const d = this.#ctx.transmits.shift();
    // RFC 6544 §7.1, §10.1: every message on a TCP connection carries its RFC 4571 length.
    return d?.transport === 'tcp' ? { ...d, data: frameRfc4571(d.data) } : d;
  }

  /** Next event. */
  pollEvent(): AgentEvent | undefined {
    return this.#ctx.events.shift();
  }

  /**
   * Earliest time `handleTimeout` must be called: the named deadlines, and the paced check slot, read live because
   * the global pacer is shared with other agents whose grants move it.
   */
  pollTimeout(): number | undefined {
    const ctx = this.#ctx;
    if (ctx.closed) return undefined;
    const t = Math.min(ctx.deadlines.next() ?? Infinity, checkDeadline(ctx) ?? Infinity);
    return t === Infinity ? undefined : t;
  }

  // ---- internals --------------------------------------------------------------------------------------------

  #advance(now: number): void {
    if (now > this.#ctx.now) this.#ctx.now = now;
    startPacTimer(this.#ctx, now);
  }

  /** Sets every named deadline from the state an input left (see `Deadlines`). */
  #rearm(): void {
    const ctx = this.#ctx;
    const d = ctx.deadlines;
    d.set('retransmit', ctx.txs.earliest);
    ctx.scheduler.pending = !ctx.config.lite && hasPendingCheck(checklists(ctx));
    d.set('nomination', ctx.config.lite ? undefined : nominatorFor(ctx).deadline(ctx));
    d.set('consent', consentDeadline(ctx));
    d.set('failure', failureDeadline(ctx));
    d.set('retired', retiredDeadline(ctx));
    d.set('tcp', ctx.tcp.deadline());
  }
}
