/**
 * What comes back from a connectivity check (RFC 8445 §7.2.5): authentication, the symmetry rule (§7.2.5.2.1), a
 * role conflict (§7.2.5.1), failure (§7.2.5.2), success with its valid pair and peer-reflexive local candidate
 * (§7.2.5.3), and the transaction timers: retransmission by RTO (§14.3) and time-out (§7.2.5.2.3). Consent
 * answers (RFC 7675) refresh consent or revoke it.
 * @module
 */
import type { LocalCandidate } from '../candidates/candidate.js';
import { crc32 } from 'node:zlib';
import { Attr, getAttribute } from '../stun/attributes.js';
import { ErrorCode } from '../stun/constants.js';
import { verifyIntegrity, type DecodedStunMessage } from '../stun/message.js';
import { sameAddress, type Datagram, type TransportAddress } from '../types.js';
import { unfreezeFoundation } from './checklist.js';
import { errorCodeOf } from './checks.js';
import { checklists, drop, newPair, setPairState, type AgentContext, type Stream } from './context.js';
import { loseConsent } from './consent.js';
import { nominatorFor, updateSelection } from './nomination.js';
import type { CandidatePair } from './pair.js';
import { roleConflictAnswered } from './role.js';
import { txDeadline, type CheckTx } from './transactions.js';

/**
 * 487 answers a pair's checks may get before the pair fails. One switch settles a real conflict (§7.2.5.1: the agent
 * takes the other role and a new tie-breaker); a peer that answers 487 whatever the role would otherwise keep the
 * agent switching and checking forever (the agent then fails on its normal timers).
 */
export const MAX_ROLE_CONFLICTS_PER_PAIR = 4;

/** Handles a Binding response. Returns whether it answered one of this agent's transactions. */
export function handleResponse(ctx: AgentContext, now: number, d: Datagram, m: DecodedStunMessage): boolean {
  const tx = ctx.txs.get(m.transactionId);
  if (!tx) return false;
  if (verifyIntegrity(m, tx.key) !== 'ok') {
    // Not authenticated: ignore it (keep waiting for a genuine answer).
    drop(ctx, 'response-integrity');
    return true;
  }
  ctx.txs.delete(m.transactionId);
  const pair = tx.pair;
  pair.counters.responsesReceived++;
  // RFC 8445 §7.2.5.2.1: the response must come from where the request went, to where it came from.
  const symmetric = sameAddress(d.remote, tx.request.remote) && sameAddress(d.local, tx.request.local);
  if (ctx.trace) ctx.trace.response(now, tx, m, symmetric);
  if (tx.kind === 'consent') {
    if (symmetric && m.cls === 'success' && !pair.consentLost) {
      pair.lastConsentAt = now;
      pair.counters.currentRoundTripTime = (now - tx.sentAt) / 1000; // seconds, as RTCIceCandidatePairStats
    } else if (symmetric && m.cls === 'error' && errorCodeOf(m) === ErrorCode.Forbidden) {
      loseConsent(ctx, pair); // RFC 7675 §5.2: immediate revocation
    }
    return true;
  }
  const s = ctx.streams[pair.stream];
  if (!s || !ctx.pairs.has(pair.id)) return true;
  if (!symmetric) {
    drop(ctx, 'response-asymmetric');
    if (!tx.cancelled) checkFailed(ctx, s, tx);
    return true;
  }
  if (m.cls === 'error') {
    if (errorCodeOf(m) === ErrorCode.RoleConflict && ++pair.roleConflicts <= MAX_ROLE_CONFLICTS_PER_PAIR) {
      if (ctx.trace) ctx.trace.roleConflict('response', pair);
      roleConflictAnswered(ctx, tx.role);
      setPairState(ctx, pair, 'waiting');
      s.checklist.enqueueTriggered(pair);
      return true;
    }
    if (!tx.cancelled) checkFailed(ctx, s, tx);
    return true;
  }
  const mapped = getAttribute(m, Attr.XOR_MAPPED_ADDRESS);
  if (!mapped) {
    drop(ctx, 'response-no-mapped');
    checkFailed(ctx, s, tx);
    return true;
  }
  checkSucceeded(ctx, now, s, tx, mapped);
  return true;
}

function checkFailed(ctx: AgentContext, s: Stream, tx: CheckTx): void {
  const pair = tx.pair;
  // A failed nomination of an already valid pair (regular), or of the controlled side's triggered check.
  const nominationFailed = (tx.useCandidate && pair.validPair !== undefined) || (ctx.role === 'controlled' && pair.nomination === 'nominate-on-success');
  if (pair.state === 'succeeded' && !nominationFailed) return; // a stale cancelled duplicate
  setPairState(ctx, pair, 'failed');
  s.checklist.dequeue(pair);
  if (nominationFailed) {
    // RFC 8445 §7.2.5.3.4 / §7.3.1.5: remove from the valid list, pair and checklist Failed. RFC 8863 §4 updates
    // the last part: while the PAC timer runs the checklist MUST NOT go from Running to Failed (a new nomination
    // may still succeed); afterwards the usual failure rules apply (§7.2.5.4 in state.ts).
    if (pair.validPair) s.checklist.removeValid(pair.validPair);
    if (pair.nomination !== 'nominated') pair.nomination = 'none';
    const pacOver = typeof ctx.pacDeadline === 'number' && ctx.now >= ctx.pacDeadline;
    if (pacOver) s.checklist.state = 'failed';
  }
}

