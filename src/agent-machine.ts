/**
 * The whole sans-IO ICE agent: the {@link AgentCore} (checklists, checks, nomination, consent) composed with one
 * {@link Gatherer} per data stream, one {@link TurnClient} per relayed allocation and an optional
 * {@link MdnsResponder}. It owns the routing the parts must not know about:
 *
 * - inbound: a datagram from a TURN server goes to that allocation's client, and what it unwraps goes on to the
 *   core with `local` = the relayed address; Binding responses for gathering go to the gatherer; the mDNS socket's
 *   traffic goes to the responder; everything else goes to the core (checks, responses, application data).
 * - outbound: a core transmit whose `local` is a relayed address is wrapped by that allocation's client.
 * - candidates: gathered candidates feed the core and are reported for signalling; remote `.local` candidates are
 *   resolved through mDNS before they reach the core, and dropped when they do not resolve.
 *
 * Same drain contract as every machine (`src/machine.ts`).
 * @module
 */
import { AgentCore } from './checklist/agent-core.js';
import type { Candidate, LocalCandidate } from './candidates/candidate.js';
import {
  Gatherer,
  type GathererEvent,
  type GatheringState,
  type HostBase,
  type MdnsRegistrar,
  type RelayAllocationRequest,
  type RelayAllocator,
  type RelayServerConfig,
} from './candidates/gatherer.js';
import { MdnsResponder } from './candidates/mdns.js';
import type { AgentCoreOptions, AgentEvent, IceParameters } from './checklist/types.js';
import { InvalidStateError } from './errors.js';
import { canonicalIp, parseIp } from './ip.js';
import type { SansIoMachine } from './machine.js';
import { encodeKeepalive } from './checklist/checks.js';
import { looksLikeStun } from './stun/message.js';
import { TurnClient, type TurnClientEvent } from './turnclient/turn-client.js';
import type { Datagram, TransportAddress } from './types.js';

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
   * Names host candidates without a responder inside the machine (the Node edge runs its own mDNS socket and
   * resolves remote names before handing candidates in). Ignored when `mdns` is set.
   */
  readonly mdnsRegistrar?: MdnsRegistrar;
  /** Resolve remote `.local` candidates through `mdns` (default true when `mdns` is set). */
  readonly resolveMdns?: boolean;
  readonly software?: string;
  /**
   * W3C `RTCIceTransportPolicy`: `'relay'` gathers and uses relayed candidates only (host sockets then serve only
   * to reach the TURN servers, and no host or server-reflexive candidate reaches the core). Default `'all'`.
   */
  readonly iceTransportPolicy?: 'all' | 'relay';
}

/** Events: the core's, plus gathering and TURN reports. */
export type AgentMachineEvent =
  | AgentEvent
  | { readonly type: 'candidate'; readonly stream: number; readonly candidate: LocalCandidate }
  | { readonly type: 'end-of-candidates'; readonly stream: number }
  | { readonly type: 'gathering-state'; readonly state: GatheringState }
  | { readonly type: 'server-failed'; readonly kind: 'stun' | 'turn'; readonly server: TransportAddress; readonly reason: string }
  | { readonly type: 'remote-candidate-dropped'; readonly stream: number; readonly candidate: Candidate; readonly reason: string }
  /** A component running without ICE latched on to the source of what came back (symmetric RTP / COMEDIA). */
  | { readonly type: 'latched'; readonly stream: number; readonly component: number; readonly remote: TransportAddress }
  | TurnStreamEvent;

/**
 * Requests to the IO edge for TURN over TCP/TLS (RFC 8656 §3.1): the allocation lives on a stream connection the
 * machine cannot open itself.
 *
 * - `turn-connect`: open a TCP (or TLS-over-TCP) connection to `server` from `base`'s IP, then call
 *   {@link AgentMachine.turnConnected} with the connection's local address, or
 *   {@link AgentMachine.turnConnectionFailed}. Frame the bytes it receives with `StreamFramer` and hand each frame
 *   in as a datagram `{ local: <stream local>, remote: server, data, transport }`; write every transmit whose
 *   `transport` is `'tcp'`/`'tls'` to the stream it names (`local` + `remote`). After a 300 Try Alternate the same
 *   `id` is asked again with the new server (`domain`: ALTERNATE-DOMAIN, for the TLS certificate check); the edge
 *   replaces the old connection.
 * - `turn-disconnect`: the allocation is released, failed or abandoned; close its connection.
 */
