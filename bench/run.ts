/**
 * Benchmark entry point (`npm run bench`). Runs every registered bench module in turn and prints its results.
 * Benches report throughput and, above all, ratios against a floor measured in the same run; nothing here gates on
 * absolute time (the machine is shared and its speed unknown).
 *
 * To add a bench: write `bench/<name>.bench.ts` exporting `name` and `run(): Promise<BenchResult[]>`, then add one
 * import and one entry to `BENCHES` below.
 * @module
 */
import * as cold from './cold.bench.js';
import * as connect from './connect.bench.js';
import * as datapath from './datapath.bench.js';
import * as datapathProcesses from './datapath-processes.bench.js';
import * as pacing from './pacing.bench.js';
import * as pacingRealtime from './pacing-realtime.bench.js';
import * as pacingWire from './pacing-wire.bench.js';
import * as scale from './scale.bench.js';
import * as stunCodec from './stun-codec.bench.js';
import * as tcp from './tcp.bench.js';
import * as tcpMux from './tcp-mux.bench.js';
import * as turnRelay from './turn-relay.bench.js';
import * as udpMux from './udp-mux.bench.js';

/** One measured quantity. */
export interface BenchResult {
  /** What was measured, e.g. `'encode+decode+verify'`. */
  readonly name: string;
  readonly value: number;
  /** Unit of `value`, e.g. `'msg/s'` or `'x'` for a ratio. */
  readonly unit: string;
  /** Free text shown beside the value (e.g. what the ratio compares). */
  readonly note?: string;
}

/** What a bench module exports. */
export interface BenchModule {
  readonly name: string;
  run(): Promise<BenchResult[]>;
}

/** Registered benches, run in this order. */
export const BENCHES: readonly BenchModule[] = [stunCodec, pacing, pacingRealtime, pacingWire, turnRelay, connect, cold, datapath, datapathProcesses, scale, udpMux, tcp, tcpMux];

function format(r: BenchResult): string {
  // A value that could not be measured says so rather than printing NaN.
  const v = !Number.isFinite(r.value) ? 'n/a' : r.unit === 'x' ? r.value.toFixed(2) : Math.round(r.value).toLocaleString('en-US');
  return `  ${r.name.padEnd(44)} ${v.padStart(12)} ${r.unit.padEnd(6)}${r.note ? `  ${r.note}` : ''}`;
}

async function main(): Promise<void> {
  const only = process.argv.slice(2);
  console.log(`node ${process.version}, ${process.platform}/${process.arch}`);
  for (const b of BENCHES) {
    if (only.length > 0 && !only.includes(b.name)) continue;
    console.log(`\n${b.name}`);
    const results = await b.run();
    for (const r of results) console.log(format(r));
  }
}

await main();
