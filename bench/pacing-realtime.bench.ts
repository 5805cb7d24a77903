/**
 * Check pacing on real timers: the same populations as `pacing.bench.ts` (1, 100 and 1,000 `AgentCore`s, each with
 * 25 pairs that never answer, one shared 5 ms `GlobalPacer`), but driven by `MachineDriver` and the process's one
 * coalesced `setTimeout`, with every transmit time-stamped by `performance.now()` as it leaves the driver. This is
 * what Node's timers add to the exact schedule the virtual-time bench shows. The drivers report paced sends to the
 * pacer as `IceAgent`'s do; one 100-agent run without the reports shows what they prevent.
 *
 * Reported: per-agent spacing of new checks minus the expected spacing (Ta alone, or the N x 5 ms the global
 * budget gives each agent when that is longer), median and p99; the smallest spacing between any two new
 * transactions of the process, and how many fell under 5 ms; and the process-wide spacing minus 5 ms, p99 (the
 * jitter of the shared schedule, which is what governs 1,000 agents).
 * @module
 */
import { GlobalPacer } from '../src/stun/pacing.js';
import { MachineDriver, TimerScheduler } from '../src/node/driver.js';
import { SeededRandom } from '../src/testing/random.js';
import { unansweredAgent } from './pacing.bench.js';
import type { BenchResult } from './run.js';

export const name = 'pacing-realtime';

const TA_MS = 50;
const PACER_MS = 5;

const q = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.floor(p * (s.length - 1) + 0.5))]!;
};

async function measure(agentsCount: number, durationMs: number, stamp: boolean) {
  const pacer = new GlobalPacer({ intervalMs: PACER_MS });
  const scheduler = new TimerScheduler();
  const seen = new Set<string>();
  const perAgent: number[][] = [];
  const process: number[] = [];
  const drivers: MachineDriver[] = [];
  for (let i = 0; i < agentsCount; i++) {
    const times: number[] = [];
    perAgent.push(times);
    const driver = new MachineDriver({
      scheduler,
      // As IceAgent wires it: the driver reports when each paced datagram left (GlobalPacer.noteSent).
      ...(stamp ? { pacer } : {}),
      send: (d) => {
        const id = Buffer.from(d.data.subarray(8, 20)).toString('hex');
        if (seen.has(id)) return; // a retransmission: RTO-driven, not paced
        seen.add(id);
        const t = performance.now();
        times.push(t);
        process.push(t);
      },
    });
    driver.attach(unansweredAgent(i, pacer, new SeededRandom(`rt${i}`)));
    drivers.push(driver);
  }
  await new Promise((r) => setTimeout(r, durationMs));
  const waiting = pacer.waiting;
  for (const d of drivers) d.close();
  const expected = Math.max(TA_MS, agentsCount * PACER_MS);
  const errors: number[] = [];
  for (const times of perAgent) for (let k = 1; k < times.length; k++) errors.push(times[k]! - times[k - 1]! - expected);
  process.sort((a, b) => a - b);
  const gaps: number[] = [];
  for (let k = 1; k < process.length; k++) gaps.push(process[k]! - process[k - 1]!);
  return {
    errMedian: q(errors, 0.5),
    errP99: q(errors, 0.99),
    minGap: gaps.length ? Math.min(...gaps) : NaN,
    under: gaps.filter((g) => g < PACER_MS - 0.05).length,
    gapJitterP99: q(gaps.map((g) => g - PACER_MS), 0.99),
    checks: process.length,
    served: perAgent.filter((t) => t.length > 0).length,
    maxPerAgent: Math.max(...perAgent.map((t) => t.length)),
    pacerMinSpacing: pacer.minSpacingMs,
    waiting,
  };
}

export async function run(): Promise<BenchResult[]> {
  const out: BenchResult[] = [];
  for (const [n, ms, stamp] of [[1, 1500, true], [100, 1500, true], [100, 1500, false], [1000, 2500, true]] as const) {
    const r = await measure(n, ms, stamp);
    const tag = `${n} agent${n > 1 ? 's' : ''}${stamp ? '' : ', sends not reported'}`;
    // With 1,000 agents each gets one slot per 5 s, so no agent sends a second check in the window: no spacing.
    if (Number.isFinite(r.errMedian)) {
      out.push({ name: `${tag}: per-agent spacing - expected, median`, value: r.errMedian, unit: 'ms', note: `expected max(Ta, N x 5 ms), ${r.checks} checks in ${ms} ms` });
      // The jitter goal is the timer's for one agent; with many, the per-agent spacing also holds the pacer's
      // rotation (heads that miss their slot wait a grace period), so its goal is the shared schedule's row below.
      const goal = n === 1 ? `p99 jitter ${r.errP99 < 2 ? 'under 2 ms (goal): met' : 'goal < 2 ms: NOT met'}` : 'no goal: includes the round-robin rotation; see process spacing';
      out.push({ name: `${tag}: per-agent spacing - expected, p99`, value: r.errP99, unit: 'ms', note: goal });
    } else {
      out.push({ name: `${tag}: checks (no per-agent spacing)`, value: r.checks, unit: '', note: `in ${ms} ms; one slot per agent per 5 s: no agent sends twice in the window` });
    }
    out.push({ name: `${tag}: smallest process spacing`, value: r.minGap, unit: 'ms', note: `${r.under} under 5 ms at the send callback (goal 0: ${r.under === 0 ? 'met' : 'NOT met'}); pacer decisions ${r.pacerMinSpacing.toFixed(2)} ms apart at least` });
    if (n > 1) out.push({ name: `${tag}: agents served`, value: r.served, unit: '', note: `most checks by one agent: ${r.maxPerAgent} (round robin: ${Math.ceil(r.checks / n)}); waiting at end ${r.waiting}` });
    if (n > 1) out.push({ name: `${tag}: process spacing - 5 ms, p99`, value: r.gapJitterP99, unit: 'ms', note: `jitter of the shared schedule; goal < 2 ms: ${r.gapJitterP99 < 2 ? 'met' : 'NOT met'}` });
  }
  return out;
}
