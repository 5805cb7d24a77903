/**
 * ICE-TCP procedures (RFC 6544 §7, §8, §11): the edge's answers to `tcp-connect`, connections it accepted, their
 * byte streams (RFC 4571 frames, one message each), time-outs, and what a lost connection does to its pairs.
 *
 * Bounds: accepted connections not yet proven by an authenticated check are capped (`tcpPendingInboundLimit`), must
 * prove themselves within `tcpFirstCheckTimeoutMs`, and may not start a frame longer than a check
 * (`MAX_CHECK_MESSAGE_BYTES`) until then; a connection never buffers more than one partial frame (RFC 4571 caps a
 * frame at 65535 bytes). Connection attempts are bounded by `tcpConnectTimeoutMs`.
 * @module
 */
import { canonicalIp } from '../ip.js';
import { StunMethod } from '../stun/constants.js';
import { looksLikeStun, tryDecodeStunMessage, verifyIntegrity } from '../stun/message.js';
import { MAX_RFC4571_PAYLOAD, Rfc4571Framer } from '../stun/rfc4571.js';
import { sameAddress, type Datagram, type TransportAddress } from '../types.js';
import { MAX_CHECK_MESSAGE_BYTES, parseCheck } from './checks.js';
import { loseConsent } from './consent.js';
import { drop, setPairState, type AgentContext } from './context.js';
import type { CandidatePair } from './pair.js';
import { tcpDataPair, type DataEvent } from './data-path.js';
import { credentialsFor } from './responder.js';
import { sendCheckNow } from './scheduler.js';
import { pairRouteKey, routeKey, wireKey, type TcpConnection } from './tcp-connections.js';
import { adoptReopened, keepsSelection, reopened, reopenLost, runReopen } from './tcp-reopen.js';

/**
 * The connection `id` asked for by `tcp-connect` is open from `local`: the checks waiting for it go at once (their
 * transaction was paced when it asked for the connection, RFC 6544 §4.1). Returns false when it is no longer
 * wanted (the edge then closes it).
 */
export function tcpConnected(ctx: AgentContext, now: number, id: string, local: TransportAddress): boolean {
  const conn = ctx.tcp.byId.get(id);
  if (conn === undefined || conn.state !== 'connecting') return false;
  ctx.tcp.opened(conn, local);
  conn.deadline = undefined;
  conn.validated = true; // ours: not an inbound connection waiting to prove itself
  for (const p of routePairs(ctx, conn)) {
    if (p.state === 'in-progress' && !ctx.txs.hasLiveCheck(p)) sendCheckNow(ctx, now, p);
  }
  reopened(ctx, now, conn);
  return true;
}

/**
 * The connection `id` could not be opened (refused, unreachable, time-out): RFC 6544 §7.1, its pairs fail (a
 * selected pair's reopening tries again, within its bound).
 */
export function tcpConnectFailed(ctx: AgentContext, id: string): void {
  const conn = ctx.tcp.byId.get(id);
  if (conn === undefined) return;
  ctx.tcp.remove(conn);
  failRoute(ctx, conn);
}

/**
 * The edge accepted a connection on a passive or simultaneous-open base (RFC 6544 §7.2: "the agent MUST accept
 * it"). Returns the connection's id, or undefined when the agent refuses it (no such base, or too many connections
 * still waiting for their first check): the edge closes it.
 */
