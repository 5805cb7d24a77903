/**
 * ICE-TCP connections (RFC 6544) as the agent sees them: which connection carries a TCP pair, and the 5-tuple its
 * STUN messages and data leave on. The agent owns no socket: it asks the edge for a connection (`tcp-connect`),
 * is told of connections the edge accepted on a passive or simultaneous-open base, and receives each connection's
 * byte stream as datagrams with `transport: 'tcp'` on that connection's 5-tuple. Inside the agent a TCP datagram
 * carries one message; `AgentCore.pollTransmit` adds the RFC 4571 length on the way out.
 *
 * A pair finds its connection by its route: the local candidate's base and the remote address. For a passive or
 * simultaneous-open base that is the connection's own 5-tuple; an active candidate's base names port 9 (RFC 6544
 * §4.5), and its connections leave from ports the system picks, so its route is the base IP, port 9, and the remote.
 * The valid pair a check on an active connection produces keeps that base, so it finds the same connection.
 *
 * This file is the registry only (no STUN, no pair states): the procedures that open, accept, fail and read
 * connections are in `tcp.ts`.
 * @module
 */
import type { LocalCandidate, TcpType } from '../candidates/candidate.js';
import { canonicalIp } from '../ip.js';
import { Rfc4571Framer } from '../stun/rfc4571.js';
import { formatAddress, type TransportAddress } from '../types.js';
import type { CandidatePair } from './pair.js';
import type { Reopening } from './tcp-reopen.js';

/** One ICE-TCP connection (open, or being opened by the edge). */
export interface TcpConnection {
  /** Unique within the agent (`t<n>`); the edge quotes it back. */
  readonly id: string;
  /** Opened by us (`active`: an active or simultaneous-open candidate) or accepted from the peer (`passive`). */
  readonly direction: 'active' | 'passive';
  state: 'connecting' | 'open';
  /** The connection's local address; while connecting, the base IP and the port asked for (0: any). */
  local: TransportAddress;
  readonly remote: TransportAddress;
  /** The local candidate it was opened for or accepted on. */
  readonly candidate: LocalCandidate;
  readonly stream: number;
  /** The route of the pairs it carries (see the module comment); a reopened one takes its pair's (tcp-reopen.ts). */
  route: string;
  /** The 5-tuple key, once open. */
  wire: string | undefined;
  readonly framer: Rfc4571Framer;
  /** Connecting: when the attempt is given up. Accepted: when it must have carried an authenticated check. */
  deadline: number | undefined;
  /** An authenticated check or answer crossed it: it carries ICE traffic of this agent. */
  validated: boolean;
  /** Active side: some STUN message came back on it (RFC 6544 §7.1: a first answer that is not STUN fails it). */
  answered: boolean;
  /** The valid pair data on this connection belongs to (cached by the receive path). */
  dataPair: CandidatePair | undefined;
}

/** What the tables read as before an agent's first connection. */
const NONE: ReadonlyMap<string, TcpConnection> = new Map();
const NO_REOPENING: ReadonlyMap<CandidatePair, Reopening> = new Map();

/**
 * An agent's ICE-TCP connections, by id, by route and by 5-tuple. The tables are made at the first connection:
 * most agents never have one, and three empty Maps cost each of them ~0.7 KB (issue 12's budget per idle agent).
 */
export class TcpConnections {
  #tables: { byId: Map<string, TcpConnection>; byRoute: Map<string, TcpConnection>; byWire: Map<string, TcpConnection> } | undefined;
  /** The connection the last received bytes belonged to (checked against `byId` before use). */
  last: TcpConnection | undefined;
  /** The pair data was last sent on and its connection (media keeps to one: no route key per datagram). */
  sendPair: CandidatePair | undefined;
  sendConn: TcpConnection | undefined;
  #seq = 0;
  #reopening: Map<CandidatePair, Reopening> | undefined;

