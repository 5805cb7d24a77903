import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { AgentCore } from '../../src/checklist/agent-core.js';
import { GlobalPacer } from '../../src/stun/pacing.js';
import { Driver, connectPair, host, signalled, type SentRecord, twoHostAgents } from './harness.js';

const txid = (s: SentRecord): string => Buffer.from(s.datagram.data.subarray(8, 20)).toString('hex');
function firstRequests(d: Driver, agent?: string): SentRecord[] {
  const seen = new Set<string>();
  return d.sent.filter((s) => s.kind === 'request' && (agent === undefined || s.agent === agent) && !seen.has(txid(s)) && (seen.add(txid(s)), true));
}
const done = (...a: AgentCore[]) => () => a.every((x) => x.state === 'completed');
const text = (u: Uint8Array) => Buffer.from(u).toString();

describe('ICE restart (RFC 8445 §9)', () => {
  it('keeps data on the old pair until the new session selects a pair', () => {
    const d = new Driver();
    const { l, r } = connectPair(d);
    d.run(5000, done(l, r));
    const old = l.getSelectedPair(0, 1)!;
    const oldUfrag = l.getLocalParameters().ufrag;
    l.restart();
    r.restart();
    expect(l.getLocalParameters().ufrag).not.toBe(oldUfrag);
    d.run(d.now + 10);
    // Before the new parameters arrive: data still flows on the old pair.
    expect(l.send(d.now, 0, 1, Buffer.from('during-1'))).toBe(true);
    l.setRemoteParameters(0, r.getLocalParameters());
    r.setRemoteParameters(0, l.getLocalParameters());
    expect(l.getSelectedPair(0, 1)!.id).toBe(old.id);
    expect(l.send(d.now, 0, 1, Buffer.from('during-2'))).toBe(true);
    const selectedBefore = d.eventsOf('L', 'selected-pair').length;
    // New candidates: R comes back on another port.
    l.addRemoteCandidate(0, signalled(host('10.0.0.2', 6000)));
    r.addRemoteCandidate(0, signalled(host('10.0.0.1', 5000)));
    d.run(d.now + 5000, () => d.eventsOf('L', 'selected-pair').length > selectedBefore && d.eventsOf('R', 'selected-pair').length > 1);
    const fresh = l.getSelectedPair(0, 1)!;
    expect(fresh.id).not.toBe(old.id);
    expect(l.send(d.now, 0, 1, Buffer.from('after'))).toBe(true);
    d.run(d.now + 100);
    expect(d.eventsOf('R', 'data').map((e) => text(e.data))).toEqual(['during-1', 'during-2', 'after']);
    expect(l.state).toBe('completed');
    // New-session checks use the new credentials.
    const lastReq = firstRequests(d, 'L').at(-1)!;
    expect(Buffer.from(lastReq.datagram.data).includes(Buffer.from(`${r.getLocalParameters().ufrag}:${l.getLocalParameters().ufrag}`))).toBe(true);
  });
});

describe('ICE restart before any selection', () => {
  it('keeps using the valid pair data was on (RFC 8445 §12.1) until the new session selects', () => {
    const d = new Driver();
    const { l, r } = connectPair(d, {
      // A higher-priority unreachable pair keeps L from nominating for a long while.
      rBases: [{ address: '10.0.9.1', port: 6000 }, { address: '10.0.0.2', port: 6000 }],
      unreachable: [{ address: '10.0.9.1', port: 6000 }],
      l: { nominationTimeoutMs: 60_000 },
    });
    d.run(5000, () => l.state === 'connected');
    expect(l.state).toBe('connected');
    expect(l.getSelectedPair(0, 1)?.nominated).toBe(false);
    l.restart();
    r.restart();
    l.setRemoteParameters(0, r.getLocalParameters());
    r.setRemoteParameters(0, l.getLocalParameters());
    d.run(d.now + 10);
    expect(l.state).toBe('connected');
    expect(l.send(d.now, 0, 1, Buffer.from('still'))).toBe(true);
    d.run(d.now + 50);
    expect(d.eventsOf('R', 'data').map((e) => text(e.data))).toEqual(['still']);
  });
});

