/**
 * Conformance checks of the agent core against RFC 8445 / RFC 7675 text (helper H12 review). Each test pins a rule
 * the core once broke.
 */
import { describe, expect, it } from 'vitest';
import type { AgentCore } from '../../src/checklist/agent-core.js';
import { tryDecodeStunMessage } from '../../src/stun/message.js';
import { Driver, connectPair } from './harness.js';

const done = (...a: AgentCore[]) => () => a.every((x) => x.state === 'completed');

/** The datagram is a STUN request with USE-CANDIDATE (a nominating check). */
function carriesUseCandidate(data: Uint8Array): boolean {
  const r = tryDecodeStunMessage(data);
  return r.ok && r.message.cls === 'request' && r.message.attributes.some((a) => a.type === 0x0025);
}

describe('keepalives from a lite agent (RFC 8445 §11)', () => {
  it('a lite agent sends Binding indications on its selected pair when it sent nothing for Tr = 15 s', () => {
    const d = new Driver();
    const { l, r } = connectPair(d, { r: { lite: true } });
    d.run(5000, done(l, r));
    expect(r.state).toBe('completed');
    const t0 = d.now;
    d.run(t0 + 46_000);
    const ka = d.sent.filter((s) => s.agent === 'R' && s.kind === 'indication');
    // §11: "All endpoints MUST send keepalives"; Tr = 15 s, not less.
    expect(ka.length).toBeGreaterThanOrEqual(2);
    for (let i = 1; i < ka.length; i++) expect(ka[i]!.t - ka[i - 1]!.t).toBeGreaterThanOrEqual(15_000);
    const sel = r.getSelectedPair(0, 1)!;
    for (const k of ka) {
      expect(k.datagram.local).toEqual(sel.local.base);
      expect(k.datagram.remote).toEqual({ address: sel.remote.address, port: sel.remote.port });
    }
  });

  it('data sent by the lite agent postpones its keepalive', () => {
    const d = new Driver();
    const { l, r } = connectPair(d, { r: { lite: true } });
    d.run(5000, done(l, r));
    const t0 = d.now;
    for (let t = t0; t < t0 + 40_000; t += 5_000) {
      d.run(t);
      expect(r.send(t, 0, 1, new Uint8Array([1, 2, 3]))).toBe(true);
    }
    d.run(t0 + 40_000);
    expect(d.sent.filter((s) => s.agent === 'R' && s.kind === 'indication' && s.t <= t0 + 40_000)).toHaveLength(0);
  });
});

describe('data before selection (RFC 8445 §11, §12.1; RFC 7675 §5.1)', () => {
  // The network drops L's nominating checks (USE-CANDIDATE), so R has a valid pair but no nomination for the ~40 s
  // L keeps retrying, and sends data on the valid pair meanwhile.
  const slowNomination = (consentIntervalMs?: number) => {
    const d = new Driver({ drop: (dg, from) => from === 'L' && carriesUseCandidate(dg.data) });
    const extra = consentIntervalMs === undefined ? {} : { consentIntervalMs };
    const { l, r } = connectPair(d, { l: extra, r: extra });
    d.run(2000);
    expect(r.getSelectedPair(0, 1)?.nominated).toBe(false);
    return { d, l, r };
  };

  it('consent is maintained on the valid pair that carries data, so sending does not stop at 30 s', () => {
    const { d, r } = slowNomination();
    const refused: number[] = [];
    for (let t = 2000; t <= 38_000; t += 1000) {
      d.run(t);
      if (r.getSelectedPair(0, 1)?.nominated) break;
      if (!r.send(t, 0, 1, new Uint8Array([7]))) refused.push(t);
    }
    expect(r.getSelectedPair(0, 1)?.nominated).toBe(false); // still no nomination at 38 s
    expect(refused).toEqual([]);
    // The consent checks went on the 5-tuple the data used.
    const data = d.sent.filter((s) => s.agent === 'R' && s.kind === 'data');
    const path = (s: (typeof data)[number]) => `${s.datagram.local.address}:${s.datagram.local.port}>${s.datagram.remote.address}:${s.datagram.remote.port}`;
    const late = d.sent.filter((s) => s.agent === 'R' && s.kind === 'request' && s.t > 10_000 && path(s) === path(data[0]!));
    expect(late.length).toBeGreaterThanOrEqual(4);
  });

  it('with consent off, keepalives go on the valid pair that carried data once nothing was sent for 15 s', () => {
    const { d, r } = slowNomination(0);
    expect(r.send(2000, 0, 1, new Uint8Array([7]))).toBe(true);
    d.run(2000 + 16_000);
    expect(r.getSelectedPair(0, 1)?.nominated).toBe(false);
    const ka = d.sent.filter((s) => s.agent === 'R' && s.kind === 'indication');
    expect(ka.length).toBeGreaterThanOrEqual(1);
    expect(ka[0]!.t - 2000).toBeGreaterThanOrEqual(15_000);
  });
});

