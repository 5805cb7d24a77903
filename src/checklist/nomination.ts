/**
 * Nomination and selection (RFC 8445 §8; RFC 5245 §8.1.1.2 for aggressive nomination; §7.3.2 for lite agents).
 *
 * What an agent does about nomination depends on its role, its mode and the peer, and the role can change in the
 * middle of a session (a 487, §7.2.5.1). So each behaviour is a strategy, chosen afresh from the current role and
 * mode (pion's `selection.go` cuts it the same way):
 * - controlling, regular (§8.1.1): once a component has a valid pair and no higher-priority pair of it may still
 *   succeed (see `mayStillSucceed`; at most `nominationTimeoutMs` after its first valid pair), repeat that pair's
 *   check with USE-CANDIDATE;
 * - controlling, aggressive (RFC 5245 only; never facing a peer that signals ice2 or is lite, §10): every check
 *   carries USE-CANDIDATE;
 * - controlled (§7.3.1.5): a USE-CANDIDATE request nominates the pair once its own check has succeeded;
 * - lite (§7.3.2): the pair a full peer nominates goes straight into the valid list.
 * Selection is the same for all: the highest-priority nominated valid pair of a component (§8.1.1), after which
 * the component's other pairs are dropped (aggressive keeps the higher-priority ones, RFC 5245 §8.1.2) and the
 * checklist completes (§8.1.2). What the agent reports and sends on before that, the best valid pair, is
 * `reportSelection`'s (§12.1). RFC 8863 §4 leaves the controlling agent "full discretion" over when to nominate:
 * the criteria here are the evidence rule above, not the PAC timer (docs/deviations.md).
 * @module
 */
import type { Candidate, LocalCandidate } from '../candidates/candidate.js';
import type { TransportAddress } from '../types.js';
import {
  componentOf,
  componentsInUse,
  consentEnabled,
  drop,
  insertPair,
  liteWaitsForValidPairs,
  markDirty,
  nominationMode,
  pairInfo,
  setPairState,
  type AgentContext,
  type Stream,
} from './context.js';
import { consentJitter } from './consent.js';
import type { CandidatePair } from './pair.js';
import { prflxTcpType } from './tcp-connections.js';

/** One way of nominating. */
export interface Nominator {
  /** A check of `pair` carries USE-CANDIDATE. */
  useCandidate(pair: CandidatePair): boolean;
  /** A successful check of `pair`, sent with USE-CANDIDATE or not, nominates the valid pair it produced. */
  nominatesOnSuccess(pair: CandidatePair, sentUseCandidate: boolean): boolean;
  /** A pending `pair` above the selected one may still be nominated, so selection keeps it (RFC 5245 §8.1.2). */
  mayStillNominate(pair: CandidatePair): boolean;
  /** Chooses pairs to nominate, when this strategy chooses at all. */
  tick(ctx: AgentContext, now: number): void;
  /** When `tick` next has something to decide. */
  deadline(ctx: AgentContext): number | undefined;
}

const nominatedBeforeSuccess = (p: CandidatePair): boolean => p.nomination === 'nominate-on-success';

const controllingRegular: Nominator = {
  useCandidate: (p) => p.nomination === 'nominating',
  nominatesOnSuccess: (_p, sent) => sent,
  mayStillNominate: nominatedBeforeSuccess,
  tick: nominateRegular,
  deadline: regularDeadline,
};

const controllingAggressive: Nominator = {
  useCandidate: () => true,
  nominatesOnSuccess: (_p, sent) => sent,
  mayStillNominate: () => true,
  tick: () => undefined,
  deadline: () => undefined,
};

const controlled: Nominator = {
  useCandidate: () => false,
  nominatesOnSuccess: nominatedBeforeSuccess,
  mayStillNominate: nominatedBeforeSuccess,
  tick: () => undefined,
  deadline: () => undefined,
};