describe('consent freshness (RFC 7675)', () => {
  it('sends consent checks every 4-6 s; silence -> disconnected -> failed at 30 s; sending stops', () => {
    const d = new Driver();
    const { l, r } = connectPair(d);
    d.run(5000, done(l, r));
    const t0 = d.now;
    d.run(t0 + 31_000);
    const consent = firstRequests(d, 'L').filter((s) => s.t > t0);
    expect(consent.length).toBeGreaterThanOrEqual(5);
    for (let i = 1; i < consent.length; i++) {
      const gap = consent[i]!.t - consent[i - 1]!.t;
      expect(gap).toBeGreaterThanOrEqual(4000);
      expect(gap).toBeLessThanOrEqual(6000);
    }
    expect(l.state).toBe('completed');
    // The peer goes silent.
    d.muted.add('R');
    const silentAt = d.now;
    d.run(silentAt + 60_000, () => l.state === 'disconnected');
    expect(l.state).toBe('disconnected');
    expect(d.now - silentAt).toBeLessThan(16_000);
    expect(l.send(d.now, 0, 1, Buffer.from('x'))).toBe(true); // consent not expired yet
    d.run(silentAt + 60_000, () => l.state === 'failed');
    expect(l.state).toBe('failed');
    expect(d.now - silentAt).toBeLessThanOrEqual(36_000);
    expect(d.eventsOf('L', 'consent-lost')).toHaveLength(1);
    expect(l.send(d.now, 0, 1, Buffer.from('x'))).toBe(false);
    const after = d.now;
    d.run(after + 20_000);
    expect(d.sent.filter((s) => s.agent === 'L' && s.t > after)).toHaveLength(0);
  });

  it('comes back from disconnected when answers resume', () => {
    const d = new Driver();
    const { l, r } = connectPair(d);
    d.run(5000, done(l, r));
    d.muted.add('R');
    d.run(d.now + 60_000, () => l.state === 'disconnected');
    d.muted.delete('R');
    d.run(d.now + 10_000, () => l.state === 'completed');
    expect(l.state).toBe('completed');
  });

  it('keepalives (Binding indications) every 15 s when consent is off', () => {
    const d = new Driver();
    const { l, r } = connectPair(d, { l: { consentIntervalMs: 0 }, r: { consentIntervalMs: 0 } });
    d.run(5000, done(l, r));
    const t0 = d.now;
    d.run(t0 + 46_000);
    const ka = d.sent.filter((s) => s.agent === 'L' && s.kind === 'indication').map((s) => s.t - t0);
    expect(ka.length).toBe(3);
    expect(ka[1]! - ka[0]!).toBe(15_000);
  });
});

describe('ICE lite (RFC 8445 §2.5, §6.1.1, §7.3.2, §8.2)', () => {
  it('a lite core answers checks, sends none, and selects the nominated pair', () => {
    const d = new Driver();
    const { l, r } = connectPair(d, { r: { lite: true, role: 'controlling' } });
    expect(r.role).toBe('controlled');
    d.run(5000, done(l, r));
    expect([l.state, r.state]).toEqual(['completed', 'completed']);
    expect(d.requestsOf('R')).toHaveLength(0);
    expect(r.getSelectedPair(0, 1)!.remote.address).toBe('10.0.0.1');
    expect(r.send(d.now, 0, 1, Buffer.from('from-lite'))).toBe(true);
    d.run(d.now + 50);
    expect(d.eventsOf('L', 'data').map((e) => text(e.data))).toEqual(['from-lite']);
  });

  it('a full core facing a lite peer becomes controlling and nominates (regular)', () => {
    const d = new Driver();
    const { l, r } = connectPair(d, { l: { role: 'controlled' }, r: { lite: true } });
    expect(l.role).toBe('controlling');
    expect(d.eventsOf('L', 'role-change').length + 0).toBe(0); // not drained yet
    d.run(5000, done(l, r));
    expect(d.eventsOf('L', 'role-change').map((e) => e.role)).toEqual(['controlling']);
    const nom = d.sent.filter((s) => s.agent === 'L' && s.useCandidate);
    expect(nom.length).toBeGreaterThan(0);
    // Regular nomination: the first check carried no USE-CANDIDATE.
    expect(firstRequests(d, 'L')[0]!.useCandidate).toBe(false);
  });

  it('a lite agent refuses non-host candidates', () => {
    const d = new Driver();
    const a = d.add('A', { lite: true });
    a.addStream(1);
    expect(() => a.addLocalCandidate(0, { ...host('10.0.0.1', 1), type: 'srflx' })).toThrow();
  });
});