export type TurnStreamEvent =
  | {
      readonly type: 'turn-connect';
      readonly id: string;
      readonly server: TransportAddress;
      readonly transport: 'tcp' | 'tls';
      readonly base: TransportAddress;
      readonly domain?: string;
    }
  | { readonly type: 'turn-disconnect'; readonly id: string };

/** RFC 6263 §4.6 style keepalive period for components running without ICE (RFC 8445 §11 uses 15 s too). */
export const NO_ICE_KEEPALIVE_MS = 15_000;

interface NoIcePath {
  readonly stream: number;
  readonly component: number;
  readonly local: TransportAddress;
  remote: TransportAddress;
  latched: boolean;
  keepaliveAt: number;
}

interface Allocation {
  readonly id: string;
  readonly stream: number;
  readonly client: TurnClient;
  /** Set once allocated: the relayed addresses this client answers for. */
  relayed: readonly TransportAddress[];
  reported: boolean;
}

const key = (a: TransportAddress) => `${canonicalIp(a.address)}|${a.port}`;

/** The composed sans-IO agent. Create, call `gather(now)`, then follow the drain contract. */
export class AgentMachine implements SansIoMachine<AgentMachineEvent> {
  readonly core: AgentCore;
  readonly #options: AgentMachineOptions;
  readonly #gatherers: Gatherer[] = [];
  readonly #allocations = new Map<string, Allocation>();
  /** TCP/TLS allocations by allocation id, from `turn-connect` until released; `connected` once the edge connected. */
  readonly #turnStreams = new Map<string, { readonly stream: number; readonly request: RelayAllocationRequest; connected: boolean }>();
  /** Relayed address → allocation, for outbound wrapping. */
  readonly #byRelayed = new Map<string, Allocation>();
  readonly #mdns: MdnsResponder | undefined;
  readonly #mdnsKey: string | undefined;
  /** Remote `.local` candidates waiting for resolution, by name. */
  readonly #unresolved = new Map<string, { stream: number; candidate: Candidate }[]>();
  /** Streams whose end-of-candidates waits for `.local` names still resolving. */
  readonly #endPending = new Set<number>();
  readonly #transmits: Datagram[] = [];
  readonly #events: AgentMachineEvent[] = [];
  #gatheringState: GatheringState = 'new';
  #closed = false;
  /** Components running without ICE, by `stream:component`, and by their local base. */
  readonly #noIce = new Map<string, NoIcePath>();
  readonly #noIceByLocal = new Map<string, NoIcePath>();

  constructor(options: AgentMachineOptions) {
    this.#options = options;
    this.core = new AgentCore(options);
    this.#mdns = options.mdns?.responder;
    this.#mdnsKey = options.mdns ? key(options.mdns.local) : undefined;
    const streams = options.streams ?? [1];
    streams.forEach((components, i) => {
      const index = i === 0 && this.core.streamCount > 0 ? 0 : this.core.addStream(components);
      if (index !== i) throw new InvalidStateError('streams must be added in order');
    });
  }

  /** Gathering state across all streams (`complete` once every stream's gatherer completed). */
  get gatheringState(): GatheringState {
    return this.#gatheringState;
  }

