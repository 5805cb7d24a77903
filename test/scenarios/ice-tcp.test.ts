/**
 * ICE-TCP (RFC 6544) end to end on the virtual network: two AgentMachines with TCP host candidates only, each
 * tcptype combination, behind endpoint-independent and symmetric NATs; and mixed UDP/TCP checklists, where UDP
 * wins when it works and TCP carries the call when the NAT drops UDP.
 */
import { describe, expect, it } from 'vitest';
import { scenario, type Side } from './harness.js';

const tcpOnly = (tcp: ('active' | 'passive')[]) => ({ udp: false, stun: false, tcp });
const transports = (side: Side) => side.gathered[0]!.map((c) => `${c.transport}${c.tcpType ? `/${c.tcpType}` : ''}`);

describe('ICE-TCP between two icewire agents on the virtual network', () => {
  for (const [name, a, b] of [
    ['a active, b passive', ['active'], ['passive']],
    ['a passive, b active', ['passive'], ['active']],
    ['both active and passive', ['active', 'passive'], ['active', 'passive']],
  ] as const) {
    it(`TCP only, public hosts: ${name}`, () => {
      const sc = scenario({ seed: `tcp-${name}`, a: tcpOnly([...a]), b: tcpOnly([...b]) }).start();
      expect(sc.runUntilCompleted(10_000)).toBe(true);
      expect(transports(sc.a).every((t) => t.startsWith('tcp'))).toBe(true);
      for (const side of [sc.a, sc.b]) expect(sc.selected(side)!.local.transport).toBe('tcp');
      expect(sc.exchange(sc.a, 'over tcp a->b')).toBe(true);
      expect(sc.exchange(sc.b, 'over tcp b->a')).toBe(true);
      // RFC 6544 §8: one connection left, its two ends.
      sc.net.runFor(1000);
      expect(sc.net.tcpConnections).toBe(2);
    });
  }

  it('simultaneous-open candidates pair with each other (RFC 6544 §6.2) and connect, both SYNs crossing', () => {
    const sc = scenario({ seed: 'tcp-so', a: { udp: false, stun: false, tcp: ['so'] }, b: { udp: false, stun: false, tcp: ['so'] } }).start();
    expect(sc.runUntilCompleted(10_000)).toBe(true);
    for (const side of [sc.a, sc.b]) expect(sc.selected(side)!.local).toMatchObject({ transport: 'tcp', tcpType: 'so', port: 5200 });
    expect(sc.sameSelectedPair()).toBe(true);
    expect(sc.exchange(sc.a, 'so a->b')).toBe(true);
    expect(sc.exchange(sc.b, 'so b->a')).toBe(true);
    sc.net.runFor(1000);
    expect(sc.net.tcpConnections).toBe(2); // one connection, two ends
  });

  it('simultaneous-open, one side late: the connection the other opened carries both sides\' checks', () => {
    // b's candidates reach a 200 ms late: b connects to a's so listener first; a's pair then finds that accepted
    // connection on its route and opens none of its own.
    const sc = scenario({ seed: 'tcp-so-late', a: { udp: false, stun: false, tcp: ['so'] }, b: { udp: false, stun: false, tcp: ['so'], candidateDelayMs: () => 200 } }).start();
    expect(sc.runUntilCompleted(10_000)).toBe(true);
    expect(sc.sameSelectedPair()).toBe(true);
    expect(sc.exchange(sc.b, 'late so')).toBe(true);
    expect(sc.a.attachment.events.filter((e) => e.type === 'tcp-connect')).toHaveLength(0);
  });

  it('two agents with only active candidates never pair (RFC 6544 §6.2) and fail', () => {
    const sc = scenario({ seed: 'tcp-aa', a: { ...tcpOnly(['active']), agent: { failureGraceMs: 3000 } }, b: { ...tcpOnly(['active']), agent: { failureGraceMs: 3000 } } }).start();
    expect(sc.net.runUntilTrue(() => sc.state(sc.a) === 'failed' && sc.state(sc.b) === 'failed', 10_000)).toBe(true);
    expect(sc.a.machine.core.getChecklist(0).pairs).toHaveLength(0);
  });

  for (const kind of ['full-cone', 'port-restricted', 'symmetric'] as const) {
    it(`active behind a ${kind} NAT reaches a public passive candidate`, () => {
      const sc = scenario({ seed: `tcp-nat-${kind}`, a: { ...tcpOnly(['active']), nat: kind }, b: tcpOnly(['passive']) }).start();
      expect(sc.runUntilCompleted(10_000)).toBe(true);
      // The NAT rewrote the connection's source: a's check reveals a peer-reflexive local candidate; b sees the
      // NAT's address as a peer-reflexive remote.
      expect(sc.selected(sc.a)!.local.type).toBe('prflx');
      expect(sc.selected(sc.b)!.remote.address).toBe('203.0.113.1');
      expect(sc.exchange(sc.a, 'through the NAT')).toBe(true);
      expect(sc.exchange(sc.b, 'back through the NAT')).toBe(true);
    });
  }

  it('a passive candidate behind a NAT is unreachable: the attempt is given up and the agents fail', () => {
    const sc = scenario({
      seed: 'tcp-nat-passive',
      a: { ...tcpOnly(['active']), agent: { failureGraceMs: 5000, tcpConnectTimeoutMs: 2000 } },
      b: { ...tcpOnly(['passive']), nat: 'full-cone', agent: { failureGraceMs: 5000 } },
    }).start();
    expect(sc.net.runUntilTrue(() => sc.state(sc.a) === 'failed', 20_000)).toBe(true);
    expect(sc.a.machine.core.getStats().pairs.every((p) => p.state === 'failed')).toBe(true);
  });

  it('consent checks run on the TCP pair (RFC 7675): a minute later both sides still have consent and data flows', () => {
    const sc = scenario({ seed: 'tcp-consent', a: tcpOnly(['active']), b: tcpOnly(['passive']) }).start();
    expect(sc.runUntilCompleted(10_000)).toBe(true);
    const before = sc.a.machine.core.getStats().pairs.find((p) => p.nominated)!;
    sc.net.runFor(60_000);
    const after = sc.a.machine.core.getStats().pairs.find((p) => p.nominated)!;
    // One consent check every 4-6 s, each answered over the same connection.
    expect(after.requestsSent - before.requestsSent).toBeGreaterThanOrEqual(10);
    expect(after.responsesReceived - before.responsesReceived).toBe(after.requestsSent - before.requestsSent);
    for (const side of [sc.a, sc.b]) expect(side.states.map((s) => s.state)).not.toContain('disconnected');
    expect(sc.state(sc.a)).toBe('completed');
    expect(sc.exchange(sc.b, 'still there')).toBe(true);
  });

  it('a reset of the selected connection is reopened by the active side, both stay on the pair (RFC 6544 §11.1)', () => {
    const sc = scenario({ seed: 'tcp-reset', a: tcpOnly(['active']), b: tcpOnly(['passive']) }).start();
    expect(sc.runUntilCompleted(10_000)).toBe(true);
    const [a, b] = [sc.selected(sc.a)!, sc.selected(sc.b)!];
    expect(sc.net.resetTcp(sc.a.host)).toBe(1);
    sc.net.runFor(500);
    expect(sc.net.tcpConnections).toBe(2); // both ends of the new connection
    expect(sc.exchange(sc.a, 'after reopen')).toBe(true);
    expect(sc.exchange(sc.b, 'after reopen back')).toBe(true);
    sc.net.runFor(45_000); // beyond one consent timeout: consent holds on the new connection
    for (const side of [sc.a, sc.b]) expect(sc.state(side)).toBe('completed');
    expect(sc.selected(sc.a)).toEqual(a);
    expect(sc.selected(sc.b)!.local).toEqual(b.local);
    expect(sc.exchange(sc.a, 'still there')).toBe(true);
  });

  it('a reset of the selected connection with the peer gone fails both agents', () => {
    const sc = scenario({ seed: 'tcp-reset-gone', a: tcpOnly(['active']), b: tcpOnly(['passive']) }).start();
    expect(sc.runUntilCompleted(10_000)).toBe(true);
    expect(sc.net.resetTcp(sc.b.host)).toBe(1);
    sc.b.host.online = false; // b's stack reset, then b went away: a's reopening attempts go unanswered
    expect(sc.net.runUntilTrue(() => sc.state(sc.a) === 'failed', 60_000)).toBe(true);
    sc.b.host.online = true;
    expect(sc.net.runUntilTrue(() => sc.state(sc.b) === 'failed', 60_000)).toBe(true); // consent ends b's pair too
  });
});

