/**
 * Check pacing of many agents in one process (RFC 8445 §14.2): 1, 100 and 1,000 sans-IO `AgentCore`s sharing one
 * `GlobalPacer` (5 ms), each with a checklist of 25 pairs whose remote candidates never answer.
 *
 * Time is virtual: a discrete-event loop advances to the earliest `pollTimeout` of any agent, so what is measured
 * is the pacing logic itself (exact spacings), not Node's timer accuracy. Wall-clock cost of the simulation is
 * reported beside it. Reported per run:
 * - per-agent spacing of new checks vs Ta (median error, p99 of the error): with N agents the 5 ms global budget
 *   gives each agent one slot per N x 5 ms, so for N x 5 ms > Ta the spacing is set by the global limit, not Ta;
 * - the smallest spacing between any two new transactions of the process (goal: >= 5 ms, 0 violations);
 *   retransmissions are RTO-driven and not paced, so they are counted separately;
 * - first-check delay per agent, p50 / p99 (all agents start at t = 0).
 * @module
 */
import { AgentCore } from '../src/checklist/agent-core.js';
import { GlobalPacer } from '../src/stun/pacing.js';
import type { RandomSource } from '../src/types.js';
import { goalAtLeast } from './goal.js';
import type { BenchResult } from './run.js';
import { SeededRandom } from '../src/testing/random.js';

/** Bench name used by `npm run bench -- <name>`. */
export const name = 'pacing';

const PAIRS = 25;
const TA_MS = 50;
const PACER_MS = 5;

function seeded(seed: number): RandomSource {
  return new SeededRandom(seed);
}

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * (sorted.length - 1) + 0.5))]!;
}

