/**
 * What a fresh process pays for icewire, in children of this process (`bench/cold-peer.ts`):
 *
 * - `import('icewire')`: wall time and CPU of `await import()` of the published entry (`dist/pkg/index.js`, the
 *   bundle `package.json` exports) in a fresh process, against
 *   the import of a one-line module in a fresh process (the floor: starting the ESM loader). Children alternate
 *   between the two; medians are compared.
 * - Connect CPU: two fresh processes, one `IceAgent` each on 127.0.0.1 (controlling and controlled), parameters and
 *   candidates relayed by this process over IPC. Each child measures its own `process.cpuUsage()` (all threads) from
 *   handing in the peer's parameters to its first `selectedcandidatepairchange` and to `connected`; nothing crosses
 *   the IPC channel until both are done. `fresh`: the first connection of new processes; `warm`: the same two
 *   processes after {@link WARM_AFTER} connections. The floor is the same exchange with plain `node:dgram` sockets in
 *   fresh processes (a request and its answer each way: the four datagrams of the smallest ICE exchange).
 *
 * Ratios matter; absolute times depend on the machine. Nothing gates on them.
 * @module
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { IpcChild } from './child.js';
import { goalAtMost } from './goal.js';
import type { BenchResult } from './run.js';

/** Bench name used by `npm run bench -- <name>`. */
export const name = 'cold';

/** Fresh children per import kind. */
const IMPORTS = 15;
/** Fresh process pairs for the connect CPU (and as many for its floor). */
const FRESH = 9;
/** Connections the warm pair makes before the measured ones. */
const WARM_AFTER = 200;
const WARM_RUNS = 21;

const peerScript = fileURLToPath(new URL('./cold-peer.js', import.meta.url));
/** The published entry, what `import('icewire')` loads (package.json `exports`). */
const indexUrl = pathToFileURL(fileURLToPath(new URL('../pkg/index.js', import.meta.url))).href;

async function importOnce(url: string): Promise<{ wallMs: number; cpuMs: number }> {
  const c = new IpcChild(peerScript, ['import', url]);
  const m = await c.next('import');
  await c.exit();
  return { wallMs: m['wallMs'] as number, cpuMs: m['cpuMs'] as number };
}

interface SideTimes {
  readonly paramsAt?: number;
  readonly selectedAt?: number;
  readonly completedAt?: number;
  readonly selectedCpuMs: number;
  readonly connectedCpuMs: number;
  readonly selectedAtConnected?: boolean;
}

/** One connection between two started children; returns each side's measured CPU. */
async function connectOnce(a: IpcChild, b: IpcChild, measured = true): Promise<[SideTimes, SideTimes]> {
  a.send({ type: 'start' });
  b.send({ type: 'start' });
  const [ra, rb] = await Promise.all([a.next('ready'), b.next('ready')]);
  // Both children idle before the window opens (gathering's own work and the pacer slot are behind them).
  if (measured) await new Promise((r) => setTimeout(r, 20));
  a.send({ type: 'remote', params: rb['params'], candidates: rb['candidates'], port: rb['port'] });
  b.send({ type: 'remote', params: ra['params'], candidates: ra['candidates'], port: ra['port'] });
  // Ask for the times only once both are surely done, so no IPC message lands inside a measured window.
  if (measured) await new Promise((r) => setTimeout(r, 200));
  a.send({ type: 'report' });
  b.send({ type: 'report' });
  const [ta, tb] = await Promise.all([a.next('times'), b.next('times')]);
  a.send({ type: 'close' });
  b.send({ type: 'close' });
  await Promise.all([a.next('closed'), b.next('closed')]);
  return [ta as unknown as SideTimes, tb as unknown as SideTimes];
}

async function pair(mode: 'agent' | 'floor'): Promise<[IpcChild, IpcChild]> {
  const a = new IpcChild(peerScript, [mode, 'controlling']);
  const b = new IpcChild(peerScript, [mode, 'controlled']);
  await Promise.all([a.next('up'), b.next('up')]);
  return [a, b];
}

