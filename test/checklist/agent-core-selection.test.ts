/**
 * Selection as RTCIceTransport reports it (RFC 8445 §12.1 allows data on any valid pair before nomination): the
 * first valid pair is selected at once, a better valid pair replaces it, nomination fixes it.
 */
import { describe, expect, it } from 'vitest';
import type { AgentCore } from '../../src/checklist/agent-core.js';
import type { AgentEvent } from '../../src/checklist/types.js';
import { Driver, connectPair, host, signalled, twoHostAgents } from './harness.js';

const done = (...a: AgentCore[]) => () => a.every((x) => x.state === 'completed');

/** The order of `selected-pair` and `state` events of one agent, as `sel:<pair>[*]` (* = nominated) and `state`. */
function timeline(d: Driver, name: string): string[] {
  return d.events
    .get(name)!
    .filter((e): e is Extract<AgentEvent, { type: 'state' | 'selected-pair' }> => e.type === 'state' || e.type === 'selected-pair')
    .map((e) => (e.type === 'state' ? e.state : `sel:${e.pair.local.address}>${e.pair.remote.address}${e.pair.nominated ? '*' : ''}`));
}

describe('selection before nomination (RTCIceTransport semantics)', () => {
  it('the first valid pair is selected the moment it exists, before nomination, and before `connected`', () => {
    const d = new Driver({ delayMs: 1 });
    const { l } = connectPair(d, { l: { nominationTimeoutMs: 60_000 }, rBases: [{ address: '10.0.9.1', port: 6000 }, { address: '10.0.0.2', port: 6000 }], unreachable: [{ address: '10.0.9.1', port: 6000 }] });
    // Stop at the first step in which L has a valid pair: it is selected in that same step.
    d.run(1_000, () => l.getStats().pairs.some((p) => p.valid));
    expect(d.now).toBeLessThan(200);
    const first = l.getSelectedPair(0, 1)!;
    expect(first.nominated).toBe(false);
    expect(first.remote.address).toBe('10.0.0.2');
    expect(l.state).toBe('connected');
    expect(timeline(d, 'L').slice(0, 3)).toEqual(['checking', 'sel:10.0.0.1>10.0.0.2', 'connected']);
    // Data may flow on it at once (§12.1).
    expect(l.send(d.now, 0, 1, new Uint8Array([1]))).toBe(true);
  });

  it('a better valid pair replaces it; nomination fixes it without another event for the same pair', () => {
    const d = new Driver({ delayMs: 1 });
    const l = d.add('L', { role: 'controlling' }, [{ address: '10.0.0.1', port: 5000 }]);
    const r = d.add('R', { role: 'controlled' }, [{ address: '10.0.9.1', port: 6000 }, { address: '10.0.0.2', port: 6000 }]);
    l.addStream(1);
    r.addStream(1);
    const lc = host('10.0.0.1', 5000);
    const low = host('10.0.0.2', 6000, 1, 65534, 'R1');
    const best = host('10.0.9.1', 6000, 1, 65535, 'R0');
    l.addLocalCandidate(0, lc);
    r.addLocalCandidate(0, low);
    l.setRemoteParameters(0, r.getLocalParameters());
    r.setRemoteParameters(0, l.getLocalParameters());
    l.addRemoteCandidate(0, signalled(low));
    r.addRemoteCandidate(0, signalled(lc));
    // R's better candidate trickles in after L's first check left: the lower pair is valid first, the better one
    // is not checked yet (so still worth waiting for), then valid one Ta later, and only then nominated.
    d.run(1);
    r.addLocalCandidate(0, best);
    l.addRemoteCandidate(0, signalled(best));
    d.run(5_000, done(l, r));
    expect(timeline(d, 'L')).toEqual(['checking', 'sel:10.0.0.1>10.0.0.2', 'connected', 'sel:10.0.0.1>10.0.9.1', 'completed']);
    expect(l.getSelectedPair(0, 1)).toMatchObject({ nominated: true, remote: { address: '10.0.9.1' } });
    expect(r.getSelectedPair(0, 1)).toMatchObject({ nominated: true, local: { address: '10.0.9.1' } });
  });

  for (const mode of ['regular', 'aggressive', 'lite'] as const) {
    it(`${mode}: both sides emit \`connected\` before \`completed\`, with a selected pair at \`connected\``, () => {
      const d = new Driver({ delayMs: 2 });
      // An aggressive agent nominates aggressively only facing a peer without ice2 (RFC 8445 §10): an RFC 5245 peer.
      const rfc5245 = { nomination: 'aggressive' as const };
      const opts = mode === 'aggressive' ? { l: rfc5245, r: rfc5245 } : mode === 'lite' ? { r: { lite: true } } : {};
      const { l, r } = connectPair(d, opts);
      d.run(5_000, done(l, r));
      for (const name of ['L', 'R']) {
        const t = timeline(d, name);
        const connected = t.indexOf('connected');
        expect(connected, `${name}: ${t.join(' ')}`).toBeGreaterThan(0);
        expect(t.indexOf('completed')).toBeGreaterThan(connected);
        expect(t.slice(0, connected).some((x) => x.startsWith('sel:'))).toBe(true);
      }
    });
  }
});

