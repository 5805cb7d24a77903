/**
 * Dropping a stream's last component: an offer gathers an RTCP component (component 2) beside `a=rtcp-mux` so that
 * a peer declining multiplexing still finds RTCP candidates; once the answer accepts it (RFC 5761 §5.1.1, §5.1.3),
 * RTCP rides on component 1 and component 2 goes, with everything the agent kept for it: local and remote
 * candidates, pairs (checklist, triggered queue, valid list), check and consent transactions, requests held for the
 * peer's parameters, selection and data routes, ICE-TCP connections.
 *
 * Only the highest component may go: RFC 8445 §5.1.1 numbers components from 1 without gaps.
 * @module
 */
import { InvalidStateError } from '../errors.js';
import { markDirty, type AgentContext, type Stream } from './context.js';
import type { CandidatePair } from './pair.js';
import { closeComponentConnections } from './tcp.js';

/** Removes component `component` (the stream's highest, never 1) from stream `s`. */
export function dropComponent(ctx: AgentContext, s: Stream, component: number): void {
  if (!Number.isInteger(component) || component !== s.componentCount || component < 2) {
    throw new InvalidStateError(`stream ${s.index} can only drop its last component (${s.componentCount}), and never component 1; got ${component}`);
  }
  const gone = new Set<CandidatePair>();
  for (const p of ctx.pairs.values()) if (p.stream === s.index && p.component === component) gone.add(p);
  for (const p of s.checklist.pairs) if (p.component === component) gone.add(p);
  // The valid list may hold pairs that are in no checklist (RFC 8445 §7.2.5.3.2 case 3).
  for (const p of s.checklist.valid) if (p.component === component) gone.add(p);
  for (const comp of s.components.slice(component - 1)) {
    for (const p of [comp.selected, comp.sending, comp.previous, comp.retired, comp.dataPair]) if (p) gone.add(p);
  }
  for (const p of gone) {
    s.checklist.remove(p);
    ctx.pairs.delete(p.id);
    ctx.txs.dropPair(p);
    ctx.consentNext.delete(p);
  }
  s.locals = s.locals.filter((c) => c.component !== component);
  s.remotes = s.remotes.filter((c) => c.component !== component);
  s.pending = s.pending.filter((r) => r.local.component !== component);
  s.components = s.components.slice(0, component - 1);
  s.componentCount = component - 1;
  s.checklist.components = component - 1;
  ctx.dataRoutes.clear();
  ctx.lastRoute = undefined;
  // Its ICE-TCP connections close (the edge closes its listeners: they are bases of the component).
  closeComponentConnections(ctx, s.index, component);
  // The state may change: a component that was the last one without a valid pair is gone.
  markDirty(ctx);
}
