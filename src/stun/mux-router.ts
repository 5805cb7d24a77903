/**
 * The routing table of a one-port UDP mux (many ICE agents behind one socket). Sans-IO: it looks at datagram bytes
 * and `now`, owns no socket, and answers "which agent" or "drop, and why".
 *
 * - A STUN Binding request goes by the local ufrag in USERNAME, the part before ':' (RFC 8445 §7.2.2: the
 *   receiver's ufrag comes first). Nothing is learned from it: the owner has not yet checked its integrity.
 * - A STUN response goes by its transaction id, remembered when the agent sent the request (checks, consent,
 *   Binding requests to STUN servers), so answers from one server to many agents of the mux reach each one.
 * - Everything else (indications, application data, ChannelData) goes by 5-tuple. A route is learned from what an
 *   agent *sends*: a Binding success response is only sent after the agent verified the request's integrity
 *   (RFC 8445 §7.3, RFC 8489 §9.2.4), so it is strong evidence that the remote knows the agent's password; a check
 *   it sends is weak evidence (the address came from signalling). A spoofed USERNAME therefore never claims a route.
 *
 * A 5-tuple belongs to one agent at a time. A strong claim takes a weak route, and a strong route whose owner has
 * not answered there for `takeoverAfterMs` (the peer left, a new peer reuses its address); otherwise the first
 * owner keeps it and the conflict is counted. Every table is bounded: agents, ufrags and routes per agent,
 * remembered transactions per agent (oldest evicted) with a time to live.
 * @module
 */
import { IcewireError } from '../errors.js';
import type { Datagram, TransportAddress } from '../types.js';
import { AttributeType, HEADER_LENGTH, MAGIC_COOKIE } from './constants.js';

/** Why the router dropped a datagram. */
export type MuxDropReason =
  /** First byte 0..3 but no STUN header (short, no magic cookie, bad length). */
  | 'malformed-stun'
  /** A STUN request other than Binding: nothing on an ICE host port serves it. */
  | 'unsupported-request'
  /** A Binding request without a USERNAME (or one without ':'), so no ufrag to route by. */
  | 'no-username'
  /** A Binding request for a ufrag no agent of the mux has. */
  | 'unknown-ufrag'
  /** A STUN response whose transaction no agent sent, from a 5-tuple no agent owns. */
  | 'unknown-transaction'
  /** Anything else from a 5-tuple no agent owns. */
  | 'no-route';

/** Every drop reason, in a stable order (for stats). */
export const MUX_DROP_REASONS: readonly MuxDropReason[] = ['malformed-stun', 'unsupported-request', 'no-username', 'unknown-ufrag', 'unknown-transaction', 'no-route'];

/** Limits of a {@link UdpMuxRouter}. */
export interface UdpMuxLimits {
  /** Most agents registered at once (default 65536). */
  readonly maxAgents?: number;
  /** Most ufrags per agent: the current one and those of restarts whose previous pair is still in use (default 4). */
  readonly maxUfragsPerAgent?: number;
  /** Most 5-tuple routes per agent; a new one evicts the agent's least recently confirmed (default 32). */
  readonly maxRoutesPerAgent?: number;
  /** Most remembered outgoing transactions per agent; a new one evicts the oldest (default 64). */
  readonly maxTransactionsPerAgent?: number;
  /** How long an outgoing transaction is remembered (ms, default 40000: longer than any STUN retransmission run). */
  readonly transactionTtlMs?: number;
  /**
   * A strong route (the owner answered an authenticated request there) passes to another agent's authenticated
   * answer only once the owner has not answered there for this long (ms, default 10000: two consent periods,
   * RFC 7675 §5.1).
   */
  readonly takeoverAfterMs?: number;
}

/** A {@link UdpMuxRouter}'s counters. */
export interface UdpMuxRouterStats {
  readonly agents: number;
  readonly ufrags: number;
  readonly routes: number;
  readonly transactions: number;
  /** Datagrams routed to an agent. */
  readonly routed: number;
  /** Datagrams dropped, by reason. */
  readonly dropped: Readonly<Record<MuxDropReason, number>>;
  /** Routes another agent claimed while the owner held them (kept by the owner). */
  readonly conflicts: number;
  /** Strong routes passed to another agent after the owner's silence. */
  readonly takeovers: number;
  /** Routes evicted by `maxRoutesPerAgent`. */
  readonly routeEvictions: number;
  /** Transactions evicted by `maxTransactionsPerAgent`. */
  readonly transactionEvictions: number;
}

/** Misuse of a mux: a ufrag already taken, or a limit reached. */
export class UdpMuxError extends IcewireError {
  readonly reason: 'ufrag-taken' | 'agent-limit' | 'ufrag-limit' | 'unknown-agent';
  constructor(reason: UdpMuxError['reason'], message: string) {
    super('ERR_UDP_MUX', message);
    this.reason = reason;
  }
}

