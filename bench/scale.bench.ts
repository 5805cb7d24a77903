/**
 * Scale of the sans-IO agent, no sockets: `AgentMachine` pairs wired to each other in memory and driven in virtual
 * time by a discrete-event loop (zero network latency; a datagram is handed to its destination machine at the `now`
 * it was sent).
 *
 * - Memory per idle connected agent: 10,000 agents (5,000 pairs) connected to completion, then the heap after a full
 *   GC minus the heap before creating them, divided by 10,000. Includes the bench's own per-agent bookkeeping (one
 *   array slot, one map entry and one heap slot per agent, well under 200 bytes), not the sockets a real agent
 *   would hold. Pacing is disabled for this part (a disabled `GlobalPacer`, so each agent still holds its client).
 * - Connections per second: 1,000 pairs start at virtual t = 0. The 1,000 controlling agents share one `GlobalPacer`
 *   (5 ms, RFC 8445 §14.2) and the 1,000 controlled agents another, as if each side were a process of its own.
 *   Reported: virtual time until every agent is connected, the resulting virtual-time connections/s (pacing-bound by
 *   construction, not a CPU figure), and the wall-clock CPU time the process spent simulating it. Also the variant
 *   with all 2,000 agents under one pacer (both sides in this process).
 *
 * The body needs `global.gc`: when it is missing, `run()` re-runs this file in a child with `--expose-gc`.
 * @module
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import { AgentMachine, type AgentMachineEvent } from '../src/agent-machine.js';
import type { Candidate } from '../src/candidates/candidate.js';
import { GlobalPacer } from '../src/stun/pacing.js';
import type { Datagram, RandomSource, TransportAddress } from '../src/types.js';
import type { BenchResult } from './run.js';
import { SeededRandom } from '../src/testing/random.js';

/** Bench name used by `npm run bench -- <name>`. */
export const name = 'scale';

const CHILD_FLAG = '--icewire-scale-child';
const MEMORY_AGENTS = 10_000;
const RATE_PAIRS = 1_000;

/** Fast deterministic randomness (the bench measures the agent, not the CSPRNG). */
export function seededRandom(seed: number): RandomSource {
  return new SeededRandom(seed);
}

