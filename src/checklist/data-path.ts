/**
 * The data path (RFC 8445 §12): which pair carries application data, and which pair received data belongs to.
 *
 * Sending (§12.1): the selected pair of the component; during a restart the previous one, while the new checklist
 * runs; before any selection, any valid pair (the best one). Never a pair whose consent is lost or expired
 * (RFC 7675 §5.1). A lite agent sends only once every component has a valid pair (§12.1.1).
 * Receiving (§12.2): data from any signalled or paired candidate is accepted, so a peer that has not switched to
 * the selected pair yet is still heard. Media keeps arriving on the same few 5-tuples, so the route of the last
 * datagram and a small map of recent routes answer almost every datagram without a search.
 * @module
 */
import { sameAddress, type Datagram } from '../types.js';
import type { AgentEvent } from './types.js';
import { addrOf, componentOf, consentEnabled, drop, liteWaitsForValidPairs, type AgentContext, type DataRoute, type Stream } from './context.js';
import { activePairs, consentDeadline, consentJitter } from './consent.js';
import { MAX_RFC4571_PAYLOAD } from '../stun/rfc4571.js';
import { connectionOf, pairRouteKey, wireKey, type TcpConnection } from './tcp-connections.js';
import type { CandidatePair } from './pair.js';

/** Queues `data` on the pair that may carry it now; false when none may. */
export function sendData(ctx: AgentContext, now: number, s: Stream, component: number, data: Uint8Array): boolean {
  const d = takeSend(ctx, now, s, component, data);
  if (d === undefined) return false;
  ctx.transmits.push(d);
  return true;
}

/** The datagram that carries `data` now, not queued (the edge's direct path), or undefined when no pair may. */
export function takeSend(ctx: AgentContext, now: number, s: Stream, component: number, data: Uint8Array): Datagram | undefined {
  const comp = componentOf(s, component);
  if (!comp) return undefined;
  if (liteWaitsForValidPairs(ctx, s)) return undefined;
  const pair = sendingPair(ctx, s, component, now);
  if (!pair) return undefined;
  if (pair !== comp.selected && pair !== comp.previous && pair !== comp.dataPair) {
    comp.dataPair = pair;
    // RFC 7675 §5.1: first refresh one interval after the check that gave consent.
    if (consentEnabled(ctx) && !ctx.consentNext.has(pair)) ctx.consentNext.set(pair, pair.lastConsentAt + consentJitter(ctx));
    // The pair now carries data, so consent checks or keepalives run on it.
    ctx.deadlines.set('consent', consentDeadline(ctx));
  }
  if (pair.local.transport === 'tcp') {
    // RFC 6544 §10.1: data goes on the pair's connection (unframed here; the core frames what leaves).
    const conn = connectionOf(ctx.tcp, pair);
    if (conn === undefined || data.length > MAX_RFC4571_PAYLOAD) return undefined;
    pair.lastSentAt = now;
    pair.counters.bytesSent += data.length;
    return { local: conn.local, remote: conn.remote, data, transport: 'tcp' };
  }
  pair.lastSentAt = now;
  pair.counters.bytesSent += data.length;
  return { local: pair.local.base, remote: addrOf(pair.remote), data };
}

function sendingPair(ctx: AgentContext, s: Stream, component: number, now: number): CandidatePair | undefined {
  const comp = componentOf(s, component)!;
  // RFC 8445 §12.1: the previous selected pair stands in only while the new checklist is Running.
  const active = comp.selected ?? (s.checklist.state === 'failed' ? undefined : comp.previous);
  if (active) return fresh(ctx, active, now) ? active : undefined;
  if (s.checklist.state === 'failed') return undefined;
  // RFC 8445 §12.1: before selection, any valid pair may carry data.
  for (const v of s.checklist.valid) if (v.component === component && fresh(ctx, v, now)) return v;
  return undefined;
}

/** The pair may carry data: consent not lost nor expired (RFC 7675 §5.1). A function, not a closure per send. */
function fresh(ctx: AgentContext, p: CandidatePair, now: number): boolean {
  return !p.consentLost && (!consentEnabled(ctx) || now - p.lastConsentAt < ctx.config.consentTimeoutMs);
}

/** Pairs a restart replaced (RFC 8445 §12.1: the peer sends on its previous selected pair until it selects anew). */
function retiredPairs(s: Stream): CandidatePair[] {
  const out: CandidatePair[] = [];
  for (const comp of s.components) if (comp.retired) out.push(comp.retired);
  return out;
}

/** Forgets retired pairs whose grace ran out, and with them the cached routes that led to them. */
export function expireRetired(ctx: AgentContext, now: number): void {
  for (const s of ctx.streams) {
    for (const comp of s.components) {
      const p = comp.retired;
      if (p === undefined || now < comp.retiredUntil) continue;
      comp.retired = undefined;
      if (p !== comp.selected && p !== comp.sending) ctx.pairs.delete(p.id);
    }
  }
}

/** When the next retired pair's grace runs out. */
export function retiredDeadline(ctx: AgentContext): number | undefined {
  let t = Infinity;
  for (const s of ctx.streams) for (const comp of s.components) if (comp.retired && comp.retiredUntil < t) t = comp.retiredUntil;
  return t === Infinity ? undefined : t;
}

