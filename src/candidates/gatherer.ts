/**
 * Candidate gathering (RFC 8445 §5.1.1) as a sans-IO machine. The Node edge binds the host sockets and hands their
 * addresses in as bases; the gatherer announces host candidates at once, sends a Binding request from every base to
 * every STUN server of the same address family (server-reflexive candidates, RFC 8445 §5.1.1.2), asks a pluggable
 * {@link RelayAllocator} for TURN allocations (relayed candidates), drops redundant candidates (§5.1.3), and ends
 * with `end-of-candidates` once every request has answered, failed or hit `gatherTimeoutMs`.
 *
 * Candidates are trickled: each is reported by a `candidate` event as soon as it is known.
 * @module
 */
import { InvalidStateError } from '../errors.js';
import { canonicalIp, ipFamily } from '../ip.js';
import type { SansIoMachine } from '../machine.js';
import { Attr, attr, getAttribute, unknownComprehensionRequired } from '../stun/attributes.js';
import { StunMethod } from '../stun/constants.js';
import { encodeStunMessage, tryDecodeStunMessage, type StunAttribute } from '../stun/message.js';
import { newTransactionId, TransactionTable, type TransactionTiming } from '../stun/transaction.js';
import type { Datagram, RandomSource, TransportAddress, TransportProtocol } from '../types.js';
import type { CandidateType, LocalCandidate, TcpType } from './candidate.js';
import { FoundationRegistry } from './foundation.js';
import { candidatePriority, computePriority, DEFAULT_TYPE_PREFERENCES, localPreferences, tcpLocalPreference, tcpTypePreference, uniquePriority, validateTypePreferences, type TypePreferences } from './priority.js';
import { isRedundantWith } from './redundancy.js';
import { DEFAULT_TA_MS, isPacingValue, type PacerClient } from '../stun/pacing.js';

/** Default bound on the whole gathering phase. */
export const DEFAULT_GATHER_TIMEOUT_MS = 5000;

/** A bound host socket the gatherer may use. */
export interface HostBase {
  /** The socket's bound address (a concrete IP, not a wildcard). */
  readonly address: TransportAddress;
  /** Component this socket serves (1 = RTP). */
  readonly component: number;
  /**
   * `'udp'` (default) or `'tcp'` (RFC 6544 host candidates: a listening socket for `passive` and `so`; for `active`
   * nothing is bound, the address names the interface connections leave from and its port is ignored). STUN and TURN
   * servers are asked from UDP bases only.
   */
  readonly transport?: 'udp' | 'tcp';
  /** For TCP bases: the RFC 6544 candidate direction (default `'passive'`). */
  readonly tcpType?: TcpType;
  /** RFC 8421 §3: an unreliable interface's candidates are ranked last. */
  readonly unreliable?: boolean;
  /**
   * What this socket gathers (default `'all'`). `'host'`: host and server-reflexive candidates, no TURN (a one-port
   * mux socket: TURN allocations are per client 5-tuple, RFC 8656 §2.2, so agents sharing it cannot each allocate).
   * `'relay'`: relayed candidates only (an agent's own socket for TURN beside a mux).
   */
  readonly serves?: 'all' | 'host' | 'relay';
}

/** A TURN server as configured; the gatherer passes it through to the {@link RelayAllocator} untouched. */
export interface RelayServerConfig {
  /** Resolved IP address and port of the TURN server. */
  readonly server: TransportAddress;
  /** Transport towards the server (default `'udp'`). */
  readonly transport?: TransportProtocol;
  readonly username?: string;
  readonly credential?: string;
}

/** One allocation the gatherer asks for. */
export interface RelayAllocationRequest {
  /** Opaque id to quote in {@link Gatherer.relayResult}. */
  readonly id: string;
  /** Host socket the allocation is made from. */
  readonly base: TransportAddress;
  readonly component: number;
  readonly server: RelayServerConfig;
}

