/**
 * Roles (RFC 8445 §6.1.1, §7.3.1.1, §7.2.5.1): which agent is controlling, and the repair of a role conflict. Pair
 * priorities depend on the role (§6.1.2.3), so a switch re-sorts every checklist.
 * @module
 */
import type { IceRole } from '../types.js';
import { priorityOf, randomTieBreaker, type AgentContext } from './context.js';
import type { CandidatePair } from './pair.js';

export function switchRole(ctx: AgentContext, role: IceRole): void {
  if (ctx.role === role) return;
  ctx.role = role;
  // RFC 8445 §7.2.5.1 / §7.3.1.1 notes: pair priorities depend on the role.
  for (const p of ctx.pairs.values()) p.priority = priorityOf(ctx, p.local.priority, p.remote.priority);
  for (const s of ctx.streams) s.checklist.resort();
  // A controlled agent nominates nothing: nominations it had queued as controlling are void.
  if (role === 'controlled') for (const p of ctx.pairs.values()) if (p.nomination === 'nominating') p.nomination = 'none';
  if (ctx.trace) ctx.trace.roleChange(role);
  ctx.events.push({ type: 'role-change', role });
}

/**
 * RFC 8445 §7.3.1.1, for a request that claims a role. Returns true when the request must be answered with 487 (the
 * agent keeps its role); may switch the role instead.
 */
export function repairRoleConflict(ctx: AgentContext, controlling: bigint | undefined, controlled: bigint | undefined, pair?: CandidatePair): boolean {
  if (ctx.role === 'controlling' && controlling !== undefined) {
    if (ctx.trace) ctx.trace.roleConflict('request', pair);
    if (ctx.tieBreaker >= controlling) return true;
    switchRole(ctx, 'controlled');
  } else if (ctx.role === 'controlled' && controlled !== undefined) {
    if (ctx.trace) ctx.trace.roleConflict('request', pair);
    if (ctx.tieBreaker >= controlled) switchRole(ctx, 'controlling');
    else return true;
  }
  return false;
}

/**
 * RFC 8445 §7.2.5.1: a 487 answer to our check. Switch to the other role than the one the request claimed, with a
 * new tie-breaker; the caller retries the check.
 */
export function roleConflictAnswered(ctx: AgentContext, claimed: IceRole): void {
  switchRole(ctx, claimed === 'controlling' ? 'controlled' : 'controlling');
  ctx.tieBreaker = randomTieBreaker(ctx.random);
}

/** RFC 8445 §6.1.1: facing a lite peer, a full agent MUST be controlling. */
export function facePeer(ctx: AgentContext, peerIsLite: boolean): void {
  if (peerIsLite && !ctx.config.lite && ctx.role === 'controlled') switchRole(ctx, 'controlling');
}
