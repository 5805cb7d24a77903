/**
 * Consent freshness (RFC 7675) and keepalives (RFC 8445 §11) on the pairs that carry data: the selected pair of
 * each component, the previous one during a restart, or the valid pair data used before selection (§12.1).
 *
 * A full agent with consent on sends a consent check every 0.8-1.2 x the interval (§5.1) and stops sending data
 * once no answer came for `consentTimeoutMs`; a 403 answer revokes consent at once (§5.2). With consent off, or on a
 * lite agent, Binding indications keep NAT bindings open ("All endpoints MUST send keepalives", §11).
 * @module
 */
import { newTransactionId } from '../stun/transaction.js';
import type { Datagram } from '../types.js';
import { encodeCheckRequest, encodeKeepalive, prflxPriority } from './checks.js';
import { consentEnabled, pairInfo, type AgentContext } from './context.js';
import { pairRoute } from './tcp-connections.js';
import type { CandidatePair } from './pair.js';
import type { ConsentTx } from './transactions.js';

/** The pairs that carry data, one per component at most. */
export function activePairs(ctx: AgentContext): CandidatePair[] {
  const out: CandidatePair[] = [];
  for (const s of ctx.streams) {
    for (const comp of s.components) {
      const d = comp.dataPair;
      const p = comp.selected ?? comp.previous ?? (d?.valid && s.checklist.state !== 'failed' ? d : undefined);
      if (p) out.push(p);
    }
  }
  return out;
}

/** A consent check found due more than this late (ms) means the process itself was stalled. */
const STALLED_MS = 1000;
/** How long after such a wake-up the check goes: the edge reads what queued up in its sockets first. */
const AFTER_STALL_MS = 50;

/** RFC 7675 §5.1: the next consent check comes uniformly within 0.8..1.2 x the period. */
export function consentJitter(ctx: AgentContext): number {
  const b = ctx.random.bytes(2);
  const u = ((b[0]! << 8) | b[1]!) / 65535;
  return Math.round(ctx.config.consentIntervalMs * (0.8 + 0.4 * u));
}

/** Consent checks, consent expiry and keepalives that are due. */
export function runConsent(ctx: AgentContext, now: number): void {
  const { consentTimeoutMs, keepaliveIntervalMs } = ctx.config;
  const consent = consentEnabled(ctx);
  for (const p of activePairs(ctx)) {
    if (p.consentLost) continue;
    if (consent) {
      if (now - p.lastConsentAt >= consentTimeoutMs) {
        loseConsent(ctx, p);
        continue;
      }
      const next = ctx.consentNext.get(p) ?? now;
      if (now - next > STALLED_MS) {
        // Due long ago: this process was stalled (SIGSTOP, a paused VM, a blocked event loop), and its socket's
        // receive buffer may be full of what arrived meanwhile. Sent now, the check's answer would land behind that
        // backlog and be dropped, and RFC 7675 §5.1 sends each check once only: the next one would come 4-6 s later.
        // Sent once the edge has read the backlog, the answer gets through and consent (and the state) recover at
        // once. The period between checks only grows, as §5.1 allows.
        ctx.consentNext.set(p, now + AFTER_STALL_MS);
        continue;
      }
      if (now >= next) {
        sendConsent(ctx, now, p);
        ctx.consentNext.set(p, now + consentJitter(ctx));
      }
    } else if (now - p.lastSentAt >= keepaliveIntervalMs) {
      const route = pairRoute(ctx.tcp, p);
      if (route !== undefined) ctx.transmits.push({ ...route, data: encodeKeepalive(newTransactionId(ctx.random)) });
      p.lastSentAt = now;
    }
  }
}

/** When `runConsent` next has work: a consent check, an expiry, the `disconnected` mark, or a keepalive. */
export function consentDeadline(ctx: AgentContext): number | undefined {
  let t = Infinity;
  const { consentTimeoutMs, disconnectedTimeoutMs, keepaliveIntervalMs } = ctx.config;
  const consent = consentEnabled(ctx);
  for (const p of activePairs(ctx)) {
    if (consent && !p.consentLost) {
      t = Math.min(t, ctx.consentNext.get(p) ?? Infinity, p.lastConsentAt + consentTimeoutMs);
      // The state turns `disconnected` at this point (see state.ts); a passed one needs no wake-up.
      const disc = p.lastConsentAt + disconnectedTimeoutMs;
      if (disc > ctx.now) t = Math.min(t, disc);
    }
    if (!consent) t = Math.min(t, p.lastSentAt + keepaliveIntervalMs);
  }
  return t === Infinity ? undefined : t;
}

/** One consent check on `p` (also the check on a reopened ICE-TCP connection, RFC 6544 §11.1). */
export function sendConsent(ctx: AgentContext, now: number, p: CandidatePair): void {
  const s = ctx.streams[p.stream]!;
  // The previous pair of a restart keeps its session's credentials (RFC 8445 §9, §12.1): the peer's old session
  // answers only those until it applied our new parameters.
  const comp = s.components[p.component - 1];
  const generation = comp?.previous === p ? comp.previousGeneration : undefined;
  const remote = generation?.remote ?? s.remote;
  const local = generation?.local ?? s.local;
  const route = pairRoute(ctx.tcp, p);
  if (!remote || !route) return; // a TCP pair without its connection: closing it already lost consent (tcp.ts)
  const id = newTransactionId(ctx.random);
  const data = encodeCheckRequest({
    transactionId: id,
    username: `${remote.ufrag}:${local.ufrag}`,
    priority: prflxPriority(p.local.priority),
    role: ctx.role,
    tieBreaker: ctx.tieBreaker,
    useCandidate: false,
    key: remote.key,
  });
  const request: Datagram = { ...route, data };
  // RFC 7675 §5.1: sent once, new transaction ID each time; a late answer still refreshes consent.
  const tx: ConsentTx = { kind: 'consent', pair: p, request, sentAt: now, expiresAt: now + ctx.config.consentTimeoutMs, key: remote.key };
  ctx.txs.add(id, tx);
  if (ctx.trace) ctx.trace.consentSent(now, tx);
  ctx.transmits.push(request);
  p.counters.requestsSent++;
  p.lastSentAt = now;
}

/**
 * RFC 7675 §5.1, §5.2: consent expired or was revoked. "The same ICE credentials MUST NOT be used on the affected
 * 5-tuple again": no data, no consent check, and no check either, a nomination in flight on it included.
 */
export function loseConsent(ctx: AgentContext, p: CandidatePair): void {
  if (p.consentLost) return;
  p.consentLost = true;
  if (ctx.trace) ctx.trace.consentLost(p);
  ctx.consentNext.delete(p);
  for (const q of p.checkPair && p.checkPair !== p ? [p, p.checkPair] : [p]) {
    ctx.txs.dropPair(q);
    ctx.streams[q.stream]?.checklist.dequeue(q);
    if (q.nomination === 'nominating') q.nomination = 'none';
  }
  ctx.events.push({ type: 'consent-lost', stream: p.stream, component: p.component, pair: pairInfo(p) });
}
