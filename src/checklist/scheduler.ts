/**
 * Sending checks (RFC 8445 §6.1.4): one new check every Ta (§14.2) across the checklist set, the triggered queue
 * first, then the highest-priority Waiting pair, unfreezing by foundation; each new check also waits for a slot of
 * the process-wide pacer when one is injected (§14.2's 5 ms rule). The check's RTO follows §14.3.
 * @module
 */
import { TransactionTimer, newTransactionId } from '../stun/transaction.js';
import type { Datagram } from '../types.js';
import type { Checklist } from './checklist.js';
import { encodeCheckRequest, prflxPriority } from './checks.js';
import { checklists, setPairState, type AgentContext } from './context.js';
import { pairRoute } from './tcp-connections.js';
import { requestConnection } from './tcp-open.js';
import { nominatorFor } from './nomination.js';
import type { CandidatePair } from './pair.js';
import type { CheckTx } from './transactions.js';

/** Minimum check RTO (RFC 8445 §14.3: MUST NOT be smaller than 500 ms). */
export const MIN_CHECK_RTO_MS = 500;

/** How the check RTO is computed. */
export type RtoFormula = 'rfc8445' | 'linear';

/**
 * RTO of a new check transaction (RFC 8445 §14.3): `MAX(500ms, Ta * N * (Num-Waiting + Num-In-Progress))`, N being
 * the total number of checks to perform. Taken literally that grows with the square of the pair count (25 pairs at
 * Ta 50 ms: 31 s before the first retransmission), so the default `'linear'` formula drops N (the RFC 5245 form,
 * allowed by "Agents MAY calculate the RTO value using other mechanisms"); `'rfc8445'` applies the text as written.
 * Both keep the 500 ms floor, which is a MUST.
 */
export function checkRtoMs(
  taMs: number,
  waiting: number,
  inProgress: number,
  totalChecks: number,
  formula: RtoFormula = 'linear',
): number {
  const n = formula === 'rfc8445' ? Math.max(1, totalChecks) : 1;
  return Math.max(MIN_CHECK_RTO_MS, taMs * n * (waiting + inProgress));
}

/** A check the scheduler chose. */
export interface ScheduledCheck {
  readonly pair: CandidatePair;
  readonly triggered: boolean;
}

/**
 * Picks the next check when Ta fires (RFC 8445 §6.1.4.2), starting at checklist `cursor` and moving on to the next
 * Running checklist whenever one has nothing to check (step 4). Returns the check and the cursor to use next time
 * (the checklist after the one that produced the check), or undefined when no checklist has anything to check.
 * Mutates pair states only for step 2 (unfreezing); the caller moves the chosen pair to In-Progress.
 */
export function pickNextCheck(
  checklists: readonly Checklist[],
  cursor: number,
): { readonly check: ScheduledCheck; readonly cursor: number } | undefined {
  const n = checklists.length;
  for (let k = 0; k < n; k++) {
    const idx = (cursor + k) % n;
    const cl = checklists[idx]!;
    if (!servesTriggered(cl)) continue;
    // Step 1: the triggered-check queue first.
    const trig = cl.shiftTriggered();
    if (trig) return { check: { pair: trig, triggered: true }, cursor: (idx + 1) % n };
    if (cl.state !== 'running') continue;
    // Step 2: no Waiting pair: unfreeze a Frozen pair for each foundation with nothing Waiting/In-Progress anywhere.
    if (!cl.firstWaiting()) unfreezeIdleFoundations(cl, checklists);
    // Step 3: the highest-priority Waiting pair.
    const w = cl.firstWaiting();
    if (w) return { check: { pair: w, triggered: false }, cursor: (idx + 1) % n };
  }
  return undefined;
}

/**
 * True when `pickNextCheck` would return a check: some Running or Completed checklist has a triggered pair, some
 * Running checklist a Waiting pair, or a
 * Frozen pair whose foundation has nothing Waiting or In-Progress anywhere (so step 2 would unfreeze it).
 */
export function hasPendingCheck(checklists: readonly Checklist[]): boolean {
  let frozen = false;
  for (const cl of checklists) {
    if (servesTriggered(cl) && cl.triggered.length > 0) return true;
    if (cl.state !== 'running') continue;
    if (cl.firstWaiting()) return true;
    if (!frozen && cl.pairs.some((p) => p.state === 'frozen')) frozen = true;
  }
  if (!frozen) return false;
  const busy = busyFoundations(checklists);
  return checklists.some((cl) => cl.state === 'running' && cl.pairs.some((p) => p.state === 'frozen' && !busy.has(p.foundation)));
}

/** True when the next pick would come from a triggered-check queue (used to ask the global pacer for priority). */
export function nextIsTriggered(checklists: readonly Checklist[]): boolean {
  return checklists.some((cl) => servesTriggered(cl) && cl.triggered.length > 0);
}

/**
 * A Running checklist schedules every check; a Completed one only its triggered checks. RFC 8445 removes every other
 * pair of a nominated component (§8.1.2), so that queue is then empty; facing an RFC 5245 peer that nominates
 * aggressively the agent keeps higher-priority pairs, and RFC 5245 §8.1.2 says it "MUST perform triggered checks"
 * after Completed, so a better late nomination can still be checked and selected.
 */
function servesTriggered(cl: Checklist): boolean {
  return cl.state === 'running' || cl.state === 'completed';
}

/**
 * Foundations with a Waiting or In-Progress pair in a Running checklist (RFC 8445 §6.1.4.2 step 2). Checklists that
 * are Completed or Failed no longer schedule checks, so their leftovers must not keep a foundation frozen forever.
 */
