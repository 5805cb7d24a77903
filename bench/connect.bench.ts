/**
 * Time to connected on loopback with real sockets, the two agents in two processes: this process runs the
 * controlling `IceAgent`, a child (`dist/bench/connect-peer.js`) the controlled one; parameters and candidates go over
 * the child's stdin/stdout as JSON lines.
 *
 * Measured per run: from the moment BOTH agents have each other's parameters and candidates
 * (`max(tParamsA, tParamsB)`) until BOTH are `connected` (`max(tConnectedA, tConnectedB)`). Each side stamps its own
 * events with `performance.timeOrigin + performance.now()`, comparable across the two processes.
 *
 * Variants (median and p90 of 50 runs each, after warm-up runs):
 * - `one host`: one host candidate each side, default Ta, after 5 warm-up connections (most agent code still runs in
 *   V8's interpreter and baseline tiers: a process making one of its first connections);
 * - `one host, steady state`: the same once both processes have made 300 connections (JIT-compiled agent code, as in
 *   a long-running process that sets up connections all day);
 * - `4 dead` (10 runs, default Ta) and `4 dead + pacing 5`: each side first gets four unreachable remote candidates (127.0.0.1 ports bound and closed
 *   again, so nothing listens) of higher priority than the working one, and both propose `a=ice-pacing:5`, so the
 *   working pair is checked only after four Ta = 5 ms slots.
 * Each run starts from an idle process: the previous run's agents are closed and the bench waits 10 ms (twice the
 * 5 ms process-wide pacing interval) so the first check of a run is not held back by the last check of the previous
 * run. The child reports its times only after this side is connected (`report`): a line arriving over the pipe
 * while an agent is still connecting would be read and parsed on the measured path.
 * `CONNECT_PIN=1` pins this process to CPU 0 and the child to CPU 1 (Linux `taskset`), as two peers on two hosts would
 * run; unpinned, the kernel's synchronous wake-ups tend to run both on one CPU, one after the other.
 * Measured from both sides having the other's parameters: until BOTH have a selected pair (`connected`, which the
 * agent reaches at its first valid pair, `getSelectedCandidatePair()` then returns it) and until BOTH `completed`.
 * The issue's goals are printed beside the numbers; nothing gates on them. For scale, others selected after:
 * pion/ice 0.6 ms, libnice 21 ms, aioice 22 ms, werift-ice 26 ms (one host each).
 * @module
 */
import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Candidate } from '../src/candidates/candidate.js';
import type { IceParameters } from '../src/checklist/types.js';
import { IceAgent } from '../src/node/ice-agent.js';
import { goalAtMost } from './goal.js';
import type { BenchResult } from './run.js';

/** Bench name used by `npm run bench -- <name>`. */
export const name = 'connect';

const RUNS = 50;
/** Warm-up connections before the measured runs of a variant (not measured). */
const WARMUP = 5;
/**
 * Connections both processes have made before the `steady state` variant is measured (the runs of the variant before
 * it included): the agent code is then JIT-compiled as in a long-running process that sets up connections all day
 * (a SIP gateway, an SFU). With only {@link WARMUP} connections behind it most of that code still runs in V8's
 * interpreter and baseline tiers, as in a process making one of its first connections.
 */
const STEADY_AFTER = 300;
/** Pause before each measured run: twice the 5 ms global pacing interval. */
const PACER_IDLE_MS = 10;
/** `CONNECT_PIN=1`: pin this process and the child to CPUs 0 and 1 (see {@link Peer}). */
const PIN = process.env['CONNECT_PIN'] === '1';
/** Pause after this side is connected before asking the child for its times. */
const REPORT_DELAY_MS = 5;

/** Wall-clock time in ms since the epoch, sub-millisecond, comparable across processes of one host. */
export function epochNow(): number {
  return performance.timeOrigin + performance.now();
}

