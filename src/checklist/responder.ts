/**
 * The binding responder (RFC 8445 §7.3): authenticating a connectivity check and answering it (RFC 8489 §9.1.3:
 * 400, 401; §6.3.1.1: 420; RFC 8445 §7.3.1.1: 487 on a role conflict), then what the request means for the
 * checklist: a peer-reflexive remote candidate (§7.3.1.3), a triggered check (§7.3.1.4), a nomination (§7.3.1.5),
 * or, on a lite agent, the nominated pair itself (§7.3.2). Requests that arrive before the peer's parameters are
 * answered and kept until they arrive (§7.3).
 * @module
 */
import type { LocalCandidate } from '../candidates/candidate.js';
import { unknownComprehensionRequired } from '../stun/attributes.js';
import { ErrorCode } from '../stun/constants.js';
import { verifyIntegrity, type DecodedStunMessage } from '../stun/message.js';
import { sameAddress, type Datagram, type TransportAddress } from '../types.js';
import { canPair, type RemoteCandidate } from './checklist.js';
import { encodeCheckError, encodeCheckSuccess, parseCheck } from './checks.js';
import { baseCandidate, drop, evictIdleRemote, insertPair, markDirty, MAX_UNPAIRED_REQUEST_COUNTS, setPairState, type AgentContext, type Credentials, type PendingRequest, type Stream } from './context.js';
import { acceptLiteNomination, honourUseCandidate } from './nomination.js';
import { prflxTcpType, wireKey } from './tcp-connections.js';
import { repairRoleConflict } from './role.js';

const MAX_PENDING_REQUESTS = 64;
/**
 * Error responses to requests that could not be authenticated (400, 401), per second and agent. Such requests may
 * carry a forged source address, so every answer is reflected traffic (RFC 8489 §16.1.2); beyond this budget they are
 * dropped and counted. An authenticated peer is never limited.
 */
const MAX_UNAUTHENTICATED_REPLIES_PER_SECOND = 64;

function respond(ctx: AgentContext, d: Datagram, data: Uint8Array): void {
  ctx.transmits.push({ local: d.local, remote: d.remote, data, ...(d.transport ? { transport: d.transport } : {}) });
}

/** Answers a request that could not be authenticated, within the reflection budget. */
function respondUnauthenticated(ctx: AgentContext, now: number, d: Datagram, transactionId: Uint8Array, code: number, reason: string): void {
  if (now - ctx.unauthWindowStart >= 1000) {
    ctx.unauthWindowStart = now;
    ctx.unauthReplies = 0;
  }
  if (ctx.unauthReplies >= MAX_UNAUTHENTICATED_REPLIES_PER_SECOND) return drop(ctx, 'unauthenticated-reply-limit');
  ctx.unauthReplies++;
  respond(ctx, d, encodeCheckError(transactionId, code, reason));
}

