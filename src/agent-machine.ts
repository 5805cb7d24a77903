/**
 * The whole sans-IO ICE agent: the {@link AgentCore} (checklists, checks, nomination, consent) composed with one
 * {@link Gatherer} per data stream, the TURN {@link Allocations}, the components running without ICE
 * ({@link NoIcePaths}), the {@link RemoteNameResolver} for `.local` remote candidates, and optionally an
 * {@link MdnsResponder}. This file only routes between them:
 *
 * - inbound: the mDNS socket's traffic goes to the responder; otherwise a datagram from a TURN server (or a frame from
 *   a TURN connection) goes to the allocations, then gathering responses to the gatherers, then application data of a
 *   component without ICE to its path, and everything else to the core (checks, responses, application data).
 * - outbound: a transmit whose `local` is a relayed address is wrapped by its allocation.
 * - between parts: allocation outcomes go to the gatherer that asked, relayed peer data to the core, gathered
 *   candidates to the core and out for signalling, resolved remote candidates to the core.
 *
 * Same drain contract as every machine (`src/machine.ts`).
 * @module
 */
import { AgentCore } from './checklist/agent-core.js';
import type { Candidate, LocalCandidate } from './candidates/candidate.js';
import { unusableRemoteAddress, validateCandidate } from './candidates/grammar.js';
import {
  Gatherer,
  type GathererEvent,
  type GatheringState,
  type HostBase,
  type MdnsRegistrar,
  type RelayAllocator,
  type RelayServerConfig,
} from './candidates/gatherer.js';
import type { MdnsFamily, MdnsResponder } from './candidates/mdns.js';
import { RemoteNameResolver } from './candidates/remote-mdns.js';
import type { AgentCoreOptions, AgentEvent, AgentStats, IceParameters } from './checklist/types.js';
import type { TcpReceived } from './checklist/tcp.js';
import { traceAddress, traceCandidate } from './checklist/trace.js';
import { InvalidStateError } from './errors.js';
import { canonicalIp, ipFamily, parseIp } from './ip.js';
import type { SansIoMachine } from './machine.js';
import { Allocations, type AllocationsEvent, type TurnStreamEvent } from './turnclient/allocations.js';
import type { Datagram, TransportAddress } from './types.js';
import { checkWithoutIceOptions, NoIcePaths, type NoIceEvent, type NoIcePathOptions, type NoIcePathStats, type WithoutIceOptions } from './without-ice.js';

export type { TurnStreamEvent } from './turnclient/allocations.js';
export {
  NO_ICE_KEEPALIVE_MS,
  NO_ICE_SILENCE_TIMEOUT_MS,
  checkPathOptions,
  unusedPayloadType,
  type LatchReason,
  type NoIceKeepalive,
  type NoIcePathOptions,
  type NoIcePathStats,
  type WithoutIceOptions,
} from './without-ice.js';

/** A host socket the IO edge bound, tagged with the data stream it serves. */
export interface StreamBase extends HostBase {
  /** Data stream index (default 0). */
  readonly stream?: number;
}

/** Options of {@link AgentMachine}. */
export interface AgentMachineOptions extends AgentCoreOptions {
  /** Components per data stream; default one stream with one component (`[1]`). */
  readonly streams?: readonly number[];
  /** The bound host sockets (the IO edge binds them; tests and demos bind loopback only). */
  readonly bases: readonly StreamBase[];
  /** STUN servers, resolved. There are no defaults: icewire never contacts a server it was not given. */
  readonly stunServers?: readonly TransportAddress[];
  /**
   * TURN servers, resolved. Over UDP the allocation shares the host socket; over TCP/TLS the machine asks the edge
   * for a connection (`turn-connect`) and runs the allocation on it (the relayed address is UDP either way).
   */
  readonly turnServers?: readonly RelayServerConfig[];
  /** Bound on gathering (ms, default 5000): a dead server delays `complete` by at most this. */
  readonly gatherTimeoutMs?: number;
  /**
   * Announce host candidates under mDNS names through this responder; `local` is the address of the mDNS socket the
   * edge bound (datagrams arriving there go to the responder).
   */
  readonly mdns?: { readonly responder: MdnsResponder; readonly local: TransportAddress };
  /**
   * Names host candidates without a responder inside the machine (the Node edge runs its own mDNS socket). Ignored
   * when `mdns` is set.
   */
  readonly mdnsRegistrar?: MdnsRegistrar;
  /**
   * Resolve remote `.local` candidates (default: true when `mdns` is set). Through `mdns` when set; otherwise the
   * machine asks the edge with `resolve-mdns` events and waits for {@link AgentMachine.mdnsResolved}. When false,
   * such candidates are dropped.
   */
  readonly resolveMdns?: boolean;
  readonly software?: string;
  /**
   * W3C `RTCIceTransportPolicy`: `'relay'` gathers and uses relayed candidates only (host sockets then serve only
   * to reach the TURN servers, and no host or server-reflexive candidate reaches the core). Default `'all'`.
   */
  readonly iceTransportPolicy?: 'all' | 'relay';
  /** Keepalives, latching and liveness of components running without ICE (see `without-ice.ts`). */
  readonly withoutIce?: WithoutIceOptions;
}

