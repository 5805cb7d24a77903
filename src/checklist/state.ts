/**
 * Checklist and agent states. A checklist completes once every component has a selected pair (RFC 8445 §8.1.2)
 * and fails when every pair failed (§7.2.5.4), but never before the PAC timer ran out (RFC 8863: patiently awaiting
 * connectivity, 39.5 s from the start of checks by default). The peer's end-of-candidates is what RFC 8838 §8 waits
 * for; it is only a SHOULD, so the PAC timer also stands in for it (RFC 8863 §5): without it the agent fails when
 * the timer runs out, and a candidate that arrives later still revives the checklist.
 *
 * The agent state is the W3C `RTCIceTransportState` over those: `connected` = every component can carry data,
 * `completed` = every checklist Completed, `disconnected` after `disconnectedTimeoutMs` without a consent answer on
 * a selected pair, `failed` on consent expiry (RFC 7675) or a Failed checklist.
 * @module
 */
import { componentsInUse, consentEnabled, setAgentState, type AgentContext } from './context.js';
import { maybeComplete, reportSelection } from './nomination.js';
import type { AgentState } from './types.js';

/** Starts the PAC timer at the first input after checks became possible (`pacDeadline` null). */
export function startPacTimer(ctx: AgentContext, now: number): void {
  if (ctx.pacDeadline === null) ctx.pacDeadline = now + ctx.config.failureGraceMs;
}

/** When the PAC timer runs out while the agent is still looking for a path (a state to re-derive then). */
export function failureDeadline(ctx: AgentContext): number | undefined {
  if (ctx.pacDeadline === null) return ctx.now === -Infinity ? 0 : ctx.now;
  if (typeof ctx.pacDeadline === 'number' && ctx.pacDeadline > ctx.now && ctx.state !== 'connected' && ctx.state !== 'completed') return ctx.pacDeadline;
  return undefined;
}

/** Concludes checklists that completed or failed, then derives the agent state. */
export function updateStates(ctx: AgentContext, now: number): void {
  if (ctx.closed) return;
  // RFC 8445 §7.2.5.4 with RFC 8838 §8 (no failure before end-of-candidates) and RFC 8863 (PAC timer).
  const pacOver = typeof ctx.pacDeadline === 'number' && now >= ctx.pacDeadline;
  for (const s of ctx.streams) {
    if (s.checklist.state !== 'running' || !s.remote) continue;
    maybeComplete(s);
    if (s.checklist.state !== 'running') continue;
    const r = s.checklist.evaluate(pacOver && !ctx.config.lite, componentsInUse(s));
    if (r === 'failed') s.checklist.state = 'failed';
  }
  reportSelection(ctx);
  if (ctx.trace) ctx.trace.checklists();
  setAgentState(ctx, deriveState(ctx, now));
}

function deriveState(ctx: AgentContext, now: number): AgentState {
  if (ctx.streams.length === 0) return 'new';
  let allUsable = true;
  let allSelected = true;
  let lost = false;
  let stale = false;
  let anyFailed = false;
  let anyRemote = false;
  for (const s of ctx.streams) {
    if (s.remote) anyRemote = true;
    // RFC 8445 §8.1.2, §12.1: a Failed checklist produces no selected pairs, so the stream may not carry data.
    // (A previous selected pair kept over a restart stands in only while the new checklist is Running, §12.1.)
    if (s.checklist.state === 'failed') anyFailed = true;
    for (let c = 1; c <= componentsInUse(s); c++) {
      const comp = s.components[c - 1]!;
      const active = comp.selected ?? comp.previous;
      if (active?.consentLost) lost = true;
      // Completed: the stream's checklist concluded (RFC 8445 §8.1.2), or a restart still rides on the old pair.
      const concluded = comp.selected ? s.checklist.state === 'completed' : comp.previous?.nominated === true;
      if (!active || active.consentLost || !concluded) allSelected = false;
      const usable = active && !active.consentLost ? active : s.checklist.valid.find((v) => v.component === c && !v.consentLost);
      if (!usable) allUsable = false;
      else if (usable === active && consentEnabled(ctx) && now - usable.lastConsentAt >= ctx.config.disconnectedTimeoutMs) stale = true;
    }
  }
  if (lost || anyFailed) return 'failed';
  if (allUsable) return stale ? 'disconnected' : allSelected ? 'completed' : 'connected';
  return anyRemote ? 'checking' : 'new';
}