/** The strategy in force now. A lite agent is always controlled and sends no checks (§7.3.2 is `acceptLiteNomination`). */
export function nominatorFor(ctx: AgentContext): Nominator {
  if (ctx.role === 'controlled') return controlled;
  return nominationMode(ctx) === 'aggressive' ? controllingAggressive : controllingRegular;
}

/** The component has a selected pair, a nominated valid pair, or a nomination under way. */
function componentNominating(s: Stream, c: number): boolean {
  if (componentOf(s, c)?.selected) return true;
  return s.checklist.pairs.some((p) => p.component === c && p.nomination === 'nominating') || s.checklist.valid.some((p) => p.component === c && p.nominated);
}

/** A pending better pair is waited for this many round trips of the valid pair after its first check... */
export const NOMINATION_WAIT_RTTS = 4;
/** ...and never less than this many Ta (a slow first answer is not yet evidence of a dead pair). */
export const NOMINATION_WAIT_MIN_TA = 2;

/**
 * How long after its first check a better pair stays worth waiting for, given the valid pair `best`: several times
 * the round trip `best` measured, at least a few Ta. Past that, waiting is unlikely to buy a better pair: its
 * answer is overdue compared with a path that works, and a retransmission would come only after the RTO (§14.3,
 * at least 500 ms). The choice is ours: RFC 8445 §8.1.1 leaves the stopping criteria to the agent.
 */
function waitAfterFirstCheck(ctx: AgentContext, best: CandidatePair): number {
  const rttMs = (best.checkPair?.counters.currentRoundTripTime ?? 0) * 1000;
  return Math.max(NOMINATION_WAIT_RTTS * rttMs, NOMINATION_WAIT_MIN_TA * ctx.scheduler.taMs);
}

/**
 * A pending pair may still succeed: it has not been checked yet (it will be, one Ta at a time), or its first check
 * went out less than `waitMs` ago.
 */
function mayStillSucceed(p: CandidatePair, now: number, waitMs: number): boolean {
  if (p.state !== 'frozen' && p.state !== 'waiting' && p.state !== 'in-progress') return false;
  return p.firstCheckAt === undefined || now < p.firstCheckAt + waitMs;
}

/** Relayed ends of a path: 0 direct, 1 through one TURN server, 2 through two. */
function relayedEnds(p: CandidatePair): number {
  return (p.local.type === 'relay' ? 1 : 0) + (p.remote.type === 'relay' ? 1 : 0);
}

/**
 * Pending pairs of component `c` that would be worth more than the valid pair `best` (checked through `cp`): above
 * it in priority and, when `best` is relayed, with fewer relayed ends (a pair relayed on the other side instead is
 * no better a path, however its priority compares).
 */
function betterPending(s: Stream, c: number, best: CandidatePair, cp: CandidatePair): CandidatePair[] {
  const ends = relayedEnds(best);
  return s.checklist.pairs.filter(
    (p) =>
      p.component === c &&
      p.priority > cp.priority &&
      (p.state === 'frozen' || p.state === 'waiting' || p.state === 'in-progress') &&
      (ends === 0 || relayedEnds(p) < ends),
  );
}

/** Controlling, regular nomination (RFC 8445 §8.1.1): pick one valid pair per component and repeat its check. */
function nominateRegular(ctx: AgentContext, now: number): void {
  for (const s of ctx.streams) {
    if (s.checklist.state !== 'running' || !s.remote) continue;
    for (let c = 1; c <= componentsInUse(s); c++) {
      if (componentNominating(s, c)) continue;
      // RFC 7675 §5.1: a pair whose consent expired (data carried before selection) is not used again.
      const best = s.checklist.valid.find((v) => v.component === c && !v.consentLost);
      const cp = best?.checkPair;
      if (!best || !cp) continue;
      const waitMs = waitAfterFirstCheck(ctx, best);
      const worthWaiting = betterPending(s, c, best, cp).some((p) => mayStillSucceed(p, now, waitMs));
      const waited = now >= (componentOf(s, c)!.firstValidAt ?? Infinity) + ctx.config.nominationTimeoutMs;
      if (worthWaiting && !waited) continue;
      cp.nomination = 'nominating';
      if (ctx.trace) ctx.trace.nominating(cp, 'local');
      s.checklist.enqueueTriggered(cp);
      markDirty(ctx);
    }
  }
}

