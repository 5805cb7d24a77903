import { describe, expect, it } from 'vitest';
import { Gatherer } from '../../src/candidates/gatherer.js';
import { GlobalPacer } from '../../src/stun/pacing.js';
import { SeededRandom } from '../../src/testing/random.js';

// RFC 8445 §14.2: all STUN/TURN transactions of all agents of one process at least 5 ms apart, gathering included.
describe('Gatherer and the process-wide pacer', () => {
  it('Binding requests of several gatherers sharing a pacer are never closer than 5 ms', () => {
    const pacer = new GlobalPacer({ intervalMs: 5 });
    const servers = [1, 2, 3, 4].map((i) => ({ address: `198.51.100.${i}`, port: 3478 }));
    const gatherers = [0, 1, 2].map(
      (i) =>
        new Gatherer({
          random: new SeededRandom(`g${i}`),
          bases: [{ address: { address: `192.0.2.${i + 1}`, port: 5000 }, component: 1 }],
          stunServers: servers,
          taMs: 20,
          pacer: pacer.register(),
        }),
    );
    const sends: { t: number; g: number }[] = [];
    let now = 0;
    gatherers.forEach((g) => g.start(now));
    for (let step = 0; step < 10_000; step++) {
      gatherers.forEach((g, i) => {
        for (let d = g.pollTransmit(); d; d = g.pollTransmit()) sends.push({ t: now, g: i });
      });
      const next = Math.min(...gatherers.map((g) => g.pollTimeout() ?? Infinity));
      if (next === Infinity || sends.length >= 12) break;
      now = Math.max(now, next);
      gatherers.forEach((g) => g.handleTimeout(now));
    }
    // First sends only: 3 gatherers x 4 servers.
    expect(sends.length).toBe(12);
    for (let i = 1; i < sends.length; i++) expect(sends[i]!.t - sends[i - 1]!.t).toBeGreaterThanOrEqual(5);
    // Each gatherer still respects its own Ta between its transactions.
    for (const g of [0, 1, 2]) {
      const own = sends.filter((s) => s.g === g).map((s) => s.t);
      for (let i = 1; i < own.length; i++) expect(own[i]! - own[i - 1]!).toBeGreaterThanOrEqual(20);
    }
  });

  it('marks the first send of each Binding request paced, never a retransmission (the edge stamps the grant)', () => {
    const g = new Gatherer({
      random: new SeededRandom('mark'),
      bases: [{ address: { address: '192.0.2.1', port: 5000 }, component: 1 }],
      stunServers: [1, 2].map((i) => ({ address: `198.51.100.${i}`, port: 3478 })),
      taMs: 20,
      pacer: new GlobalPacer().register(),
    });
    const sends: { id: string; paced: boolean }[] = [];
    let now = 0;
    g.start(now);
    while (now < 2_000) {
      for (let d = g.pollTransmit(); d; d = g.pollTransmit()) {
        sends.push({ id: Buffer.from(d.data.subarray(8, 20)).toString('hex'), paced: d.paced === true });
      }
      const next = g.pollTimeout();
      if (next === undefined) break;
      now = Math.max(now, next);
      g.handleTimeout(now);
    }
    const ids = [...new Set(sends.map((s) => s.id))];
    expect(ids).toHaveLength(2);
    expect(sends.length).toBeGreaterThan(4); // nobody answers: retransmissions follow RTO
    for (const id of ids) {
      expect(sends.filter((s) => s.id === id).map((s) => s.paced)[0]).toBe(true);
      expect(sends.filter((s) => s.id === id && s.paced)).toHaveLength(1);
    }
  });
});