interface Route {
  readonly key: string;
  agent: Agent;
  /** Learned from an answered authenticated request (true) or from a check sent there (false). */
  strong: boolean;
  /** Last authenticated answer by the owner there. */
  confirmedAt: number;
}

interface Agent {
  readonly id: number;
  readonly ufrags: string[];
  /** Its routes, least recently confirmed first (a Map keeps insertion order). Made at its first route. */
  routes: Map<string, Route> | undefined;
  /** Its remembered transaction ids, oldest first. Made at its first request (an idle agent has neither). */
  transactions: Set<string> | undefined;
}

interface Transaction {
  readonly agent: Agent;
  readonly expires: number;
}

const BINDING_REQUEST = 0x0001;
const BINDING_SUCCESS = 0x0101;
const CLASS_MASK = 0x0110;

/** The 5-tuple key of a datagram arriving on (or leaving from) the mux. */
function routeKey(local: TransportAddress, remote: TransportAddress): string {
  return `${remote.address}|${remote.port}|${local.address}|${local.port}`;
}

/** The 96-bit transaction id as a string key (bytes 8..19, RFC 8489 §5). */
function transactionKey(data: Uint8Array): string {
  return String.fromCharCode(data[8]!, data[9]!, data[10]!, data[11]!, data[12]!, data[13]!, data[14]!, data[15]!, data[16]!, data[17]!, data[18]!, data[19]!);
}

/** True when `data` has a STUN header: 20 bytes, length a multiple of 4 that fits, magic cookie (RFC 8489 §5). */
function stunHeader(data: Uint8Array): boolean {
  if (data.length < HEADER_LENGTH) return false;
  const length = (data[2]! << 8) | data[3]!;
  if ((length & 3) !== 0 || HEADER_LENGTH + length > data.length) return false;
  return ((data[4]! << 24) | (data[5]! << 16) | (data[6]! << 8) | data[7]!) >>> 0 === MAGIC_COOKIE;
}

/**
 * The ufrag before ':' in a STUN message's USERNAME, as latin1 text (ufrags are ice-chars, RFC 8839 §5.4, so an
 * ASCII compare is exact), or undefined. Walks the attributes without decoding any other.
 */
export function usernameUfrag(data: Uint8Array): string | undefined {
  const end = HEADER_LENGTH + ((data[2]! << 8) | data[3]!);
  let at = HEADER_LENGTH;
  while (at + 4 <= end) {
    const type = (data[at]! << 8) | data[at + 1]!;
    const length = (data[at + 2]! << 8) | data[at + 3]!;
    const value = at + 4;
    if (value + length > end) return undefined;
    if (type === AttributeType.USERNAME) {
      for (let i = value; i < value + length; i++) {
        if (data[i] !== 0x3a) continue;
        if (i === value) return undefined;
        return String.fromCharCode(...data.subarray(value, i));
      }
      return undefined;
    }
    // MESSAGE-INTEGRITY and FINGERPRINT come last; USERNAME is before them (RFC 8489 §14.5).
    if (type === AttributeType.MESSAGE_INTEGRITY) return undefined;
    at = value + ((length + 3) & ~3);
  }
  return undefined;
}

/**
 * Routes datagrams arriving on a shared UDP port to the agents behind it. Register each agent's ufrag, report every
 * datagram an agent sends ({@link noteTransmit}, which learns routes and transactions), and ask {@link route} for
 * every datagram received. Agent ids are never reused, so a stale id cannot reach a later agent.
 */
export class UdpMuxRouter {
  readonly #maxAgents: number;
  readonly #maxUfrags: number;
  readonly #maxRoutes: number;
  readonly #maxTransactions: number;
  readonly #ttl: number;
  readonly #takeoverAfter: number;
  readonly #agents = new Map<number, Agent>();
  readonly #ufrags = new Map<string, Agent>();
  readonly #routes = new Map<string, Route>();
  /** Outgoing transactions in the order sent, so the oldest expire first. */
  readonly #transactions = new Map<string, Transaction>();
  #nextId = 1;
  #routed = 0;
  readonly #dropped: Record<MuxDropReason, number> = { 'malformed-stun': 0, 'unsupported-request': 0, 'no-username': 0, 'unknown-ufrag': 0, 'unknown-transaction': 0, 'no-route': 0 };
  #conflicts = 0;
  #takeovers = 0;
  #routeEvictions = 0;
  #transactionEvictions = 0;