describe('trickle (RFC 8838) and the PAC timer (RFC 8863)', () => {
  it('does not fail while candidates may still come (PAC timer); late candidates connect', () => {
    const d = new Driver();
    const { l, r, rc } = twoHostAgents(d);
    l.setRemoteParameters(0, r.getLocalParameters());
    r.setRemoteParameters(0, l.getLocalParameters());
    d.run(39_000);
    expect([l.state, r.state]).toEqual(['checking', 'checking']);
    l.addRemoteCandidate(0, signalled(rc));
    d.run(d.now + 5000, done(l, r));
    expect([l.state, r.state]).toEqual(['completed', 'completed']);
    // L's candidate was never signalled to R: R learnt it from L's check as a peer-reflexive candidate.
    expect(d.eventsOf('R', 'prflx-remote').map((e) => e.candidate.address)).toEqual(['10.0.0.1']);
  });

  it('after end-of-candidates with nothing reachable, fails only once the PAC timer (39.5 s) ran out', () => {
    const d = new Driver();
    const { l } = connectPair(d, { rBases: [{ address: '10.0.9.1', port: 6000 }], unreachable: [{ address: '10.0.9.1', port: 6000 }], l: { checklistLimit: 10 } });
    d.muted.add('R');
    d.run(39_000);
    expect(l.state).toBe('checking');
    d.run(200_000, () => l.state === 'failed');
    expect(l.state).toBe('failed');
    expect(d.now).toBeGreaterThanOrEqual(39_500);
  });

  it('without end-of-candidates the PAC timer is the fallback: failed at 39.5 s, revived by a late candidate (RFC 8863 §5)', () => {
    const d = new Driver();
    const { l, r } = connectPair(d, { rBases: [{ address: '10.0.9.1', port: 6000 }], unreachable: [{ address: '10.0.9.1', port: 6000 }], endOfCandidates: false });
    d.muted.add('R');
    d.run(39_499);
    expect(l.state).toBe('checking');
    d.run(39_600);
    expect(l.state).toBe('failed');
    // A candidate signalled after all (trickle without end-of-candidates) starts the checklist again.
    d.muted.delete('R');
    d.own('R', { address: '10.0.0.2', port: 6000 });
    r.addLocalCandidate(0, host('10.0.0.2', 6000));
    l.addRemoteCandidate(0, signalled(host('10.0.0.2', 6000)));
    d.run(d.now + 5_000, () => l.state === 'completed');
    expect(l.state).toBe('completed');
  });

  it('an empty checklist with end-of-candidates waits for the PAC timer, then fails', () => {
    const d = new Driver();
    const l = d.add('L', {}, [{ address: '10.0.0.1', port: 5000 }]);
    l.addStream(1);
    l.addLocalCandidate(0, host('10.0.0.1', 5000));
    l.setRemoteParameters(0, { ufrag: 'abcd', pwd: 'p'.repeat(22) });
    l.endOfRemoteCandidates(0);
    d.run(39_499);
    expect(l.state).toBe('checking');
    d.run(39_600);
    expect(l.state).toBe('failed');
  });
});