/** Binds `n` UDP ports on 127.0.0.1 and closes them again: addresses where nothing listens. */
export async function deadPorts(n: number): Promise<number[]> {
  const sockets = await Promise.all(
    Array.from({ length: n }, () => {
      const s = createSocket('udp4');
      return new Promise<ReturnType<typeof createSocket>>((r) => s.bind(0, '127.0.0.1', () => r(s)));
    }),
  );
  const ports = sockets.map((s) => s.address().port);
  await Promise.all(sockets.map((s) => new Promise<void>((r) => s.close(() => r()))));
  return ports;
}

/** Unreachable host candidates of higher priority than any real one (distinct foundations: none starts frozen). */
export function decoyCandidates(ports: readonly number[]): Candidate[] {
  return ports.map((port, i) => ({
    foundation: `d${i + 1}`,
    component: 1,
    transport: 'udp',
    priority: 2 ** 31 - 1 - i,
    address: '127.0.0.1',
    port,
    type: 'host',
  }));
}

interface Ready {
  readonly type: 'ready';
  readonly params: IceParameters;
  readonly candidates: readonly Candidate[];
  readonly decoys: readonly number[];
}
interface Connected {
  readonly type: 'connected';
  readonly tParams: number;
  readonly tConnected: number;
  readonly tCompleted: number;
}
type Reply = Ready | Connected | { readonly type: 'closed' } | { readonly type: 'echo'; readonly port: number };

/** The child process and a typed wait on its next reply. */
class Peer {
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #queue: Reply[] = [];
  readonly #waiters: ((r: Reply) => void)[] = [];

