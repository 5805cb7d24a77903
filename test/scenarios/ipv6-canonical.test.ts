/**
 * A peer that signals its IPv6 candidate in non-canonical text (`2001:DB8::2`) while its packets come from the
 * canonical `2001:db8::2` (what a socket reports). The responses must count as symmetric (RFC 8445 §7.2.5.2.1):
 * comparing the strings dropped them as asymmetric, and against an ICE-lite peer (which sends no checks of its own)
 * the agent then stayed in `checking` for good.
 */
import { describe, expect, it } from 'vitest';
import { scenario, signalled, type Scenario } from './harness.js';

describe('IPv6 candidates signalled in non-canonical form', () => {
  /** a (full, controlling) and b (lite) on IPv6; b's host candidate reaches a spelled `2001:DB8::2`. */
  function upperCasePeer(seed: string): Scenario {
    const sc = scenario({
      seed,
      a: { stun: false, extraAddresses: ['2001:db8::1'] },
      // b's candidates are signalled below, by hand, in the peer's own spelling.
      b: { lite: true, stun: false, extraAddresses: ['2001:db8::2'], signal: () => false, withholdEndOfCandidates: true },
    }).start();
    expect(sc.net.runUntilTrue(() => sc.b.gathered[0]!.some((c) => c.address === '2001:db8::2'), 1_000)).toBe(true);
    const v6 = sc.b.gathered[0]!.find((c) => c.address === '2001:db8::2')!;
    sc.a.machine.addRemoteCandidate(sc.net.now, 0, { ...signalled(v6), address: '2001:DB8::2' });
    sc.signalEndOfCandidates(sc.b);
    return sc;
  }

  it('a full agent connects to an ICE-lite peer whose candidate is written in upper case', () => {
    const sc = upperCasePeer('ipv6-upper');
    const v6 = sc.b.gathered[0]!.find((c) => c.address === '2001:db8::2')!;
    expect(sc.runUntilConnected(30_000)).toBe(true);
    expect(sc.state(sc.a)).not.toBe('checking');
    expect(sc.a.machine.core.getStats().dropped['response-asymmetric'] ?? 0).toBe(0);
    expect(sc.selected(sc.a)!.remote.port).toBe(v6.port);
  });

  // The receive route matches remote candidates by address text: the core canonicalises them when they are added.
  it('data from that peer reaches the agent', () => {
    const sc = upperCasePeer('ipv6-upper-data');
    expect(sc.runUntilConnected(30_000)).toBe(true);
    expect(sc.exchange(sc.a, 'to lite')).toBe(true);
    expect(sc.exchange(sc.b, 'from lite')).toBe(true);
  });
});