describe('components and streams', () => {
  it('two components: connected only when both have a valid pair, completed with one selected pair each', () => {
    const d = new Driver();
    const { l, r } = connectPair(d, { components: 2 });
    d.run(5000, done(l, r));
    for (const c of [1, 2]) {
      const a = l.getSelectedPair(0, c)!;
      const b = r.getSelectedPair(0, c)!;
      expect(a.component).toBe(c);
      expect([a.local.port, a.remote.port]).toEqual([b.remote.port, b.local.port]);
    }
    expect(l.getSelectedPair(0, 2)!.local.port).toBe(5001);
    expect(d.eventsOf('L', 'selected-pair')).toHaveLength(2);
  });

  it('two data streams with shared foundations complete', () => {
    const d = new Driver();
    const l = d.add('L', { role: 'controlling' });
    const r = d.add('R', { role: 'controlled' });
    for (const a of [l, r]) {
      a.addStream(1);
      a.addStream(1);
    }
    const lc = [host('10.0.0.1', 5000), host('10.0.0.1', 5002)];
    const rc = [host('10.0.0.2', 6000), host('10.0.0.2', 6002)];
    lc.forEach((c, i) => {
      d.own('L', c.base);
      l.addLocalCandidate(i, c);
    });
    rc.forEach((c, i) => {
      d.own('R', c.base);
      r.addLocalCandidate(i, c);
    });
    for (const i of [0, 1]) {
      l.setRemoteParameters(i, r.getLocalParameters());
      r.setRemoteParameters(i, l.getLocalParameters());
      l.addRemoteCandidate(i, signalled(rc[i]!));
      r.addRemoteCandidate(i, signalled(lc[i]!));
    }
    // Both streams share the foundation: only stream 0's pair starts Waiting (RFC 8445 §6.1.2.6).
    expect(l.getChecklist(1).pairs[0]!.state).toBe('frozen');
    expect(l.getChecklist(0).pairs[0]!.state).toBe('waiting');
    d.run(5000, done(l, r));
    expect(l.getSelectedPair(1, 1)!.local.port).toBe(5002);
    expect(r.getSelectedPair(1, 1)!.local.port).toBe(6002);
    expect(l.send(d.now, 1, 1, Buffer.from('s1'))).toBe(true);
    d.run(d.now + 50);
    expect(d.eventsOf('R', 'data').map((e) => [e.stream, text(e.data)])).toEqual([[1, 's1']]);
  });
});

describe('peer-reflexive discovery (RFC 8445 §7.2.5.3.1, §7.3.1.3)', () => {
  it('learns prflx candidates on both sides behind a NAT-like source rewrite', () => {
    const d = new Driver();
    const { l, r } = connectPair(d, { endOfCandidates: false });
    // L sits behind a NAT: its packets leave as 203.0.113.1:40000.
    d.nat('L', { address: '10.0.0.1', port: 5000 }, { address: '203.0.113.1', port: 40000 });
    d.run(5000, done(l, r));
    expect([l.state, r.state]).toEqual(['completed', 'completed']);
    const pr = d.eventsOf('R', 'prflx-remote');
    expect(pr.map((e) => `${e.candidate.address}:${e.candidate.port}`)).toEqual(['203.0.113.1:40000']);
    expect(pr[0]!.candidate.priority >>> 24).toBe(110);
    const pl = d.eventsOf('L', 'prflx-local');
    expect(pl.map((e) => `${e.candidate.address}:${e.candidate.port}`)).toEqual(['203.0.113.1:40000']);
    expect(pl[0]!.candidate.base).toEqual({ address: '10.0.0.1', port: 5000 });
    const ls = l.getSelectedPair(0, 1)!;
    expect(ls.local.type).toBe('prflx');
    expect(r.getSelectedPair(0, 1)!.remote.address).toBe('203.0.113.1');
    expect(l.send(d.now, 0, 1, Buffer.from('via-nat'))).toBe(true);
    d.run(d.now + 50);
    expect(d.eventsOf('R', 'data').map((e) => text(e.data))).toEqual(['via-nat']);
  });

  it('fails a pair whose response is not symmetric (RFC 8445 §7.2.5.2.1)', () => {
    const d = new Driver();
    const { l, r } = connectPair(d, { endOfCandidates: false });
    // R answers from a different port than the one L sent to.
    d.nat('R', { address: '10.0.0.2', port: 6000 }, { address: '10.0.0.2', port: 6999 });
    d.own('R', { address: '10.0.0.2', port: 6000 });
    d.run(300);
    expect(l.getStats().dropped['response-asymmetric']).toBeGreaterThan(0);
    const pair = l.getStats().pairs.find((p) => p.remote.port === 6000)!;
    expect(pair.state).toBe('failed');
    void r;
  });
});