/** The outcome of an allocation (RFC 8656 §7.3: relayed address, plus the mapped address the server saw). */
export type RelayAllocationResult =
  | { readonly ok: true; readonly relayed: TransportAddress; readonly mapped: TransportAddress }
  | {
      readonly ok: false;
      readonly reason: string;
      /**
       * The server refused for lack of resources (e.g. 486 Allocation Quota Reached, 508 Insufficient Capacity):
       * RFC 8445 §5.1.1.2 says to send it a Binding request instead, for a server-reflexive candidate.
       */
      readonly insufficientCapacity?: boolean;
    };

/**
 * The seam for relayed candidates. The gatherer calls `allocate` once per (base, TURN server) pair; whoever owns
 * the TURN client reports the outcome later through {@link Gatherer.relayResult} with the same id. `cancel` is
 * called when the gatherer gives up on an allocation (time-out or close) — a late success must then be released
 * by the allocator itself.
 */
export interface RelayAllocator {
  allocate(now: number, request: RelayAllocationRequest): void;
  cancel?(now: number, id: string): void;
}

/** Hands out mDNS names for host addresses (the {@link MdnsResponder} implements it). */
export interface MdnsRegistrar {
  /** Returns the `<uuid>.local` name for `address`, registering it on first use (same address, same name). */
  register(now: number, address: string): string;
}

/** Options of {@link Gatherer}. */
export interface GathererOptions {
  readonly random: RandomSource;
  readonly bases: readonly HostBase[];
  /** STUN servers (resolved IP literals). None by default: the library has no default servers. */
  readonly stunServers?: readonly TransportAddress[];
  /** TURN servers; needs `relayAllocator`. */
  readonly turnServers?: readonly RelayServerConfig[];
  readonly relayAllocator?: RelayAllocator;
  /** Upper bound on the gathering phase (ms, default 5000): a dead server delays completion by at most this. */
  readonly gatherTimeoutMs?: number;
  /**
   * RFC 8445 §5.1.1.2: at most one new STUN/TURN transaction per Ta (default 50 ms, §14.2). The first starts at
   * once.
   */
  readonly taMs?: number;
  /** Retransmission timing of the Binding requests (RFC 8489 §6.2.1 defaults). */
  readonly stunTiming?: TransactionTiming;
  readonly typePreferences?: TypePreferences;
  /** Foundation registry to share across gathering rounds of one agent (a fresh one by default). */
  readonly foundations?: FoundationRegistry;
  /** Hide host addresses behind mDNS names (draft-ietf-mmusic-mdns-ice-candidates §3.1.1). */
  readonly mdns?: MdnsRegistrar;
  /** SOFTWARE attribute for Binding requests (none by default). */
  readonly software?: string;
  /** Announce host candidates (default true; false for a relay-only policy: bases are then used only to reach servers). */
  readonly gatherHost?: boolean;
  /**
   * The process-wide pacer's handle (RFC 8445 §14.2: all STUN/TURN transactions of all agents of a process at
   * least 5 ms apart). Each new Binding or Allocate waits for a slot as well as for its own Ta.
   */
  readonly pacer?: PacerClient;
}

/** Gathering state (as in `RTCIceGatheringState`). */
export type GatheringState = 'new' | 'gathering' | 'complete';

/** What the gatherer reports. */
export type GathererEvent =
  /** `server`: the STUN or TURN server a server-reflexive or relayed candidate came from. */
  | { readonly type: 'candidate'; readonly candidate: LocalCandidate; readonly server?: TransportAddress }
  | { readonly type: 'end-of-candidates' }
  | { readonly type: 'state'; readonly state: GatheringState }
  /** A STUN or TURN server gave no candidate for a base (time-out, error response, bad response). Informational. */
  | {
      readonly type: 'server-failed';
      readonly kind: 'stun' | 'turn';
      readonly server: TransportAddress;
      readonly base: TransportAddress;
      readonly reason: string;
    };

/** Counters. */
export interface GathererStats {
  /** Binding requests started (first sends). */
  readonly bindingRequests: number;
  /** STUN responses with one of our transaction IDs that were dropped (wrong source, malformed, unknown attrs). */
  readonly droppedResponses: number;
  /** Candidates not announced because a higher-priority one had the same address and base (§5.1.3). */
  readonly redundant: number;
}

