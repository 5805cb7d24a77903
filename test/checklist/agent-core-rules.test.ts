import { describe, expect, it } from 'vitest';
import type { AgentCore } from '../../src/checklist/agent-core.js';
import { Driver, connectPair, host, signalled, twoHostAgents } from './harness.js';

const done = (...a: AgentCore[]) => () => a.every((x) => x.state === 'completed');

describe('role conflict details (RFC 8445 §7.2.5.1, §7.3.1.1)', () => {
  it('both controlling: the larger tie-breaker stays controlling; the other switches, and changes its tie-breaker after a 487', () => {
    const d = new Driver();
    const { l, r } = connectPair(d, { l: { tieBreaker: 10n }, r: { role: 'controlling', tieBreaker: 20n } });
    d.run(10_000, done(l, r));
    expect(r.role).toBe('controlling');
    expect(l.role).toBe('controlled');
    // Both sent a check at t=0 claiming ICE-CONTROLLING. R (20 >= 10) answered L's with 487; L got it and switched.
    // L (10 < 20) switched on R's request too: one role change in all.
    expect(d.eventsOf('L', 'role-change').map((e) => e.role)).toEqual(['controlled']);
    expect(d.eventsOf('R', 'role-change')).toHaveLength(0);
    expect(d.sent.some((s) => s.agent === 'R' && s.kind === 'error')).toBe(true);
    // RFC 8445 §7.2.5.1: "The agent MUST change the tiebreaker value" after the 487; R never got one.
    expect(l.tieBreaker).not.toBe(10n);
    expect(r.tieBreaker).toBe(20n);
  });

  it('both controlled: the larger tie-breaker becomes controlling', () => {
    const d = new Driver();
    const { l, r } = connectPair(d, { l: { role: 'controlled', tieBreaker: 5n }, r: { tieBreaker: 7n } });
    d.run(10_000, done(l, r));
    expect(r.role).toBe('controlling');
    expect(l.role).toBe('controlled');
    expect(l.getSelectedPair(0, 1)!.local.port).toBe(r.getSelectedPair(0, 1)!.remote.port);
  });
});

describe('requests before the remote parameters (RFC 8445 §7.3)', () => {
  it('are answered at once and processed (prflx, triggered check) once the parameters arrive', () => {
    const d = new Driver();
    const { l, r, rc } = twoHostAgents(d);
    // L has the answer; R (the offerer) has not got it yet.
    l.setRemoteParameters(0, r.getLocalParameters());
    l.addRemoteCandidate(0, signalled(rc));
    d.run(30);
    expect(d.sent.filter((s) => s.agent === 'R' && s.kind === 'success')).toHaveLength(1);
    expect(d.requestsOf('R')).toHaveLength(0);
    expect(d.eventsOf('R', 'prflx-remote')).toHaveLength(0);
    r.setRemoteParameters(0, l.getLocalParameters());
    d.run(5000, done(l, r));
    expect([l.state, r.state]).toEqual(['completed', 'completed']);
    expect(d.eventsOf('R', 'prflx-remote')).toHaveLength(1);
  });
});

describe('trickled candidate replacing a peer-reflexive one (RFC 8838 §11 rule 4.A)', () => {
  it('keeps the pair and takes the signalled priority', () => {
    const d = new Driver();
    const l = d.add('L', { role: 'controlling' });
    const r = d.add('R', { role: 'controlled' });
    l.addStream(1);
    r.addStream(1);
    const lc = host('10.0.0.9', 5000);
    const rc = host('10.0.0.2', 6000);
    d.own('L', lc.base);
    d.own('R', rc.base);
    l.addLocalCandidate(0, lc);
    r.addLocalCandidate(0, rc);
    l.setRemoteParameters(0, r.getLocalParameters());
    r.setRemoteParameters(0, l.getLocalParameters());
    l.addRemoteCandidate(0, signalled(rc)); // L's own candidate reaches R late
    d.run(5000, done(l, r));
    // L checked from 10.0.0.9 before signalling it: R learnt it as peer-reflexive (priority from PRIORITY, type 110).
    const prflx = d.eventsOf('R', 'prflx-remote').map((e) => e.candidate);
    expect(prflx.map((c) => c.address)).toEqual(['10.0.0.9']);
    const before = r.getStats().pairs.filter((p) => p.remote.address === '10.0.0.9');
    expect(before.length).toBeGreaterThan(0);
    r.addRemoteCandidate(0, signalled(lc));
    const after = r.getStats().pairs.filter((p) => p.remote.address === '10.0.0.9');
    expect(after.map((p) => p.id)).toEqual(before.map((p) => p.id));
    // R is controlled: G = L's (signalled) priority, D = R's.
    for (const p of after) {
      const g = BigInt(lc.priority);
      const dd = BigInt(p.local.priority);
      expect(p.priority).toBe((g < dd ? g : dd) * 2n ** 32n + 2n * (g > dd ? g : dd) + (g > dd ? 1n : 0n));
      expect(p.priority).not.toBe(before.find((b) => b.id === p.id)!.priority);
    }
  });
});