  /** Selected pairs whose connection is being reopened (RFC 6544 §11.1, tcp-reopen.ts); made at the first. */
  get reopening(): Map<CandidatePair, Reopening> {
    return (this.#reopening ??= new Map());
  }

  /** The reopening table for reading: empty, without making it, while no selected pair waits for its connection. */
  get anyReopening(): ReadonlyMap<CandidatePair, Reopening> {
    return this.#reopening ?? NO_REOPENING;
  }

  get byId(): ReadonlyMap<string, TcpConnection> {
    return this.#tables?.byId ?? NONE;
  }

  get byRoute(): ReadonlyMap<string, TcpConnection> {
    return this.#tables?.byRoute ?? NONE;
  }

  get byWire(): ReadonlyMap<string, TcpConnection> {
    return this.#tables?.byWire ?? NONE;
  }

  get size(): number {
    return this.byId.size;
  }

  nextId(): string {
    return `t${this.#seq++}`;
  }

  add(conn: TcpConnection): void {
    const t = (this.#tables ??= { byId: new Map(), byRoute: new Map(), byWire: new Map() });
    t.byId.set(conn.id, conn);
    t.byRoute.set(conn.route, conn);
    if (conn.wire !== undefined) t.byWire.set(conn.wire, conn);
  }

  /** Sets the connection's real local address once the edge opened it. */
  opened(conn: TcpConnection, local: TransportAddress): void {
    conn.state = 'open';
    conn.local = { address: canonicalIp(local.address), port: local.port };
    conn.wire = wireKey(conn.local, conn.remote);
    this.#tables?.byWire.set(conn.wire, conn);
  }

  /** Moves a connection to another route (a reopened connection taking over its selected pair's). */
  reroute(conn: TcpConnection, route: string): void {
    const t = this.#tables;
    if (t === undefined) return;
    if (t.byRoute.get(conn.route) === conn) t.byRoute.delete(conn.route);
    conn.route = route;
    conn.dataPair = undefined;
    t.byRoute.set(route, conn);
  }

  remove(conn: TcpConnection): void {
    const t = this.#tables;
    if (t === undefined) return;
    if (t.byId.get(conn.id) === conn) t.byId.delete(conn.id);
    if (t.byRoute.get(conn.route) === conn) t.byRoute.delete(conn.route);
    if (conn.wire !== undefined && t.byWire.get(conn.wire) === conn) t.byWire.delete(conn.wire);
  }

  /** Inbound connections not yet proven by an authenticated check. */
  pendingInbound(): number {
    let n = 0;
    for (const c of this.byId.values()) if (c.direction === 'passive' && !c.validated) n++;
    return n;
  }

  /** The earliest connect or first-check deadline, or reopening attempt. */
  deadline(): number | undefined {
    let t = Infinity;
    for (const c of this.byId.values()) if (c.deadline !== undefined && c.deadline < t) t = c.deadline;
    if (this.#reopening !== undefined) for (const r of this.#reopening.values()) if (r.nextAt !== undefined && r.nextAt < t) t = r.nextAt;
    return t === Infinity ? undefined : t;
  }

  clear(): void {
    this.last = undefined;
    this.sendPair = this.sendConn = undefined;
    this.#tables = undefined;
    this.#reopening = undefined;
  }
}

/** Key of a connection's 5-tuple. */
export function wireKey(local: TransportAddress, remote: TransportAddress): string {
  return `${canonicalIp(local.address)}|${local.port}|${canonicalIp(remote.address)}|${remote.port}`;
}

/** The route of a TCP pair or connection: the local candidate's base and the remote address. */
export function routeKey(base: TransportAddress, remote: TransportAddress): string {
  return `${formatAddress({ address: canonicalIp(base.address), port: base.port })}>${canonicalIp(remote.address)}|${remote.port}`;
}

/** The route of a TCP pair. */
export function pairRouteKey(pair: CandidatePair): string {
  return routeKey(pair.local.base, pair.remote);
}

/** The open connection a TCP pair sends on, or undefined. */
export function connectionOf(tcp: TcpConnections, pair: CandidatePair): TcpConnection | undefined {
  const last = tcp.sendConn;
  // The cached connection still serves the pair's route while it is the route's registered connection.
  if (tcp.sendPair === pair && last !== undefined && last.state === 'open' && tcp.byRoute.get(last.route) === last) return last;
  const c = tcp.byRoute.get(pairRouteKey(pair));
  if (c === undefined || c.state !== 'open') return undefined;
  tcp.sendPair = pair;
  tcp.sendConn = c;
  return c;
}

/** The direction of the peer-reflexive remote candidate a check on `local` reveals (RFC 6544 §6.2 pairing). */
export function prflxTcpType(local: LocalCandidate): TcpType | undefined {
  switch (local.tcpType) {
    case 'passive':
      return 'active';
    case 'active':
      return 'passive';
    case 'so':
      return 'so';
    default:
      return undefined;
  }
}

/** Where a pair's message goes: its 5-tuple (UDP), or its open connection's (TCP); undefined when none is open. */
export interface PairRoute {
  readonly local: TransportAddress;
  readonly remote: TransportAddress;
  readonly transport?: 'tcp';
}

/** The route of a pair's messages: UDP pairs always have one; a TCP pair only while its connection is open. */
export function pairRoute(tcp: TcpConnections, pair: CandidatePair): PairRoute | undefined {
  if (pair.local.transport !== 'tcp') return { local: pair.local.base, remote: { address: pair.remote.address, port: pair.remote.port } };
  const c = connectionOf(tcp, pair);
  return c === undefined ? undefined : { local: c.local, remote: c.remote, transport: 'tcp' };
}
