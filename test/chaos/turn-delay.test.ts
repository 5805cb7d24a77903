/**
 * TURN over a slow, lossy path (issue 16, item 8.2): two peer processes, each reaching a real coturn through its
 * own test-owned UDP relay (40-120 ms each way, 3 % loss each way), relay candidates only. They connect within a
 * bound, data flows, and close() leaves no allocation on coturn: with a per-user quota of 1, a fresh allocation for
 * each user succeeds afterwards (as test/node/ice-agent-turn-release.test.ts counts them).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTurnAllocation } from '../../src/node/turn-transport.js';
import { startCoturn, type Coturn } from '../helpers/coturn.js';
import { udpRelay, type UdpRelay } from '../helpers/udp-relay.js';
import { ChaosPeer, connectedPair, sleep, stopAll } from './peers.js';

let coturn: Coturn;
beforeAll(async () => {
  coturn = await startCoturn({ tls: false, userQuota: 1, extraUsers: [['c1', 'pq'], ['c2', 'pq']] });
}, 30_000);
afterAll(async () => {
  await stopAll();
  await coturn?.stop();
}, 30_000);

/** The user's quota of one is free again (coturn frees a deleted allocation on its 1 s housekeeping tick). */
async function quotaFree(username: string): Promise<void> {
  for (const deadline = Date.now() + 3_000; ; ) {
    try {
      const a = await openTurnAllocation({ server: { address: coturn.host, port: coturn.port }, username, password: 'pq', localAddress: '127.0.0.1', timeoutMs: 5_000 });
      await a.close();
      return;
    } catch (e) {
      if ((e as { errorCode?: number }).errorCode !== 486 || Date.now() > deadline) throw e;
      await sleep(200);
    }
  }
}

describe('TURN through a delay relay (40-120 ms, 3 % loss each way)', () => {
  it('relay-only peers connect within 15 s, carry data, and release their allocations on close()', async () => {
    const relays: UdpRelay[] = [];
    let a: ChaosPeer | undefined;
    let b: ChaosPeer | undefined;
    try {
      for (let i = 0; i < 2; i++) relays.push(await udpRelay({ address: coturn.host, port: coturn.port }, { delayMs: [40, 120], loss: 0.03 }));
      const server = (i: number) => [{ urls: `turn:127.0.0.1:${relays[i]!.port}`, username: `c${i + 1}`, credential: 'pq' }];
      a = await ChaosPeer.start('A', { role: 'controlling', iceTransportPolicy: 'relay', iceServers: server(0), gatherTimeoutMs: 8_000 });
      b = await ChaosPeer.start('B', { role: 'controlled', iceTransportPolicy: 'relay', iceServers: server(1), gatherTimeoutMs: 8_000 });
      const started = Date.now();
      const [ga, gb] = await connectedPair(a, b, 15_000);
      const took = Date.now() - started;
      expect(ga.candidates.every((c) => c.type === 'relay') && ga.candidates.length > 0).toBe(true);
      expect(gb.candidates.every((c) => c.type === 'relay') && gb.candidates.length > 0).toBe(true);
      await Promise.all([a.request({ cmd: 'startData', intervalMs: 20, size: 100 }), b.request({ cmd: 'startData', intervalMs: 20, size: 100 })]);
      await sleep(1_500);
      const [ra, rb] = await Promise.all([a.report(), b.report()]);
      console.log(`turn: gathered and connected in ${took} ms; received A ${ra.rx.count}, B ${rb.rx.count} of ~75 each; relay counts ${JSON.stringify(relays.map((r) => r.counts))}`);
      expect(took).toBeLessThan(15_000);
      for (const r of [ra, rb]) {
        expect(r.selected?.localType).toBe('relay');
        expect(r.rx.count).toBeGreaterThan(40); // ~75 sent, 3 % loss on each of 4 relay legs, some still in flight
      }
      // close() through the slow path: every allocation deleted on the server.
      await Promise.all([a.stop(), b.stop()]);
      await sleep(200);
      await quotaFree('c1');
      await quotaFree('c2');
    } finally {
      await Promise.all([a?.stop(), b?.stop()]);
      await Promise.all(relays.map((r) => r.close()));
    }
  }, 45_000);
});