describe('mixed UDP/TCP checklists', () => {
  it('UDP wins when it works: TCP pairs rank below UDP host pairs', () => {
    const sc = scenario({ seed: 'mixed-udp', a: { stun: false, tcp: ['active', 'passive'] }, b: { stun: false, tcp: ['active', 'passive'] } }).start();
    expect(sc.runUntilCompleted(10_000)).toBe(true);
    expect(sc.selected(sc.a)!.local.transport).toBe('udp');
    expect(sc.selected(sc.b)!.local.transport).toBe('udp');
    expect(sc.exchange(sc.a, 'udp')).toBe(true);
    // Both kinds were gathered and signalled; TCP connections not selected are closed at completion (RFC 6544 §8).
    expect(new Set(transports(sc.a))).toEqual(new Set(['udp', 'tcp/active', 'tcp/passive']));
    expect(sc.b.delivered[0]!.some((c) => c.transport === 'tcp')).toBe(true);
    sc.net.runFor(500);
    expect(sc.net.tcpConnections).toBe(0);
  });

  it('TCP carries the call when a NAT drops UDP', () => {
    const sc = scenario({
      seed: 'mixed-udp-blocked',
      a: { tcp: ['active'], nat: 'port-restricted', natOptions: { blockUdp: true } },
      b: { stun: false, tcp: ['passive'] },
    }).start();
    expect(sc.runUntilCompleted(60_000)).toBe(true);
    expect(sc.selected(sc.a)!.local.transport).toBe('tcp');
    expect(sc.selected(sc.b)!.local.transport).toBe('tcp');
    expect(sc.exchange(sc.a, 'tcp fallback')).toBe(true);
    expect(sc.exchange(sc.b, 'tcp fallback back')).toBe(true);
  });

  it('is deterministic: the same seed gives the same run', () => {
    const run = () => {
      const sc = scenario({ seed: 'tcp-det', a: { stun: false, tcp: ['active', 'passive'] }, b: tcpOnly(['passive']) }).start();
      sc.runUntilCompleted(10_000);
      return sc.transcript();
    };
    expect(run()).toBe(run());
  });
});