/** When a waiting controlling agent next decides: a better pair's answer becomes overdue, or the cap runs out. */
function regularDeadline(ctx: AgentContext): number | undefined {
  let t = Infinity;
  // Only future deadlines: a passed one is acted on by every input (never spin on it).
  const consider = (at: number): void => {
    if (at > ctx.now && at < t) t = at;
  };
  for (const s of ctx.streams) {
    if (s.checklist.state !== 'running') continue;
    for (let c = 1; c <= componentsInUse(s); c++) {
      const f = componentOf(s, c)!.firstValidAt;
      if (f === undefined || componentNominating(s, c)) continue;
      consider(f + ctx.config.nominationTimeoutMs);
      const best = s.checklist.valid.find((v) => v.component === c && !v.consentLost);
      if (!best?.checkPair) continue;
      const waitMs = waitAfterFirstCheck(ctx, best);
      for (const p of betterPending(s, c, best, best.checkPair)) if (p.firstCheckAt !== undefined) consider(p.firstCheckAt + waitMs);
    }
  }
  return t === Infinity ? undefined : t;
}

/**
 * RFC 8445 §7.3.1.5: the controlled agent honours USE-CANDIDATE on `pair` (the pair the request arrived on, after
 * the triggered-check handling of §7.3.1.4).
 */
export function honourUseCandidate(ctx: AgentContext, s: Stream, pair: CandidatePair): void {
  // A Succeeded pair is valid through its own check, or is itself the valid pair another check produced
  // (RFC 8445 §7.2.5.3.2 case 2): either way that valid pair is the one nominated.
  const valid = pair.validPair ?? (pair.valid ? pair : undefined);
  if (ctx.trace) ctx.trace.nominating(pair, 'peer');
  if (pair.state === 'succeeded' && valid) {
    valid.nomination = 'nominated';
    updateSelection(ctx, s, pair.component);
  } else {
    // The pair's triggered check nominates it on success; an RFC 5245 peer may nominate again (aggressive) after
    // Completed, and the highest-priority nomination wins (a Completed checklist still sends triggered checks).
    pair.nomination = 'nominate-on-success';
  }
}

/** RFC 8445 §7.3.2: a lite agent puts the pair a USE-CANDIDATE request arrived on straight into the valid list. */
export function acceptLiteNomination(ctx: AgentContext, now: number, s: Stream, local: LocalCandidate, from: TransportAddress, priority: number): void {
  let pair = s.checklist.find(local.component, local.base.address, local.base.port, from.address, from.port, local.transport);
  if (!pair) {
    let remote: Candidate | undefined = s.remotes.find((r) => r.component === local.component && r.transport === local.transport && r.address === from.address && r.port === from.port);
    const tcpType = prflxTcpType(local);
    remote ??= { foundation: `prflx${++s.prflxCount}`, component: local.component, transport: local.transport, priority, address: from.address, port: from.port, type: 'prflx', ...(tcpType ? { tcpType } : {}) };
    pair = insertPair(ctx, s, local, remote).added;
    if (!pair) return drop(ctx, 'checklist-full');
  }
  if (ctx.trace) ctx.trace.nominating(pair, 'peer');
  setPairState(ctx, pair, 'succeeded');
  pair.validPair = pair;
  pair.checkPair = pair;
  s.checklist.addValid(pair);
  pair.nomination = 'nominated';
  pair.lastConsentAt = now;
  pair.lastSentAt = now; // the response to this request is the last packet sent on the pair (RFC 8445 §11)
  updateSelection(ctx, s, local.component);
}

/**
 * The pair each component sends on, as reported by `getSelectedPair` and the `selected-pair` event: the nominated
 * (selected) pair, the previous one while a restarted checklist runs (RFC 8445 §12.1), or before nomination the
 * best valid pair whose consent holds (§12.1 allows data on any valid pair; RTCIceTransport and pion select it so).
 * A lite agent sends only once every component has a valid pair (§12.1.1). The event fires when the pair changes,
 * or when its remote candidate was replaced by the signalled one (RFC 8838 §11 rule 4.A).
 */
