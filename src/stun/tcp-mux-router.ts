/**
 * The routing decision of a one-port ICE-TCP mux (the passive candidates of many agents behind one listening
 * socket). Sans-IO: it sees the first bytes of each accepted connection and `now`, owns no socket, and answers
 * "wait", "this agent" or "close, and why".
 *
 * An accepted connection belongs to nobody until its first RFC 4571 frame (RFC 6544 §3: every message on an ICE-TCP
 * connection is framed) is complete. That frame must be a STUN Binding request; it goes to the agent whose local ufrag
 * leads its USERNAME (RFC 8445 §7.2.2), exactly as the UDP mux routes a check ({@link UdpMuxRouter}, whose ufrag table
 * this reuses). From then on the connection itself is the route: the agent owns the socket, checks the request's
 * integrity and closes the connection if it fails (`checklist/tcp.ts`), so a spoofed USERNAME gains nothing but one
 * connection to that agent, which it would get with the agent's own listener too.
 *
 * Bounds: at most `maxPending` connections wait for their first frame (more are refused at accept), each for at most
 * `firstFrameTimeoutMs`, holding at most `2 + maxFirstFrameBytes` bytes (a longer length prefix closes it at once).
 * @module
 */
import type { TransportAddress } from '../types.js';
import { HEADER_LENGTH } from './constants.js';
import { UdpMuxRouter, UdpMuxError, type UdpMuxLimits } from './mux-router.js';

/** Why a TCP mux closed a connection before it reached an agent. */
export type TcpMuxDropReason =
  /** Refused at accept: `maxPending` connections were already waiting for their first frame. */
  | 'pending-limit'
  /** The first frame's length prefix is over `maxFirstFrameBytes` (longer than any check). */
  | 'oversized-frame'
  /** The first frame is not a STUN Binding request (not STUN, malformed, another method or class). */
  | 'not-a-check'
  /** A Binding request without a USERNAME ufrag. */
  | 'no-username'
  /** A Binding request for a ufrag no agent of the mux has. */
  | 'unknown-ufrag'
  /** No complete first frame within `firstFrameTimeoutMs`. */
  | 'timeout'
  /** The peer closed the connection before its first frame was complete. */
  | 'closed-early';

/** Every drop reason of a TCP mux, in a stable order (for stats). */
export const TCP_MUX_DROP_REASONS: readonly TcpMuxDropReason[] = ['pending-limit', 'oversized-frame', 'not-a-check', 'no-username', 'unknown-ufrag', 'timeout', 'closed-early'];

/** Limits of a {@link TcpMuxRouter}: the UDP router's ufrag limits plus those of connections waiting to be routed. */
export interface TcpMuxLimits extends Pick<UdpMuxLimits, 'maxAgents' | 'maxUfragsPerAgent'> {
  /** Most accepted connections waiting for their first frame at once (default 256); more are refused. */
  readonly maxPending?: number;
  /** How long an accepted connection may take to deliver its first frame (ms, default 5000). */
  readonly firstFrameTimeoutMs?: number;
  /**
   * Longest first frame accepted (bytes, default 2048: the longest check the agents take before a connection is
   * proven, `MAX_CHECK_MESSAGE_BYTES`).
   */
  readonly maxFirstFrameBytes?: number;
}

/** What to do with a connection after its bytes: keep waiting, hand it (and every byte so far) to an agent, or close. */
export type TcpMuxDecision =
  | { readonly type: 'wait' }
  | { readonly type: 'route'; readonly agent: number; readonly bytes: Uint8Array }
  | { readonly type: 'drop'; readonly reason: TcpMuxDropReason };

/** A {@link TcpMuxRouter}'s counters. */
export interface TcpMuxRouterStats {
  readonly agents: number;
  readonly ufrags: number;
  /** Connections waiting for their first frame now. */
  readonly pending: number;
  /** Connections accepted (refused ones not included). */
  readonly accepted: number;
  /** Connections handed to an agent. */
  readonly routed: number;
  /** Connections closed by the mux, by reason. */
  readonly dropped: Readonly<Record<TcpMuxDropReason, number>>;
}

interface Pending {
  readonly local: TransportAddress;
  readonly remote: TransportAddress;
  readonly deadline: number;
  /** Bytes so far (never more than 2 + maxFirstFrameBytes). */
  buffer: Uint8Array;
  length: number;
}