export function tcpAccepted(ctx: AgentContext, now: number, local: TransportAddress, remote: TransportAddress): string | undefined {
  const wire = wireKey(local, remote);
  if (ctx.tcp.byWire.has(wire)) return undefined;
  let found: { stream: number; candidate: (typeof ctx.streams)[number]['locals'][number] } | undefined;
  for (const s of ctx.streams) {
    for (const list of [s.locals, s.nextLocals ?? []]) {
      const c = list.find((l) => l.transport === 'tcp' && (l.tcpType === 'passive' || l.tcpType === 'so') && sameAddress(l.base, local));
      if (c !== undefined) {
        found = { stream: s.index, candidate: c };
        break;
      }
    }
    if (found) break;
  }
  if (found === undefined) {
    drop(ctx, 'tcp-unknown-connection');
    return undefined;
  }
  if (ctx.tcp.pendingInbound() >= ctx.config.tcpPendingInboundLimit) {
    drop(ctx, 'tcp-accept-limit');
    return undefined;
  }
  const canonicalLocal = { address: canonicalIp(local.address), port: local.port };
  const canonicalRemote = { address: canonicalIp(remote.address), port: remote.port };
  const conn: TcpConnection = {
    id: ctx.tcp.nextId(),
    direction: 'passive',
    state: 'open',
    local: canonicalLocal,
    remote: canonicalRemote,
    candidate: found.candidate,
    stream: found.stream,
    route: routeKey(found.candidate.base, canonicalRemote),
    wire,
    // Until a check proves the peer, a frame may not be longer than a check.
    framer: new Rfc4571Framer(MAX_CHECK_MESSAGE_BYTES, true),
    deadline: now + ctx.config.tcpFirstCheckTimeoutMs,
    validated: false,
    answered: false,
    dataPair: undefined,
  };
  // A simultaneous-open base (RFC 6544 §7.1, §7.2): our own attempt to this peer may still be under way when the
  // peer's connection arrives (our SYN lost, or filtered by its NAT). The accepted connection serves the route: the
  // attempt is given up and the checks that waited for it go on this one (which our pair proves, so it counts as ours).
  const attempt = ctx.tcp.byRoute.get(conn.route);
  if (attempt !== undefined && attempt.state === 'connecting') {
    ctx.tcp.remove(attempt);
    ctx.events.push({ type: 'tcp-close', id: attempt.id, local: attempt.local, remote: attempt.remote, reason: 'superseded by the peer connection' });
    conn.validated = true;
    conn.deadline = undefined;
    conn.framer.maxFrame = MAX_RFC4571_PAYLOAD;
  }
  ctx.tcp.add(conn);
  if (conn.validated) {
    for (const p of routePairs(ctx, conn)) if (p.state === 'in-progress' && !ctx.txs.hasLiveCheck(p)) sendCheckNow(ctx, now, p);
  }
  return conn.id;
}

/**
 * Connection `id` closed by itself (the peer, a reset): RFC 6544 §7.1, its pairs fail, except a selected pair,
 * whose connection is reopened or awaited (§11.1).
 */
export function tcpClosed(ctx: AgentContext, id: string): void {
  const conn = ctx.tcp.byId.get(id);
  if (conn === undefined) return;
  ctx.tcp.remove(conn);
  failRoute(ctx, conn);
}

/**
 * What `tcpReceive` did with a chunk: `unknown` (not a connection of this agent), `data` (only data frames or a
 * partial frame: no state but counters changed), `control` (a STUN message was handled or the connection closed:
 * states and deadlines must be derived again).
 */
export type TcpReceived = 'unknown' | 'data' | 'control';

/**
 * Bytes that arrived on a connection: split into RFC 4571 frames, each handed to `handle` as a datagram on the
 * connection's 5-tuple (the connection's own address records, so the receive path builds nothing per frame).
 * With `data` (the edge's direct route), application data frames go there as `data` events instead, without a
 * datagram or the event queue; STUN frames still go to `handle`.
 */