const median = (xs: readonly number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;

/** Wall time from both sides having the other's parameters until both reached `at` (selected pair, completed). */
function bothBy(a: SideTimes, b: SideTimes, at: 'selectedAt' | 'completedAt'): number {
  const start = Math.max(a.paramsAt ?? NaN, b.paramsAt ?? NaN);
  return Math.max(a[at] ?? NaN, b[at] ?? NaN) - start;
}

export async function run(): Promise<BenchResult[]> {
  const dir = mkdtempSync(join(tmpdir(), 'icewire-cold-'));
  const trivial = join(dir, 'trivial.mjs');
  writeFileSync(trivial, 'export const x = 1;\n');
  const floorImport: { wallMs: number; cpuMs: number }[] = [];
  const iceImport: { wallMs: number; cpuMs: number }[] = [];
  try {
    for (let i = 0; i < IMPORTS; i++) {
      floorImport.push(await importOnce(pathToFileURL(trivial).href));
      iceImport.push(await importOnce(indexUrl));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  const fresh: SideTimes[][] = [[], []];
  const floor: number[] = [];
  for (let i = 0; i < FRESH; i++) {
    const [a, b] = await pair('agent');
    try {
      const [ta, tb] = await connectOnce(a, b);
      fresh[0]!.push(ta);
      fresh[1]!.push(tb);
    } finally {
      await Promise.all([a.exit(), b.exit()]);
    }
    const [fa, fb] = await pair('floor');
    try {
      const [ta, tb] = await connectOnce(fa, fb);
      floor.push(ta.connectedCpuMs, tb.connectedCpuMs);
    } finally {
      await Promise.all([fa.exit(), fb.exit()]);
    }
  }
  const warm: SideTimes[][] = [[], []];
  {
    const [a, b] = await pair('agent');
    try {
      for (let i = 0; i < WARM_AFTER; i++) await connectOnce(a, b, false);
      for (let i = 0; i < WARM_RUNS; i++) {
        const [ta, tb] = await connectOnce(a, b);
        warm[0]!.push(ta);
        warm[1]!.push(tb);
      }
    } finally {
      await Promise.all([a.exit(), b.exit()]);
    }
  }

  const fw = median(floorImport.map((x) => x.wallMs));
  const iw = median(iceImport.map((x) => x.wallMs));
  const fc = median(floorImport.map((x) => x.cpuMs));
  const ic = median(iceImport.map((x) => x.cpuMs));
  const fl = median(floor);
  const out: BenchResult[] = [
    { name: "import('icewire'), fresh process: wall", value: iw * 1000, unit: 'µs', note: `median of ${IMPORTS}; ${goalAtMost(iw, 35, 'ms')}` },
    { name: 'import of a one-line module (floor): wall', value: fw * 1000, unit: 'µs', note: `median of ${IMPORTS}` },
    { name: "import('icewire') / floor, wall", value: iw / fw, unit: 'x', note: `CPU ${ic.toFixed(1)} ms / ${fc.toFixed(1)} ms = ${(ic / fc).toFixed(2)}x` },
    { name: 'connect floor: dgram request+answer each way', value: fl * 1000, unit: 'µs', note: `CPU per process, fresh, median of ${2 * FRESH}` },
  ];
  for (const [label, runs, goal] of [
    ['fresh', fresh, 10],
    ['warm', warm, 2],
  ] as const) {
    const sel = median(runs[0]!.map((t, i) => bothBy(t, runs[1]![i]!, 'selectedAt')));
    const done = median(runs[0]!.map((t, i) => bothBy(t, runs[1]![i]!, 'completedAt')));
    out.push(
      { name: `${label}: wall until both have a selected pair`, value: sel * 1000, unit: 'µs', note: `median of ${runs[0]!.length}; ${goalAtMost(sel, goal, 'ms')} (${(sel / goal).toFixed(2)}x)` },
      { name: `${label}: wall until both completed`, value: done * 1000, unit: 'µs', note: `Ta 50 ms; goal ≤ Ta + 3 ms: ${done <= 53 ? 'met' : 'NOT met'} (${(done / 53).toFixed(2)}x)` },
    );
  }
  const sides = ['controlling', 'controlled'] as const;
  for (const [label, runs] of [
    ['fresh', fresh],
    ['warm', warm],
  ] as const) {
    sides.forEach((side, i) => {
      const sel = median(runs[i]!.map((t) => t.selectedCpuMs));
      const con = median(runs[i]!.map((t) => t.connectedCpuMs));
      const withPair = runs[i]!.filter((t) => t.selectedAtConnected).length;
      out.push(
        {
          name: `${label}, ${side}: CPU to first selected pair`,
          value: sel * 1000,
          unit: 'µs',
          note: `${(sel / fl).toFixed(1)}x the floor; median of ${runs[i]!.length}${label === 'fresh' ? `; ${goalAtMost(sel, 8, 'ms')}` : ''}`,
        },
        {
          name: `${label}, ${side}: CPU to connected`,
          value: con * 1000,
          unit: 'µs',
          note: `${(con / fl).toFixed(1)}x the floor; a pair selected at connected in ${withPair}/${runs[i]!.length}`,
        },
      );
    });
  }
  return out;
}
