/**
 * The TURN allocations of one agent (RFC 8656), as a sans-IO machine: one {@link TurnClient} per allocation a
 * gatherer asks for, the index from relayed address to allocation, and the handshake with the IO edge for servers
 * reached over TCP or TLS.
 *
 * - inbound: a datagram from a server's address on the allocation's base (or a frame from its stream) goes to that
 *   allocation's client; what the client unwraps comes out as a `peer-data` event whose `local` is the relayed
 *   address, for the ICE core.
 * - outbound: {@link Allocations.wrap} sends a core transmit whose `local` is a relayed address through its client
 *   (Send indication or ChannelData).
 * - outcomes: `relay-result` events answer the gatherer that asked (`stream` + request `id`).
 * - TCP/TLS (RFC 8656 §3.1): the edge owns the connection, this machine the allocation. It asks with `turn-connect`,
 *   the edge answers with {@link Allocations.turnConnected} / `turnConnectionFailed` / `turnConnectionClosed`, and is
 *   told `turn-disconnect` once the allocation no longer needs its connection.
 *
 * Same drain contract as every machine (`src/machine.ts`).
 * @module
 */
import type { GlobalPacer } from '../stun/pacing.js';
import type { RelayAllocationRequest, RelayAllocationResult } from '../candidates/gatherer.js';
import { canonicalIp, ipFamily } from '../ip.js';
import type { SansIoMachine } from '../machine.js';
import type { Datagram, RandomSource, TransportAddress } from '../types.js';
import { TurnClient, type TurnClientEvent } from './turn-client.js';

/**
 * Requests to the IO edge for TURN over TCP/TLS (RFC 8656 §3.1): the allocation lives on a stream connection the
 * machine cannot open itself.
 *
 * - `turn-connect`: open a TCP (or TLS-over-TCP) connection to `server` from `base`'s IP, then call
 *   `turnConnected` with the connection's local address, or `turnConnectionFailed`. Frame the bytes it receives with
 *   `StreamFramer` and hand each frame in as a datagram `{ local: <stream local>, remote: server, data, transport }`;
 *   write every transmit whose `transport` is `'tcp'`/`'tls'` to the stream it names (`local` + `remote`). After a
 *   300 Try Alternate the same `id` is asked again with the new server (`domain`: ALTERNATE-DOMAIN, for the TLS
 *   certificate check); the edge replaces the old connection.
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

/** What {@link Allocations} reports to its owner. */
export type AllocationsEvent =
  | TurnStreamEvent
  /** The outcome of the request `id` of the gatherer of `stream`: pass on to `Gatherer.relayResult`. */
  | { readonly type: 'relay-result'; readonly stream: number; readonly id: string; readonly result: RelayAllocationResult }
  /** Unwrapped traffic from a peer, as if it arrived on the relayed address (`local`). */
  | { readonly type: 'peer-data'; readonly datagram: Datagram }
  /** An allocation that was reported as a candidate died (its connection closed, 437 on refresh). */
  | { readonly type: 'server-failed'; readonly kind: 'turn'; readonly server: TransportAddress; readonly reason: string };

/** Options of {@link Allocations}. */
export interface AllocationsOptions {
  readonly random: RandomSource;
  /** SOFTWARE attribute of every request. */
  readonly software?: string;
  /** The process-wide pacer (RFC 8445 §14.2): each allocation's retried Allocates wait for its slots. */
  readonly pacer?: GlobalPacer;
}

interface Allocation {
  /** `stream:request id`, unique in the agent (request ids are unique per gatherer only). */
  readonly key: string;
  readonly stream: number;
  readonly requestId: string;
  /** The host base the gatherer asked from (over TCP/TLS, the IP the connection leaves from). */
  readonly base: TransportAddress;
  readonly client: TurnClient;
  /** Set once allocated: the relayed addresses this client answers for. */
  relayed: readonly TransportAddress[];
  /** The gatherer has its answer (or no longer wants one: a late success is released, not reported). */
  reported: boolean;
}

/** A TCP/TLS allocation from `turn-connect` until released; `connected` once the edge connected. */
interface StreamRequest {
  readonly stream: number;
  readonly request: RelayAllocationRequest;
  connected: boolean;
}

/** Remote IPs per stream that get permissions ahead of checks (the core keeps at most 100 remote candidates). */
const MAX_PEERS_PER_STREAM = 128;

const key = (a: TransportAddress) => `${canonicalIp(a.address)}|${a.port}`;