export function tcpReceive(ctx: AgentContext, d: Datagram, handle: (frame: Datagram) => void, data?: DataEvent[]): TcpReceived {
  const conn = tcpConnectionOf(ctx, d);
  if (conn === undefined || conn.state !== 'open') {
    drop(ctx, 'tcp-unknown-connection');
    return 'unknown';
  }
  let result: TcpReceived = 'data';
  const frames = conn.framer.push(d.data);
  for (const frame of frames) {
    if (ctx.tcp.byId.get(conn.id) !== conn) return 'control'; // closed by an earlier frame
    if (!conn.validated) {
      // RFC 6544 §7.2 with §7.3 of RFC 8445: an accepted connection is ours once it carries a check for us, matched
      // by USERNAME and MESSAGE-INTEGRITY; anything else first is not an ICE peer of this agent.
      if (!authenticatedRequest(ctx, frame)) {
        drop(ctx, 'tcp-first-frame');
        closeConnection(ctx, conn, 'first frame is not an authenticated check');
        return 'control';
      }
      conn.validated = true;
      conn.deadline = undefined;
      conn.framer.maxFrame = MAX_RFC4571_PAYLOAD;
      adoptReopened(ctx, conn); // the peer reopening a selected pair's connection (RFC 6544 §11.1)
    } else if (conn.direction === 'active' && !conn.answered) {
      if (!looksLikeStun(frame)) {
        // RFC 6544 §7.1: the first answer is not STUN: "the remote candidate address apparently was not one of the
        // peer's addresses"; close, and every pair with that remote candidate fails.
        drop(ctx, 'tcp-first-frame');
        closeConnection(ctx, conn, 'first answer is not STUN');
        failRemote(ctx, conn);
        return 'control';
      }
      conn.answered = true;
    }
    if (looksLikeStun(frame)) result = 'control';
    else if (data !== undefined) {
      // RFC 6544 §10.2, as `receiveData` does for a frame on the full path.
      const p = tcpDataPair(ctx, conn);
      if (p === undefined) drop(ctx, 'data-unknown-path');
      else {
        p.counters.bytesReceived += frame.length;
        data.push({ type: 'data', stream: p.stream, component: p.component, data: frame, from: conn.remote, local: conn.local });
      }
      continue;
    }
    handle({ local: conn.local, remote: conn.remote, data: frame, transport: 'tcp' });
  }
  if (conn.framer.error && ctx.tcp.byId.get(conn.id) === conn) {
    drop(ctx, conn.validated ? 'tcp-bad-frame' : 'tcp-oversized');
    closeConnection(ctx, conn, 'frame too long');
    return 'control';
  }
  return result;
}

/** The connection of a datagram's 5-tuple; the last one found is remembered (media keeps to one connection). */
function tcpConnectionOf(ctx: AgentContext, d: Datagram): TcpConnection | undefined {
  const last = ctx.tcp.last;
  if (
    last !== undefined &&
    last.local.port === d.local.port &&
    last.remote.port === d.remote.port &&
    last.remote.address === d.remote.address &&
    last.local.address === d.local.address &&
    ctx.tcp.byId.get(last.id) === last
  ) {
    return last;
  }
  const conn = ctx.tcp.byWire.get(wireKey(d.local, d.remote));
  if (conn !== undefined) ctx.tcp.last = conn;
  return conn;
}

/** Connection attempts and unproven accepted connections whose time ran out. */
export function runTcp(ctx: AgentContext, now: number): void {
  runReopen(ctx, now);
  if (ctx.tcp.size === 0) return;
  for (const conn of [...ctx.tcp.byId.values()]) {
    if (conn.deadline === undefined || now < conn.deadline) continue;
    closeConnection(ctx, conn, conn.state === 'connecting' ? 'connect timeout' : 'no check');
  }
}

/**
 * RFC 6544 §8: "When ICE processing for a media stream completes, each agent SHOULD close all TCP connections ...
 * except the ones between the candidate pairs selected by ICE." Runs per stream once the agent is `completed` and
 * the stream's own checklist is: during a restart the agent stays `completed` on the previous pairs (RFC 8445
 * §12.1) while the new checklist still needs its connections. The previous pair keeps its connection until the new
 * session selects (§9.2: "MUST NOT close the connections after the restart"), then as a retired pair while the peer
 * may still send on it (until its own selection, one consent timeout at most); after that it goes (§9.2 "SHOULD be
 * closed").
 */
export function closeUnselected(ctx: AgentContext): void {
  if (ctx.tcp.size === 0 || ctx.state !== 'completed') return;
  const keep = new Set<string>();
  let done: Set<number> | undefined;
  for (const s of ctx.streams) {
    if (s.restarting || s.checklist.state !== 'completed') continue;
    (done ??= new Set()).add(s.index);
    for (const comp of s.components) {
      for (const p of [comp.selected, comp.previous, comp.sending, comp.retired]) if (p !== undefined && p.local.transport === 'tcp') keep.add(`${p.stream}|${pairRouteKey(p)}`);
    }
  }
  if (done === undefined) return;
  for (const conn of [...ctx.tcp.byId.values()]) {
    if (done.has(conn.stream) && !keep.has(`${conn.stream}|${conn.route}`)) closeConnection(ctx, conn, 'not selected');
  }
}