/** Handles a Binding request. Returns whether it was for this agent. */
export function handleRequest(ctx: AgentContext, now: number, d: Datagram, m: DecodedStunMessage): boolean {
  // RFC 8445 §7.3: ICE uses FINGERPRINT; without it this is not a check for us.
  if (!m.hasFingerprint) {
    drop(ctx, 'request-no-fingerprint');
    return false;
  }
  const check = parseCheck(m);
  // RFC 8489 §9.1.3: USERNAME and MESSAGE-INTEGRITY are both required, else 400.
  if (check.username === undefined || (m.integrityOffset < 0 && m.integritySha256Offset < 0)) {
    respondUnauthenticated(ctx, now, d, m.transactionId, ErrorCode.BadRequest, 'Bad Request');
    drop(ctx, 'request-bad');
    return true;
  }
  const colon = check.username.indexOf(':');
  const lfrag = colon > 0 ? check.username.slice(0, colon) : undefined;
  const rfrag = colon > 0 ? check.username.slice(colon + 1) : '';
  const creds = lfrag === undefined ? undefined : credentialsFor(ctx, lfrag);
  if (!creds || verifyIntegrity(m, creds.key) !== 'ok') {
    // RFC 8489 §9.1.3: unknown username or bad integrity: 401, no state change.
    respondUnauthenticated(ctx, now, d, m.transactionId, ErrorCode.Unauthorized, 'Unauthorized');
    drop(ctx, creds ? 'request-integrity' : 'request-username');
    return true;
  }
  // RFC 8489 §6.3.1.1: after authentication, unknown comprehension-required attributes get a 420.
  const unknown = unknownComprehensionRequired(m);
  if (unknown.length > 0) {
    respond(ctx, d, encodeCheckError(m.transactionId, ErrorCode.UnknownAttribute, 'Unknown Attribute', creds.key, unknown));
    drop(ctx, 'request-unknown-attribute');
    return true;
  }
  if (isPreviousGeneration(ctx, creds)) {
    // A check of the session a restart replaced, on its previous pair (consent, RFC 7675): answered with that
    // session's password while the pair carries data (RFC 8445 §9); it starts nothing in the new session, and its
    // role attributes describe the old one, so no role repair either.
    respond(ctx, d, encodeCheckSuccess(m.transactionId, d.remote, creds.key));
    return true;
  }
  const found = d.transport === 'tcp' ? localForConnection(ctx, d, creds) : localForBase(ctx, d.local);
  const counted = found && found.stream.checklist.find(found.local.component, found.local.base.address, found.local.base.port, d.remote.address, d.remote.port, found.local.transport);
  if (counted) counted.counters.requestsReceived++;
  if (!ctx.config.lite && repairRoleConflict(ctx, check.controlling, check.controlled, counted)) {
    respond(ctx, d, encodeCheckError(m.transactionId, ErrorCode.RoleConflict, 'Role Conflict', creds.key));
    if (ctx.trace) ctx.trace.requestAnswered(d.local, d.remote, counted, check.useCandidate, ErrorCode.RoleConflict);
    return true;
  }
  respond(ctx, d, encodeCheckSuccess(m.transactionId, d.remote, creds.key));
  if (ctx.trace) ctx.trace.requestAnswered(d.local, d.remote, counted, check.useCandidate, 200);
  if (counted) counted.counters.responsesSent++;
  if (!found) {
    drop(ctx, 'request-unknown-base');
    return true;
  }
  const s = found.stream;
  const priority = check.priority ?? 0;
  if (ctx.config.lite) {
    if (check.useCandidate) acceptLiteNomination(ctx, now, s, found.local, d.remote, priority);
    if (!counted) countFirstRequest(ctx, s, found.local, d.remote);
    return true;
  }
  if (!s.remote || s.remote.ufrag !== rfrag || s.nextLocals?.includes(found.local)) {
    if (s.pending.length < MAX_PENDING_REQUESTS) s.pending.push({ local: found.local, from: d.remote, rfrag, priority, useCandidate: check.useCandidate });
    return true;
  }
  afterAcceptedRequest(ctx, s, found.local, d.remote, priority, check.useCandidate);
  if (!counted) countFirstRequest(ctx, s, found.local, d.remote);
  return true;
}

/**
 * The request (and its answer) that created its pair (a peer-reflexive one, e.g. on an accepted TCP connection). A
 * lite agent pairs only at nomination: the requests it answered before are kept aside and counted in then.
 */
function countFirstRequest(ctx: AgentContext, s: Stream, local: LocalCandidate, from: TransportAddress): void {
  const p = s.checklist.find(local.component, local.base.address, local.base.port, from.address, from.port, local.transport);
  if (p === undefined && !ctx.config.lite) return;
  const key = `${local.component}|${local.transport}|${local.base.address}|${local.base.port}|${from.address}|${from.port}`;
  const earlier = s.unpairedRequests?.get(key) ?? 0;
  if (p === undefined) {
    const counts = (s.unpairedRequests ??= new Map());
    if (earlier > 0 || counts.size < MAX_UNPAIRED_REQUEST_COUNTS) counts.set(key, earlier + 1);
    return;
  }
  if (earlier > 0) s.unpairedRequests!.delete(key);
  p.counters.requestsReceived += 1 + earlier;
  p.counters.responsesSent += 1 + earlier;
}

/**
 * Credentials of the session `lfrag` names: the agent's current ones, those a stream still runs, or those of a
 * previous pair kept over a restart.
 */
export function credentialsFor(ctx: AgentContext, lfrag: string): Credentials | undefined {
  if (lfrag === ctx.creds.ufrag) return ctx.creds;
  for (const s of ctx.streams) if (s.local.ufrag === lfrag) return s.local;
  for (const s of ctx.streams) {
    for (const comp of s.components) if (comp.previousGeneration?.local.ufrag === lfrag) return comp.previousGeneration.local;
  }
  return undefined;
}

/** Credentials that only a previous pair still uses (no stream runs them any more). */
function isPreviousGeneration(ctx: AgentContext, creds: Credentials): boolean {
  return creds !== ctx.creds && !ctx.streams.some((s) => s.local === creds);
}

/**
 * The local candidate of the session a check on an ICE-TCP connection belongs to (its 5-tuple's local port may be
 * any). A restart on new ports gathers the TCP candidates again on the same bases (the listeners are kept, RFC 6544
 * §9.2), so a connection of the previous session carries the new session's checks too: they belong to its
 * candidate on the same base (the next session's while the peer's answer is awaited), not to the candidate the
 * connection was opened for, which the new session no longer has.
 */