  constructor() {
    const script = fileURLToPath(new URL('./connect-peer.js', import.meta.url));
    // CONNECT_PIN=1 (Linux, needs taskset): this process on CPU 0, the child on CPU 1, as two peers on two hosts.
    // Unpinned, the kernel's synchronous wake-ups (pipe and loopback UDP) tend to put both on one CPU, so each side's
    // processing waits for the other's: the result is then the sum of both sides' CPU time, not a round trip.
    if (PIN) execFileSync('taskset', ['-pc', '0', String(process.pid)], { stdio: 'ignore' });
    this.#child = PIN
      ? spawn('taskset', ['-c', '1', process.execPath, script], { stdio: ['pipe', 'pipe', 'pipe'] })
      : spawn(process.execPath, [script], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.#child.stderr.on('data', (b: Buffer) => process.stderr.write(`[connect-peer] ${b.toString()}`));
    createInterface({ input: this.#child.stdout }).on('line', (line) => {
      const r = JSON.parse(line) as Reply;
      const w = this.#waiters.shift();
      if (w) w(r);
      else this.#queue.push(r);
    });
  }

  send(cmd: object): void {
    this.#child.stdin.write(`${JSON.stringify(cmd)}\n`);
  }

  next<T extends Reply['type']>(type: T, ms = 10_000): Promise<Extract<Reply, { type: T }>> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`connect-peer: no '${type}' within ${ms} ms`)), ms);
      const take = (r: Reply) => {
        clearTimeout(t);
        if (r.type !== type) reject(new Error(`connect-peer: expected '${type}', got '${r.type}'`));
        else resolve(r as Extract<Reply, { type: T }>);
      };
      const queued = this.#queue.shift();
      if (queued) take(queued);
      else this.#waiters.push(take);
    });
  }

  async exit(): Promise<void> {
    const gone = new Promise<void>((r) => this.#child.once('exit', () => r()));
    this.send({ type: 'exit' });
    const t = setTimeout(() => this.#child.kill('SIGKILL'), 3000);
    await gone;
    clearTimeout(t);
  }
}

interface Variant {
  readonly label: string;
  readonly decoys: number;
  readonly pacingMs?: number;
}

/** One connection: the times until both sides had a selected pair (`connected`) and until both completed, in ms. */
async function once(peer: Peer, v: Variant): Promise<{ selected: number; completed: number }> {
  peer.send({ type: 'start', decoys: v.decoys, ...(v.pacingMs !== undefined ? { pacingMs: v.pacingMs } : {}) });
  const a = new IceAgent({
    includeLoopback: true,
    addressFilter: (x) => x === '127.0.0.1',
    role: 'controlling',
    ...(v.pacingMs !== undefined ? { pacingMs: v.pacingMs } : {}),
  });
  try {
    const [ready] = await Promise.all([peer.next('ready'), a.gather()]);
    const mine = await deadPorts(v.decoys);
    let tConnectedA: number | undefined;
    let tCompletedA: number | undefined;
    const upA = new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('parent agent did not complete')), 10_000);
      a.on('statechange', (s) => {
        if ((s === 'connected' || s === 'completed') && tConnectedA === undefined) {
          tConnectedA = epochNow();
          // A selected pair from the first valid pair on (RFC 8445 §12.1): that is what `connected` now means.
          if (a.getSelectedCandidatePair() === undefined) reject(new Error('connected without a selected pair'));
        }
        if (s === 'completed') {
          tCompletedA = epochNow();
          clearTimeout(t);
          resolve();
        }
      });
    });
    // Let the process-wide pacer (RFC 8445 §14.2, 5 ms between any two new checks of this process) go idle after
    // the previous run, so that each run measures a connection from an idle process, not the pacing of the last one.
    await new Promise((r) => setTimeout(r, PACER_IDLE_MS));
    peer.send({ type: 'remote', params: a.getLocalParameters(), candidates: [...decoyCandidates(mine), ...a.getLocalCandidates()] });
    const tParamsA = epochNow();
    a.setRemoteParameters(ready.params);
    for (const c of [...decoyCandidates(ready.decoys), ...ready.candidates]) a.addRemoteCandidate(c);
    a.endOfRemoteCandidates();
    await upA;
    // Only now ask the child for its times: a reply line landing in this process while it is still connecting would
    // be read and parsed on the measured path. The pause lets a child that is still connecting finish undisturbed
    // (its times are stamped in the child, so waiting changes nothing measured).
    await new Promise((r) => setTimeout(r, REPORT_DELAY_MS));
    const upB = peer.next('connected');
    peer.send({ type: 'report' });
    const b = await upB;
    if (process.env["CONNECT_TRACE"]) process.stderr.write(`pA ${(tParamsA % 1e5).toFixed(3)} pB ${(b.tParams % 1e5).toFixed(3)} cA ${(tConnectedA! % 1e5).toFixed(3)} cB ${(b.tConnected % 1e5).toFixed(3)}\n`);
    const start = Math.max(tParamsA, b.tParams);
    return { selected: Math.max(tConnectedA!, b.tConnected) - start, completed: Math.max(tCompletedA!, b.tCompleted) - start };
  } finally {
    await a.close();
    peer.send({ type: 'close' });
    await peer.next('closed');
  }
}

/**
 * Median round trip of a 40-byte datagram to a plain UDP echo in the child: the cross-process floor. With `gapMs`
 * both processes sleep that long before each ping, as they do before each connection (waking an idle process costs
 * more than answering a busy one).
 */
async function echoRttMs(peer: Peer, n: number, gapMs: number): Promise<number> {
  peer.send({ type: 'echo-start' });
  const { port } = await peer.next('echo');
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  const rtts: number[] = [];
  try {
    const payload = Buffer.alloc(40, 1);
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('echo lost')), 1000);
        s.once('message', () => {
          clearTimeout(t);
          resolve();
        });
        s.send(payload, port, '127.0.0.1');
      });
      rtts.push(performance.now() - t0);
      if (gapMs > 0) await new Promise((r) => setTimeout(r, gapMs));
      else if (i % 10 === 9) await new Promise((r) => setTimeout(r, 1));
    }
  } finally {
    await new Promise<void>((r) => s.close(() => r()));
    peer.send({ type: 'echo-stop' });
    await peer.next('closed');
  }
  rtts.sort((x, y) => x - y);
  return quantile(rtts, 0.5);
}