function checkSucceeded(ctx: AgentContext, now: number, s: Stream, tx: CheckTx, mapped: TransportAddress): void {
  const pair = tx.pair;
  pair.counters.currentRoundTripTime = (now - tx.sentAt) / 1000; // seconds, as RTCIceCandidatePairStats
  // RFC 8445 §7.2.5.3.1: the mapped address may be a new (peer-reflexive) local candidate.
  // RFC 6544 §7.1: over TCP the mapped address is the connection's own port, not the active candidate's port 9; when
  // no NAT changed it, the pair's local candidate is the valid one (no peer-reflexive candidate per connection).
  let local =
    pair.local.transport === 'tcp' && sameAddress(mapped, tx.request.local)
      ? pair.local
      : s.locals.find((c) => c.component === pair.component && c.transport === pair.local.transport && c.address === mapped.address && c.port === mapped.port);
  if (!local) {
    const base = pair.local.base;
    const foundation = `x${(crc32(`prflx|${base.address}|${pair.local.transport}`) >>> 0).toString(16)}`;
    const prflx: LocalCandidate = {
      foundation,
      component: pair.component,
      transport: pair.local.transport,
      priority: tx.priority,
      address: mapped.address,
      port: mapped.port,
      type: 'prflx',
      relatedAddress: base.address,
      relatedPort: base.port,
      ...(pair.local.tcpType ? { tcpType: pair.local.tcpType } : {}),
      base,
      socket: pair.local.socket,
      ...(pair.local.relayServer ? { relayServer: pair.local.relayServer } : {}),
    };
    local = prflx;
    s.locals.push(prflx);
    if (ctx.trace) ctx.trace.localCandidate(s.index, prflx);
    ctx.events.push({ type: 'prflx-local', stream: s.index, candidate: prflx });
  }
  // RFC 8445 §7.2.5.3.2: the valid pair.
  let valid: CandidatePair | undefined;
  if (local === pair.local) valid = pair;
  else {
    valid =
      s.checklist.valid.find((v) => v.local === local && v.remote === pair.remote) ??
      s.checklist.pairs.find((p) => p.local === local && p.remote === pair.remote);
    if (!valid) {
      valid = newPair(ctx, s, local, pair.remote);
      ctx.pairs.set(valid.id, valid);
    }
  }
  // RFC 8445 §7.2.5.3.3.
  setPairState(ctx, pair, 'succeeded');
  setPairState(ctx, valid, 'succeeded');
  pair.validPair = valid;
  valid.checkPair = pair;
  s.checklist.addValid(valid);
  valid.lastConsentAt = now;
  pair.lastConsentAt = now;
  const comp = s.components[pair.component - 1]!;
  comp.firstValidAt ??= now;
  for (const p of unfreezeFoundation(pair.foundation, checklists(ctx))) {
    ctx.events.push({ type: 'pair-state', stream: p.stream, component: p.component, pairId: p.id, state: 'waiting' });
  }
  if (pair.nomination !== 'nominating' || tx.useCandidate) s.checklist.dequeue(pair);
  // RFC 8445 §7.2.5.3.4.
  if (nominatorFor(ctx).nominatesOnSuccess(pair, tx.useCandidate)) {
    if (pair.nomination === 'nominating') pair.nomination = 'none';
    valid.nomination = 'nominated';
  }
  if (ctx.trace) ctx.trace.pairValid(pair, valid);
  updateSelection(ctx, s, pair.component);
}

/** Retransmissions (RTO, RFC 8445 §14.3) and time-outs (§7.2.5.2.3) that are due; consent checks expire. */
export function runTransactions(ctx: AgentContext, now: number): void {
  let earliest = Infinity;
  for (const [k, tx] of ctx.txs.entries()) {
    if (tx.kind === 'consent') {
      if (now >= tx.expiresAt) ctx.txs.deleteKey(k);
      else earliest = Math.min(earliest, tx.expiresAt);
      continue;
    }
    const r = tx.timer.handleTimeout(now);
    if (r === 'send') {
      if (!tx.cancelled) {
        if (ctx.trace) ctx.trace.retransmitted(now, tx);
        ctx.transmits.push(tx.request);
        tx.pair.counters.requestsSent++;
        tx.pair.lastSentAt = now;
      }
      // Owed sends collapse into one; skip the rest.
      while (tx.timer.handleTimeout(now) === 'send');
      if (tx.timer.finished) {
        txTimedOut(ctx, k, tx);
        continue;
      }
    } else if (r === 'timeout') {
      txTimedOut(ctx, k, tx);
      continue;
    }
    earliest = Math.min(earliest, txDeadline(tx) ?? Infinity);
  }
  ctx.txs.setEarliest(earliest);
}

function txTimedOut(ctx: AgentContext, key: string, tx: CheckTx): void {
  ctx.txs.deleteKey(key);
  if (ctx.trace) ctx.trace.timedOut(ctx.now, tx);
  if (tx.cancelled) {
    // A check cancelled by RFC 8445 §8.1.2 that never got its late answer: the pair is done with, not pending.
    const p = tx.pair;
    const queued = ctx.streams[p.stream]?.checklist.triggered.includes(p) ?? false;
    if (p.state === 'in-progress' && !queued && !ctx.txs.hasLiveCheck(p) && ctx.pairs.has(p.id)) setPairState(ctx, p, 'failed');
    return;
  }
  const s = ctx.streams[tx.pair.stream];
  // RFC 8445 §7.2.5.2.3.
  if (s && ctx.pairs.has(tx.pair.id)) checkFailed(ctx, s, tx);
}