/** A distinct 127/8 address per agent (never sent anywhere: the network here is a Map). */
function addressOf(i: number): TransportAddress {
  return { address: `127.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, port: 40000 };
}

const keyOf = (a: TransportAddress) => `${a.address}|${a.port}`;

/** Plain signalled form of a local candidate (no base/socket objects shared with the other agent). */
function signalled(c: Candidate): Candidate {
  return { foundation: c.foundation, component: c.component, transport: c.transport, priority: c.priority, address: c.address, port: c.port, type: c.type };
}

/** A min-heap of (deadline, agent) with lazy invalidation by a per-agent version. */
class DeadlineHeap {
  readonly #t: number[] = [];
  readonly #a: number[] = [];
  readonly #v: number[] = [];
  get size(): number {
    return this.#t.length;
  }
  push(t: number, a: number, v: number): void {
    const T = this.#t;
    const A = this.#a;
    const V = this.#v;
    let i = T.length;
    T.push(t);
    A.push(a);
    V.push(v);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (T[p]! <= t) break;
      T[i] = T[p]!;
      A[i] = A[p]!;
      V[i] = V[p]!;
      i = p;
    }
    T[i] = t;
    A[i] = a;
    V[i] = v;
  }
  peek(): number {
    return this.#t[0] ?? Infinity;
  }
  pop(): [number, number, number] {
    const T = this.#t;
    const A = this.#a;
    const V = this.#v;
    const top: [number, number, number] = [T[0]!, A[0]!, V[0]!];
    const t = T.pop()!;
    const a = A.pop()!;
    const v = V.pop()!;
    const n = T.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const c = r < n && T[r]! < T[l]! ? r : l;
        if (T[c]! >= t) break;
        T[i] = T[c]!;
        A[i] = A[c]!;
        V[i] = V[c]!;
        i = c;
      }
      T[i] = t;
      A[i] = a;
      V[i] = v;
    }
    return top;
  }
}

/** In-memory network of agents in virtual time. Agent 2k and 2k+1 form pair k (controlling, controlled). */
export class VirtualNet {
  readonly machines: AgentMachine[] = [];
  readonly #byAddress = new Map<string, number>();
  readonly #heap = new DeadlineHeap();
  readonly #version: number[] = [];
  readonly #work: number[] = [];
  readonly #queued: Uint8Array;
  readonly #up: Uint8Array;
  #connected = 0;
  now = 0;
  delivered = 0;

  constructor(pairs: number, pacers: (role: 'controlling' | 'controlled') => GlobalPacer, seed = 1) {
    const n = pairs * 2;
    this.#queued = new Uint8Array(n);
    this.#up = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const role = i % 2 === 0 ? 'controlling' : 'controlled';
      const address = addressOf(i);
      const m = new AgentMachine({
        random: seededRandom(seed * 1_000_003 + i),
        role,
        bases: [{ address, component: 1 }],
        pacer: pacers(role),
      });
      this.machines.push(m);
      this.#byAddress.set(keyOf(address), i);
      this.#version.push(0);
    }
  }

  /** Agents connected (or completed) so far. */
  get connected(): number {
    return this.#connected;
  }

  /** Gathers every agent and signals each pair's parameters and candidates to each other, at `now`. */
  start(): void {
    const cands: Candidate[][] = this.machines.map(() => []);
    this.machines.forEach((m, i) => {
      m.gather(this.now);
      for (let e = m.pollEvent(); e; e = m.pollEvent()) if (e.type === 'candidate') cands[i]!.push(signalled(e.candidate));
    });
    for (let i = 0; i < this.machines.length; i++) {
      const m = this.machines[i]!;
      const peer = i ^ 1;
      m.setRemoteParameters(0, this.machines[peer]!.core.getLocalParameters());
      for (const c of cands[peer]!) m.addRemoteCandidate(this.now, 0, c);
      m.endOfRemoteCandidates(0);
      this.#schedule(i);
    }
    this.#drainWork();
  }

  #schedule(i: number): void {
    if (this.#queued[i] === 0) {
      this.#queued[i] = 1;
      this.#work.push(i);
    }
  }

  /** Drains transmits (delivering them at once) and events of every agent with pending output, then re-arms. */
  #drainWork(): void {
    while (this.#work.length > 0) {
      const i = this.#work.pop()!;
      this.#queued[i] = 0;
      const m = this.machines[i]!;
      for (let d = m.pollTransmit(); d; d = m.pollTransmit()) this.#deliver(d);
      for (let e = m.pollEvent(); e; e = m.pollEvent()) this.#onEvent(i, e);
      const t = m.pollTimeout();
      const v = ++this.#version[i]!;
      if (t !== undefined) this.#heap.push(Math.max(t, this.now), i, v);
    }
  }

  #deliver(d: Datagram): void {
    const to = this.#byAddress.get(keyOf(d.remote));
    if (to === undefined) return;
    this.delivered++;
    this.machines[to]!.handleReceive(this.now, { local: d.remote, remote: d.local, data: d.data });
    this.#schedule(to);
  }

  #onEvent(i: number, e: AgentMachineEvent): void {
    if (e.type !== 'state') return;
    const up = e.state === 'connected' || e.state === 'completed' ? 1 : 0;
    if (up !== this.#up[i]) {
      this.#connected += up ? 1 : -1;
      this.#up[i] = up;
    }
  }

  /** Runs timers until `done()` or virtual time passes `until`. Returns false on the time bound. */
  runUntil(done: () => boolean, until: number): boolean {
    while (!done()) {
      if (this.#heap.size === 0 || this.#heap.peek() > until) return false;
      const [t, i, v] = this.#heap.pop();
      if (v !== this.#version[i]) continue; // superseded by a later re-arm
      this.now = Math.max(this.now, t);
      this.machines[i]!.handleTimeout(this.now);
      this.#schedule(i);
      this.#drainWork();
    }
    return true;
  }

  /** Every agent's state is `completed`. */
  allCompleted(): boolean {
    return this.machines.every((m) => m.core.state === 'completed');
  }
}

function heapUsed(): number {
  const gc = (globalThis as { gc?: () => void }).gc!;
  for (let i = 0; i < 4; i++) gc();
  return v8.getHeapStatistics().used_heap_size;
}

/** The measurement itself; needs `global.gc`. */
export async function body(): Promise<BenchResult[]> {
  const out: BenchResult[] = [];

  // ---- memory per idle connected agent --------------------------------------------------------------------------
  {
    const pacer = new GlobalPacer({ enabled: false });
    const before = heapUsed();
    const cpu0 = process.cpuUsage();
    const net = new VirtualNet(MEMORY_AGENTS / 2, () => pacer);
    net.start();
    const ok = net.runUntil(() => net.allCompleted(), 60_000);
    if (!ok) throw new Error(`scale: only ${net.connected}/${MEMORY_AGENTS} connected`);
    const cpu = process.cpuUsage(cpu0);
    const after = heapUsed();
    const perAgent = (after - before) / MEMORY_AGENTS;
    out.push({
      name: `heap per idle agent (${MEMORY_AGENTS.toLocaleString('en-US')} agents)`,
      value: perAgent,
      unit: 'B',
      note: `goal ≤ 10 KB: ${perAgent <= 10_240 ? 'met' : 'NOT met'} (${(perAgent / 10_240).toFixed(2)}x); heap after full GC, sans-IO, no sockets`,
    });
    out.push({
      name: 'CPU per connected pair, pacing off',
      value: (cpu.user + cpu.system) / (MEMORY_AGENTS / 2),
      unit: 'µs',
      note: `both agents, to completed, virtual time ${net.now.toFixed(0)} ms, ${net.delivered} datagrams`,
    });
    // Keep `net` alive until after the measurement.
    if (net.machines.length !== MEMORY_AGENTS) throw new Error('unreachable');
  }

  // ---- connections per second under the global pacer -----------------------------------------------------------
  {
    const sides = { controlling: new GlobalPacer({ intervalMs: 5 }), controlled: new GlobalPacer({ intervalMs: 5 }) };
    const cpu0 = process.cpuUsage();
    const net = new VirtualNet(RATE_PAIRS, (role) => sides[role], 2);
    net.start();
    const ok = net.runUntil(() => net.connected === RATE_PAIRS * 2, 600_000);
    if (!ok) throw new Error(`scale: only ${net.connected}/${RATE_PAIRS * 2} agents connected`);
    const connectedAt = net.now;
    const doneAll = net.runUntil(() => net.allCompleted(), 600_000);
    const completedAt = net.now;
    const cpu = process.cpuUsage(cpu0);
    out.push({
      name: `${RATE_PAIRS.toLocaleString('en-US')} pairs: virtual time to all connected`,
      value: connectedAt,
      unit: 'ms',
      note: `${(RATE_PAIRS / (connectedAt / 1000)).toFixed(0)} connections/s in virtual time under 5 ms global pacing per side`,
    });
    out.push({
      name: `${RATE_PAIRS.toLocaleString('en-US')} pairs: virtual time to all completed`,
      value: doneAll ? completedAt : NaN,
      unit: 'ms',
      note: `${(RATE_PAIRS / (completedAt / 1000)).toFixed(0)} nominated pairs/s in virtual time; pacer grants ${sides.controlling.grants}+${sides.controlled.grants}`,
    });
    out.push({
      name: `${RATE_PAIRS.toLocaleString('en-US')} pairs: CPU time to simulate`,
      value: (cpu.user + cpu.system) / 1000,
      unit: 'ms',
      note: `${((cpu.user + cpu.system) / RATE_PAIRS).toFixed(0)} µs CPU per pair (both agents), including the bench loop`,
    });
  }
  // ---- the same with both sides in this process: one pacer for all 2,000 agents ---------------------------------
  {
    const one = new GlobalPacer({ intervalMs: 5 });
    const cpu0 = process.cpuUsage();
    const net = new VirtualNet(RATE_PAIRS, () => one, 3);
    net.start();
    const ok = net.runUntil(() => net.connected === RATE_PAIRS * 2, 600_000);
    if (!ok) throw new Error(`scale: only ${net.connected}/${RATE_PAIRS * 2} agents connected (one pacer)`);
    const cpu = process.cpuUsage(cpu0);
    out.push({
      name: `${RATE_PAIRS.toLocaleString('en-US')} pairs, one pacer: to all connected`,
      value: net.now,
      unit: 'ms',
      note: `${(RATE_PAIRS / (net.now / 1000)).toFixed(0)} connections/s in virtual time, both sides under one 5 ms pacer; CPU ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms`,
    });
  }
  return out;
}

/** Runs the body here when `global.gc` exists, else in a child started with `--expose-gc`. */
export async function run(): Promise<BenchResult[]> {
  if (typeof (globalThis as { gc?: unknown }).gc === 'function') return body();
  const script = fileURLToPath(import.meta.url);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--expose-gc', script, CHILD_FLAG], { stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    child.stdout.on('data', (b: Buffer) => (text += b.toString()));
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`scale bench child exited with ${code}`));
      try {
        resolve(JSON.parse(text) as BenchResult[]);
      } catch (e) {
        reject(e instanceof Error ? e : new Error(String(e)));
      }
    });
  });
}

if (process.argv.includes(CHILD_FLAG)) {
  process.stdout.write(JSON.stringify(await body()));
}