  /** Starts gathering on every stream (host candidates at once, then server-reflexive and relayed). */
  gather(now: number): void {
    if (this.#gatheringState !== 'new') throw new InvalidStateError('gather() was already called');
    const streams = this.#options.streams ?? [1];
    for (let s = 0; s < streams.length; s++) {
      // Allocation ids are unique per gatherer only, so each stream gets its own allocator and id space.
      const allocator: RelayAllocator = {
        allocate: (t, request) => this.#allocate(t, s, request),
        cancel: (t, id) => this.#cancelAllocation(t, `${s}:${id}`),
      };
      const bases = this.#options.bases.filter((b) => (b.stream ?? 0) === s);
      const g = new Gatherer({
        random: this.#options.random,
        bases,
        ...(this.#options.stunServers ? { stunServers: this.#options.stunServers } : {}),
        ...(this.#options.turnServers ? { turnServers: this.#options.turnServers, relayAllocator: allocator } : {}),
        ...(this.#options.gatherTimeoutMs !== undefined ? { gatherTimeoutMs: this.#options.gatherTimeoutMs } : {}),
        ...(this.#mdns ? { mdns: this.#mdns } : this.#options.mdnsRegistrar ? { mdns: this.#options.mdnsRegistrar } : {}),
        ...(this.#options.software !== undefined ? { software: this.#options.software } : {}),
        ...(this.#options.iceTransportPolicy === 'relay' ? { gatherHost: false } : {}),
        // RFC 8445 §14.2: gathering transactions are paced by the local Ta proposal (the peer's is not known yet)
        // and share the process-wide 5 ms budget with the checks.
        ...(this.#options.pacingMs !== undefined ? { taMs: this.#options.pacingMs } : {}),
        ...(this.#options.pacer ? { pacer: this.#options.pacer.register() } : {}),
      });
      this.#gatherers.push(g);
    }
    this.#setGatheringState('gathering');
    this.#gatherers.forEach((g) => g.start(now));
    this.#pump(now);
  }

  /** Remote ICE parameters of a stream (RFC 8839 ice-ufrag/ice-pwd, ice-lite, ice-pacing). */
  setRemoteParameters(stream: number, params: IceParameters): void {
    this.core.setRemoteParameters(stream, params);
  }

  /**
   * Adds a remote candidate. A `.local` candidate is resolved through mDNS first (draft §3.2.2) and dropped when it
   * does not resolve or no responder is configured.
   */
  addRemoteCandidate(now: number, stream: number, candidate: Candidate): void {
    if (!candidate.address.endsWith('.local')) {
      this.core.addRemoteCandidate(stream, candidate);
      this.#pump(now);
      return;
    }
    if (!this.#mdns || this.#options.resolveMdns === false) {
      this.#events.push({ type: 'remote-candidate-dropped', stream, candidate, reason: 'mdns-disabled' });
      return;
    }
    const name = candidate.address.toLowerCase();
    const known = this.#mdns.lookup(now, name);
    if (known !== undefined) {
      this.core.addRemoteCandidate(stream, { ...candidate, address: known, mdnsName: candidate.address });
    } else {
      const waiting = this.#unresolved.get(name) ?? [];
      waiting.push({ stream, candidate });
      this.#unresolved.set(name, waiting);
      if (waiting.length === 1) this.#mdns.resolve(now, name);
    }
    this.#pump(now);
  }

  /** No more remote candidates will come for this stream (RFC 8838 end-of-candidates). */
  endOfRemoteCandidates(stream: number): void {
    // The core drops candidates that come after end-of-candidates, so while `.local` names of this stream are still
    // resolving, the end is passed on only once the last of them resolved or failed.
    if (this.#resolvingIn(stream)) this.#endPending.add(stream);
    else this.core.endOfRemoteCandidates(stream);
  }

  #resolvingIn(stream: number): boolean {
    for (const list of this.#unresolved.values()) if (list.some((w) => w.stream === stream)) return true;
    return false;
  }

  /**
   * Runs a component without ICE (the peer's SDP had no ICE attributes, or RFC 8839 §4.2.5 ice-mismatch): data goes
   * from `local` (default: the component's first host base) to `remote`, the signalled `c=`/`m=` address. The first
   * datagram that arrives from another address latches the destination on to it (symmetric RTP / COMEDIA, which is
   * what lets a media relay or a NATed peer answer), and STUN Binding indications keep the NAT binding open.
   */
  useWithoutIce(now: number, stream: number, component: number, remote: TransportAddress, local?: TransportAddress): void {
    const base = local ?? this.#options.bases.find((b) => (b.stream ?? 0) === stream && b.component === component)?.address;
    if (!base) throw new InvalidStateError(`no local base for stream ${stream} component ${component}`);
    const path: NoIcePath = { stream, component, local: base, remote, latched: false, keepaliveAt: now + NO_ICE_KEEPALIVE_MS };
    this.#noIce.set(`${stream}:${component}`, path);
    this.#noIceByLocal.set(key(base), path);
  }

  /** The destination of a component running without ICE (after latching, the address that answered). */
  withoutIceDestination(stream: number, component: number): TransportAddress | undefined {
    return this.#noIce.get(`${stream}:${component}`)?.remote;
  }

  /** Sends application data on the selected (or a valid) pair of a component. */
  send(now: number, stream: number, component: number, data: Uint8Array): boolean {
    // Guarded: building the key string on every datagram is measurable on the data path.
    const path = this.#noIce.size > 0 ? this.#noIce.get(`${stream}:${component}`) : undefined;
    if (path && !this.#closed) {
      this.#sendRaw(now, { local: path.local, remote: path.remote, data });
      path.keepaliveAt = now + NO_ICE_KEEPALIVE_MS;
      return true;
    }
    const ok = this.core.send(now, stream, component, data);
    this.#pump(now);
    return ok;
  }

  /** ICE restart (RFC 8445 §9): new local credentials; candidates and allocations are kept. */
  restart(now: number): void {
    this.core.restart();
    this.#pump(now);
  }

  /** Closes everything: checks stop, gatherers stop, allocations are released (Refresh with LIFETIME 0). */
  close(now: number): void {
    if (this.#closed) return;
    this.#closed = true;
    this.core.close();
    for (const g of this.#gatherers) g.close(now);
    for (const a of this.#allocations.values()) a.client.close(now);
    for (const [id, t] of [...this.#turnStreams]) if (!t.connected) this.#cancelAllocation(now, id);
    this.#mdns?.close(now);
    this.#pump(now);
  }

  /** True when every allocation has been released (or failed): the edge may close its sockets. */
  get released(): boolean {
    for (const a of this.#allocations.values()) {
      const s = a.client.state;
      if (s !== 'closed' && s !== 'failed' && s !== 'idle') return false;
    }
    return true;
  }

  handleReceive(now: number, datagram: Datagram): boolean {
    if (datagram.transport !== undefined && datagram.transport !== 'udp') return this.#receiveStream(now, datagram);
    let taken = false;
    if (this.#mdns && (key(datagram.local) === this.#mdnsKey || this.#toMdnsGroup(datagram.local))) {
      taken = this.#mdns.handleReceive(now, datagram);
    } else {
      // Keys only when there are allocations: canonicalising two addresses per datagram is the data path's cost.
      if (this.#allocations.size > 0) {
        const remote = key(datagram.remote);
        const local = key(datagram.local);
        for (const a of this.#allocations.values()) {
          if (key(a.client.server) === remote && key(a.client.local) === local) {
            taken = a.client.handleReceive(now, datagram);
            if (taken) break;
          }
        }
      }
      // A loop, not `some()`: no closure per datagram (the gatherers are released once complete).
      for (let i = 0; !taken && i < this.#gatherers.length; i++) taken = this.#gatherers[i]!.handleReceive(now, datagram);
      if (!taken && this.#noIce.size > 0) taken = this.#receiveWithoutIce(datagram);
      if (!taken) taken = this.core.handleReceive(now, datagram);
    }
    this.#pump(now);
    return taken;
  }

  handleTimeout(now: number): void {
    for (const path of this.#noIce.values()) {
      if (now >= path.keepaliveAt && !this.#closed) {
        this.#sendRaw(now, { local: path.local, remote: path.remote, data: encodeKeepalive(this.#options.random.bytes(12)) });
        path.keepaliveAt = now + NO_ICE_KEEPALIVE_MS;
      }
    }
    for (const g of this.#gatherers) g.handleTimeout(now);
    for (const a of this.#allocations.values()) a.client.handleTimeout(now);
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
    for (const a of this.#allocations.values()) consider(a.client.pollTimeout());
    consider(this.#mdns?.pollTimeout());
    if (!this.#closed) for (const path of this.#noIce.values()) consider(path.keepaliveAt);
    return min;
  }

  #receiveWithoutIce(d: Datagram): boolean {
    const path = this.#noIceByLocal.get(key(d.local));
    if (!path || looksLikeStun(d.data)) return false;
    if (!path.latched) {
      path.latched = true;
      if (key(d.remote) !== key(path.remote)) {
        path.remote = d.remote;
        this.#events.push({ type: 'latched', stream: path.stream, component: path.component, remote: d.remote });
      }
    }
    this.#events.push({ type: 'data', stream: path.stream, component: path.component, data: d.data, from: d.remote, local: d.local });
    return true;
  }

  /** Sends from a base, wrapping through TURN when the base is a relayed address. */
  #sendRaw(now: number, d: Datagram): void {
    const relay = this.#byRelayed.size > 0 ? this.#byRelayed.get(key(d.local)) : undefined;
    // A relayed pair can outlive its allocation (a TURN connection that closed): drop, as a dead socket would.
    if (relay) {
      if (relay.client.state === 'allocated') relay.client.send(now, d.remote, d.data);
    } else this.#transmits.push(d);
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

  /** `connected`: for TCP/TLS, the local address of the connection the edge opened (see `turnConnected`). */
  #allocate(now: number, stream: number, request: RelayAllocationRequest, connected?: TransportAddress): void {
    const server = request.server;
    if ((server.transport === 'tcp' || server.transport === 'tls') && connected === undefined) {
      this.#requestConnection(stream, request, server.transport);
      return;
    }
    const client = new TurnClient({
      server: server.server,
      transport: server.transport === 'tcp' || server.transport === 'tls' ? server.transport : 'udp',
      local: connected ?? request.base,
      username: server.username ?? '',
      password: server.credential ?? '',
      random: this.#options.random,
      ...(this.#options.software !== undefined ? { software: this.#options.software } : {}),
    });
    const id = `${stream}:${request.id}`;
    this.#allocations.set(id, { id: request.id, stream, client, relayed: [], reported: false });
    client.allocate(now);
  }

  #cancelAllocation(now: number, id: string): void {
    if (this.#turnStreams.get(id)?.connected === false) {
      this.#turnStreams.delete(id);
      this.#events.push({ type: 'turn-disconnect', id });
      return;
    }
    const a = this.#allocations.get(id);
    if (!a) return;
    a.reported = true; // a late success is released, not reported
    a.client.close(now);
  }

  /** Moves every part's output into ours, feeding parts into each other, until nothing is left to move. */
  #pump(now: number): void {
    if (this.#gatherers.length === 0 && this.#allocations.size === 0 && this.#mdns === undefined) {
      // Only the core is left (gathering done, no TURN, no mDNS responder): nothing feeds back into it, so one pass
      // moves everything. This is every datagram of a host or server-reflexive session.
      for (let d = this.core.pollTransmit(); d; d = this.core.pollTransmit()) this.#sendRaw(now, d);
      for (let e = this.core.pollEvent(); e; e = this.core.pollEvent()) this.#events.push(e);
      return;
    }
    for (let guard = 0; guard < 1000; guard++) {
      let moved = false;
      for (let i = 0; i < this.#gatherers.length; i++) {
        const g = this.#gatherers[i]!;
        for (let d = g.pollTransmit(); d; d = g.pollTransmit(), moved = true) this.#transmits.push(d);
        for (let e = g.pollEvent(); e; e = g.pollEvent(), moved = true) this.#onGathererEvent(now, i, e);
      }
      for (const a of this.#allocations.values()) {
        for (let d = a.client.pollTransmit(); d; d = a.client.pollTransmit(), moved = true) this.#transmits.push(d);
        for (let e = a.client.pollEvent(); e; e = a.client.pollEvent(), moved = true) this.#onTurnEvent(now, a, e);
      }
      if (this.#mdns) {
        for (let d = this.#mdns.pollTransmit(); d; d = this.#mdns.pollTransmit(), moved = true) this.#transmits.push(d);
        for (let e = this.#mdns.pollEvent(); e; e = this.#mdns.pollEvent(), moved = true) {
          const waiting = this.#unresolved.get(e.name) ?? [];
          this.#unresolved.delete(e.name);
          for (const w of waiting) {
            if (e.type === 'resolved') this.core.addRemoteCandidate(w.stream, { ...w.candidate, address: e.address, mdnsName: w.candidate.address });
            else this.#events.push({ type: 'remote-candidate-dropped', stream: w.stream, candidate: w.candidate, reason: `mdns-${e.reason}` });
          }
          for (const st of [...this.#endPending]) {
            if (this.#resolvingIn(st)) continue;
            this.#endPending.delete(st);
            this.core.endOfRemoteCandidates(st);
          }
        }
      }
      for (let d = this.core.pollTransmit(); d; d = this.core.pollTransmit(), moved = true) this.#sendRaw(now, d);
      for (let e = this.core.pollEvent(); e; e = this.core.pollEvent(), moved = true) this.#events.push(e);
      if (!moved) {
        this.#releaseGatherers();
        return;
      }
    }
    throw new Error('AgentMachine: internal pump did not settle');
  }

  /**
   * Once every gatherer has completed it holds nothing the agent still needs: its candidates went to the core, late
   * server answers would be dropped either way, and allocations it gave up on were cancelled. Letting go of them saves
   * a few KB per idle agent (thousands of agents per process) and their polling on every datagram.
   */
  #releaseGatherers(): void {
    if (this.#gatheringState !== 'complete' || this.#gatherers.length === 0) return;
    if (this.#gatherers.every((g) => g.state === 'complete')) this.#gatherers.length = 0;
  }

  #onGathererEvent(now: number, stream: number, e: GathererEvent): void {
    switch (e.type) {
      case 'candidate':
        // A lite agent uses host candidates only (RFC 8445 §2.5).
        if (this.#options.lite && e.candidate.type !== 'host') return;
        // Relay policy: a server-reflexive candidate (e.g. the mapped address of an allocation) would be checked
        // from its host base, which the policy forbids.
        if (this.#options.iceTransportPolicy === 'relay' && e.candidate.type !== 'relay') return;
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
        this.#events.push({ type: 'server-failed', kind: e.kind, server: e.server, reason: e.reason });
        return;
    }
    void now;
  }

  #onTurnEvent(now: number, a: Allocation, e: TurnClientEvent): void {
    if (a.client.transport !== 'udp') this.#onStreamTurnEvent(now, a, e);
    switch (e.type) {
      case 'allocated': {
        a.relayed = e.relayed;
        for (const r of e.relayed) this.#byRelayed.set(key(r), a);
        if (a.reported) return;
        a.reported = true;
        const relayed = e.relayed[0];
        const mapped = e.mapped;
        const g = this.#gatherers[a.stream];
        if (relayed && mapped) g?.relayResult(now, a.id, { ok: true, relayed, mapped });
        else g?.relayResult(now, a.id, { ok: false, reason: 'allocation without relayed or mapped address' });
        return;
      }
      case 'data':
        // Unwrapped traffic from a peer: to the core as if it arrived on the relayed address.
        for (const r of a.relayed) {
          if ((r.address.includes(':') ? 6 : 4) === (e.peer.address.includes(':') ? 6 : 4)) {
            this.core.handleReceive(now, { local: r, remote: e.peer, data: e.data });
            return;
          }
        }
        return;
      case 'error':
        if (!a.reported && e.operation === 'allocate') {
          a.reported = true;
          const code = e.error.errorCode;
          this.#gatherers[a.stream]?.relayResult(now, a.id, {
            ok: false,
            reason: e.error.message,
            insufficientCapacity: code === 486 || code === 508,
          });
        }
        return;
      default:
        return;
    }
  }

  // ---- TURN over TCP/TLS (RFC 8656 §3.1): the edge owns the connection, the machine the allocation ----------

  /**
   * The edge connected the stream a `turn-connect` asked for; `local` is the connection's local address. Starts the
   * Allocate on it (or, after a redirect, retries it there). Returns false when the machine no longer wants this
   * connection (cancelled, closed, unknown id): the edge should close it.
   */
  turnConnected(now: number, id: string, local: TransportAddress): boolean {
    const t = this.#turnStreams.get(id);
    if (this.#closed || t === undefined) return false;
    if (!t.connected) {
      t.connected = true;
      this.#allocate(now, t.stream, t.request, local);
      this.#pump(now);
      return true;
    }
    const a = this.#allocations.get(id);
    if (a?.client.state !== 'redirecting') return false;
    a.client.redirectConnected(now, local);
    this.#pump(now);
    return true;
  }

  /** The connection a `turn-connect` asked for could not be opened (refused, TLS failure, time-out). */
  turnConnectionFailed(now: number, id: string, reason: string): void {
    const t = this.#turnStreams.get(id);
    if (t === undefined) return;
    if (!t.connected) {
      this.#turnStreams.delete(id);
      this.#gatherers[t.stream]?.relayResult(now, t.request.id, { ok: false, reason });
      this.#pump(now);
      return;
    }
    const a = this.#allocations.get(id);
    if (a?.client.state === 'redirecting') {
      // TurnClient.connectionClosed() waits in 'redirecting' for a reconnect; the reconnect itself failed, so end it.
      if (!a.reported) {
        a.reported = true;
        this.#gatherers[a.stream]?.relayResult(now, a.id, { ok: false, reason: `after redirect: ${reason}` });
      }
      a.client.close(now);
      this.#pump(now);
      return;
    }
    this.turnConnectionClosed(now, id);
  }

  /** The stream of a TCP/TLS allocation closed: its 5-tuple, and so the allocation, is gone (RFC 8656 §3.2). */
  turnConnectionClosed(now: number, id: string): void {
    const a = this.#allocations.get(id);
    if (a !== undefined) {
      a.client.connectionClosed(now);
      this.#pump(now);
    } else if (this.#turnStreams.get(id)?.connected === false) {
      this.turnConnectionFailed(now, id, 'connection closed');
    }
  }

  #requestConnection(stream: number, request: RelayAllocationRequest, transport: 'tcp' | 'tls'): void {
    const id = `${stream}:${request.id}`;
    this.#turnStreams.set(id, { stream, request, connected: false });
    this.#events.push({ type: 'turn-connect', id, server: request.server.server, transport, base: request.base });
  }

  /** Frames from TURN connections: only their allocations may take them. */
  #receiveStream(now: number, datagram: Datagram): boolean {
    let taken = false;
    for (const a of this.#allocations.values()) {
      if (a.client.transport === datagram.transport && a.client.handleReceive(now, datagram)) {
        taken = true;
        break;
      }
    }
    this.#pump(now);
    return taken;
  }

  /** What a TCP/TLS allocation's events mean for its connection (runs before the common handling). */
  #onStreamTurnEvent(now: number, a: Allocation, e: TurnClientEvent): void {
    const id = `${a.stream}:${a.id}`;
    const t = this.#turnStreams.get(id);
    if (t === undefined) return;
    if (e.type === 'redirect') {
      // RFC 8656 §7.4 / RFC 8489 §10: 300 Try Alternate; over a stream that means a new connection.
      const transport = a.client.transport === 'tls' ? 'tls' : 'tcp';
      this.#events.push({ type: 'turn-connect', id, server: e.server, transport, base: t.request.base, ...(e.domain !== undefined ? { domain: e.domain } : {}) });
    } else if (e.type === 'closed' || (e.type === 'error' && e.fatal)) {
      this.#turnStreams.delete(id);
      this.#events.push({ type: 'turn-disconnect', id });
      // A reported allocation that dies (its connection closed, 437 on refresh) gets no other report.
      if (e.type === 'error' && a.reported && a.relayed.length > 0 && !this.#closed) {
        this.#events.push({ type: 'server-failed', kind: 'turn', server: a.client.server, reason: `allocation lost: ${e.error.message}` });
      }
    }
    void now;
  }

  #setGatheringState(state: GatheringState): void {
    if (this.#gatheringState === state) return;
    this.#gatheringState = state;
    this.#events.push({ type: 'gathering-state', state });
  }
}