/** Minimal binary heap of [time, agent] with lazy deletion (stale entries skipped by version). */
class Heap {
  readonly #t: number[] = [];
  readonly #a: number[] = [];
  get size(): number {
    return this.#t.length;
  }
  push(t: number, a: number): void {
    this.#t.push(t);
    this.#a.push(a);
    let i = this.#t.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (this.#t[p]! <= this.#t[i]!) break;
      this.#swap(i, p);
      i = p;
    }
  }
  pop(): [number, number] | undefined {
    if (this.#t.length === 0) return undefined;
    const top: [number, number] = [this.#t[0]!, this.#a[0]!];
    const lt = this.#t.pop()!;
    const la = this.#a.pop()!;
    if (this.#t.length > 0) {
      this.#t[0] = lt;
      this.#a[0] = la;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < this.#t.length && this.#t[l]! < this.#t[m]!) m = l;
        if (r < this.#t.length && this.#t[r]! < this.#t[m]!) m = r;
        if (m === i) break;
        this.#swap(i, m);
        i = m;
      }
    }
    return top;
  }
  #swap(i: number, j: number): void {
    [this.#t[i], this.#t[j]] = [this.#t[j]!, this.#t[i]!];
    [this.#a[i], this.#a[j]] = [this.#a[j]!, this.#a[i]!];
  }
}

interface Outcome {
  readonly agents: number;
  readonly spacingErrMedian: number;
  readonly spacingErrP99: number;
  readonly minProcessSpacing: number;
  readonly violations: number;
  readonly retransmissions: number;
  readonly firstP50: number;
  readonly firstP99: number;
  readonly virtualMs: number;
  readonly wallMs: number;
  readonly checks: number;
}

/** Agent number `i` of a population: one host candidate, 25 remote candidates that never answer, consent off. */
export function unansweredAgent(i: number, pacer: GlobalPacer, random: RandomSource): AgentCore {
  const a = new AgentCore({ random, pacer, consentIntervalMs: 0 });
  a.addStream(1);
  const ip = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
  const base = { address: ip, port: 5000 };
  a.addLocalCandidate(0, { foundation: 'h', component: 1, transport: 'udp', priority: 2130706431, address: ip, port: 5000, type: 'host', base, socket: base });
  a.setRemoteParameters(0, { ufrag: 'peer', pwd: 'peerpasswordpeerpassword' });
  for (let k = 0; k < PAIRS; k++) {
    a.addRemoteCandidate(0, { foundation: `r${k}`, component: 1, transport: 'udp', priority: 2130706431 - k * 256, address: `172.16.${k}.1`, port: 9000, type: 'host' });
  }
  return a;
}

/** Runs one population until every agent has sent its 25 first checks. */
export function simulate(agentsCount: number): Outcome {
  const started = performance.now();
  const pacer = new GlobalPacer({ intervalMs: PACER_MS });
  const agents: AgentCore[] = [];
  for (let i = 0; i < agentsCount; i++) {
    agents.push(unansweredAgent(i, pacer, seeded(i + 1)));
  }
  const heap = new Heap();
  const version = new Array<number>(agentsCount).fill(0);
  const scheduled = new Array<number>(agentsCount).fill(NaN);
  const arm = (i: number): void => {
    const t = agents[i]!.pollTimeout();
    if (t === undefined || t === scheduled[i]) return;
    scheduled[i] = t;
    version[i]!++;
    heap.push(t, i * 1 + 0);
  };
  const sendTimes: number[][] = agents.map(() => []);
  const seen = new Set<string>();
  const processTimes: number[] = [];
  let retransmissions = 0;
  let done = 0;
  let now = 0;
  for (let i = 0; i < agentsCount; i++) arm(i);
  while (done < agentsCount && heap.size > 0) {
    const [t, i] = heap.pop()!;
    if (t !== scheduled[i]) continue; // stale entry
    scheduled[i] = NaN;
    now = Math.max(now, t);
    const a = agents[i]!;
    a.handleTimeout(now);
    for (let d = a.pollTransmit(); d; d = a.pollTransmit()) {
      const id = Buffer.from(d.data.subarray(8, 20)).toString('hex');
      if (seen.has(id)) {
        retransmissions++;
        continue;
      }
      seen.add(id);
      processTimes.push(now);
      const mine = sendTimes[i]!;
      mine.push(now);
      if (mine.length === PAIRS) done++;
    }
    while (a.pollEvent());
    if (sendTimes[i]!.length < PAIRS) arm(i);
    else a.close();
    // Another agent's grant may have moved this one's turn: agents re-poll on their own deadline, as with real timers.
  }
  let minProcessSpacing = Infinity;
  let violations = 0;
  processTimes.sort((x, y) => x - y);
  for (let k = 1; k < processTimes.length; k++) {
    const gap = processTimes[k]! - processTimes[k - 1]!;
    minProcessSpacing = Math.min(minProcessSpacing, gap);
    if (gap < PACER_MS) violations++;
  }
  const errors: number[] = [];
  const firsts: number[] = [];
  for (const times of sendTimes) {
    firsts.push(times[0] ?? NaN);
    for (let k = 1; k < times.length; k++) errors.push(times[k]! - times[k - 1]! - TA_MS);
  }
  errors.sort((x, y) => x - y);
  firsts.sort((x, y) => x - y);
  return {
    agents: agentsCount,
    spacingErrMedian: quantile(errors, 0.5),
    spacingErrP99: quantile(errors, 0.99),
    minProcessSpacing,
    violations,
    retransmissions,
    firstP50: quantile(firsts, 0.5),
    firstP99: quantile(firsts, 0.99),
    virtualMs: now,
    wallMs: performance.now() - started,
    checks: processTimes.length,
  };
}

/** Runs the three populations. */
export async function run(): Promise<BenchResult[]> {
  const out: BenchResult[] = [];
  for (const n of [1, 100, 1000]) {
    const r = simulate(n);
    const tag = `${n} agent${n === 1 ? '' : 's'}`;
    out.push(
      { name: `${tag}: per-agent spacing - Ta, median`, value: r.spacingErrMedian, unit: 'ms', note: `Ta ${TA_MS} ms; global floor ${n} x ${PACER_MS} ms` },
      { name: `${tag}: per-agent spacing - Ta, p99`, value: r.spacingErrP99, unit: 'ms' },
      { name: `${tag}: min spacing, new transactions`, value: r.minProcessSpacing, unit: 'ms', note: `${goalAtLeast(r.minProcessSpacing, PACER_MS, 'ms')}; ${r.violations} violations of ${r.checks} checks` },
      { name: `${tag}: first-check delay p50`, value: r.firstP50, unit: 'ms', note: 'virtual time' },
      { name: `${tag}: first-check delay p99`, value: r.firstP99, unit: 'ms', note: 'virtual time' },
      { name: `${tag}: retransmissions (not paced)`, value: r.retransmissions, unit: 'pkts' },
      { name: `${tag}: simulated / wall time`, value: r.virtualMs, unit: 'ms', note: `simulation took ${r.wallMs.toFixed(0)} ms wall` },
    );
  }
  return out;
}
