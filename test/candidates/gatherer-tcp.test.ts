/** RFC 6544 host TCP candidates from the gatherer, and their priorities (§4.2) with RFC 8421 interleaving. */
import { describe, expect, it } from 'vitest';
import type { LocalCandidate } from '../../src/candidates/candidate.js';
import { Gatherer, type HostBase } from '../../src/candidates/gatherer.js';
import { formatCandidate } from '../../src/candidates/grammar.js';
import { signalledCandidate } from '../../src/candidates/signal.js';
import { orderLocalAddresses, splitPriority, tcpLocalPreference } from '../../src/candidates/priority.js';
import { SeededRandom } from '../../src/testing/random.js';

function gather(bases: HostBase[], stunServers = [{ address: '10.9.9.9', port: 3478 }]): { candidates: LocalCandidate[]; sent: number } {
  const g = new Gatherer({ random: new SeededRandom(1), bases, stunServers });
  g.start(0);
  let sent = 0;
  for (let d = g.pollTransmit(); d; d = g.pollTransmit()) sent++;
  const candidates: LocalCandidate[] = [];
  for (let e = g.pollEvent(); e; e = g.pollEvent()) if (e.type === 'candidate') candidates.push(e.candidate);
  return { candidates, sent };
}

describe('TCP host candidates (RFC 6544 §4.1, §4.5, §5.1)', () => {
  const udp: HostBase = { address: { address: '10.0.0.1', port: 5000 }, component: 1 };
  const passive: HostBase = { address: { address: '10.0.0.1', port: 5001 }, component: 1, transport: 'tcp', tcpType: 'passive' };
  const active: HostBase = { address: { address: '10.0.0.1', port: 0 }, component: 1, transport: 'tcp', tcpType: 'active' };

  it('announces passive with its port and active with port 9, and asks STUN servers from UDP bases only', () => {
    const { candidates, sent } = gather([udp, passive, active]);
    const [u, p, a] = candidates;
    expect(sent).toBe(1);
    expect(p).toMatchObject({ transport: 'tcp', tcpType: 'passive', port: 5001, base: { address: '10.0.0.1', port: 5001 } });
    expect(a).toMatchObject({ transport: 'tcp', tcpType: 'active', port: 9, base: { address: '10.0.0.1', port: 9 } });
    expect(formatCandidate(signalledCandidate(a!))).toMatch(/ tcp \d+ 10\.0\.0\.1 9 typ host tcptype active$/);
    // Foundations include the transport (RFC 8445 §5.1.1.3).
    expect(p!.foundation).not.toBe(u!.foundation);
    expect(p!.foundation).toBe(a!.foundation);
  });

  it('ranks UDP host over TCP host over UDP server-reflexive, active over passive (RFC 6544 §4.2)', () => {
    const { candidates } = gather([udp, passive, active]);
    const [u, p, a] = candidates.map((c) => splitPriority(c.priority));
    expect(u!.typePreference).toBe(126);
    expect(p!.typePreference).toBe(125);
    expect(a!.typePreference).toBe(125);
    expect(p!.typePreference).toBeGreaterThan(100);
    expect(a!.localPreference).toBe(6 * 8192 + 8191);
    expect(p!.localPreference).toBe(4 * 8192 + 8191);
  });

  it('keeps the RFC 8421 address order in the other-pref of every direction', () => {
    const bases: HostBase[] = ['10.0.0.1', '2001:db8::1', '10.0.0.2', '2001:db8::2'].map((address, i) => ({
      address: { address, port: 6000 + i },
      component: 1,
      transport: 'tcp' as const,
      tcpType: 'passive' as const,
    }));
    const { candidates } = gather(bases, []);
    const order = [...candidates].sort((x, y) => y.priority - x.priority).map((c) => c.address);
    // The order UDP candidates get from localPreferences (RFC 8421 §4: IPv6 head start, then interleaved).
    expect(order).toEqual(orderLocalAddresses(bases.map((b) => b.address.address)));
    for (const c of candidates) expect(splitPriority(c.priority).localPreference >> 13).toBe(4);
  });

  it('computes 2^13 x direction-pref + other-pref', () => {
    expect(tcpLocalPreference('active', 65535)).toBe(6 * 8192 + 8191);
    expect(tcpLocalPreference('so', 65535 - 128)).toBe(2 * 8192 + 8175);
    expect(() => tcpLocalPreference('passive', 70000)).toThrow(RangeError);
  });
});