/** The TURN allocations of one agent. */
export class Allocations implements SansIoMachine<AllocationsEvent> {
  readonly #options: AllocationsOptions;
  readonly #byKey = new Map<string, Allocation>();
  readonly #streams = new Map<string, StreamRequest>();
  /** Relayed address → allocation, for outbound wrapping. */
  readonly #byRelayed = new Map<string, Allocation>();
  readonly #events: AllocationsEvent[] = [];
  /** The latest time an input brought: client events are handled while draining, which takes no `now`. */
  #now = -Infinity;
  /** IPs of each stream's remote candidates: every allocation of the stream gets a permission for them. */
  readonly #peers = new Map<number, Set<string>>();
  #closed = false;

  constructor(options: AllocationsOptions) {
    this.#options = options;
  }

  /** Allocations alive or being released (not counting TCP/TLS ones still waiting for their connection). */
  get size(): number {
    return this.#byKey.size;
  }

  /** Nothing to move: no allocation and no queued event (the owner's drain may skip this machine). */
  get idle(): boolean {
    return this.#byKey.size === 0 && this.#events.length === 0;
  }

  /** The servers of allocations not released yet (close() still waits for their answers). */
  unreleased(): TransportAddress[] {
    const out: TransportAddress[] = [];
    for (const a of this.#byKey.values()) {
      const s = a.client.state;
      if (s !== 'closed' && s !== 'failed' && s !== 'idle') out.push(a.client.server);
    }
    return out;
  }

  /** True when every allocation has been released (or failed): the edge may close its sockets. */
  get released(): boolean {
    for (const a of this.#byKey.values()) {
      const s = a.client.state;
      if (s !== 'closed' && s !== 'failed' && s !== 'idle') return false;
    }
    return true;
  }