const WAIT: TcpMuxDecision = { type: 'wait' };
const BINDING_REQUEST = 0x0001;

/**
 * Routes accepted TCP connections by their first frame. The caller names each connection by a key of its choice
 * (unique while the connection lives), calls {@link accept}, feeds its bytes to {@link receive} until the answer is
 * not `wait`, reports an early close with {@link closed}, and runs {@link handleTimeout} at {@link pollTimeout}.
 */
export class TcpMuxRouter {
  /** The ufrag table, shared logic with the UDP mux (register, restarts' extra ufrags, limits, typed errors). */
  readonly #ufrags: UdpMuxRouter;
  readonly #maxPending: number;
  readonly #timeout: number;
  readonly #maxFrame: number;
  /** Waiting connections in accept order; all share one timeout, so the oldest deadline is always first. */
  readonly #pending = new Map<string, Pending>();
  #accepted = 0;
  #routed = 0;
  readonly #dropped: Record<TcpMuxDropReason, number> = { 'pending-limit': 0, 'oversized-frame': 0, 'not-a-check': 0, 'no-username': 0, 'unknown-ufrag': 0, timeout: 0, 'closed-early': 0 };

  constructor(limits: TcpMuxLimits = {}) {
    this.#ufrags = new UdpMuxRouter({ ...(limits.maxAgents !== undefined ? { maxAgents: limits.maxAgents } : {}), ...(limits.maxUfragsPerAgent !== undefined ? { maxUfragsPerAgent: limits.maxUfragsPerAgent } : {}) });
    const positive = (v: number | undefined, d: number, name: string): number => {
      const x = v ?? d;
      if (!Number.isInteger(x) || x < 1) throw new UdpMuxError('agent-limit', `${name} must be a positive integer, got ${String(v)}`);
      return x;
    };
    this.#maxPending = positive(limits.maxPending, 256, 'maxPending');
    this.#timeout = positive(limits.firstFrameTimeoutMs, 5000, 'firstFrameTimeoutMs');
    this.#maxFrame = positive(limits.maxFirstFrameBytes, 2048, 'maxFirstFrameBytes');
    if (this.#maxFrame < HEADER_LENGTH || this.#maxFrame > 0xffff) throw new UdpMuxError('agent-limit', `maxFirstFrameBytes must be 20..65535, got ${this.#maxFrame}`);
  }

  /** Adds an agent with its local ufrag; returns its id. @throws UdpMuxError `ufrag-taken`, `agent-limit`. */
  register(ufrag: string): number {
    return this.#ufrags.register(ufrag);
  }

  /** Adds a ufrag to an agent (a restart's). @throws UdpMuxError `ufrag-taken`, `ufrag-limit`, `unknown-agent`. */
  addUfrag(id: number, ufrag: string): void {
    this.#ufrags.addUfrag(id, ufrag);
  }

  /** Stops routing `ufrag` to the agent. Unknown values are ignored. */
  removeUfrag(id: number, ufrag: string): void {
    this.#ufrags.removeUfrag(id, ufrag);
  }

  /** The ufrags routed to an agent (empty for an unknown id). */
  ufragsOf(id: number): readonly string[] {
    return this.#ufrags.ufragsOf(id);
  }

  /** Removes an agent and its ufrags; connections already handed to it are its own. Unknown ids are ignored. */
  unregister(id: number): void {
    this.#ufrags.unregister(id);
  }

  has(id: number): boolean {
    return this.#ufrags.has(id);
  }

  /**
   * A connection was accepted on `local` from `remote`. True: feed its bytes to {@link receive}. False: close it now
   * (`pending-limit`, counted). A key still pending is replaced (the caller reused it).
   */
  accept(now: number, key: string, local: TransportAddress, remote: TransportAddress): boolean {
    this.#pending.delete(key);
    if (this.#pending.size >= this.#maxPending) {
      this.#dropped['pending-limit']++;
      return false;
    }
    this.#accepted++;
    this.#pending.set(key, { local, remote, deadline: now + this.#timeout, buffer: new Uint8Array(0), length: 0 });
    return true;
  }

  /**
   * Bytes arrived on a pending connection. `wait`: not a whole first frame yet. `route`: hand the connection to
   * `agent` with `bytes` (everything received so far, first frame and any bytes after it, to feed the agent as the
   * connection's first data). `drop`: close it (counted). An unknown key (already decided) is a `drop` of nothing.
   */
  receive(now: number, key: string, chunk: Uint8Array): TcpMuxDecision {
    const p = this.#pending.get(key);
    if (p === undefined) return { type: 'drop', reason: 'closed-early' };
    if (now >= p.deadline) return this.#decide(key, 'timeout');
    const limit = 2 + this.#maxFrame;
    // Keep no more than one whole first frame: bytes past it are only held if they arrived in the same chunk.
    const have = p.length + chunk.length;
    const at = (i: number): number => (i < p.length ? p.buffer[i]! : chunk[i - p.length]!);
    const frameLength = have >= 2 ? (at(0) << 8) | at(1) : -1;
    if (frameLength > this.#maxFrame) return this.#decide(key, 'oversized-frame');
    if (frameLength < 0 || have < 2 + frameLength) {
      // Not complete: so `have` < limit, and the buffer stays bounded.
      if (p.buffer.length < have) {
        const next = new Uint8Array(Math.min(limit, Math.max(have, 64)));
        next.set(p.buffer.subarray(0, p.length));
        p.buffer = next;
      }
      p.buffer.set(chunk, p.length);
      p.length = have;
      return WAIT;
    }
    let bytes: Uint8Array;
    if (p.length === 0) bytes = chunk;
    else {
      bytes = new Uint8Array(have);
      bytes.set(p.buffer.subarray(0, p.length));
      bytes.set(chunk, p.length);
    }
    const frame = bytes.subarray(2, 2 + frameLength);
    const verdict = this.#classify(p, frame);
    if (typeof verdict !== 'number') return this.#decide(key, verdict);
    this.#pending.delete(key);
    this.#routed++;
    return { type: 'route', agent: verdict, bytes };
  }

  /** The peer closed a pending connection (counted `closed-early`); a decided one is ignored. */
  closed(key: string): void {
    if (this.#pending.delete(key)) this.#dropped['closed-early']++;
  }

  /** Forgets a pending connection without counting it (the mux itself is closing). */
  forget(key: string): void {
    this.#pending.delete(key);
  }

  /** The earliest first-frame deadline, if any connection is waiting. */
  pollTimeout(): number | undefined {
    for (const p of this.#pending.values()) return p.deadline;
    return undefined;
  }

  /** Connections whose first frame is overdue: forgotten and counted (`timeout`); the caller closes them. */
  handleTimeout(now: number): string[] {
    const out: string[] = [];
    for (const [key, p] of this.#pending) {
      if (p.deadline > now) break;
      this.#pending.delete(key);
      this.#dropped.timeout++;
      out.push(key);
    }
    return out;
  }

  /** Bytes held by waiting connections (bounded by `maxPending x (2 + maxFirstFrameBytes)`). */
  get bufferedBytes(): number {
    let n = 0;
    for (const p of this.#pending.values()) n += p.buffer.length;
    return n;
  }

  get stats(): TcpMuxRouterStats {
    const u = this.#ufrags.stats;
    return { agents: u.agents, ufrags: u.ufrags, pending: this.#pending.size, accepted: this.#accepted, routed: this.#routed, dropped: { ...this.#dropped } };
  }

  /** The agent a complete first frame goes to, or why not. */
  #classify(p: Pending, frame: Uint8Array): number | TcpMuxDropReason {
    if (frame.length < HEADER_LENGTH || ((frame[0]! << 8) | frame[1]!) !== BINDING_REQUEST) return 'not-a-check';
    // The UDP router applies the same header checks and ufrag lookup to a Binding request; its answer is reused.
    const r = this.#ufrags.route(0, { local: p.local, remote: p.remote, data: frame });
    if (typeof r === 'number') return r;
    return r === 'no-username' || r === 'unknown-ufrag' ? r : 'not-a-check';
  }

  #decide(key: string, reason: TcpMuxDropReason): TcpMuxDecision {
    this.#pending.delete(key);
    this.#dropped[reason]++;
    return { type: 'drop', reason };
  }
}
