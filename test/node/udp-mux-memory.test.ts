/**
 * Memory of an idle agent on an `IceUdpMux` (issue 12: at most 8 KB per agent beyond the mux itself): 3,000 lite
 * agents gathered on one mux, never connected, heap after a full GC minus before. A warm-up round first pays the
 * code compiled for the agent path, which is not per agent (`bench/udp-mux.bench.ts` measures the same at 10,000).
 * Loopback only: agents on a mux bind nothing of their own and nothing is sent.
 */
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { describe, expect, it } from 'vitest';
import { IceAgent } from '../../src/node/ice-agent.js';
import { IceUdpMux } from '../../src/node/udp-mux.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

async function heapPerIdleAgent(mux: IceUdpMux, n: number): Promise<number> {
  const agents: IceAgent[] = [];
  try {
    for (let i = 0; i < 4; i++) gc();
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < n; i++) agents.push(new IceAgent({ udpMux: mux, lite: true }));
    for (let i = 0; i < n; i += 500) await Promise.all(agents.slice(i, i + 500).map((a) => a.gather()));
    for (let i = 0; i < 4; i++) gc();
    return (process.memoryUsage().heapUsed - before) / n;
  } finally {
    await Promise.all(agents.map((a) => a.close()));
  }
}

describe('IceUdpMux: memory per idle agent', () => {
  it('3,000 idle lite agents on one mux take at most 8 KB each', async () => {
    const mux = await IceUdpMux.bind({ addresses: ['127.0.0.1'] });
    try {
      await heapPerIdleAgent(mux, 300); // warm-up: compiled code and the mux's tables, not per agent
      const perAgent = await heapPerIdleAgent(mux, 3_000);
      expect(mux.agentCount).toBe(0);
      expect(perAgent).toBeLessThanOrEqual(8 * 1024);
    } finally {
      await mux.close();
    }
  }, 30_000);
});