  /**
   * Installs a permission for `peerIp` (a remote candidate's address) on every allocation of `stream` of its family
   * (RFC 8656 §9), now and on allocations that succeed later, instead of at the first check sent there. The peer's
   * checks to our relayed address come from NAT ports we never sent to and pass only with a permission for their
   * IP; waiting for our own check, which may be the lowest-priority pair, loses them. libwebrtc likewise creates
   * the permission when it pairs a relayed candidate. At most `MAX_PEERS_PER_STREAM` IPs per stream.
   */
  permitPeer(now: number, stream: number, peerIp: string): void {
    if (now > this.#now) this.#now = now;
    if (ipFamily(peerIp) === 0) return; // an unresolved name: its address comes later
    const ip = canonicalIp(peerIp);
    let peers = this.#peers.get(stream);
    if (peers === undefined) this.#peers.set(stream, (peers = new Set()));
    if (peers.has(ip) || peers.size >= MAX_PEERS_PER_STREAM) return;
    peers.add(ip);
    for (const a of this.#byKey.values()) if (a.stream === stream) this.#permit(now, a, ip);
  }

  #permit(now: number, a: Allocation, ip: string): void {
    if (a.client.state !== 'allocated' || a.client.hasPermission(ip)) return;
    if (!a.relayed.some((r) => ipFamily(r.address) === ipFamily(ip))) return;
    a.client.createPermission(now, ip);
  }

  /**
   * A gatherer of `stream` asks for an allocation (its `RelayAllocator.allocate`). Over UDP it starts at once from
   * the host base; over TCP/TLS the edge is asked for a connection first.
   */
  allocate(now: number, stream: number, request: RelayAllocationRequest): void {
    if (now > this.#now) this.#now = now;
    const transport = request.server.transport;
    if (transport === 'tcp' || transport === 'tls') {
      const id = `${stream}:${request.id}`;
      this.#streams.set(id, { stream, request, connected: false });
      this.#events.push({ type: 'turn-connect', id, server: request.server.server, transport, base: request.base });
      return;
    }
    this.#start(now, stream, request, request.base);
  }

  /** The gatherer gave up on request `id` (its `RelayAllocator.cancel`). */
  cancel(now: number, stream: number, id: string): void {
    this.#cancel(now, `${stream}:${id}`);
  }

  #cancel(now: number, k: string): void {
    if (this.#streams.get(k)?.connected === false) {
      this.#streams.delete(k);
      this.#events.push({ type: 'turn-disconnect', id: k });
      return;
    }
    const a = this.#byKey.get(k);
    if (!a) return;
    a.reported = true; // a late success is released, not reported
    a.client.close(now);
  }

  /**
   * The edge connected the stream a `turn-connect` asked for; `local` is the connection's local address. Starts the
   * Allocate on it (or, after a redirect, retries it there). Returns false when this connection is no longer wanted
   * (cancelled, closed, unknown id): the edge should close it.
   */
  turnConnected(now: number, id: string, local: TransportAddress): boolean {
    if (now > this.#now) this.#now = now;
    const t = this.#streams.get(id);
    if (this.#closed || t === undefined) return false;
    if (!t.connected) {
      t.connected = true;
      this.#start(now, t.stream, t.request, local);
      return true;
    }
    const a = this.#byKey.get(id);
    if (a?.client.state !== 'redirecting') return false;
    a.client.redirectConnected(now, local);
    return true;
  }

  /** The connection a `turn-connect` asked for could not be opened (refused, TLS failure, time-out). */
  turnConnectionFailed(now: number, id: string, reason: string): void {
    const t = this.#streams.get(id);
    if (t === undefined) return;
    if (!t.connected) {
      this.#streams.delete(id);
      this.#events.push({ type: 'relay-result', stream: t.stream, id: t.request.id, result: { ok: false, reason } });
      return;
    }
    const a = this.#byKey.get(id);
    if (a?.client.state === 'redirecting') {
      // TurnClient.connectionClosed() waits in 'redirecting' for a reconnect; the reconnect itself failed, so end it.
      this.#report(a, { ok: false, reason: `after redirect: ${reason}` });
      a.client.close(now);
      return;
    }
    this.turnConnectionClosed(now, id);
  }

  /** The stream of a TCP/TLS allocation closed: its 5-tuple, and so the allocation, is gone (RFC 8656 §3.2). */
  turnConnectionClosed(now: number, id: string): void {
    const a = this.#byKey.get(id);
    if (a !== undefined) a.client.connectionClosed(now);
    else if (this.#streams.get(id)?.connected === false) this.turnConnectionFailed(now, id, 'connection closed');
  }

  /**
   * Sends a core transmit through the relay when its `local` is a relayed address. Returns false when it is not
   * (the caller sends it from the host base); true when it was taken, which includes dropping it because its
   * allocation is gone (a relayed pair can outlive a TURN connection that closed, as a dead socket would).
   */
  wrap(now: number, d: Datagram): boolean {
    if (now > this.#now) this.#now = now;
    const relay = this.#byRelayed.size > 0 ? this.#byRelayed.get(key(d.local)) : undefined;
    if (relay === undefined) return false;
    // A check's first send keeps its RFC 8445 §14.2 mark through the wrapping.
    if (relay.client.state === 'allocated') relay.client.send(now, d.remote, d.data, d.paced === true);
    return true;
  }

  /**
   * Offers a received datagram: over UDP, one from an allocation's server on its base; over TCP/TLS, a frame from a
   * server connection (only allocations may take those).
   */
  handleReceive(now: number, d: Datagram): boolean {
    if (now > this.#now) this.#now = now;
    if (this.#byKey.size === 0) return false;
    if (d.transport !== undefined && d.transport !== 'udp') {
      for (const a of this.#byKey.values()) if (a.client.transport === d.transport && a.client.handleReceive(now, d)) return true;
      return false;
    }
    // Keys are built only here, once there are allocations: canonicalising addresses costs the data path.
    const remote = key(d.remote);
    const local = key(d.local);
    for (const a of this.#byKey.values()) {
      if (key(a.client.server) === remote && key(a.client.local) === local && a.client.handleReceive(now, d)) return true;
    }
    return false;
  }

  handleTimeout(now: number): void {
    if (now > this.#now) this.#now = now;
    for (const a of this.#byKey.values()) a.client.handleTimeout(now);
  }

  pollTransmit(): Datagram | undefined {
    for (const a of this.#byKey.values()) {
      const d = a.client.pollTransmit();
      if (d !== undefined) return d;
    }
    return undefined;
  }

  pollEvent(): AllocationsEvent | undefined {
    for (;;) {
      const queued = this.#events.shift();
      if (queued !== undefined) return queued;
      let found = false;
      for (const a of this.#byKey.values()) {
        const e = a.client.pollEvent();
        if (e === undefined) continue;
        this.#onClientEvent(a, e);
        found = true;
        break;
      }
      if (!found) return undefined;
    }
  }

  pollTimeout(): number | undefined {
    let min: number | undefined;
    for (const a of this.#byKey.values()) {
      const t = a.client.pollTimeout();
      if (t !== undefined && (min === undefined || t < min)) min = t;
    }
    return min;
  }

  /**
   * Releases the allocations made from `bases` of `stream` (a component the agent dropped): Refresh with LIFETIME 0,
   * a late success released rather than reported, connections not yet open abandoned.
   */
  releaseBases(now: number, stream: number, bases: readonly TransportAddress[]): void {
    if (now > this.#now) this.#now = now;
    const keys = new Set(bases.map(key));
    for (const a of this.#byKey.values()) {
      if (a.stream !== stream || !keys.has(key(a.base))) continue;
      a.reported = true;
      a.client.close(now);
    }
    for (const [k, t] of [...this.#streams]) if (t.stream === stream && !t.connected && keys.has(key(t.request.base))) this.#cancel(now, k);
  }

  /** True when no allocation made from one of `bases` is still alive or being released. */
  releasedOn(bases: readonly TransportAddress[]): boolean {
    const keys = new Set(bases.map(key));
    for (const a of this.#byKey.values()) {
      const s = a.client.state;
      if (keys.has(key(a.base)) && s !== 'closed' && s !== 'failed' && s !== 'idle') return false;
    }
    return true;
  }

  /**
   * Releases the UDP allocations running from these host bases (Refresh with LIFETIME 0): an ICE restart gathered
   * on new sockets and the old ones are about to close.
   */
  releaseFrom(now: number, locals: readonly TransportAddress[]): void {
    const gone = new Set(locals.map(key));
    for (const a of this.#byKey.values()) if (a.client.transport === 'udp' && gone.has(key(a.client.local))) a.client.close(now);
  }

  /** Releases every allocation (Refresh with LIFETIME 0) and abandons connections not yet open. */
  close(now: number): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const a of this.#byKey.values()) a.client.close(now);
    for (const [k, t] of [...this.#streams]) if (!t.connected) this.#cancel(now, k);
  }

  /** `local`: the host base (UDP) or the local address of the connection the edge opened (TCP/TLS). */
  #start(now: number, stream: number, request: RelayAllocationRequest, local: TransportAddress): void {
    const server = request.server;
    const client = new TurnClient({
      server: server.server,
      transport: server.transport === 'tcp' || server.transport === 'tls' ? server.transport : 'udp',
      local,
      username: server.username ?? '',
      password: server.credential ?? '',
      random: this.#options.random,
      ...(this.#options.software !== undefined ? { software: this.#options.software } : {}),
      ...(this.#options.pacer !== undefined ? { pacer: this.#options.pacer.register() } : {}),
    });
    const k = `${stream}:${request.id}`;
    this.#byKey.set(k, { key: k, stream, requestId: request.id, base: request.base, client, relayed: [], reported: false });
    client.allocate(now);
  }

  #report(a: Allocation, result: RelayAllocationResult): void {
    if (a.reported) return;
    a.reported = true;
    this.#events.push({ type: 'relay-result', stream: a.stream, id: a.requestId, result });
  }

  #onClientEvent(a: Allocation, e: TurnClientEvent): void {
    if (a.client.transport !== 'udp') this.#onStreamClientEvent(a, e);
    switch (e.type) {
      case 'allocated': {
        a.relayed = e.relayed;
        for (const r of e.relayed) this.#byRelayed.set(key(r), a);
        for (const ip of this.#peers.get(a.stream) ?? []) this.#permit(this.#now, a, ip);
        const relayed = e.relayed[0];
        const mapped = e.mapped;
        this.#report(a, relayed && mapped ? { ok: true, relayed, mapped } : { ok: false, reason: 'allocation without relayed or mapped address' });
        return;
      }
      case 'data':
        // The relayed address of the peer's family: a dual allocation has one of each.
        for (const r of a.relayed) {
          if ((r.address.includes(':') ? 6 : 4) === (e.peer.address.includes(':') ? 6 : 4)) {
            this.#events.push({ type: 'peer-data', datagram: { local: r, remote: e.peer, data: e.data } });
            return;
          }
        }
        return;
      case 'error':
        if (e.operation === 'allocate') {
          const code = e.error.errorCode;
          // RFC 8445 §5.1.1.2: a server out of resources still serves as a STUN server (the gatherer decides).
          this.#report(a, { ok: false, reason: e.error.message, insufficientCapacity: code === 486 || code === 508 });
        }
        return;
      default:
        return;
    }
  }

  /** What a TCP/TLS allocation's events mean for its connection (runs before the common handling). */
  #onStreamClientEvent(a: Allocation, e: TurnClientEvent): void {
    const t = this.#streams.get(a.key);
    if (t === undefined) return;
    if (e.type === 'redirect') {
      // RFC 8656 §7.4 / RFC 8489 §10: 300 Try Alternate; over a stream that means a new connection.
      const transport = a.client.transport === 'tls' ? 'tls' : 'tcp';
      this.#events.push({ type: 'turn-connect', id: a.key, server: e.server, transport, base: t.request.base, ...(e.domain !== undefined ? { domain: e.domain } : {}) });
    } else if (e.type === 'closed' || (e.type === 'error' && e.fatal)) {
      this.#streams.delete(a.key);
      this.#events.push({ type: 'turn-disconnect', id: a.key });
      // A reported allocation that dies gets no other report.
      if (e.type === 'error' && a.reported && a.relayed.length > 0 && !this.#closed) {
        this.#events.push({ type: 'server-failed', kind: 'turn', server: a.client.server, reason: `allocation lost: ${e.error.message}` });
      }
    }
  }
}
