import { describe, expect, it } from 'vitest';
import { Gatherer, type GathererEvent } from '../../src/candidates/gatherer.js';
import { StunBindingServer } from '../../src/stun/binding-server.js';
import { NatPresets, NatTranslator } from '../../src/testing/nat.js';
import { SeededRandom } from '../../src/testing/random.js';
import type { Datagram } from '../../src/types.js';

// Virtual time, no sockets: host 10.0.0.2 behind a NAT (public 203.0.113.1) gathers against two sans-IO STUN
// binding servers (192.0.2.1, 192.0.2.2).
describe('gathering behind a simulated NAT (virtual time, sans-IO STUN servers)', () => {
  for (const [label, preset, distinct] of [
    ['endpoint-independent mapping', NatPresets.portRestrictedCone, 1],
    ['symmetric NAT', NatPresets.symmetric, 2],
  ] as const) {
    it(`${label}: ${distinct} server-reflexive candidate(s)`, () => {
      const rnd = new SeededRandom(label);
      const nat = new NatTranslator('203.0.113.1', preset, rnd.fork('nat'));
      const servers = [
        { addr: { address: '192.0.2.1', port: 3478 }, m: new StunBindingServer() },
        { addr: { address: '192.0.2.2', port: 3478 }, m: new StunBindingServer() },
      ];
      const base = { address: '10.0.0.2', port: 5000 };
      const g = new Gatherer({ random: rnd.fork('g'), bases: [{ address: base, component: 1 }], stunServers: servers.map((s) => s.addr) });
      const events: GathererEvent[] = [];
      let now = 0;
      const pump = () => {
        for (let d = g.pollTransmit(); d; d = g.pollTransmit()) {
          const out = nat.outbound(now, d.local, d.remote);
          if (!out.ok) continue;
          const server = servers.find((s) => s.addr.address === d.remote.address)!;
          server.m.handleReceive(now, { local: server.addr, remote: out.address, data: d.data });
          for (let r: Datagram | undefined = server.m.pollTransmit(); r; r = server.m.pollTransmit()) {
            const back = nat.inbound(now, r.local, r.remote);
            if (back.ok) g.handleReceive(now, { local: back.address, remote: r.local, data: r.data });
          }
        }
        for (let e = g.pollEvent(); e; e = g.pollEvent()) events.push(e);
      };
      g.start(now);
      pump();
      while (g.state !== 'complete') {
        now = g.pollTimeout()!;
        g.handleTimeout(now);
        pump();
      }
      const srflx = events.flatMap((e) => (e.type === 'candidate' && e.candidate.type === 'srflx' ? [e.candidate] : []));
      // One mapping seen by both servers: same transport address and base, so §5.1.3 keeps one candidate.
      expect(srflx).toHaveLength(distinct);
      expect(new Set(srflx.map((c) => `${c.address}:${c.port}`)).size).toBe(distinct);
      expect(g.stats.redundant).toBe(2 - distinct);
      for (const c of srflx) {
        expect(c.address).toBe('203.0.113.1');
        expect(c.base).toEqual(base);
        expect(c.relatedAddress).toBe('10.0.0.2');
      }
      // Different server IPs: different foundations (RFC 8445 §5.1.1.3).
      if (distinct === 2) expect(srflx[0]!.foundation).not.toBe(srflx[1]!.foundation);
      expect(now).toBeLessThanOrEqual(100); // two Ta slots, no retransmissions needed
    });
  }
});