describe('aggressive nomination (RFC 5245 peers)', () => {
  it('every check carries USE-CANDIDATE and both agents end on the same pair', () => {
    const d = new Driver();
    // Both sides RFC 5245-style: neither signals ice2 (an ice2 peer must not face aggressive nomination).
    const { l, r } = connectPair(d, {
      l: { nomination: 'aggressive' },
      r: { nomination: 'aggressive' },
      lBases: [{ address: '10.0.0.1', port: 5000 }, { address: '10.0.0.3', port: 5000 }],
    });
    d.run(5000, done(l, r));
    expect(firstRequests(d, 'L').every((s) => s.useCandidate)).toBe(true);
    expect(l.getSelectedPair(0, 1)!.local.address).toBe(r.getSelectedPair(0, 1)!.remote.address);
  });

  it('falls back to regular nomination when the peer signals ice2 (RFC 8445 §10, RFC 5245 §14)', () => {
    const d = new Driver();
    const { l, r } = connectPair(d, { l: { nomination: 'aggressive' }, lBases: [{ address: '10.0.0.1', port: 5000 }, { address: '10.0.0.3', port: 5000 }] });
    expect(r.getLocalParameters().options).toContain('ice2');
    d.run(5000, done(l, r));
    const first = firstRequests(d, 'L');
    expect(first.length).toBeGreaterThan(1);
    // Regular: ordinary checks first, then exactly one nomination request with USE-CANDIDATE.
    expect(first[0]!.useCandidate).toBe(false);
    expect(first.filter((s) => s.useCandidate)).toHaveLength(1);
    expect(l.getSelectedPair(0, 1)!.local.address).toBe(r.getSelectedPair(0, 1)!.remote.address);
  });
});

describe('global pacer across agents (RFC 8445 §14.2, 5 ms)', () => {
  it('never lets two new transactions of the process be closer than 5 ms, and a late agent gets its first check fast', () => {
    const pacer = new GlobalPacer({ intervalMs: 5 });
    const d = new Driver({ delayMs: 10 });
    const agents: AgentCore[] = [];
    // Agent A: 60 unreachable pairs. Agents B..E each one reachable peer, starting later.
    const a = d.add('A', { pacer, checklistLimit: 100 }, [{ address: '10.1.0.1', port: 1 }]);
    a.addStream(1);
    a.addLocalCandidate(0, host('10.1.0.1', 1));
    a.setRemoteParameters(0, { ufrag: 'zzzz', pwd: 'z'.repeat(22) });
    for (let i = 0; i < 60; i++) a.addRemoteCandidate(0, signalled(host(`10.9.${i >> 8}.${i & 255}`, 9)));
    agents.push(a);
    d.run(100);
    const starts: Record<string, number> = {};
    for (const name of ['B', 'C', 'D', 'E']) {
      const x = d.add(name, { pacer, role: 'controlling' }, [{ address: `10.2.0.${name.charCodeAt(0)}`, port: 1 }]);
      const y = d.add(`${name}peer`, { pacer, role: 'controlled' }, [{ address: `10.3.0.${name.charCodeAt(0)}`, port: 1 }]);
      for (const p of [x, y]) p.addStream(1);
      const xc = host(`10.2.0.${name.charCodeAt(0)}`, 1);
      const yc = host(`10.3.0.${name.charCodeAt(0)}`, 1);
      x.addLocalCandidate(0, xc);
      y.addLocalCandidate(0, yc);
      x.setRemoteParameters(0, y.getLocalParameters());
      y.setRemoteParameters(0, x.getLocalParameters());
      x.addRemoteCandidate(0, signalled(yc));
      y.addRemoteCandidate(0, signalled(xc));
      starts[name] = d.now;
      agents.push(x, y);
    }
    d.run(3000);
    const all = firstRequests(d).map((s) => s.t);
    for (let i = 1; i < all.length; i++) expect(all[i]! - all[i - 1]!).toBeGreaterThanOrEqual(5);
    expect(pacer.minSpacingMs).toBeGreaterThanOrEqual(5);
    for (const name of ['B', 'C', 'D', 'E']) {
      const first = firstRequests(d, name)[0]!;
      // Eight newcomers (four pairs of agents) plus A in line: served within 9 slots, A not taking more than one.
      expect(first.t - starts[name]!).toBeLessThanOrEqual(9 * 5);
      expect(d.agents.get(name)!.state).toBe('completed');
    }
    // A keeps its own Ta as well.
    const aTimes = firstRequests(d, 'A').map((s) => s.t);
    for (let i = 1; i < aTimes.length; i++) expect(aTimes[i]! - aTimes[i - 1]!).toBeGreaterThanOrEqual(50);
  });
});