interface BindingContext {
  readonly base: HostBase;
  readonly server: TransportAddress;
  /** Priority slot: the server's position among all STUN then TURN servers. */
  readonly serverIndex: number;
}

/** A transaction waiting for its Ta slot. */
type Job =
  | { readonly kind: 'binding'; readonly context: BindingContext }
  | { readonly kind: 'relay'; readonly pending: PendingRelay };

interface PendingRelay {
  readonly request: RelayAllocationRequest;
  readonly serverIndex: number;
}

/** The gatherer machine. Create, call `start(now)`, then follow the drain contract of `src/machine.ts`. */
export class Gatherer implements SansIoMachine<GathererEvent> {
  readonly #random: RandomSource;
  readonly #bases: readonly HostBase[];
  readonly #stunServers: readonly TransportAddress[];
  readonly #turnServers: readonly RelayServerConfig[];
  readonly #allocator: RelayAllocator | undefined;
  readonly #timeoutMs: number;
  readonly #taMs: number;
  readonly #jobs: Job[] = [];
  #nextJobAt = 0;
  readonly #timing: TransactionTiming;
  readonly #prefs: TypePreferences;
  readonly #foundations: FoundationRegistry;
  readonly #mdns: MdnsRegistrar | undefined;
  readonly #software: string | undefined;
  readonly #gatherHost: boolean;
  readonly #pacer: PacerClient | undefined;
  readonly #localPrefs: Map<string, number>;
  readonly #table = new TransactionTable<BindingContext>();
  /** First sends of Binding requests not yet polled: they go out marked `paced`, their retransmissions do not. */
  readonly #firstSends = new WeakSet<Datagram>();
  readonly #relays = new Map<string, PendingRelay>();
  readonly #events: GathererEvent[] = [];
  readonly #candidates: LocalCandidate[] = [];
  readonly #taken = new Map<number, Set<number>>();
  #state: GatheringState = 'new';
  #deadline: number | undefined;
  #closed = false;
  #relaySeq = 0;
  #bindingRequests = 0;
  #dropped = 0;
  #redundant = 0;

  /** @throws InvalidStateError for TURN servers without a relay allocator; RangeError for bad preferences/bases. */
  constructor(options: GathererOptions) {
    this.#random = options.random;
    this.#bases = options.bases;
    this.#stunServers = (options.stunServers ?? []).map((s) => ({ address: canonicalIp(s.address), port: s.port }));
    this.#turnServers = options.turnServers ?? [];
    this.#allocator = options.relayAllocator;
    if (this.#turnServers.length > 0 && this.#allocator === undefined) {
      throw new InvalidStateError('turnServers given without a relayAllocator');
    }
    this.#timeoutMs = options.gatherTimeoutMs ?? DEFAULT_GATHER_TIMEOUT_MS;
    if (options.taMs !== undefined && !isPacingValue(options.taMs)) throw new RangeError('taMs must be an RFC 8839 ice-pacing value (integer 0..9999999999)');
    this.#taMs = options.taMs ?? DEFAULT_TA_MS;
    this.#timing = options.stunTiming ?? {};
    this.#prefs = options.typePreferences ?? DEFAULT_TYPE_PREFERENCES;
    validateTypePreferences(this.#prefs);
    this.#foundations = options.foundations ?? new FoundationRegistry();
    this.#mdns = options.mdns;
    this.#software = options.software;
    this.#gatherHost = options.gatherHost ?? true;
    this.#pacer = options.pacer;
    for (const b of this.#bases) {
      if (ipFamily(b.address.address) === 0) throw new RangeError(`base ${b.address.address} is not an IP address`);
    }
    // RFC 8445 §5.1.2.1 / RFC 8421: one local preference per base IP, families intermingled.
    this.#localPrefs = localPreferences(this.#bases.map((b) => ({ address: b.address.address, unreliable: b.unreliable ?? false })));
  }

  /** Current gathering state. */
  get state(): GatheringState {
    return this.#state;
  }

  /** Candidates announced so far, in announcement order. */
  get candidates(): readonly LocalCandidate[] {
    return this.#candidates;
  }

  get stats(): GathererStats {
    return { bindingRequests: this.#bindingRequests, droppedResponses: this.#dropped, redundant: this.#redundant };
  }

  /** Starts gathering. Host candidates are announced at once. @throws InvalidStateError when called twice. */
  start(now: number): void {
    if (this.#state !== 'new' || this.#closed) throw new InvalidStateError('Gatherer.start() may be called once');
    this.#setState('gathering');
    this.#deadline = now + this.#timeoutMs;
    if (this.#gatherHost) for (const base of this.#bases) if (base.serves !== 'relay') this.#addHost(now, base);
    // RFC 8445 §5.1.1.2: pair every host base with every configured server of its address family.
    for (const base of this.#bases) {
      if ((base.transport ?? 'udp') !== 'udp') continue; // TCP bases: host candidates only
      const family = ipFamily(base.address.address);
      if (base.serves !== 'relay') {
        this.#stunServers.forEach((server, serverIndex) => {
          if (ipFamily(server.address) === family) this.#jobs.push({ kind: 'binding', context: { base, server, serverIndex } });
        });
      }
      this.#turnServers.forEach((server, turnIndex) => {
        if (ipFamily(server.server.address) !== family || base.serves === 'host') return;
        const request: RelayAllocationRequest = { id: `relay-${++this.#relaySeq}`, base: base.address, component: base.component, server };
        this.#jobs.push({ kind: 'relay', pending: { request, serverIndex: this.#stunServers.length + turnIndex } });
      });
    }
    this.#nextJobAt = now;
    this.#runJobs(now);
    this.#checkComplete();
  }