/**
 * The component's connections go with it (RFC 5761 §5.1.3: RTCP multiplexed after all; RFC 6544 §11.1: a
 * connection is kept until "the media stream is removed"). Its pairs are already gone, so none fails.
 */
export function closeComponentConnections(ctx: AgentContext, stream: number, component: number): void {
  if (ctx.tcp.size === 0) return;
  for (const conn of [...ctx.tcp.byId.values()]) {
    if (conn.stream !== stream || conn.candidate.component !== component) continue;
    ctx.tcp.remove(conn);
    ctx.events.push({ type: 'tcp-close', id: conn.id, local: conn.local, remote: conn.remote, reason: 'component dropped' });
  }
  if (ctx.tcp.last !== undefined && ctx.tcp.byId.get(ctx.tcp.last.id) !== ctx.tcp.last) ctx.tcp.last = undefined;
}

/** Closes a connection the agent no longer wants (a `tcp-close` event) and fails its pairs. */
export function closeConnection(ctx: AgentContext, conn: TcpConnection, reason: string): void {
  if (ctx.tcp.byId.get(conn.id) !== conn) return;
  ctx.tcp.remove(conn);
  ctx.events.push({ type: 'tcp-close', id: conn.id, local: conn.local, remote: conn.remote, reason });
  failRoute(ctx, conn);
}

/** Every pair on the connection's route (checklist and valid-list pairs). */
function routePairs(ctx: AgentContext, conn: TcpConnection): CandidatePair[] {
  const out: CandidatePair[] = [];
  for (const p of ctx.pairs.values()) {
    if (p.stream === conn.stream && p.local.transport === 'tcp' && pairRouteKey(p) === conn.route) out.push(p);
  }
  return out;
}

/**
 * A connection is gone: its pairs fail (RFC 6544 §7.1). A pair that carries data loses consent (nothing may go on
 * it any more, RFC 7675 §5.1, and the agent's state follows); other valid ones leave the valid list. A selected
 * pair is kept while its connection is reopened (§11.1, tcp-reopen.ts), and fails once the attempts are used up.
 */
function failRoute(ctx: AgentContext, conn: TcpConnection): void {
  const lost = routePairs(ctx, conn).filter((p) => !(keepsSelection(ctx, p) && reopenLost(ctx, ctx.now, p)));
  failPairs(ctx, lost);
}

function failRemote(ctx: AgentContext, conn: TcpConnection): void {
  const out: CandidatePair[] = [];
  for (const p of ctx.pairs.values()) {
    if (p.stream === conn.stream && p.local.transport === 'tcp' && sameAddress(p.remote, conn.remote)) out.push(p);
  }
  failPairs(ctx, out);
}

function failPairs(ctx: AgentContext, pairs: readonly CandidatePair[]): void {
  for (const p of pairs) {
    const s = ctx.streams[p.stream];
    if (s === undefined) continue;
    ctx.txs.dropPair(p);
    s.checklist.dequeue(p);
    if (p.nomination === 'nominating' || p.nomination === 'nominate-on-success') p.nomination = 'none';
    if (p.valid) {
      const comp = s.components[p.component - 1];
      const carrying = comp !== undefined && (comp.selected === p || comp.previous === p || comp.sending === p || comp.dataPair === p);
      if (carrying) loseConsent(ctx, p);
      else s.checklist.removeValid(p);
    }
    setPairState(ctx, p, 'failed');
  }
}

/** A Binding request for this agent that authenticates (USERNAME names our ufrag, MESSAGE-INTEGRITY holds). */
function authenticatedRequest(ctx: AgentContext, frame: Uint8Array): boolean {
  if (frame.length > MAX_CHECK_MESSAGE_BYTES || !looksLikeStun(frame)) return false;
  const r = tryDecodeStunMessage(frame);
  if (!r.ok || r.message.method !== StunMethod.Binding || r.message.cls !== 'request' || !r.message.hasFingerprint) return false;
  const username = parseCheck(r.message).username;
  const colon = username === undefined ? -1 : username.indexOf(':');
  if (colon <= 0) return false;
  const creds = credentialsFor(ctx, username!.slice(0, colon));
  return creds !== undefined && verifyIntegrity(r.message, creds.key) === 'ok';
}