describe('the selected pair follows its candidates (RFC 8838 §11)', () => {
  it('a peer-reflexive remote replaced by the signalled candidate is reported again, with the event', () => {
    const d = new Driver({ delayMs: 1 });
    const { l, r, lc, rc } = twoHostAgents(d);
    l.setRemoteParameters(0, r.getLocalParameters());
    r.setRemoteParameters(0, l.getLocalParameters());
    // Only R learns L's candidate: L sees R's check first and knows R as peer-reflexive.
    r.addRemoteCandidate(0, signalled(lc));
    d.run(2_000, done(l, r));
    expect(l.getSelectedPair(0, 1)!.remote.type).toBe('prflx');
    const before = d.eventsOf('L', 'selected-pair').length;
    l.addRemoteCandidate(0, signalled(rc));
    d.run(d.now + 1);
    expect(l.getSelectedPair(0, 1)!.remote.type).toBe('host');
    const events = d.eventsOf('L', 'selected-pair');
    expect(events).toHaveLength(before + 1);
    expect(events.at(-1)!.pair.remote.type).toBe('host');
  });
});

describe('aggressive nomination completes at once (RFC 5245 §8.1.2)', () => {
  it('Completed as soon as every component has a nominated pair; a better pair nominated later still takes over', () => {
    const d = new Driver({ delayMs: 1 });
    // R's better address loses L's checks for 300 ms: the lower pair is nominated (aggressive: every check nominates)
    // and both sides complete; the better pair's retransmission (RTO 500 ms) then succeeds, nominated too.
    d.drop = (dg) => dg.remote.address === '10.0.9.1' && d.now < 300;
    // Both ends RFC 5245 style (no ice2), or L falls back to regular nomination (RFC 8445 §10).
    const { l, r } = connectPair(d, { l: { nomination: 'aggressive' }, r: { nomination: 'aggressive' }, rBases: [{ address: '10.0.9.1', port: 6000 }, { address: '10.0.0.2', port: 6000 }] });
    d.run(5_000, done(l, r));
    expect(d.now).toBeLessThan(200); // not the 39.5 s a pending higher-priority check used to hold it
    expect(l.getSelectedPair(0, 1)).toMatchObject({ nominated: true, remote: { address: '10.0.0.2' } });
    d.run(2_000);
    expect(l.state).toBe('completed');
    expect(r.state).toBe('completed');
    expect(l.getSelectedPair(0, 1)).toMatchObject({ nominated: true, remote: { address: '10.0.9.1' } });
    expect(r.getSelectedPair(0, 1)).toMatchObject({ nominated: true, local: { address: '10.0.9.1' } });
    expect(timeline(d, 'L').filter((x) => x === 'completed' || x === 'connected')).toEqual(['connected', 'completed']);
  });
});
