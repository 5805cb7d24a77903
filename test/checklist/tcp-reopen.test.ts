/**
 * RFC 6544 §11.1: the connection of a selected ICE-TCP pair closes; the active side reopens it and checks on it, the
 * passive side accepts the new one, both stay on the pair; a peer that never accepts again ends the pair on the
 * bound. Virtual time (TcpWorld).
 */
import { describe, expect, it } from 'vitest';
import type { AgentCoreOptions, AgentEvent } from '../../src/checklist/types.js';
import { REOPEN_ATTEMPTS } from '../../src/checklist/tcp-reopen.js';
import { signalled } from './harness.js';
import { tcpHost, TcpWorld } from './tcp-harness.js';

/** L and R with one TCP candidate each, `lType` on L (R gets the other one), signalled both ways, completed. */
function completed(lType: 'active' | 'passive', opts: Partial<AgentCoreOptions> = {}) {
  const w = new TcpWorld();
  const lc = tcpHost('10.0.0.1', 7000, lType);
  const rc = tcpHost('10.0.0.2', 8000, lType === 'active' ? 'passive' : 'active');
  const l = w.add('L', { role: 'controlling', ...opts }, lc.tcpType === 'passive' ? [lc.base] : []);
  const r = w.add('R', { role: 'controlled', ...opts }, rc.tcpType === 'passive' ? [rc.base] : []);
  l.addStream(1);
  r.addStream(1);
  l.addLocalCandidate(0, lc);
  r.addLocalCandidate(0, rc);
  l.setRemoteParameters(0, r.getLocalParameters());
  r.setRemoteParameters(0, l.getLocalParameters());
  l.addRemoteCandidate(0, signalled(rc));
  r.addRemoteCandidate(0, signalled(lc));
  l.endOfRemoteCandidates(0);
  r.endOfRemoteCandidates(0);
  w.run(5000, () => l.state === 'completed' && r.state === 'completed');
  expect(l.state).toBe('completed');
  expect(r.state).toBe('completed');
  w.run(w.now + 200);
  return { w, l, r };
}

const of = <T extends AgentEvent['type']>(w: TcpWorld, agent: string, type: T) => w.events.get(agent)!.filter((e) => e.type === type);
const open = (w: TcpWorld, agent: string) => [...w.ends.values()].filter((e) => e.agent === agent && e.open);
const bytes = (es: AgentEvent[]) => es.map((e) => [...(e as { data: Uint8Array }).data]);

