/**
 * Restart storms (issue 16, item 8.4): two peer processes with data flowing both ways go through 30 ICE restarts
 * in a row, every third one overlapping (the next restart starts before the previous one's answer was applied).
 * They end `completed` on a working pair, lose at most 2 % of the data (a restart keeps the previous pair until the
 * new session selects, RFC 8445 §12.1), and leave no socket or timer behind once closed.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { ChaosPeer, connectedPair, sleep, stopAll, type Gathered } from './peers.js';

afterAll(stopAll, 20_000);

const RESTARTS = 30;

describe('a restart storm with data flowing', () => {
  it('30 restarts, some overlapping: ends completed, little data lost, nothing leaked', async () => {
    const a = await ChaosPeer.start('A', { role: 'controlling' });
    const b = await ChaosPeer.start('B', { role: 'controlled' });
    try {
      await connectedPair(a, b);
      await Promise.all([a.request({ cmd: 'startData', intervalMs: 10, size: 100 }), b.request({ cmd: 'startData', intervalMs: 10, size: 100 })]);
      await sleep(200);
      const started = Date.now();
      for (let i = 0; i < RESTARTS; i++) {
        const offer = await a.request<Gathered>({ cmd: 'restart' });
        if (i % 3 === 2 && i < RESTARTS - 1) continue; // overlapping: the next restart comes before this one's answer
        await b.remote(offer); // a new ufrag/pwd: B restarts too (RFC 8445 §9)
        const answer = await b.request<Gathered>({ cmd: 'local' });
        await sleep(i % 2 ? 0 : 30); // sometimes applied at once, sometimes after checks began
        await a.remote(answer);
        await sleep(20 + (i % 4) * 20);
      }
      await sleep(500); // the last session's checks and nomination
      await Promise.all([a.waitState(['completed'], 10_000), b.waitState(['completed'], 10_000)]);
      const stormMs = Date.now() - started;
      await sleep(300);
      const [sa, sb] = await Promise.all([a.request<{ sent: number }>({ cmd: 'stopData' }), b.request<{ sent: number }>({ cmd: 'stopData' })]);
      await sleep(300);
      const [ra, rb] = await Promise.all([a.report(), b.report()]);
      console.log(`restart storm: ${RESTARTS} restarts in ${stormMs} ms; A got ${ra.rx.count}/${sb.sent}, B ${rb.rx.count}/${sa.sent}; largest gap A ${ra.rx.maxGapMs} ms, B ${rb.rx.maxGapMs} ms; resources A ${JSON.stringify(ra.resources)}`);
      for (const r of [ra, rb]) {
        expect(r.state).toBe('completed');
        expect(r.selected).toBeDefined();
      }
      expect(ra.selected!.local).toBe(rb.selected!.remote);
      expect(ra.rx.count).toBeGreaterThanOrEqual(0.98 * sb.sent);
      expect(rb.rx.count).toBeGreaterThanOrEqual(0.98 * sa.sent);
      // Nothing piles up over 30 restarts: no more UDP sockets than the agent's own host sockets.
      expect(ra.resources['UDPWrap'] ?? 0).toBeLessThanOrEqual(2);
      // Closed: no socket, no timer left in either process.
      await Promise.all([a.request({ cmd: 'close' }), b.request({ cmd: 'close' })]);
      await sleep(100);
      for (const r of await Promise.all([a.report(), b.report()])) {
        expect(r.resources['UDPWrap'] ?? 0).toBe(0);
        expect(r.resources['Timeout'] ?? 0).toBe(0);
      }
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  }, 60_000);
});
