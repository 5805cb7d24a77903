/**
 * Reopening the connection of a selected ICE-TCP pair (RFC 6544 §11.1 with §10): "If an agent needs to send media
 * on the selected candidate pair, and its TCP connection has closed, then: if the agent's local candidate is
 * tcp-active or tcp-so, it MUST reopen a connection to the remote candidate of the selected pair; if tcp-passive,
 * the agent MUST await an incoming connection request".
 *
 * - Active or so side: the pair stays selected and succeeded; the core asks the edge for a new connection on the
 *   pair's route (`tcp-connect`, one attempt at a time, `REOPEN_ATTEMPTS` attempts with `REOPEN_BACKOFF_MS`
 *   between them, each bounded by `tcpConnectTimeoutMs`), then the pair fails as any lost connection's does. Once
 *   open, a full agent sends a Binding check on it with the pair's credentials (a consent check: its answer
 *   refreshes consent, RFC 7675), which is also the first frame the peer's accepting side needs (§7.2).
 * - Passive side: the pair stays selected; a new accepted connection from the pair's remote IP on the pair's base
 *   that proves itself with an authenticated check (§7.2) takes over the pair's route ({@link adoptReopened}).
 * - Meanwhile data on the pair is dropped (`send` returns false), not buffered; consent (RFC 7675) keeps running
 *   and ends the pair when the peer is really gone.
 * @module
 */
import { canonicalIp } from '../ip.js';
import { sendConsent } from './consent.js';
import type { AgentContext } from './context.js';
import type { CandidatePair } from './pair.js';
import { requestConnection } from './tcp-open.js';
import { pairRouteKey, type TcpConnection } from './tcp-connections.js';

/** Connection attempts for one loss of the selected connection (the first one at once). */
export const REOPEN_ATTEMPTS = 3;
/** Wait before attempt n+1 (ms), after attempt n failed: short, since media is dropped meanwhile. */
export const REOPEN_BACKOFF_MS: readonly number[] = [0, 500, 2000];

/** A selected pair waiting for its connection again (active or so side). */
export interface Reopening {
  readonly pair: CandidatePair;
  /** Attempts asked for so far. */
  attempts: number;
  /** When the next attempt is due; undefined while one is under way. */
  nextAt: number | undefined;
}

/**
 * Whether `p`, whose connection just went, is the selected pair of its component and keeps it (§11.1): nominated,
 * consent held, its stream still in place.
 */
export function keepsSelection(ctx: AgentContext, p: CandidatePair): boolean {
  const comp = ctx.streams[p.stream]?.components[p.component - 1];
  return comp !== undefined && comp.selected === p && p.nominated && p.valid && !p.consentLost && p.local.transport === 'tcp';
}

/**
 * The selected pair `p` lost its connection. Active or so side: schedules the next attempt and returns true, or
 * returns false once the attempts are used up (the caller fails it). Passive side: true (it awaits the peer).
 */
export function reopenLost(ctx: AgentContext, now: number, p: CandidatePair): boolean {
  if (p.local.tcpType !== 'active' && p.local.tcpType !== 'so') return true;
  const table = ctx.tcp.reopening;
  let r = table.get(p);
  if (r === undefined) table.set(p, (r = { pair: p, attempts: 0, nextAt: undefined }));
  if (r.attempts >= REOPEN_ATTEMPTS) {
    table.delete(p);
    return false;
  }
  r.nextAt = now + (REOPEN_BACKOFF_MS[r.attempts] ?? REOPEN_BACKOFF_MS[REOPEN_BACKOFF_MS.length - 1]!);
  return true;
}

/** Attempts that are due (from `runTcp`); entries whose pair is no longer selected are forgotten. */
export function runReopen(ctx: AgentContext, now: number): void {
  if (ctx.tcp.anyReopening.size === 0) return;
  const table = ctx.tcp.reopening;
  for (const r of [...table.values()]) {
    if (!keepsSelection(ctx, r.pair)) {
      table.delete(r.pair);
      continue;
    }
    if (r.nextAt === undefined || now < r.nextAt) continue;
    r.nextAt = undefined;
    r.attempts++;
    requestConnection(ctx, now, r.pair);
  }
}

/**
 * A connection we opened is up: a selected pair waiting for it gets its check now (§11.1: "If the agent opened the
 * connection and is a full agent, it MUST send a STUN connectivity check").
 */
export function reopened(ctx: AgentContext, now: number, conn: TcpConnection): void {
  if (ctx.tcp.anyReopening.size === 0) return;
  const table = ctx.tcp.reopening;
  for (const r of [...table.values()]) {
    if (r.pair.stream !== conn.stream || pairRouteKey(r.pair) !== conn.route) continue;
    table.delete(r.pair);
    if (!ctx.config.lite && keepsSelection(ctx, r.pair)) sendConsent(ctx, now, r.pair);
  }
}

/**
 * An accepted connection just proved itself with an authenticated check (§7.2). When a selected pair on its base
 * lost its connection to the same peer address (the peer reopened it from a new port, §11.1), the connection takes
 * over that pair's route: the pair's data and consent checks go on it, and the §8 closing keeps it.
 */
export function adoptReopened(ctx: AgentContext, conn: TcpConnection): void {
  if (conn.direction !== 'passive' || ctx.tcp.byRoute.get(conn.route) !== conn) return;
  const s = ctx.streams[conn.stream];
  const comp = s?.components[conn.candidate.component - 1];
  const p = comp?.selected;
  if (p === undefined || !keepsSelection(ctx, p)) return;
  if (p.local.base.port !== conn.candidate.base.port || canonicalIp(p.local.base.address) !== canonicalIp(conn.candidate.base.address)) return;
  if (canonicalIp(p.remote.address) !== conn.remote.address) return;
  const route = pairRouteKey(p);
  if (route === conn.route || ctx.tcp.byRoute.has(route)) return; // its own connection, or one still stands
  ctx.tcp.reroute(conn, route);
}