/** The core's statistics, plus the components running without ICE (their drops are in `dropped` too). */
export interface AgentMachineStats extends AgentStats {
  readonly withoutIce: readonly NoIcePathStats[];
}

/** Events: the core's, plus gathering, TURN, no-ICE and mDNS reports. */
export type AgentMachineEvent =
  | AgentEvent
  | { readonly type: 'candidate'; readonly stream: number; readonly candidate: LocalCandidate }
  | { readonly type: 'end-of-candidates'; readonly stream: number }
  | { readonly type: 'gathering-state'; readonly state: GatheringState }
  | { readonly type: 'server-failed'; readonly kind: 'stun' | 'turn'; readonly server: TransportAddress; readonly reason: string }
  | { readonly type: 'remote-candidate-dropped'; readonly stream: number; readonly candidate: Candidate; readonly reason: string }
  /** A component running without ICE latched on (or re-latched) to the source of what came back (RFC 4961). */
  | Extract<NoIceEvent, { type: 'latched' }>
  /**
   * Resolve this `.local` name through the edge's mDNS socket and answer with {@link AgentMachine.mdnsResolved}
   * (only when `resolveMdns` is on without `mdns`).
   */
  | {
      readonly type: 'resolve-mdns';
      readonly name: string;
      /** The families the agent's host sockets can reach: ask for A (4) and/or AAAA (6) records only. */
      readonly families: readonly MdnsFamily[];
    }
  /**
   * The bases a restart replaced (`restart(now, newBases)`) carry nothing any more: the new session selected (or the
   * agent closed their last use). The edge closes their sockets; their TURN allocations are being deleted.
   */
  | { readonly type: 'bases-released'; readonly bases: readonly StreamBase[] }
  | TurnStreamEvent;

const key = (a: TransportAddress) => `${canonicalIp(a.address)}|${a.port}`;

/** The composed sans-IO agent. Create, call `gather(now)`, then follow the drain contract. */
export class AgentMachine implements SansIoMachine<AgentMachineEvent> {
  readonly core: AgentCore;
  readonly #options: AgentMachineOptions;
  readonly #gatherers: Gatherer[] = [];
  /** Data stream and allocation id prefix of each gatherer (a restart with new bases adds a generation of them). */
  readonly #gathererOf = new Map<Gatherer, { readonly stream: number; readonly prefix: string }>();
  /** The bases in use: the initial ones, or those of the last restart with new bases. */
  #bases: readonly StreamBase[];
  /** Bases replaced by a restart, closed once the core no longer holds the previous session. */
  #oldBases: StreamBase[] = [];
  #generation = 0;
  /** The TURN allocations; none without a TURN server (most agents: ~1 KB each saved across thousands of them). */
  readonly #turn: Allocations | undefined;
  /** Components running without ICE; made when the first one does (most agents never: ~800 B each saved). */
  #noIce: NoIcePaths | undefined;
  readonly #names: RemoteNameResolver;
  readonly #mdns: MdnsResponder | undefined;
  readonly #mdnsKey: string | undefined;
  /** Families of the host bases: a remote name is only asked for addresses the agent could pair with. */
  readonly #mdnsFamilies: readonly MdnsFamily[];
  readonly #transmits: Datagram[] = [];
  readonly #events: AgentMachineEvent[] = [];
  #gatheringState: GatheringState = 'new';
  #closed = false;