function localForConnection(ctx: AgentContext, d: Datagram, creds: Credentials): { stream: Stream; local: LocalCandidate } | undefined {
  const conn = ctx.tcp.byWire.get(wireKey(d.local, d.remote));
  const stream = conn && ctx.streams[conn.stream];
  if (conn === undefined || stream === undefined) return undefined;
  const c = conn.candidate;
  const list = stream.nextLocals !== undefined && creds === ctx.creds && stream.local !== creds ? stream.nextLocals : stream.locals;
  if (list.includes(c)) return { stream, local: c };
  let same: LocalCandidate | undefined;
  for (const l of list) {
    if (l.transport !== 'tcp' || l.tcpType !== c.tcpType || l.component !== c.component || !sameAddress(l.base, c.base)) continue;
    if (l.type === c.type) return { stream, local: l };
    same ??= l;
  }
  return { stream, local: same ?? c };
}

function localForBase(ctx: AgentContext, base: TransportAddress): { stream: Stream; local: LocalCandidate } | undefined {
  for (const s of ctx.streams) {
    for (let c = 1; c <= s.componentCount; c++) {
      const l = baseCandidate(s, c, base);
      if (l) return { stream: s, local: l };
    }
  }
  // A check of the peer's new session on a port gathered for ours before our session started: kept as early.
  for (const s of ctx.streams) {
    const l = s.nextLocals?.find((x) => sameAddress(x.base, base) && (x.type === 'host' || x.type === 'relay'));
    if (l) return { stream: s, local: l };
  }
  return undefined;
}

/** Requests kept from before the peer's parameters arrived (RFC 8445 §7.3), processed now that they are known. */
export function processEarlyRequests(ctx: AgentContext, s: Stream, early: readonly PendingRequest[]): void {
  for (const p of early) {
    if (p.rfrag === s.remote?.ufrag && s.locals.includes(p.local)) afterAcceptedRequest(ctx, s, p.local, p.from, p.priority, p.useCandidate);
  }
}

/** RFC 8445 §7.3.1.3-7.3.1.5 for an accepted request on a full agent. */
function afterAcceptedRequest(ctx: AgentContext, s: Stream, local: LocalCandidate, from: TransportAddress, priority: number, useCandidate: boolean): void {
  const component = local.component;
  let remote = s.remotes.find((r) => r.component === component && r.transport === local.transport && r.address === from.address && r.port === from.port);
  if (!remote) {
    // At the limit, a peer-reflexive candidate (proven by this authenticated check) replaces an idle one.
    if (s.remotes.length >= ctx.config.remoteCandidateLimit && !evictIdleRemote(ctx, s)) return drop(ctx, 'prflx-remote-limit');
    // RFC 8445 §7.3.1.3: a peer-reflexive remote candidate, foundation unlike every other remote one.
    let foundation: string;
    do foundation = `prflx${++s.prflxCount}`;
    while (s.remotes.some((r) => r.foundation === foundation));
    const tcpType = prflxTcpType(local); // RFC 6544 §7.2: typically a check on a passive candidate
    const cand: RemoteCandidate = { foundation, component, transport: local.transport, priority, address: from.address, port: from.port, type: 'prflx', ...(tcpType ? { tcpType } : {}) };
    remote = cand;
    s.remotes.push(cand);
    if (ctx.trace) ctx.trace.remoteCandidate(s.index, cand, 'peer-reflexive');
    ctx.events.push({ type: 'prflx-remote', stream: s.index, candidate: cand });
  }
  let pair = s.checklist.find(component, local.base.address, local.base.port, from.address, from.port, local.transport);
  // After nomination (RFC 8445 §8.1.2) pairs of the component are gone; only a new nomination re-adds one.
  if (s.components[component - 1]?.selected && !useCandidate && !pair) return;
  // RFC 8445 §7.3.1.4: triggered checks.
  if (!pair) {
    if (!canPair(local, remote)) return;
    pair = insertPair(ctx, s, local, remote).added;
    if (!pair) return drop(ctx, 'checklist-full');
    setPairState(ctx, pair, 'waiting');
    s.checklist.enqueueTriggered(pair);
  } else if (pair.state === 'in-progress') {
    ctx.txs.cancelChecks(pair);
    setPairState(ctx, pair, 'waiting');
    s.checklist.enqueueTriggered(pair);
  } else if (pair.state !== 'succeeded') {
    setPairState(ctx, pair, 'waiting');
    s.checklist.enqueueTriggered(pair);
  }
  if (s.checklist.state === 'failed' && pair.state === 'waiting') s.checklist.state = 'running';
  // RFC 8445 §7.3.1.5: the controlled agent honours USE-CANDIDATE.
  if (useCandidate && ctx.role === 'controlled') honourUseCandidate(ctx, s, pair);
  markDirty(ctx);
}