function route(d: Datagram, pair: CandidatePair): DataRoute {
  return { localAddress: d.local.address, localPort: d.local.port, remoteAddress: d.remote.address, remotePort: d.remote.port, pair };
}

/** A `data` event. */
export type DataEvent = Extract<AgentEvent, { type: 'data' }>;

/** The `data` event for a non-STUN datagram that arrived on a known path (RFC 8445 §12.2), or undefined (counted). */
export function receiveData(ctx: AgentContext, d: Datagram): DataEvent | undefined {
  if (d.transport === 'tcp') return receiveTcpData(ctx, d);
  // Fastest path: the same 5-tuple as the previous datagram (the usual case for media on one component).
  const lr = ctx.lastRoute;
  if (
    lr !== undefined &&
    lr.remotePort === d.remote.port &&
    lr.remoteAddress === d.remote.address &&
    lr.localPort === d.local.port &&
    lr.localAddress === d.local.address &&
    ctx.pairs.has(lr.pair.id)
  ) {
    const p = lr.pair;
    p.counters.bytesReceived += d.data.length;
    return { type: 'data', stream: p.stream, component: p.component, data: d.data, from: d.remote, local: d.local };
  }
  // Fast path: media keeps arriving on the same few 5-tuples (one per component).
  const routeKey = `${d.local.address}|${d.local.port}|${d.remote.address}|${d.remote.port}`;
  const last = ctx.dataRoutes.get(routeKey);
  if (last && ctx.pairs.has(last.id)) {
    ctx.lastRoute = route(d, last);
    last.counters.bytesReceived += d.data.length;
    return { type: 'data', stream: last.stream, component: last.component, data: d.data, from: d.remote, local: d.local };
  }
  for (const s of ctx.streams) {
    const candidates: CandidatePair[] = [...activePairs(ctx).filter((p) => p.stream === s.index), ...s.checklist.valid, ...s.checklist.pairs, ...retiredPairs(s)];
    const p = candidates.find((x) => sameAddress(x.local.base, d.local) && x.remote.address === d.remote.address && x.remote.port === d.remote.port);
    if (p) {
      if (ctx.dataRoutes.size >= 64) ctx.dataRoutes.clear();
      ctx.dataRoutes.set(routeKey, p);
      ctx.lastRoute = route(d, p);
      p.counters.bytesReceived += d.data.length;
      return { type: 'data', stream: s.index, component: p.component, data: d.data, from: d.remote, local: d.local };
    }
  }
  // RFC 8445 §12.2: be prepared to receive on any signalled candidate, paired or not (e.g. a pair removed once
  // the component was nominated while the peer had not switched yet).
  for (const s of ctx.streams) {
    const r = s.remotes.find((x) => x.address === d.remote.address && x.port === d.remote.port);
    if (r && s.locals.some((l) => l.component === r.component && sameAddress(l.base, d.local))) {
      return { type: 'data', stream: s.index, component: r.component, data: d.data, from: d.remote, local: d.local };
    }
    // A restart on new ports whose answer has not reached us: the peer's new session already checked our new port
    // (an authenticated request, kept for when its parameters arrive) and may have selected that path (§12.1).
    if (s.nextLocals !== undefined) {
      const early = s.pending.find((p) => p.from.address === d.remote.address && p.from.port === d.remote.port && sameAddress(p.local.base, d.local));
      if (early) return { type: 'data', stream: s.index, component: early.local.component, data: d.data, from: d.remote, local: d.local };
    }
  }
  drop(ctx, 'data-unknown-path');
  return undefined;
}

/**
 * A data frame from an ICE-TCP connection (RFC 6544 §10.2): it belongs to the pair on the connection's route, once
 * a check proved the connection (the peer may send as soon as its own side of the pair is valid).
 */
function receiveTcpData(ctx: AgentContext, d: Datagram): DataEvent | undefined {
  const conn = ctx.tcp.byWire.get(wireKey(d.local, d.remote));
  const p = conn === undefined ? undefined : tcpDataPair(ctx, conn);
  if (p === undefined) {
    drop(ctx, 'data-unknown-path');
    return undefined;
  }
  p.counters.bytesReceived += d.data.length;
  return { type: 'data', stream: p.stream, component: p.component, data: d.data, from: d.remote, local: d.local };
}

/** The pair data on a connection belongs to (cached on the connection), or undefined while none may carry it. */
export function tcpDataPair(ctx: AgentContext, conn: TcpConnection): CandidatePair | undefined {
  let p = conn.dataPair;
  if (!conn.validated) return p;
  if (p !== undefined && p.state !== 'failed' && ctx.pairs.get(p.id) === p) return p;
  p = undefined;
  for (const q of ctx.pairs.values()) {
    if (q.stream !== conn.stream || q.local.transport !== 'tcp' || q.state === 'failed' || pairRouteKey(q) !== conn.route) continue;
    if (p === undefined || (q.valid && !p.valid)) p = q;
  }
  conn.dataPair = p;
  return p;
}