  constructor(options: AgentMachineOptions) {
    this.#options = options;
    this.#bases = options.bases;
    this.core = new AgentCore(options);
    this.#mdns = options.mdns?.responder;
    this.#mdnsKey = options.mdns ? key(options.mdns.local) : undefined;
    const families = new Set(options.bases.map((b) => ipFamily(b.address.address)).filter((f): f is MdnsFamily => f !== 0));
    this.#mdnsFamilies = families.size > 0 ? [...families].sort() : [4, 6];
    const streams = options.streams ?? [1];
    streams.forEach((components, i) => {
      const index = i === 0 && this.core.streamCount > 0 ? 0 : this.core.addStream(components);
      if (index !== i) throw new InvalidStateError('streams must be added in order');
    });
    this.#turn =
      (options.turnServers?.length ?? 0) > 0
        ? new Allocations({
            random: options.random,
            ...(options.software !== undefined ? { software: options.software } : {}),
            ...(options.pacer !== undefined ? { pacer: options.pacer } : {}),
          })
        : undefined;
    if (options.withoutIce) checkWithoutIceOptions(options.withoutIce); // a bad option throws here, not later
    this.#names = new RemoteNameResolver({ enabled: options.resolveMdns ?? options.mdns !== undefined });
  }

  /** Gathering state across all streams (`complete` once every stream's gatherer completed). */
  get gatheringState(): GatheringState {
    return this.#gatheringState;
  }

  /** Starts gathering on every stream (host candidates at once, then server-reflexive and relayed). */
  gather(now: number): void {
    if (this.#gatheringState !== 'new') throw new InvalidStateError('gather() was already called');
    this.#startGatherers(now, this.#bases);
  }

  /** One gatherer per data stream over `bases`, started; gathering state `gathering`. */
  #startGatherers(now: number, bases: readonly StreamBase[]): void {
    const o = this.#options;
    const streams = o.streams ?? [1];
    const started: Gatherer[] = [];
    // Allocation ids are unique per gatherer only: each gatherer gets its own id space through a prefix.
    const prefix = this.#generation === 0 ? '' : `g${this.#generation}-`;
    const turn = this.#turn;
    for (let s = 0; s < streams.length; s++) {
      // Only called with TURN servers, so with `turn` made.
      const allocator: RelayAllocator = {
        allocate: (t, request) => turn!.allocate(t, s, { ...request, id: prefix + request.id }),
        cancel: (t, id) => turn!.cancel(t, s, prefix + id),
      };
      const mdns = this.#mdns ?? o.mdnsRegistrar;
      started.push(
        new Gatherer({
          random: o.random,
          bases: bases.filter((b) => (b.stream ?? 0) === s),
          ...(o.stunServers ? { stunServers: o.stunServers } : {}),
          ...(o.turnServers ? { turnServers: o.turnServers, relayAllocator: allocator } : {}),
          ...(o.gatherTimeoutMs !== undefined ? { gatherTimeoutMs: o.gatherTimeoutMs } : {}),
          ...(mdns ? { mdns } : {}),
          ...(o.software !== undefined ? { software: o.software } : {}),
          ...(o.iceTransportPolicy === 'relay' ? { gatherHost: false } : {}),
          // RFC 8445 §14.2: gathering transactions are paced by the local Ta proposal (the peer's is not known yet)
          // and share the process-wide 5 ms budget with the checks.
          ...(o.pacingMs !== undefined ? { taMs: o.pacingMs } : {}),
          ...(o.pacer ? { pacer: o.pacer.register() } : {}),
        }),
      );
      this.#gathererOf.set(started[s]!, { stream: s, prefix });
    }
    this.#gatherers.push(...started);
    this.#setGatheringState('gathering');
    started.forEach((g) => g.start(now));
    this.#pump(now);
  }

  /** Remote ICE parameters of a stream (RFC 8839 ice-ufrag/ice-pwd, ice-lite, ice-pacing). */
  setRemoteParameters(stream: number, params: IceParameters): void {
    this.core.setRemoteParameters(stream, params);
  }

  /**
   * Adds a remote candidate. A `.local` candidate is resolved through mDNS first (draft-ietf-mmusic-mdns-ice-candidates
   * §3.2.1) and dropped when it does not resolve or resolution is off.
   */
  addRemoteCandidate(now: number, stream: number, candidate: Candidate): void {
    // A record from signalling is checked like a parsed line (typed CandidateParseError), and one that can never be
    // a peer is dropped and reported: nothing it carries may break a later call or failure detection.
    validateCandidate(candidate);
    const unusable = unusableRemoteAddress(candidate) ?? this.#familyProblem(stream, candidate);
    if (unusable !== undefined) {
      this.#events.push({ type: 'remote-candidate-dropped', stream, candidate, reason: unusable });
      return;
    }
    this.#names.add(stream, candidate);
    this.#moveNames(now);
    this.#pump(now);
  }

