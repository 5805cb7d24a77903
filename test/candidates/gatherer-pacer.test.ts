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
});