describe('RFC 6544 §11.1: reopening the selected connection', () => {
  for (const [name, lType, reset] of [
    ['active side resets it', 'active', 'L'],
    ['passive side resets it', 'active', 'R'],
    ['active side is controlled', 'passive', 'R'],
  ] as const) {
    it(`the active side reconnects and checks, the passive side accepts, data flows on the same pair: ${name}`, () => {
      const { w, l, r } = completed(lType);
      const active = lType === 'active' ? 'L' : 'R';
      const [la, ra] = [l.getSelectedPair(0, 1)!, r.getSelectedPair(0, 1)!];
      const before = open(w, active)[0]!;
      w.reset(reset, open(w, reset)[0]!.id);
      const down = w.now;
      w.run(w.now + 15); // both sides saw the close; the new connection is not up yet
      // Data while the connection is down is dropped, not buffered.
      expect(l.send(w.now, 0, 1, new Uint8Array([0x80, 0]))).toBe(false);
      expect(r.send(w.now, 0, 1, new Uint8Array([0x80, 0]))).toBe(false);
      w.run(w.now + 1000);
      const connects = of(w, active, 'tcp-connect');
      expect(connects).toHaveLength(2); // the first check's, and the reopening one
      const now = open(w, active);
      expect(now).toHaveLength(1);
      expect(now[0]!.local.port).not.toBe(before.local.port);
      // A Binding request went first on the new connection, from the active side.
      const first = w.wire.find((f) => f.t >= down && f.from === active)!;
      expect([first.data[2], first.data[3]]).toEqual([0x00, 0x01]);
      expect(l.send(w.now, 0, 1, new Uint8Array([0x80, 1]))).toBe(true);
      expect(r.send(w.now, 0, 1, new Uint8Array([0x80, 2]))).toBe(true);
      w.run(w.now + 100);
      expect(bytes(of(w, 'R', 'data'))).toEqual([[0x80, 1]]);
      expect(bytes(of(w, 'L', 'data'))).toEqual([[0x80, 2]]);
      // Both sides stay on the same pair: no consent loss, no failure, nothing new selected.
      for (const a of ['L', 'R']) {
        expect(of(w, a, 'consent-lost')).toHaveLength(0);
        expect(w.events.get(a)!.some((e) => e.type === 'state' && (e as { state: string }).state === 'failed')).toBe(false);
      }
      expect(l.getSelectedPair(0, 1)!.id).toBe(la.id);
      expect(r.getSelectedPair(0, 1)!.id).toBe(ra.id);
      // Consent keeps refreshing on the new connection well past one consent timeout.
      w.run(w.now + 60_000);
      expect(l.state).toBe('completed');
      expect(r.state).toBe('completed');
      expect(l.tcpConnections).toBe(1);
      expect(r.tcpConnections).toBe(1);
      expect(l.send(w.now, 0, 1, new Uint8Array([0x80, 3]))).toBe(true);
      w.run(w.now + 100);
      expect(bytes(of(w, 'R', 'data'))).toEqual([[0x80, 1], [0x80, 3]]);
    });
  }

  it('reopens again after a second loss', () => {
    const { w, l, r } = completed('active');
    for (let i = 0; i < 2; i++) {
      w.reset('L', open(w, 'L')[0]!.id);
      w.run(w.now + 1000);
    }
    expect(of(w, 'L', 'tcp-connect')).toHaveLength(3);
    expect(l.send(w.now, 0, 1, new Uint8Array([0x80, 1]))).toBe(true);
    w.run(w.now + 100);
    expect(bytes(of(w, 'R', 'data'))).toEqual([[0x80, 1]]);
    expect(r.state).toBe('completed');
  });

  it('a peer that never accepts again: the attempts are bounded, then the pair fails and the agent with it', () => {
    const { w, l, r } = completed('active', { tcpConnectTimeoutMs: 1000 });
    w.listeners.clear(); // refused from now on
    w.reset('L', open(w, 'L')[0]!.id);
    w.run(w.now + 10_000, () => l.state === 'failed');
    expect(l.state).toBe('failed');
    expect(of(w, 'L', 'tcp-connect')).toHaveLength(1 + REOPEN_ATTEMPTS);
    expect(of(w, 'L', 'consent-lost')).toHaveLength(1);
    expect(l.send(w.now, 0, 1, new Uint8Array([0x80]))).toBe(false);
    // The passive side waited, then consent (RFC 7675) ended the pair: the peer is gone.
    w.run(w.now + 40_000, () => r.state === 'failed');
    expect(r.state).toBe('failed');
    expect(of(w, 'R', 'consent-lost')).toHaveLength(1);
  });

  it('attempts that never complete are each bounded by tcpConnectTimeoutMs', () => {
    const { w, l } = completed('active', { tcpConnectTimeoutMs: 1000 });
    w.blackholes.add('10.0.0.2:8000');
    w.reset('L', open(w, 'L')[0]!.id);
    const t0 = w.now;
    w.run(w.now + 20_000, () => l.state === 'failed');
    expect(l.state).toBe('failed');
    expect(of(w, 'L', 'tcp-connect')).toHaveLength(1 + REOPEN_ATTEMPTS);
    expect(w.now - t0).toBeLessThan(REOPEN_ATTEMPTS * 1000 + 3000);
  });
});