  /** No more remote candidates will come for this stream (RFC 8838 end-of-candidates); held while names resolve. */
  endOfRemoteCandidates(stream: number): void {
    if (this.#names.end(stream)) this.core.endOfRemoteCandidates(stream);
  }

  /** The edge's answer to a `resolve-mdns` event: the name's address, or undefined when it did not resolve. */
  mdnsResolved(now: number, name: string, address: string | undefined): void {
    this.#names.resolved(name, address);
    this.#moveNames(now);
    this.#pump(now);
  }

  /**
   * Runs a component without ICE (the peer's SDP had no ICE attributes, or RFC 8839 §4.2.5 ice-mismatch): data goes
   * from `local` (default: the component's first host base) to `remote`, the signalled `c=`/`m=` address, and
   * latches on to what answers (see `without-ice.ts`). Once every stream runs so, the state is `checking`, then
   * `connected` when the peer's data arrives. `options` overrides the keepalive and its payload type for this
   * component (the SDP layer knows which payload types the session uses).
   */
  useWithoutIce(now: number, stream: number, component: number, remote: TransportAddress, local?: TransportAddress, options?: NoIcePathOptions): void {
    const dropped = stream < this.core.streamCount && component > this.core.componentCount(stream);
    const base = dropped ? undefined : (local ?? this.#bases.find((b) => (b.stream ?? 0) === stream && b.component === component)?.address);
    if (!base) throw new InvalidStateError(`no local base for stream ${stream} component ${component}`);
    if (this.#closed) return; // a closed agent sends nothing (not even the keepalives of a path made now)
    const o = this.#options;
    this.#noIce ??= new NoIcePaths({ ...o.withoutIce, random: o.random, streams: o.streams ?? [1] });
    this.#noIce.add(now, stream, component, base, remote, options);
    this.#pump(now);
  }

  /**
   * Drops the last component of a stream (never component 1): the answer accepted `a=rtcp-mux` for an offer that
   * also gathered RTCP candidates (RFC 5761 §5.1.3). The core forgets the component (candidates, pairs, checks,
   * consent), its gathering stops, the TURN allocations made from its bases are released and its path without ICE
   * goes. Returns the component's host bases: the edge closes their sockets once {@link AgentMachine.releasedOn}
   * says the allocations sharing them are released. Throws `InvalidStateError` for any other component.
   */
  dropComponent(now: number, stream: number, component: number): TransportAddress[] {
    this.core.dropComponent(stream, component); // throws before anything else changes
    const bases = this.#bases.filter((b) => (b.stream ?? 0) === stream && b.component === component).map((b) => b.address);
    this.#gatherers[stream]?.dropComponent(now, component);
    this.#turn?.releaseBases(now, stream, bases);
    this.#noIce?.dropComponent(stream, component);
    this.#pump(now);
    return bases;
  }

  /** True when no TURN allocation made from one of `bases` is alive or being released: their sockets may close. */
  releasedOn(bases: readonly TransportAddress[]): boolean {
    return this.#turn?.releasedOn(bases) ?? true;
  }

  /** The destination of a component running without ICE (after latching, the address that answered). */
  withoutIceDestination(stream: number, component: number): TransportAddress | undefined {
    return this.#noIce?.destination(stream, component);
  }

  /** The core's statistics with the components running without ICE (drops `no-ice-other-source` included). */
  getStats(): AgentMachineStats {
    const core = this.core.getStats();
    const noIce = this.#activeNoIce;
    if (noIce === undefined) return { ...core, withoutIce: [] };
    const other = noIce.droppedOtherSource;
    return { ...core, dropped: other > 0 ? { ...core.dropped, 'no-ice-other-source': other } : core.dropped, withoutIce: noIce.stats() };
  }

  /** Sends application data on the selected (or a valid) pair of a component, or on its path without ICE. */
  send(now: number, stream: number, component: number, data: Uint8Array): boolean {
    const noIce = this.#activeNoIce;
    if (noIce !== undefined && noIce.send(now, stream, component, data)) {
      for (let d = noIce.pollTransmit(); d; d = noIce.pollTransmit()) this.#sendRaw(now, d);
      return true;
    }
    const ok = this.core.send(now, stream, component, data);
    this.#pump(now);
    return ok;
  }

  /**
   * Whether application data may take the direct path (`takeData`, `takeSend`), skipping the routing and the pump:
   * no component runs without ICE, so nothing but the core can claim or send data.
   */
  get directData(): boolean {
    return this.#activeNoIce === undefined && !this.#closed;
  }

  /** The `data` event of a received non-STUN datagram, handed back instead of queued (see `directData`). */
  takeData(now: number, datagram: Datagram): Extract<AgentEvent, { type: 'data' }> | undefined {
    return this.core.takeData(now, datagram);
  }

  /**
   * Bytes of an ICE-TCP connection on the direct path (see `directData`): its data frames become `data` events in
   * `out`; its STUN frames are handled in full. After `control`, drain and re-arm as after `handleReceive`.
   */
  takeTcp(now: number, datagram: Datagram, out: Extract<AgentEvent, { type: 'data' }>[]): TcpReceived {
    const r = this.core.takeTcp(now, datagram, out);
    if (r === 'control') this.#pump(now);
    return r;
  }

  /**
   * The datagram carrying `data`, handed back instead of queued (see `directData`); undefined when no pair may carry
   * it; null when it went through a relayed pair's TURN client and waits in the usual queue (drain as after `send`).
   */
  takeSend(now: number, stream: number, component: number, data: Uint8Array): Datagram | null | undefined {
    const t = this.core.takeSend(now, stream, component, data);
    if (t === undefined) return undefined;
    if (this.#turn !== undefined && this.#turn.size > 0 && this.#turn.wrap(now, t)) {
      this.#pump(now);
      return null;
    }
    return t;
  }

  /**
   * ICE restart (RFC 8445 §9): new local credentials. Without `newBases` the candidates and allocations are kept.
   * With them (sockets the edge bound anew, as libwebrtc gathers new ports on a restart) the new session gathers
   * on them alone: host candidates, server-reflexive ones and new TURN allocations, emitted as `candidate` events
   * (gathering state `gathering` again). The old bases keep carrying the previous pairs until the new session
   * selects; then `bases-released` names them and their allocations are deleted (see docs/deviations.md).
   * `'pending'`: the edge is still binding them; the credentials change now, and `useBases` brings the sockets.
   */
  restart(now: number, newBases?: readonly StreamBase[] | 'pending'): void {
    if (this.#closed) throw new InvalidStateError('restart() after close()');
    if (newBases === undefined || (newBases !== 'pending' && newBases.length === 0)) {
      this.core.restart();
      this.#pump(now);
      return;
    }
    this.core.restart({ newCandidates: true });
    // Bases of an earlier restart still waiting for release stay in the list; the current ones join it.
    this.#oldBases.push(...this.#bases);
    this.#bases = [];
    this.#generation++;
    if (newBases === 'pending') this.#pump(now);
    else this.useBases(now, newBases);
  }

  /**
   * The sockets the edge bound for `restart(now, 'pending')`: gathering starts on them. Given the old bases again
   * (binding failed), the new session gathers on those.
   */
  useBases(now: number, bases: readonly StreamBase[]): void {
    if (this.#closed) return;
    if (this.#bases.length > 0) throw new InvalidStateError('useBases() without a restart waiting for bases');
    this.#bases = bases;
    this.#startGatherers(now, bases);
  }

  /** The host bases the current session gathers on. */
  get bases(): readonly StreamBase[] {
    return this.#bases;
  }

  /** Closes everything: checks stop, gatherers stop, allocations are released (Refresh with LIFETIME 0). */
  close(now: number): void {
    if (this.#closed) return;
    this.#closed = true;
    this.core.close();
    for (const g of this.#gatherers) g.close(now);
    this.#turn?.close(now);
    this.#mdns?.close(now);
    this.#noIce?.close();
    this.#pump(now);
  }

  /** TURN servers whose allocation is not released yet. */
  unreleasedServers(): TransportAddress[] {
    return this.#turn?.unreleased() ?? [];
  }

  /** True when every allocation has been released (or failed): the edge may close its sockets. */
  get released(): boolean {
    return this.#turn?.released ?? true;
  }

  // ---- TURN over TCP/TLS (RFC 8656 §3.1): the edge's answers to `turn-connect`, see `turnclient/allocations.ts` --

  /** The connection `id` is open from `local`. Returns false when it is no longer wanted: the edge closes it. */
  turnConnected(now: number, id: string, local: TransportAddress): boolean {
    const wanted = this.#turn?.turnConnected(now, id, local) ?? false;
    if (wanted) this.#pump(now);
    return wanted;
  }

  /** The connection a `turn-connect` asked for could not be opened (refused, TLS failure, time-out). */
  turnConnectionFailed(now: number, id: string, reason: string): void {
    this.#turn?.turnConnectionFailed(now, id, reason);
    this.#pump(now);
  }

  /** The stream of a TCP/TLS allocation closed: its 5-tuple, and so the allocation, is gone (RFC 8656 §3.2). */
  turnConnectionClosed(now: number, id: string): void {
    this.#turn?.turnConnectionClosed(now, id);
    this.#pump(now);
  }

  // ---- ICE-TCP (RFC 6544): the edge's answers to the core's `tcp-connect`, and connections it accepted ---------

  /** Connection `id` is open from `local`; false: no longer wanted, close it. See `AgentCore.tcpConnected`. */
  tcpConnected(now: number, id: string, local: TransportAddress): boolean {
    const wanted = this.core.tcpConnected(now, id, local);
    this.#pump(now);
    return wanted;
  }

  /** Connection `id` could not be opened: its pairs fail. */
  tcpConnectFailed(now: number, id: string): void {
    this.core.tcpConnectFailed(now, id);
    this.#pump(now);
  }

  /** A connection accepted on a passive base: its id, or undefined when refused (close it). */
  tcpAccepted(now: number, local: TransportAddress, remote: TransportAddress): string | undefined {
    const id = this.#closed ? undefined : this.core.tcpAccepted(now, local, remote);
    this.#pump(now);
    return id;
  }

  /** Connection `id` closed by itself: its pairs fail. */
  tcpClosed(now: number, id: string): void {
    this.core.tcpClosed(now, id);
    this.#pump(now);
  }

  handleReceive(now: number, datagram: Datagram): boolean {
    let taken: boolean;
    if (datagram.transport !== undefined && datagram.transport !== 'udp') {
      // Bytes of an ICE-TCP connection go to the core (RFC 6544); frames from TURN connections only to their
      // allocations.
      taken =
        datagram.transport === 'tcp' && this.core.ownsTcp(datagram)
          ? this.core.handleReceive(now, datagram)
          : (this.#turn?.handleReceive(now, datagram) ?? false);
    } else if (this.#mdns && (key(datagram.local) === this.#mdnsKey || this.#toMdnsGroup(datagram.local))) {
      taken = this.#mdns.handleReceive(now, datagram);
    } else {
      taken = this.#turn?.handleReceive(now, datagram) ?? false;
      // A loop, not `some()`: no closure per datagram (the gatherers are released once complete).
      for (let i = 0; !taken && i < this.#gatherers.length; i++) taken = this.#gatherers[i]!.handleReceive(now, datagram);
      if (!taken) taken = this.#activeNoIce?.handleReceive(now, datagram) ?? false;
      if (!taken) taken = this.core.handleReceive(now, datagram);
    }
    this.#pump(now);
    return taken;
  }

  handleTimeout(now: number): void {
    this.#activeNoIce?.handleTimeout(now);
    for (const g of this.#gatherers) g.handleTimeout(now);
    this.#turn?.handleTimeout(now);
    this.#mdns?.handleTimeout(now);
    this.core.handleTimeout(now);
    this.#pump(now);
  }

  pollTransmit(): Datagram | undefined {
    return this.#transmits.shift();
  }

  pollEvent(): AgentMachineEvent | undefined {
    return this.#events.shift();
  }

  pollTimeout(): number | undefined {
    let min = this.core.pollTimeout();
    const consider = (t: number | undefined) => {
      if (t !== undefined && (min === undefined || t < min)) min = t;
    };
    for (const g of this.#gatherers) consider(g.pollTimeout());
    consider(this.#turn?.pollTimeout());
    consider(this.#mdns?.pollTimeout());
    consider(this.#activeNoIce?.pollTimeout());
    return min;
  }

  /** Sends from a base, wrapping through TURN when the base is a relayed address. */
  #sendRaw(now: number, d: Datagram): void {
    if (this.#turn === undefined || !this.#turn.wrap(now, d)) this.#transmits.push(d);
  }

  /**
   * Multicast queries and announcements reach the mDNS socket addressed to the group (RFC 6762 §5), not to the
   * socket's own address: they are the responder's too.
   */
  #toMdnsGroup(local: TransportAddress): boolean {
    const m = this.#options.mdns;
    if (!m || local.port !== m.local.port) return false;
    const b = parseIp(local.address);
    return b !== undefined && (b.length === 4 ? (b[0]! & 0xf0) === 0xe0 : b[0] === 0xff);
  }

  /** Moves every part's output into ours, feeding parts into each other, until nothing is left to move. */
  #pump(now: number): void {
    const turn = this.#turn;
    if (this.#gatherers.length === 0 && (turn === undefined || turn.idle) && this.#mdns === undefined) {
      // Only the core (and paths without ICE) left: nothing feeds back into the core, so one pass moves everything.
      // This is every datagram of a host or server-reflexive session.
      const noIce = this.#activeNoIce;
      if (noIce !== undefined) this.#moveNoIce(now, noIce);
      for (let d = this.core.pollTransmit(); d; d = this.core.pollTransmit()) this.#sendRaw(now, d);
      for (let e = this.core.pollEvent(); e; e = this.core.pollEvent()) this.#events.push(e);
      if (this.#oldBases.length > 0) this.#releaseOldBases(now); // no allocation here: nothing more to move
      return;
    }
    for (let guard = 0; guard < 1000; guard++) {
      const noIce = this.#activeNoIce;
      let moved = noIce !== undefined && this.#moveNoIce(now, noIce);
      for (let i = 0; i < this.#gatherers.length; i++) {
        const g = this.#gatherers[i]!;
        for (let d = g.pollTransmit(); d; d = g.pollTransmit(), moved = true) this.#transmits.push(d);
        for (let e = g.pollEvent(); e; e = g.pollEvent(), moved = true) this.#onGathererEvent(now, this.#gathererOf.get(g)!.stream, e);
      }
      if (turn !== undefined) {
        for (let d = turn.pollTransmit(); d; d = turn.pollTransmit(), moved = true) this.#transmits.push(d);
        for (let e = turn.pollEvent(); e; e = turn.pollEvent(), moved = true) this.#onTurnEvent(now, e);
      }
      if (this.#mdns) {
        for (let d = this.#mdns.pollTransmit(); d; d = this.#mdns.pollTransmit(), moved = true) this.#transmits.push(d);
        for (let e = this.#mdns.pollEvent(); e; e = this.#mdns.pollEvent(), moved = true) {
          this.#names.resolved(e.name, e.type === 'resolved' ? e.address : undefined, e.type === 'unresolved' ? e.reason : undefined);
        }
        this.#moveNames(now);
      }
      for (let d = this.core.pollTransmit(); d; d = this.core.pollTransmit(), moved = true) this.#sendRaw(now, d);
      for (let e = this.core.pollEvent(); e; e = this.core.pollEvent(), moved = true) this.#events.push(e);
      if (!moved) {
        this.#releaseGatherers();
        if (this.#releaseOldBases(now)) continue; // their allocations' deletions to move
        return;
      }
    }
    throw new Error('AgentMachine: internal pump did not settle');
  }

  /** The paths without ICE while a component runs so (the agent skips them otherwise). */
  get #activeNoIce(): NoIcePaths | undefined {
    const n = this.#noIce;
    return n !== undefined && n.size > 0 ? n : undefined;
  }

  #moveNoIce(now: number, noIce: NoIcePaths): boolean {
    let moved = false;
    for (let d = noIce.pollTransmit(); d; d = noIce.pollTransmit(), moved = true) this.#sendRaw(now, d);
    for (let e = noIce.pollEvent(); e; e = noIce.pollEvent(), moved = true) this.#events.push(e);
    return moved;
  }

  /**
   * Why a remote candidate can never pair for want of a local candidate of its address family (RFC 8445 §6.1.2.2
   * pairs same-family candidates only), or undefined. Only host bases are known for sure: with a TURN server the
   * relayed address may be of either family (RFC 8656 §7.1 defaults to IPv4 whatever the server's), so nothing is
   * dropped then; nor is anything without any base. `.local` names are checked once resolved.
   */
  #familyProblem(stream: number, candidate: Candidate): string | undefined {
    const family = ipFamily(candidate.address);
    if (family === 0 || (this.#options.turnServers?.length ?? 0) > 0) return undefined;
    const bases = this.#options.bases.filter((b) => (b.stream ?? 0) === stream);
    if (bases.length === 0 || bases.some((b) => ipFamily(b.address.address) === family)) return undefined;
    return `no-ipv${family}-base (the agent has no IPv${family} address to pair it with)`;
  }

  /** Carries out what the remote name resolver asks for. */
  #moveNames(now: number): void {
    for (let o = this.#names.poll(); o; o = this.#names.poll()) {
      switch (o.type) {
        case 'candidate': {
          const noBase = this.#familyProblem(o.stream, o.candidate);
          if (noBase !== undefined) {
            this.#events.push({ type: 'remote-candidate-dropped', stream: o.stream, candidate: o.candidate, reason: noBase });
            break;
          }
          this.core.addRemoteCandidate(o.stream, o.candidate);
          this.#turn?.permitPeer(now, o.stream, o.candidate.address);
          break;
        }
        case 'dropped':
          this.#events.push({ type: 'remote-candidate-dropped', stream: o.stream, candidate: o.candidate, reason: o.reason });
          break;
        case 'end-of-candidates':
          this.core.endOfRemoteCandidates(o.stream);
          break;
        case 'resolve': {
          if (this.#mdns === undefined) {
            this.#events.push({ type: 'resolve-mdns', name: o.name, families: this.#mdnsFamilies });
            break;
          }
          const known = this.#mdns.lookup(now, o.name);
          if (known !== undefined) this.#names.resolved(o.name, known);
          else this.#mdns.resolve(now, o.name, this.#mdnsFamilies);
          break;
        }
      }
    }
  }

  /**
   * Once every gatherer has completed it holds nothing the agent still needs: its candidates went to the core, late
   * server answers would be dropped either way, and allocations it gave up on were cancelled. Letting go of them saves
   * a few KB per idle agent (thousands of agents per process) and their polling on every datagram.
   */
  #releaseGatherers(): void {
    if (this.#gatheringState !== 'complete' || this.#gatherers.length === 0) return;
    if (this.#gatherers.every((g) => g.state === 'complete')) {
      this.#gatherers.length = 0;
      this.#gathererOf.clear();
    }
  }

  /** Once the previous session carries nothing (RFC 8445 §9), the bases a restart replaced are let go. */
  #releaseOldBases(now: number): boolean {
    if (this.#oldBases.length === 0 || this.#bases.length === 0 || this.core.holdsPreviousSession) return false;
    const bases = this.#oldBases;
    this.#oldBases = [];
    const current = new Set(this.#bases.map((b) => key(b.address)));
    const gone = bases.filter((b) => !current.has(key(b.address)));
    this.#turn?.releaseFrom(now, gone.map((b) => b.address));
    if (gone.length > 0) this.#events.push({ type: 'bases-released', bases: gone });
    return true;
  }

  #onGathererEvent(now: number, stream: number, e: GathererEvent): void {
    const trace = this.#options.trace;
    switch (e.type) {
      case 'candidate':
        if (trace) trace({ t: now, type: 'candidate-gathered', stream, candidate: traceCandidate(e.candidate, e.server) });
        // A lite agent uses host candidates only (RFC 8445 §2.5).
        if (this.#options.lite && e.candidate.type !== 'host') return;
        // Relay policy: a server-reflexive candidate (e.g. the mapped address of an allocation) would be checked
        // from its host base, which the policy forbids.
        if (this.#options.iceTransportPolicy === 'relay' && e.candidate.type !== 'relay') return;
        // A component dropped while its gathering was under way (RTCP multiplexed after all).
        if (e.candidate.component > this.core.componentCount(stream)) return;
        this.core.addLocalCandidate(stream, e.candidate);
        this.#events.push({ type: 'candidate', stream, candidate: e.candidate });
        return;
      case 'end-of-candidates':
        this.#events.push({ type: 'end-of-candidates', stream });
        if (this.#gatherers.every((g) => g.state === 'complete')) this.#setGatheringState('complete');
        return;
      case 'state':
        return;
      case 'server-failed':
        if (trace) trace({ t: now, type: 'server-failed', kind: e.kind, server: traceAddress(e.server), base: traceAddress(e.base), reason: e.reason });
        this.#events.push({ type: 'server-failed', kind: e.kind, server: e.server, reason: e.reason });
        return;
    }
  }

  #onTurnEvent(now: number, e: AllocationsEvent): void {
    switch (e.type) {
      case 'relay-result':
        for (const [g, info] of this.#gathererOf) {
          if (info.stream !== e.stream || !e.id.startsWith(info.prefix)) continue;
          const id = e.id.slice(info.prefix.length);
          // The first generation has no prefix: its ids never look like a later generation's.
          if (info.prefix === '' && /^g\d+-/.test(e.id)) continue;
          g.relayResult(now, id, e.result);
        }
        return;
      case 'peer-data':
        // Unwrapped traffic from a peer: to the core as if it arrived on the relayed address.
        this.core.handleReceive(now, e.datagram);
        return;
      default:
        this.#events.push(e);
    }
  }

  #setGatheringState(state: GatheringState): void {
    if (this.#gatheringState === state) return;
    this.#gatheringState = state;
    this.#events.push({ type: 'gathering-state', state });
  }
}