function busyFoundations(all: readonly Checklist[]): Set<string> {
  const busy = new Set<string>();
  for (const cl of all) {
    if (cl.state !== 'running') continue;
    for (const p of cl.pairs) if (p.state === 'waiting' || p.state === 'in-progress') busy.add(p.foundation);
  }
  return busy;
}

function unfreezeIdleFoundations(cl: Checklist, all: readonly Checklist[]): void {
  const busy = busyFoundations(all);
  // Highest priority first, so the pair unfrozen for a foundation is its best one.
  for (const p of cl.pairs) {
    if (p.state !== 'frozen' || busy.has(p.foundation)) continue;
    busy.add(p.foundation);
    p.state = 'waiting';
  }
}

/** Sends the next check when Ta has passed and the global pacer grants a slot (RFC 8445 §6.1.4.2, §14.2). */
export function runChecks(ctx: AgentContext, now: number): void {
  const sch = ctx.scheduler;
  const lists = checklists(ctx);
  const pending = hasPendingCheck(lists);
  if (now < sch.nextCheckAt || !pending) {
    if (!pending) ctx.pacer?.withdraw();
    if (!pending && ctx.trace) ctx.trace.nothingToCheck();
    return;
  }
  if (ctx.pacer && !ctx.pacer.request(now, nextIsTriggered(lists) ? 'triggered' : 'ordinary')) {
    sch.pacerDelayed = true;
    if (ctx.trace) ctx.trace.pacerRefused(now);
    return;
  }
  // When the global pacer stretches this agent's spacing beyond Ta, the RTO scales with the real spacing, so each
  // pair still gets its first check before any retransmission (the intent of RFC 8445 §14.3).
  const effectiveTa = sch.pacerDelayed && sch.lastCheckAt > -Infinity ? Math.max(sch.taMs, now - sch.lastCheckAt) : sch.taMs;
  sch.pacerDelayed = false;
  sch.lastCheckAt = now;
  const picked = pickNextCheck(lists, sch.cursor);
  // Cannot happen while hasPendingCheck and pickNextCheck agree; never spin on it.
  if (!picked) {
    sch.nextCheckAt = now + sch.taMs;
    return;
  }
  sch.cursor = picked.cursor;
  sendCheck(ctx, now, picked.check.pair, effectiveTa, picked.check.triggered);
  sch.nextCheckAt = now + sch.taMs;
}

/** When the next check may go: after Ta, and not before the pacer's estimate of this agent's slot. */
export function checkDeadline(ctx: AgentContext): number | undefined {
  const sch = ctx.scheduler;
  if (!sch.pending) return undefined;
  return Math.max(sch.nextCheckAt, ctx.pacer?.nextSlot() ?? -Infinity, ctx.now);
}

/**
 * Sends a check on `pair` now, outside the Ta schedule: a TCP pair's check that waited for its connection (the
 * transaction was paced when it asked for the connection, RFC 6544 §4.1).
 */
export function sendCheckNow(ctx: AgentContext, now: number, pair: CandidatePair): void {
  sendCheck(ctx, now, pair, ctx.scheduler.taMs, false);
}

function sendCheck(ctx: AgentContext, now: number, pair: CandidatePair, effectiveTa: number, triggered: boolean): void {
  const route = pairRoute(ctx.tcp, pair);
  if (route === undefined) {
    // RFC 6544 §7.1: a TCP check first needs a connection. Asked for now; the check goes once it is open.
    if (!requestConnection(ctx, now, pair)) return setPairState(ctx, pair, 'failed');
    if (pair.state !== 'succeeded') setPairState(ctx, pair, 'in-progress');
    pair.firstCheckAt ??= now;
    return;
  }
  const s = ctx.streams[pair.stream]!;
  const remote = s.remote!;
  const useCandidate = nominatorFor(ctx).useCandidate(pair);
  const priority = prflxPriority(pair.local.priority);
  const id = newTransactionId(ctx.random);
  const data = encodeCheckRequest({
    transactionId: id,
    username: `${remote.ufrag}:${s.local.ufrag}`,
    priority,
    role: ctx.role,
    tieBreaker: ctx.tieBreaker,
    useCandidate,
    key: remote.key,
  });
  if (pair.state !== 'succeeded') setPairState(ctx, pair, 'in-progress');
  pair.firstCheckAt ??= now;
  let waiting = 0;
  let inProgress = 0;
  let total = 0;
  for (const cl of checklists(ctx)) {
    waiting += cl.count('waiting');
    inProgress += cl.count('in-progress');
    total += cl.pairs.length;
  }
  const rtoMs = checkRtoMs(effectiveTa, waiting, inProgress, total, ctx.config.rtoFormula);
  // RFC 6544 §7.1: no retransmission over TCP (one send, then Ti, RFC 8489 §6.2.2).
  const timer = new TransactionTimer(now, route.transport === 'tcp' ? { reliable: true } : { rtoMs });
  timer.handleTimeout(now); // the first send, now
  const request: Datagram = route.transport === 'tcp' ? { local: route.local, remote: route.remote, data, transport: 'tcp' } : { local: route.local, remote: route.remote, data };
  ctx.txs.cancelChecks(pair);
  const tx: CheckTx = { kind: 'check', pair, timer, request, useCandidate, role: ctx.role, priority, sentAt: now, key: remote.key, cancelled: false };
  ctx.txs.add(id, tx);
  if (ctx.trace) ctx.trace.checkSent(now, tx, triggered, rtoMs);
  ctx.transmits.push({ ...request, paced: true });
  pair.counters.requestsSent++;
  pair.lastSentAt = now;
  ctx.scheduler.checksSent++;
}
