import { describe, expect, it } from 'vitest';
import type { AgentCore } from '../../src/checklist/agent-core.js';
import { InvalidStateError } from '../../src/errors.js';
import { Driver, connectPair, host, signalled } from './harness.js';

const done = (...a: AgentCore[]) => () => a.every((x) => x.state === 'completed');

describe('AgentCore.dropComponent (RFC 5761 §5.1.3: RTCP candidates dropped once the answer accepts rtcp-mux)', () => {
  it('an offerer with RTP and RTCP candidates drops component 2 and completes against a one-component peer', () => {
    const d = new Driver();
    const l = d.add('L', { role: 'controlling' });
    const r = d.add('R', { role: 'controlled' });
    l.addStream(2);
    r.addStream(1);
    const l1 = host('10.0.0.1', 5000, 1);
    const l2 = host('10.0.0.1', 5001, 2);
    const r1 = host('10.0.0.2', 6000, 1);
    d.own('L', l1.base);
    d.own('L', l2.base);
    d.own('R', r1.base);
    l.addLocalCandidate(0, l1);
    l.addLocalCandidate(0, l2);
    r.addLocalCandidate(0, r1);
    // The answer accepted mux: component 2 goes before the peer's parameters are applied.
    l.dropComponent(0, 2);
    expect(l.componentCount(0)).toBe(1);
    l.setRemoteParameters(0, r.getLocalParameters());
    r.setRemoteParameters(0, l.getLocalParameters());
    l.addRemoteCandidate(0, signalled(r1));
    r.addRemoteCandidate(0, signalled(l1));
    r.addRemoteCandidate(0, signalled(l2)); // the peer ignores it: it has one component
    l.endOfRemoteCandidates(0);
    r.endOfRemoteCandidates(0);
    d.run(5000, done(l, r));
    expect(l.state).toBe('completed');
    expect(l.getStats().pairs.every((p) => p.component === 1)).toBe(true);
    expect(d.sent.some((s) => s.agent === 'L' && s.datagram.local.port === 5001)).toBe(false);
  });

  it('dropping component 2 while checks run stops its checks and consent, and the agent still completes', () => {
    const d = new Driver();
    const { l, r } = connectPair(d, { components: 2 });
    const rtcpCheck = () => d.sent.some((s) => s.agent === 'L' && s.kind === 'request' && s.datagram.local.port === 5001);
    d.run(5000, rtcpCheck); // a check on component 2 is in flight
    expect(rtcpCheck()).toBe(true);
    expect(l.state).not.toBe('completed');
    l.dropComponent(0, 2);
    r.dropComponent(0, 2);
    const cut = d.sent.length;
    d.run(d.now + 60_000, () => false);
    expect(l.state).toBe('completed');
    expect(r.state).toBe('completed');
    const after = d.sent.slice(cut);
    // No check leaves the RTCP ports any more: no retransmission, no consent check. (A check already on the wire
    // still gets its answer from the core; at the edge the socket is closed by then.)
    expect(after.some((s) => s.kind === 'request' && (s.datagram.local.port === 5001 || s.datagram.local.port === 6001))).toBe(false);
    expect(after.some((s) => s.kind === 'request')).toBe(true); // consent on component 1 goes on
    expect(l.getSelectedPair(0, 2)).toBeUndefined();
    expect(l.getStats().pairs.every((p) => p.component === 1)).toBe(true);
    expect(l.send(d.now, 0, 2, new Uint8Array([0x80]))).toBe(false);
    expect(l.send(d.now, 0, 1, new Uint8Array([0x80]))).toBe(true);
  });

  it('after completion on two components, dropping component 2 keeps component 1 selected and data flowing', () => {
    const d = new Driver();
    const { l, r } = connectPair(d, { components: 2 });
    d.run(5000, done(l, r));
    const selected = l.getSelectedPair(0, 1)!;
    l.dropComponent(0, 2);
    d.run(d.now + 100);
    expect(l.state).toBe('completed');
    expect(l.getSelectedPair(0, 1)!.id).toBe(selected.id);
    expect(l.send(d.now, 0, 1, new Uint8Array([0x80, 1]))).toBe(true);
    d.run(d.now + 100);
    expect(d.eventsOf('R', 'data')).toHaveLength(1);
  });

  it('refuses to drop component 1, a component that is not the last, or one the stream does not have', () => {
    const d = new Driver();
    const l = d.add('L', { role: 'controlling' });
    l.addStream(3);
    expect(() => l.dropComponent(0, 1)).toThrow(InvalidStateError);
    expect(() => l.dropComponent(0, 2)).toThrow(InvalidStateError);
    expect(() => l.dropComponent(0, 4)).toThrow(InvalidStateError);
    expect(() => l.dropComponent(0, 2.5)).toThrow(InvalidStateError);
    expect(() => l.dropComponent(1, 3)).toThrow(RangeError);
    l.dropComponent(0, 3);
    l.dropComponent(0, 2);
    expect(l.componentCount(0)).toBe(1);
    expect(() => l.dropComponent(0, 1)).toThrow(InvalidStateError);
  });

  it('a local candidate of a dropped component is refused, a remote one dropped and counted', () => {
    const d = new Driver();
    const l = d.add('L', { role: 'controlling' });
    l.addStream(2);
    l.dropComponent(0, 2);
    expect(() => l.addLocalCandidate(0, host('10.0.0.1', 5001, 2))).toThrow(RangeError);
    l.addRemoteCandidate(0, signalled(host('10.0.0.2', 6001, 2)));
    expect(l.getStats().dropped['remote-bad-component']).toBe(1);
  });
});