export function reportSelection(ctx: AgentContext): void {
  for (const s of ctx.streams) {
    const liteWaits = liteWaitsForValidPairs(ctx, s);
    s.components.forEach((comp, i) => {
      const c = i + 1;
      const restarting = s.checklist.state !== 'failed' ? comp.previous : undefined;
      const pair = comp.selected ?? restarting ?? (liteWaits ? undefined : s.checklist.valid.find((v) => v.component === c && !v.consentLost));
      if (pair === undefined) {
        comp.sending = undefined;
        return;
      }
      if (pair === comp.sending && pair.remote === comp.reportedRemote) return;
      comp.sending = pair;
      comp.reportedRemote = pair.remote;
      if (ctx.trace) ctx.trace.sending(pair);
      ctx.events.push({ type: 'selected-pair', stream: s.index, component: c, pair: pairInfo(pair) });
    });
  }
}

/** Selected pair = highest-priority nominated valid pair (RFC 8445 §8.1.1); conclude the component (§8.1.2). */
export function updateSelection(ctx: AgentContext, s: Stream, component: number): void {
  const best = s.checklist.bestValid(component, true);
  const comp = componentOf(s, component)!;
  if (!best || best === comp.selected) {
    maybeComplete(s);
    return;
  }
  const old = comp.selected ?? comp.previous;
  if (old && old !== best) {
    ctx.consentNext.delete(old);
    if (old === comp.previous) {
      comp.retired = old;
      comp.retiredUntil = ctx.now + ctx.config.consentTimeoutMs;
    }
  }
  comp.selected = best;
  if (ctx.trace) ctx.trace.selected(best);
  comp.previous = undefined;
  // The new session selected: the old generation's credentials go (RFC 8445 §9).
  comp.previousGeneration = undefined;
  if (consentEnabled(ctx)) {
    // A pair validated long before it was nominated (the answer to a restart came late) would count as expired
    // (RFC 7675 §5.1) the moment it carries data. The nomination, an authenticated exchange on this very 5-tuple,
    // stands for one consent interval, and a consent check goes out at once.
    const stale = ctx.now - best.lastConsentAt >= ctx.config.consentIntervalMs;
    if (stale) best.lastConsentAt = ctx.now - ctx.config.consentIntervalMs;
    ctx.consentNext.set(best, stale ? ctx.now : ctx.now + consentJitter(ctx));
  }
  const nominator = nominatorFor(ctx);
  // RFC 8445 §8.1.2: remove the component's other Frozen/Waiting pairs, cancel its In-Progress checks.
  for (const p of [...s.checklist.pairs]) {
    if (p.component !== component || p === best || p === best.checkPair) continue;
    // RFC 5245 §8.1.2 (aggressive): checks and pending nominations on higher-priority pairs go on, they may
    // still be nominated and would then be selected.
    if (nominator.mayStillNominate(p) && p.priority > best.priority && p.state !== 'failed') continue;
    if (p.state === 'frozen' || p.state === 'waiting') {
      if (ctx.trace) ctx.trace.pairPruned(p);
      s.checklist.remove(p);
      ctx.pairs.delete(p.id);
    } else if (p.state === 'in-progress') {
      ctx.txs.cancelChecks(p);
    }
  }
  maybeComplete(s);
}

/**
 * Completed once every component has a nominated (selected) pair (RFC 8445 §8.1.2; RFC 5245 §8.1.2 alike for
 * aggressive nomination, whose higher-priority checks go on and may still change the selection afterwards).
 */
export function maybeComplete(s: Stream): void {
  if (s.checklist.state !== 'running') return;
  for (let c = 1; c <= componentsInUse(s); c++) if (!componentOf(s, c)!.selected) return;
  s.checklist.state = 'completed';
}
