import { describe, expect, it } from 'vitest';
import type { AgentCore } from '../../src/checklist/agent-core.js';
import type { LocalCandidate } from '../../src/candidates/candidate.js';
import { Driver, candidatePriority, host, signalled, srflx } from './harness.js';

const done = (...a: AgentCore[]) => () => a.every((x) => x.state === 'completed');

function twoAgents(d: Driver, lOpts = {}, rOpts = {}) {
  const l = d.add('L', { role: 'controlling', ...lOpts });
  const r = d.add('R', { role: 'controlled', ...rOpts });
  l.addStream(1);
  r.addStream(1);
  return { l, r };
}

describe('server-reflexive and relayed local candidates', () => {
  it('pairs a srflx candidate through its base (pruned), and the valid pair has the srflx local', () => {
    const d = new Driver();
    const { l, r } = twoAgents(d);
    const lh = host('10.0.0.1', 5000);
    const ls = srflx('203.0.113.1', 40000, lh.base);
    const rh = host('198.51.100.2', 6000);
    d.own('L', lh.base);
    d.own('R', rh.base);
    // L is behind a NAT whose mapping is exactly the srflx candidate L gathered.
    d.nat('L', lh.base, { address: '203.0.113.1', port: 40000 });
    l.addLocalCandidate(0, lh);
    l.addLocalCandidate(0, ls);
    r.addLocalCandidate(0, rh);
    l.setRemoteParameters(0, r.getLocalParameters());
    r.setRemoteParameters(0, l.getLocalParameters());
    l.addRemoteCandidate(0, signalled(rh));
    r.addRemoteCandidate(0, signalled(lh)); // unreachable private address
    r.addRemoteCandidate(0, signalled(ls));
    // RFC 8445 §6.1.2.4: the srflx pair becomes the host pair, so L has one pair only.
    expect(l.getChecklist(0).pairs).toHaveLength(1);
    expect(l.getChecklist(0).pairs[0]!.local.type).toBe('host');
    d.run(5000, done(l, r));
    expect([l.state, r.state]).toEqual(['completed', 'completed']);
    const sel = l.getSelectedPair(0, 1)!;
    expect(sel.local.type).toBe('srflx'); // RFC 8445 §7.2.5.3.2: the valid pair's local is the mapped address
    expect(sel.local.base).toEqual(lh.base);
    expect(d.eventsOf('L', 'prflx-local')).toHaveLength(0);
    expect(d.eventsOf('R', 'prflx-remote')).toHaveLength(0);
    expect(r.getSelectedPair(0, 1)!.remote.type).toBe('srflx');
    // Data leaves from the base.
    l.send(d.now, 0, 1, Buffer.from('x'));
    d.drain();
    const last = d.sent.filter((s) => s.agent === 'L' && s.kind === 'data').at(-1)!;
    expect(last.datagram.local).toEqual(lh.base);
  });

  it('sends from the relayed address for a relayed local candidate', () => {
    const d = new Driver();
    const { l, r } = twoAgents(d);
    const relayed = { address: '198.51.100.7', port: 40000 };
    const relay: LocalCandidate = {
      foundation: 'rly',
      component: 1,
      transport: 'udp',
      priority: candidatePriority('relay', 65535, 1),
      address: relayed.address,
      port: relayed.port,
      type: 'relay',
      relatedAddress: '10.0.0.1',
      relatedPort: 5000,
      base: relayed,
      socket: { address: '10.0.0.1', port: 5000 },
      relayServer: { address: '198.51.100.1', port: 3478 },
    };
    const rh = host('198.51.100.2', 6000);
    d.own('L', relayed);
    d.own('R', rh.base);
    l.addLocalCandidate(0, relay);
    r.addLocalCandidate(0, rh);
    l.setRemoteParameters(0, r.getLocalParameters());
    r.setRemoteParameters(0, l.getLocalParameters());
    l.addRemoteCandidate(0, signalled(rh));
    r.addRemoteCandidate(0, signalled(relay));
    d.run(5000, done(l, r));
    expect(l.getSelectedPair(0, 1)!.local.type).toBe('relay');
    expect(d.sent.filter((s) => s.agent === 'L').every((s) => s.datagram.local.address === relayed.address)).toBe(true);
  });

  it('facing a lite peer, aggressive is overridden by regular nomination', () => {
    const d = new Driver();
    const { l, r } = twoAgents(d, { nomination: 'aggressive' }, { lite: true });
    const lh = host('10.0.0.1', 5000);
    const rh = host('10.0.0.2', 6000);
    d.own('L', lh.base);
    d.own('R', rh.base);
    l.addLocalCandidate(0, lh);
    r.addLocalCandidate(0, rh);
    l.setRemoteParameters(0, r.getLocalParameters());
    r.setRemoteParameters(0, l.getLocalParameters());
    l.addRemoteCandidate(0, signalled(rh));
    r.addRemoteCandidate(0, signalled(lh));
    d.run(5000, done(l, r));
    expect(d.requestsOf('L')[0]!.useCandidate).toBe(false);
    expect(r.getLocalParameters().lite).toBe(true);
  });
});

describe('fewer components from the peer (RFC 8445 §6.1.2.2, RTP/RTCP mux)', () => {
  it('two components offered, one answered: completes on component 1 once end-of-candidates is known', () => {
    const d = new Driver();
    const l = d.add('L', { role: 'controlling' });
    const r = d.add('R', { role: 'controlled' });
    l.addStream(2);
    r.addStream(1);
    const l1 = host('10.0.0.1', 5000, 1);
    const l2 = host('10.0.0.1', 5001, 2);
    const r1 = host('10.0.0.2', 6000, 1);
    for (const c of [l1, l2]) {
      d.own('L', c.base);
      l.addLocalCandidate(0, c);
    }
    d.own('R', r1.base);
    r.addLocalCandidate(0, r1);
    l.setRemoteParameters(0, r.getLocalParameters());
    r.setRemoteParameters(0, l.getLocalParameters());
    l.addRemoteCandidate(0, signalled(r1));
    r.addRemoteCandidate(0, signalled(l1));
    d.run(3000);
    expect(l.state).toBe('checking'); // component 2 may still come
    l.endOfRemoteCandidates(0);
    r.endOfRemoteCandidates(0);
    d.run(d.now + 3000, done(l, r));
    expect([l.state, r.state]).toEqual(['completed', 'completed']);
    expect(l.getSelectedPair(0, 2)).toBeUndefined();
  });
});