  /** Stops gathering: outstanding requests are dropped (allocations cancelled) and nothing more is reported. */
  close(now: number): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#jobs.length = 0;
    this.#pacer?.withdraw();
    this.#table.cancelWhere(() => true);
    while (this.#table.pollTransmit() !== undefined);
    for (const id of this.#relays.keys()) this.#allocator?.cancel?.(now, id);
    this.#relays.clear();
    this.#deadline = undefined;
  }

  /**
   * Stops gathering for one component (its RTCP turned out multiplexed on RTP, RFC 5761 §5.1.3): its queued and
   * outstanding Binding requests are dropped and its pending allocations cancelled. Candidates already announced
   * stay announced (the owner forgets them); gathering may complete at once.
   */
  dropComponent(now: number, component: number): void {
    if (this.#closed) return;
    for (let i = this.#jobs.length - 1; i >= 0; i--) {
      const job = this.#jobs[i]!;
      if ((job.kind === 'binding' ? job.context.base.component : job.pending.request.component) === component) this.#jobs.splice(i, 1);
    }
    this.#table.cancelWhere((ctx) => ctx.base.component === component);
    for (const [id, p] of [...this.#relays]) {
      if (p.request.component !== component) continue;
      this.#relays.delete(id);
      this.#allocator?.cancel?.(now, id);
    }
    this.#checkComplete();
  }

  /** Takes STUN responses to the gatherer's Binding requests; anything else returns false. */
  handleReceive(now: number, datagram: Datagram): boolean {
    if (this.#closed) return false;
    const r = tryDecodeStunMessage(datagram.data);
    if (!r.ok) return false;
    const m = r.message;
    if (m.method !== StunMethod.Binding || (m.cls !== 'success' && m.cls !== 'error')) return false;
    const ctx = this.#table.peek(m.transactionId);
    if (ctx === undefined) return false;
    // The response must come back to the base it was sent from, from the server it was sent to.
    if (!sameIpPort(datagram.local, ctx.base.address) || !sameIpPort(datagram.remote, ctx.server)) {
      this.#dropped++;
      return true;
    }
    this.#table.take(m.transactionId);
    if (m.cls === 'error') {
      const e = getAttribute(m, Attr.ERROR_CODE);
      this.#fail('stun', ctx.server, ctx.base.address, e ? `error response ${e.code} ${e.reason}`.trim() : 'error response');
    } else if (unknownComprehensionRequired(m).length > 0) {
      // RFC 8489 §6.3.3: unknown comprehension-required attributes in a success response: the transaction failed.
      this.#dropped++;
      this.#fail('stun', ctx.server, ctx.base.address, 'unknown comprehension-required attribute');
    } else {
      const mapped = getAttribute(m, Attr.XOR_MAPPED_ADDRESS) ?? getAttribute(m, Attr.MAPPED_ADDRESS);
      if (mapped === undefined) {
        this.#dropped++;
        this.#fail('stun', ctx.server, ctx.base.address, 'no mapped address in the response');
      } else {
        this.#addServerReflexive(now, ctx, mapped);
      }
    }
    this.#checkComplete();
    return true;
  }

  /**
   * Reports the outcome of an allocation the gatherer asked for. Unknown or already-abandoned ids are ignored
   * (returns false).
   */
  relayResult(now: number, id: string, result: RelayAllocationResult): boolean {
    const pending = this.#relays.get(id);
    if (pending === undefined || this.#closed) return false;
    this.#relays.delete(id);
    const { request } = pending;
    if (!result.ok) {
      this.#fail('turn', request.server.server, request.base, result.reason);
      const base = this.#bases.find((b) => sameIpPort(b.address, request.base) && b.component === request.component);
      if (result.insufficientCapacity && (request.server.transport ?? 'udp') === 'udp' && base !== undefined && base.serves !== 'relay') {
        // RFC 8445 §5.1.1.2: a server out of resources still yields a server-reflexive candidate via Binding.
        this.#jobs.push({ kind: 'binding', context: { base, server: request.server.server, serverIndex: pending.serverIndex } });
        this.#runJobs(now);
      }
    } else {
      this.#addRelay(now, pending, result.relayed, result.mapped);
      const base = this.#bases.find((b) => sameIpPort(b.address, request.base) && b.component === request.component);
      // RFC 8445 §5.1.1.2: a successful Allocate also gives a server-reflexive candidate (the mapped address) —
      // a UDP one only when the allocation was made over UDP (over TCP/TLS the mapping is a TCP one).
      // A relay-only base (beside a mux) has no server-reflexive candidate: nothing would answer checks on it.
      if (base !== undefined && base.serves !== 'relay' && (request.server.transport ?? 'udp') === 'udp') this.#addServerReflexive(now, { base, server: request.server.server, serverIndex: pending.serverIndex }, result.mapped);
    }
    this.#checkComplete();
    return true;
  }

  handleTimeout(now: number): void {
    if (this.#closed || this.#state !== 'gathering') return;
    this.#runJobs(now);
    this.#table.handleTimeout(now);
    for (let e = this.#table.pollEvent(); e !== undefined; e = this.#table.pollEvent()) {
      this.#fail('stun', e.context.server, e.context.base.address, 'timeout');
    }
    if (this.#deadline !== undefined && now >= this.#deadline) {
      // The gathering bound: whatever is still outstanding is abandoned.
      const outstanding: BindingContext[] = [];
      this.#table.cancelWhere((ctx) => {
        outstanding.push(ctx);
        return true;
      });
      for (const job of this.#jobs.splice(0)) {
        if (job.kind === 'binding') outstanding.push(job.context);
        else this.#fail('turn', job.pending.request.server.server, job.pending.request.base, 'gather timeout');
      }
      for (const ctx of outstanding) this.#fail('stun', ctx.server, ctx.base.address, 'gather timeout');
      for (const [id, p] of this.#relays) {
        this.#allocator?.cancel?.(now, id);
        this.#fail('turn', p.request.server.server, p.request.base, 'gather timeout');
      }
      this.#relays.clear();
    }
    this.#checkComplete();
  }

  pollTransmit(): Datagram | undefined {
    if (this.#closed) return undefined;
    const d = this.#table.pollTransmit();
    // RFC 8445 §14.2: the first send of a gathering transaction is paced process-wide. Retransmissions re-send the
    // same object, so the mark goes on a copy of the first one only.
    return d !== undefined && this.#firstSends.delete(d) ? { ...d, paced: true } : d;
  }

  pollEvent(): GathererEvent | undefined {
    return this.#events.shift();
  }

  pollTimeout(): number | undefined {
    if (this.#closed || this.#state !== 'gathering') return undefined;
    let t = this.#table.pollTimeout() ?? Infinity;
    if (this.#jobs.length > 0) t = Math.min(t, Math.max(this.#nextJobAt, this.#pacer?.nextSlot() ?? -Infinity));
    if (this.#deadline !== undefined) t = Math.min(t, this.#deadline);
    return t === Infinity ? undefined : t;
  }

  // ---- internals ---------------------------------------------------------------------------------------------

  #setState(state: GatheringState): void {
    this.#state = state;
    this.#events.push({ type: 'state', state });
  }

  /** Starts queued transactions whose Ta slot has come (one per Ta). */
  #runJobs(now: number): void {
    while (this.#jobs.length > 0 && now >= this.#nextJobAt) {
      if (this.#pacer && !this.#pacer.request(now, 'ordinary')) return;
      const job = this.#jobs.shift()!;
      if (job.kind === 'binding') {
        this.#startBinding(now, job.context);
      } else {
        this.#relays.set(job.pending.request.id, job.pending);
        this.#allocator!.allocate(now, job.pending.request);
      }
      this.#nextJobAt = now + this.#taMs;
    }
  }

  #checkComplete(): void {
    if (this.#state !== 'gathering' || this.#jobs.length > 0 || this.#table.size > 0 || this.#relays.size > 0) return;
    this.#deadline = undefined;
    this.#pacer?.withdraw();
    this.#events.push({ type: 'end-of-candidates' });
    this.#setState('complete');
  }

  #fail(kind: 'stun' | 'turn', server: TransportAddress, base: TransportAddress, reason: string): void {
    this.#events.push({ type: 'server-failed', kind, server, base, reason });
  }

  #startBinding(now: number, context: BindingContext): void {
    const { base, server } = context;
    const transactionId = newTransactionId(this.#random);
    const attributes: StunAttribute[] = [];
    if (this.#software !== undefined) attributes.push(attr(Attr.SOFTWARE, this.#software, transactionId));
    const data = encodeStunMessage({ method: StunMethod.Binding, cls: 'request', transactionId, attributes });
    this.#bindingRequests++;
    const request: Datagram = { local: base.address, remote: server, data };
    this.#firstSends.add(request);
    this.#table.start(now, transactionId, request, context, this.#timing);
  }

  #localPref(baseIp: string, slot: number): number {
    const lp = this.#localPrefs.get(canonicalIp(baseIp)) ?? 0;
    return Math.max(0, lp - slot);
  }

  #priority(type: CandidateType, baseIp: string, slot: number, component: number): number {
    let taken = this.#taken.get(component);
    if (taken === undefined) this.#taken.set(component, (taken = new Set()));
    let lp = this.#localPref(baseIp, slot);
    // A relay with local preference 0 on component 256 would have priority 0.
    if (this.#prefs[type] === 0 && lp === 0 && component === 256) lp = 1;
    // RFC 8445 §5.1.2: unique per component.
    return uniquePriority(candidatePriority(type, lp, component, this.#prefs), taken);
  }

  #announce(c: LocalCandidate, server?: TransportAddress): void {
    // RFC 8445 §5.1.3: drop a candidate whose transport address and base equal a higher-priority one's.
    if (isRedundantWith(c, this.#candidates)) {
      this.#redundant++;
      return;
    }
    this.#taken.get(c.component)!.add(c.priority);
    this.#candidates.push(c);
    this.#events.push(server ? { type: 'candidate', candidate: c, server } : { type: 'candidate', candidate: c });
  }

  #addHost(now: number, base: HostBase): void {
    if (base.transport === 'tcp') return this.#addTcpHost(now, base);
    const ip = base.address.address;
    const c: LocalCandidate = {
      foundation: this.#foundations.foundationFor({ type: 'host', baseAddress: ip, transport: 'udp' }),
      component: base.component,
      transport: 'udp',
      priority: this.#priority('host', ip, 0, base.component),
      address: ip,
      port: base.address.port,
      type: 'host',
      base: base.address,
      socket: base.address,
      ...(this.#mdns !== undefined ? { mdnsName: this.#mdns.register(now, ip) } : {}),
    };
    this.#announce(c);
  }

  /**
   * RFC 6544 §4.1, §5.1: a TCP host candidate. An active one is a placeholder: signalled with port 9 (§4.5), its
   * connections leave from ports the system picks when a check needs one (§7.1), so its base says port 9 too.
   */
  #addTcpHost(now: number, base: HostBase): void {
    const ip = base.address.address;
    const tcpType = base.tcpType ?? 'passive';
    const port = tcpType === 'active' ? 9 : base.address.port;
    const address = { address: ip, port };
    let taken = this.#taken.get(base.component);
    if (taken === undefined) this.#taken.set(base.component, (taken = new Set()));
    const lp = tcpLocalPreference(tcpType, this.#localPref(ip, 0));
    const c: LocalCandidate = {
      foundation: this.#foundations.foundationFor({ type: 'host', baseAddress: ip, transport: 'tcp' }),
      component: base.component,
      transport: 'tcp',
      priority: uniquePriority(computePriority(tcpTypePreference('host', this.#prefs), lp, base.component), taken),
      address: ip,
      port,
      type: 'host',
      tcpType,
      base: address,
      socket: address,
      ...(this.#mdns !== undefined ? { mdnsName: this.#mdns.register(now, ip) } : {}),
    };
    this.#announce(c);
  }

  #addServerReflexive(_now: number, ctx: BindingContext, mapped: TransportAddress): void {
    const base = ctx.base;
    const ip = base.address.address;
    // draft-ietf-mmusic-mdns-ice-candidates §3.1.2.2: with mDNS the related address must not reveal the host IP.
    const related = this.#mdns !== undefined ? { address: ipFamily(ip) === 6 ? '::' : '0.0.0.0', port: 9 } : base.address;
    const c: LocalCandidate = {
      foundation: this.#foundations.foundationFor({ type: 'srflx', baseAddress: ip, serverAddress: ctx.server.address, transport: 'udp' }),
      component: base.component,
      transport: 'udp',
      priority: this.#priority('srflx', ip, ctx.serverIndex, base.component),
      address: mapped.address,
      port: mapped.port,
      type: 'srflx',
      relatedAddress: related.address,
      relatedPort: related.port,
      base: base.address,
      socket: base.address,
    };
    this.#announce(c, ctx.server);
  }

  #addRelay(_now: number, pending: PendingRelay, relayed: TransportAddress, mapped: TransportAddress): void {
    const { request, serverIndex } = pending;
    // RFC 8445 §5.1.1.2: a relayed candidate identical to a host candidate MUST be discarded.
    if (this.#candidates.some((c) => c.type === 'host' && sameIpPort(c, relayed))) {
      this.#redundant++;
      return;
    }
    const transport = request.server.transport ?? 'udp';
    const relayedIp = canonicalIp(relayed.address);
    const base: TransportAddress = { address: relayedIp, port: relayed.port };
    const c: LocalCandidate = {
      // RFC 8445 §5.1.1.3: a relayed candidate is its own base; the TURN server's IP and transport count too.
      foundation: this.#foundations.foundationFor({
        type: 'relay',
        baseAddress: relayedIp,
        serverAddress: request.server.server.address,
        transport,
      }),
      component: request.component,
      transport: 'udp',
      // The local preference comes from the host base the allocation was made from, less the server's slot.
      priority: this.#priority('relay', request.base.address, serverIndex, request.component),
      address: relayedIp,
      port: relayed.port,
      type: 'relay',
      // RFC 8839 §5.1: a relayed candidate's related address is the mapped address of the Allocate response.
      relatedAddress: canonicalIp(mapped.address),
      relatedPort: mapped.port,
      base,
      socket: request.base,
      relayServer: request.server.server,
    };
    this.#announce(c, request.server.server);
  }
}

function sameIpPort(a: TransportAddress, b: TransportAddress): boolean {
  return a.port === b.port && canonicalIp(a.address) === canonicalIp(b.address);
}