describe('property: completion', () => {
  it('each component ends with exactly one selected pair and both agents agree', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 2 }),
        fc.array(fc.boolean(), { minLength: 3, maxLength: 3 }),
        fc.integer({ min: 1, max: 40 }),
        fc.constantFrom<'regular' | 'aggressive'>('regular', 'aggressive'),
        (nl, nr, comps, reach, delay, nomination) => {
          const d = new Driver({ delayMs: delay });
          const lBases = Array.from({ length: nl }, (_, i) => ({ address: `10.0.1.${i + 1}`, port: 5000 }));
          const rBases = Array.from({ length: nr }, (_, i) => ({ address: `10.0.2.${i + 1}`, port: 6000 }));
          // The last R address is always reachable; others per `reach`.
          const unreachable = rBases.slice(0, -1).filter((_, i) => !reach[i]).flatMap((b) => Array.from({ length: comps }, (_, c) => ({ address: b.address, port: b.port + c })));
          // Consent off so that every request counted below is a connectivity check (consent is not Ta-paced).
          const { l, r } = connectPair(d, { lBases, rBases, components: comps, unreachable, l: { nomination, consentIntervalMs: 0 }, r: { consentIntervalMs: 0 } });
          d.run(120_000, done(l, r));
          expect([l.state, r.state]).toEqual(['completed', 'completed']);
          for (let c = 1; c <= comps; c++) {
            const a = l.getSelectedPair(0, c)!;
            const b = r.getSelectedPair(0, c)!;
            expect(`${a.local.address}:${a.local.port}`).toBe(`${b.remote.address}:${b.remote.port}`);
            expect(`${a.remote.address}:${a.remote.port}`).toBe(`${b.local.address}:${b.local.port}`);
            expect(a.priority).toBe(b.priority);
          }
          // No two new checks of one agent closer than Ta (RFC 8445 §14.2).
          for (const name of ['L', 'R']) {
            const times = firstRequests(d, name).map((x) => x.t);
            for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual(50);
          }
          if (nomination === 'regular') {
            expect(d.eventsOf('L', 'selected-pair')).toHaveLength(comps);
            expect(d.eventsOf('R', 'selected-pair')).toHaveLength(comps);
          }
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe('after a restart that moved the peer (RFC 8445 §12.1)', () => {
  it('data the peer still sends on the previous selected pair is delivered, for one consent timeout at most', () => {
    const d = new Driver();
    const { l, r } = connectPair(d);
    d.run(5000, done(l, r));
    const old = l.getSelectedPair(0, 1)!;
    l.restart();
    r.restart();
    l.setRemoteParameters(0, r.getLocalParameters());
    r.setRemoteParameters(0, l.getLocalParameters());
    // R comes back on another port only: nothing it sends from the old one reaches L any more.
    d.drop = (dg, from) => from === 'R' && dg.local.port === 6000;
    d.own('R', { address: '10.0.0.2', port: 6002 });
    const moved = host('10.0.0.2', 6002);
    r.addLocalCandidate(0, moved);
    l.addRemoteCandidate(0, signalled(moved));
    r.addRemoteCandidate(0, signalled(host('10.0.0.1', 5000)));
    d.run(d.now + 5000, () => l.getSelectedPair(0, 1)?.remote.port === 6002 && l.getSelectedPair(0, 1)!.nominated);
    expect(l.getSelectedPair(0, 1)!.remote.port).toBe(6002);
    // R has not switched yet and sends from its old port: L still takes it.
    const fromOld = (data: string) => ({ local: old.local.base, remote: { address: old.remote.address, port: old.remote.port }, data: Buffer.from(data) });
    expect(l.handleReceive(d.now, fromOld('late-1'))).toBe(true);
    expect(l.handleReceive(d.now + 1, fromOld('late-2'))).toBe(true);
    d.drain();
    expect(d.eventsOf('L', 'data').map((e) => text(e.data))).toEqual(['late-1', 'late-2']);
    // One consent timeout later the old path is gone (the peer had all that time to move).
    d.run(d.now + 30_001);
    expect(l.handleReceive(d.now, fromOld('too-late'))).toBe(false);
    expect(l.getStats().dropped['data-unknown-path']).toBe(1);
  });
});
