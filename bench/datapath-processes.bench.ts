/**
 * CPU per echoed 100-byte datagram between two processes on the same core, through two connected `IceAgent`s
 * (`send` and `data` events on the selected pair), against a raw `node:dgram` echo between two processes measured in
 * the same run. The in-process bench (`datapath.bench.ts`) shares one event loop between both ends and batches
 * wake-ups; here each datagram wakes the other process, as between two real peers.
 *
 * Four children of `bench/datapath-peer.js`: an ICE pair and a raw pair, all pinned to CPU 0 with `taskset` when it
 * is available (one core: each datagram costs a context switch, the other side's work is on the same CPU). Each
 * child measures its own `process.cpuUsage()` (user + system, all threads) over a round; the result is the sum over
 * both ends divided by the datagrams echoed.
 *
 * - first 2,000: the first {@link FIRST} echoes of freshly connected processes (cold code, as a call starts);
 * - steady state: then {@link ROUNDS} rounds of {@link N} echoes alternating raw / ICE, medians compared.
 * @module
 */
import { fileURLToPath } from 'node:url';
import { hasTaskset, IpcChild } from './child.js';
import { goalAtMost } from './goal.js';
import type { BenchResult } from './run.js';

/** Bench name used by `npm run bench -- <name>`. */
export const name = 'datapath-processes';

const FIRST = 2_000;
const N = 20_000;
const ROUNDS = 5;
const WINDOW = 16;

const script = fileURLToPath(new URL('./datapath-peer.js', import.meta.url));

interface Pair {
  readonly a: IpcChild;
  readonly b: IpcChild;
}

async function startPair(mode: 'ice' | 'raw', cpu: number | undefined): Promise<Pair> {
  const a = new IpcChild(script, [mode, 'a'], cpu);
  const b = new IpcChild(script, [mode, 'b'], cpu);
  await Promise.all([a.next('up'), b.next('up')]);
  a.send({ type: 'start' });
  b.send({ type: 'start' });
  const [ra, rb] = await Promise.all([a.next('ready'), b.next('ready')]);
  a.send({ ...rb, type: 'remote' });
  b.send({ ...ra, type: 'remote' });
  await Promise.all([a.next('connected'), b.next('connected')]);
  return { a, b };
}

/** CPU in µs per echo, both processes together, over one round of `n` echoes. */
async function round(p: Pair, n: number): Promise<number> {
  // Let the connection settle (nomination, the previous round's last datagrams) before the window opens.
  await new Promise((r) => setTimeout(r, 50));
  p.a.send({ type: 'measure' });
  p.b.send({ type: 'measure' });
  await Promise.all([p.a.next('measuring'), p.b.next('measuring')]);
  p.a.send({ type: 'round', n, window: WINDOW });
  await p.a.next('done', 60_000);
  p.a.send({ type: 'stop' });
  p.b.send({ type: 'stop' });
  const [ca, cb] = await Promise.all([p.a.next('cpu'), p.b.next('cpu')]);
  return (((ca['ms'] as number) + (cb['ms'] as number)) * 1000) / n;
}

const median = (xs: readonly number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;

export async function run(): Promise<BenchResult[]> {
  const cpu = hasTaskset() ? 0 : undefined;
  const pairs: Pair[] = [];
  try {
    const raw = await startPair('raw', cpu);
    pairs.push(raw);
    const ice = await startPair('ice', cpu);
    pairs.push(ice);
    const rawFirst = await round(raw, FIRST);
    const iceFirst = await round(ice, FIRST);
    const rawSteady: number[] = [];
    const iceSteady: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      rawSteady.push(await round(raw, N));
      iceSteady.push(await round(ice, N));
    }
    const r = median(rawSteady);
    const x = median(iceSteady);
    const pinned = cpu === undefined ? 'not pinned (no taskset)' : 'all four processes on CPU 0';
    return [
      { name: `raw dgram, first ${FIRST.toLocaleString('en-US')}: CPU per echo`, value: rawFirst * 1000, unit: 'ns', note: `both processes; ${pinned}` },
      { name: `IceAgent, first ${FIRST.toLocaleString('en-US')}: CPU per echo`, value: iceFirst * 1000, unit: 'ns', note: 'freshly connected processes' },
      { name: `IceAgent / raw, first ${FIRST.toLocaleString('en-US')}`, value: iceFirst / rawFirst, unit: 'x', note: goalAtMost(iceFirst / rawFirst, 1.15) },
      { name: 'raw dgram, steady: CPU per echo', value: r * 1000, unit: 'ns', note: `median of ${ROUNDS} x ${N.toLocaleString('en-US')}, window ${WINDOW}` },
      { name: 'IceAgent, steady: CPU per echo', value: x * 1000, unit: 'ns', note: `rounds ${iceSteady.map((v) => v.toFixed(1)).join('/')} µs` },
      { name: 'IceAgent / raw, steady', value: x / r, unit: 'x', note: goalAtMost(x / r, 1.15) },
    ];
  } finally {
    await Promise.all(pairs.flatMap((p) => [p.a.exit(), p.b.exit()]));
  }
}