  constructor(limits: UdpMuxLimits = {}) {
    const positive = (v: number | undefined, d: number, name: string): number => {
      const x = v ?? d;
      if (!Number.isInteger(x) || x < 1) throw new UdpMuxError('agent-limit', `${name} must be a positive integer, got ${String(v)}`);
      return x;
    };
    this.#maxAgents = positive(limits.maxAgents, 65536, 'maxAgents');
    this.#maxUfrags = positive(limits.maxUfragsPerAgent, 4, 'maxUfragsPerAgent');
    this.#maxRoutes = positive(limits.maxRoutesPerAgent, 32, 'maxRoutesPerAgent');
    this.#maxTransactions = positive(limits.maxTransactionsPerAgent, 64, 'maxTransactionsPerAgent');
    this.#ttl = positive(limits.transactionTtlMs, 40000, 'transactionTtlMs');
    this.#takeoverAfter = positive(limits.takeoverAfterMs, 10000, 'takeoverAfterMs');
  }

  /**
   * Adds an agent with its local ufrag; returns its id.
   * @throws UdpMuxError `ufrag-taken` when another agent has the ufrag, `agent-limit` at `maxAgents`.
   */
  register(ufrag: string): number {
    if (this.#agents.size >= this.#maxAgents) throw new UdpMuxError('agent-limit', `the mux already serves ${this.#maxAgents} agents (maxAgents)`);
    this.#assertFree(ufrag);
    const agent: Agent = { id: this.#nextId++, ufrags: [ufrag], routes: undefined, transactions: undefined };
    this.#agents.set(agent.id, agent);
    this.#ufrags.set(ufrag, agent);
    return agent.id;
  }

  /**
   * Adds a ufrag to an agent (a restart's new one; the old one stays until {@link removeUfrag}).
   * @throws UdpMuxError `ufrag-taken`, `ufrag-limit` at `maxUfragsPerAgent`, `unknown-agent`.
   */
  addUfrag(id: number, ufrag: string): void {
    const agent = this.#agent(id);
    if (agent.ufrags.includes(ufrag)) return;
    if (agent.ufrags.length >= this.#maxUfrags) throw new UdpMuxError('ufrag-limit', `agent ${id} already has ${this.#maxUfrags} ufrags (maxUfragsPerAgent)`);
    this.#assertFree(ufrag);
    agent.ufrags.push(ufrag);
    this.#ufrags.set(ufrag, agent);
  }

  /** Stops routing `ufrag` to the agent (its previous session is over). Unknown values are ignored. */
  removeUfrag(id: number, ufrag: string): void {
    const agent = this.#agents.get(id);
    if (!agent) return;
    const i = agent.ufrags.indexOf(ufrag);
    if (i < 0) return;
    agent.ufrags.splice(i, 1);
    this.#ufrags.delete(ufrag);
  }

  /** The ufrags routed to an agent (empty for an unknown id). */
  ufragsOf(id: number): readonly string[] {
    return this.#agents.get(id)?.ufrags ?? [];
  }

  /** Removes an agent with all its ufrags, routes and transactions, at once. Unknown ids are ignored. */
  unregister(id: number): void {
    const agent = this.#agents.get(id);
    if (!agent) return;
    this.#agents.delete(id);
    for (const u of agent.ufrags) this.#ufrags.delete(u);
    for (const k of agent.routes?.keys() ?? []) this.#routes.delete(k);
    for (const t of agent.transactions ?? []) this.#transactions.delete(t);
    agent.routes = agent.transactions = undefined;
  }

  /** Whether an agent id is registered. */
  has(id: number): boolean {
    return this.#agents.has(id);
  }

  /** The agent owning the route from `remote` to `local`, if any (for tests and stats). */
  routeOwner(local: TransportAddress, remote: TransportAddress): number | undefined {
    return this.#routes.get(routeKey(local, remote))?.agent.id;
  }

  /**
   * The agent a received datagram goes to, or why it is dropped (counted). `datagram.local` is the mux socket's
   * address, `datagram.remote` the source.
   */
  route(now: number, datagram: Datagram): number | MuxDropReason {
    const data = datagram.data;
    if (data.length > 0 && data[0]! <= 3) {
      if (!stunHeader(data)) return this.#drop('malformed-stun');
      const type = (data[0]! << 8) | data[1]!;
      const cls = type & CLASS_MASK;
      if (cls === 0) {
        if (type !== BINDING_REQUEST) return this.#drop('unsupported-request');
        const ufrag = usernameUfrag(data);
        if (ufrag === undefined) return this.#drop('no-username');
        const agent = this.#ufrags.get(ufrag);
        if (agent === undefined) return this.#drop('unknown-ufrag');
        this.#routed++;
        return agent.id;
      }
      if (cls !== 0x0010) {
        // A response: the transaction says whose it is, whoever owns the 5-tuple.
        this.#expire(now);
        const key = transactionKey(data);
        const t = this.#transactions.get(key);
        if (t !== undefined) {
          this.#transactions.delete(key);
          t.agent.transactions?.delete(key);
          this.#routed++;
          return t.agent.id;
        }
        const r = this.#routes.get(routeKey(datagram.local, datagram.remote));
        if (r === undefined) return this.#drop('unknown-transaction');
        this.#routed++;
        return r.agent.id;
      }
    }
    const r = this.#routes.get(routeKey(datagram.local, datagram.remote));
    if (r === undefined) return this.#drop('no-route');
    this.#routed++;
    return r.agent.id;
  }

  /**
   * Reports a datagram agent `id` sends from the mux: a Binding request is remembered by transaction (its answer
   * comes back to the agent) and claims its 5-tuple weakly; a Binding success response claims it strongly (the agent
   * verified the request's integrity before answering). Anything else teaches nothing. Unknown ids are ignored.
   */
  noteTransmit(now: number, id: number, datagram: Datagram): void {
    const data = datagram.data;
    if (data.length < HEADER_LENGTH || data[0]! > 3) return;
    const type = (data[0]! << 8) | data[1]!;
    if (type !== BINDING_REQUEST && type !== BINDING_SUCCESS) return;
    const agent = this.#agents.get(id);
    if (agent === undefined || !stunHeader(data)) return;
    if (type === BINDING_SUCCESS) {
      this.#claim(now, agent, routeKey(datagram.local, datagram.remote), true);
      return;
    }
    this.#expire(now);
    const key = transactionKey(data);
    const old = this.#transactions.get(key);
    const transactions = (agent.transactions ??= new Set());
    if (old !== undefined) {
      // A retransmission: the same transaction, remembered anew at the end.
      this.#transactions.delete(key);
      old.agent.transactions?.delete(key);
    } else if (transactions.size >= this.#maxTransactions) {
      const oldest = transactions.values().next().value!;
      transactions.delete(oldest);
      this.#transactions.delete(oldest);
      this.#transactionEvictions++;
    }
    this.#transactions.set(key, { agent, expires: now + this.#ttl });
    transactions.add(key);
    this.#claim(now, agent, routeKey(datagram.local, datagram.remote), false);
  }

  get stats(): UdpMuxRouterStats {
    return {
      agents: this.#agents.size,
      ufrags: this.#ufrags.size,
      routes: this.#routes.size,
      transactions: this.#transactions.size,
      routed: this.#routed,
      dropped: { ...this.#dropped },
      conflicts: this.#conflicts,
      takeovers: this.#takeovers,
      routeEvictions: this.#routeEvictions,
      transactionEvictions: this.#transactionEvictions,
    };
  }

  #claim(now: number, agent: Agent, key: string, strong: boolean): void {
    const routes = (agent.routes ??= new Map());
    const r = this.#routes.get(key);
    if (r !== undefined) {
      if (r.agent === agent) {
        if (!strong) return;
        r.strong = true;
        r.confirmedAt = now;
        // Least recently confirmed first: move to the end.
        routes.delete(key);
        routes.set(key, r);
        return;
      }
      const mayTake = strong && (!r.strong || now - r.confirmedAt >= this.#takeoverAfter);
      if (!mayTake) {
        this.#conflicts++;
        return;
      }
      if (r.strong) this.#takeovers++;
      r.agent.routes?.delete(key);
      this.#routes.delete(key);
    }
    if (routes.size >= this.#maxRoutes) {
      const oldest = routes.keys().next().value!;
      routes.delete(oldest);
      this.#routes.delete(oldest);
      this.#routeEvictions++;
    }
    const route: Route = { key, agent, strong, confirmedAt: strong ? now : -Infinity };
    this.#routes.set(key, route);
    routes.set(key, route);
  }

  /** Forgets expired transactions; the table is in sending order, so they are at its head. */
  #expire(now: number): void {
    for (const [key, t] of this.#transactions) {
      if (t.expires > now) return;
      this.#transactions.delete(key);
      t.agent.transactions?.delete(key);
    }
  }

  #drop(reason: MuxDropReason): MuxDropReason {
    this.#dropped[reason]++;
    return reason;
  }

  #assertFree(ufrag: string): void {
    if (this.#ufrags.has(ufrag)) throw new UdpMuxError('ufrag-taken', `ufrag ${JSON.stringify(ufrag)} is already routed to another agent of this mux`);
  }

  #agent(id: number): Agent {
    const agent = this.#agents.get(id);
    if (agent === undefined) throw new UdpMuxError('unknown-agent', `no agent ${id} on this mux`);
    return agent;
  }
}