describe('consent lost before selection (RFC 7675 §5.1)', () => {
  it('a valid pair whose consent expired while carrying data is not nominated, nor checked, afterwards', () => {
    const d = new Driver();
    const { l } = connectPair(d);
    // The peer falls silent the moment L's first pair is valid, before L's nomination can be answered.
    d.run(2000, () => l.getStats().pairs.some((p) => p.valid));
    d.muted.add('R');
    expect(l.getSelectedPair(0, 1)?.nominated).toBe(false);
    expect(l.send(d.now, 0, 1, new Uint8Array([1]))).toBe(true);
    d.run(60_000);
    const lost = d.eventsOf('L', 'consent-lost');
    expect(lost).toHaveLength(1);
    const lostAt = d.sent.filter((s) => s.agent === 'L' && s.kind === 'request').at(-1)!.t;
    // "After consent is lost, the same ICE credentials MUST NOT be used on the affected 5-tuple again": no request
    // of any kind (consent, nominating retransmission) goes there from the moment consent expired.
    expect(lostAt).toBeLessThan(31_000);
    expect(l.getSelectedPair(0, 1)?.nominated ?? false).toBe(false);
    expect(l.getStats().pairs.some((p) => p.nominated)).toBe(false);
    expect(l.send(60_000, 0, 1, new Uint8Array([1]))).toBe(false);
  });
});

describe('ICE restart whose new checklist fails (RFC 8445 §12.1, §8.1.2)', () => {
  it('the previous selected pair stops carrying data once the new checklist is Failed', () => {
    const d = new Driver();
    // Keepalives instead of consent checks, so the old path sends the new session no request to learn it from.
    const { l, r } = connectPair(d, { l: { consentIntervalMs: 0 }, r: { consentIntervalMs: 0 } });
    d.run(5000, done(l, r));
    l.restart();
    r.restart();
    l.setRemoteParameters(0, r.getLocalParameters());
    r.setRemoteParameters(0, l.getLocalParameters());
    // The new session has a candidate nobody answers on, then end-of-candidates.
    l.addRemoteCandidate(0, { foundation: 'X', component: 1, transport: 'udp', priority: 1, address: '10.0.0.77', port: 9, type: 'host' });
    l.endOfRemoteCandidates(0);
    r.endOfRemoteCandidates(0);
    const t0 = d.now;
    d.run(t0 + 10_000);
    // While the new checklist runs, the previous selected pair is the selected pair (§12.1).
    expect(l.send(d.now, 0, 1, new Uint8Array([1]))).toBe(true);
    d.run(t0 + 45_000); // past the PAC timer (RFC 8863) and the check timeout
    expect(l.getChecklist(0).state).toBe('failed');
    // "Unless an agent is able to produce a selected pair for each component ..., the agent MUST NOT continue sending
    // data for any component associated with that data stream."
    expect(l.send(d.now, 0, 1, new Uint8Array([2]))).toBe(false);
    expect(l.state).toBe('failed');
  });
});

describe("the 'ice2' ICE option (RFC 8445 §10)", () => {
  it("is advertised by a regular-nominating agent, not by one configured for aggressive nomination (RFC 5245)", async () => {
    const { AgentCore } = await import('../../src/checklist/agent-core.js');
    const { seededRandom } = await import('./harness.js');
    expect(new AgentCore({ random: seededRandom(1) }).getLocalParameters().options).toContain('ice2');
    // "When an ICE agent includes 'ice2' ... the agent will not use the aggressive nomination procedure".
    const aggressive = new AgentCore({ random: seededRandom(1), nomination: 'aggressive' });
    expect(aggressive.getLocalParameters().options).not.toContain('ice2');
    expect(aggressive.getLocalParameters().options).toContain('trickle');
  });
});