function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * (sorted.length - 1) + 0.5))]!;
}

/** Runs both variants; values in µs (the runner rounds to integers). */
export async function run(): Promise<BenchResult[]> {
  const peer = new Peer();
  const out: BenchResult[] = [];
  if (PIN) out.push({ name: 'pinned', value: 1, unit: '', note: 'CONNECT_PIN=1: this process on CPU 0, the child on CPU 1' });
  try {
    const busy = await echoRttMs(peer, 200, 0);
    const rtt = await echoRttMs(peer, 50, PACER_IDLE_MS);
    out.push(
      { name: 'floor: UDP round trip to child, busy', value: busy * 1000, unit: 'µs', note: 'node:dgram echo, back-to-back pings, median' },
      { name: 'floor: UDP round trip to child, idle', value: rtt * 1000, unit: 'µs', note: `same, ${PACER_IDLE_MS} ms idle before each ping (as before each run), median` },
    );
    // Goals (issue "time to media"): a selected pair on both sides; `completed` within a budget of Ta after it.
    const variants: readonly (Variant & { selectedGoalMs: number; completedGoal: string; completedGoalMs: (selected: number) => number; warmup: number; runs: number })[] = [
      { label: 'one host', decoys: 0, selectedGoalMs: 2, completedGoal: 'Ta + 3 ms', completedGoalMs: () => 53, warmup: WARMUP, runs: RUNS },
      { label: 'one host, steady state', decoys: 0, selectedGoalMs: 2, completedGoal: 'Ta + 3 ms', completedGoalMs: () => 53, warmup: STEADY_AFTER - WARMUP - RUNS, runs: RUNS },
      { label: '4 dead', decoys: 4, selectedGoalMs: 210, completedGoal: 'selected + 150 ms', completedGoalMs: (s) => s + 150, warmup: 1, runs: 10 },
      { label: '4 dead + pacing 5', decoys: 4, pacingMs: 5, selectedGoalMs: 30, completedGoal: 'selected + 150 ms', completedGoalMs: (s) => s + 150, warmup: WARMUP, runs: RUNS },
    ];
    for (const v of variants) {
      for (let i = 0; i < v.warmup; i++) await once(peer, v);
      const selected: number[] = [];
      const completed: number[] = [];
      for (let i = 0; i < v.runs; i++) {
        const r = await once(peer, v);
        selected.push(r.selected);
        completed.push(r.completed);
      }
      selected.sort((x, y) => x - y);
      completed.sort((x, y) => x - y);
      const median = quantile(selected, 0.5);
      const p90 = quantile(selected, 0.9);
      const done = quantile(completed, 0.5);
      const doneGoal = v.completedGoalMs(median);
      out.push(
        { name: `${v.label}: median, both have a selected pair`, value: median * 1000, unit: 'µs', note: `${goalAtMost(median, v.selectedGoalMs, 'ms')} (${(median / v.selectedGoalMs).toFixed(2)}x), ${(median / rtt).toFixed(1)}x the idle round trip` },
        { name: `${v.label}: p90`, value: p90 * 1000, unit: 'µs', note: `min ${(selected[0]! * 1000).toFixed(0)} µs, max ${(selected[selected.length - 1]! * 1000).toFixed(0)} µs, ${v.runs} runs, 2 processes` },
        { name: `${v.label}: median, both completed`, value: done * 1000, unit: 'µs', note: `goal ≤ ${v.completedGoal} = ${doneGoal.toFixed(1)} ms: ${done <= doneGoal ? 'met' : 'NOT met'} (${(done / doneGoal).toFixed(2)}x)` },
      );
    }
  } finally {
    await peer.exit();
  }
  return out;
}
