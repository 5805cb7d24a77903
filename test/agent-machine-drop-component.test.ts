/**
 * `AgentMachine.dropComponent` on the virtual network: an offer gathered an RTCP component beside `a=rtcp-mux`, the
 * answer accepted mux (RFC 5761 §5.1.3), and component 2 goes with its gathering, TURN allocations and paths.
 */
import { describe, expect, it } from 'vitest';
import { InvalidStateError } from '../src/errors.js';
import { basePort, scenario } from './scenarios/harness.js';

const rtcpBase = { address: '203.0.113.10', port: basePort(0, 2) };

describe('AgentMachine.dropComponent (RTCP multiplexed after all)', () => {
  it('after gathering: the RTCP relay is released on the server, the base falls silent, ICE completes on component 1', () => {
    const sc = scenario({ seed: 'drop-after', a: { streams: [2], turn: true }, b: { streams: [1] } }).start();
    expect(sc.net.runUntilTrue(() => sc.a.machine.gatheringState === 'complete', 10_000)).toBe(true);
    expect(sc.a.gathered[0]!.some((c) => c.component === 2 && c.type === 'relay')).toBe(true);
    expect(sc.turn.server.allocations(sc.net.now)).toHaveLength(2);

    const bases = sc.a.machine.dropComponent(sc.net.now, 0, 2);
    expect(bases).toEqual([rtcpBase]);
    expect(sc.a.machine.core.componentCount(0)).toBe(1);
    expect(sc.net.runUntilTrue(() => sc.a.machine.releasedOn(bases), 5_000)).toBe(true);
    // Refresh with LIFETIME 0 went to the server: only the RTP allocation is left.
    expect(sc.turn.server.allocations(sc.net.now).map((a) => a.client)).toEqual([{ address: '203.0.113.10', port: basePort(0, 1) }]);

    const settled = sc.net.now;
    expect(sc.net.runUntilTrue(() => sc.state(sc.a) === 'completed' && sc.state(sc.b) === 'completed', 30_000)).toBe(true);
    sc.net.runUntilTrue(() => false, 40_000); // consent and keepalives run for a while
    const fromRtcp = sc.net.trace.filter((t) => t.kind === 'send' && t.time > settled && t.from.address === rtcpBase.address && t.from.port === rtcpBase.port);
    expect(fromRtcp).toEqual([]);
    // ...while before the drop it was busy (Binding, Allocate, Refresh...).
    expect(sc.net.trace.some((t) => t.kind === 'send' && t.time <= settled && t.from.port === rtcpBase.port)).toBe(true);
    expect(sc.a.machine.core.getStats().pairs.every((p) => p.component === 1)).toBe(true);
    expect(sc.a.machine.send(sc.net.now, 0, 2, new TextEncoder().encode('rtcp'))).toBe(false);
    expect(sc.exchange(sc.a, 'rtp and rtcp on one port')).toBe(true);
  });

  it('during gathering: component 2 stops gathering, gathering completes, none of its candidates reaches the core', () => {
    const sc = scenario({ seed: 'drop-during', a: { streams: [2], turn: true }, b: { streams: [1] } }).start();
    const bases = sc.a.machine.dropComponent(sc.net.now, 0, 2);
    expect(sc.net.runUntilTrue(() => sc.a.machine.gatheringState === 'complete' && sc.a.machine.releasedOn(bases), 10_000)).toBe(true);
    // Host candidates were announced at once; nothing later for component 2 (no srflx, no relay).
    expect(sc.a.gathered[0]!.filter((c) => c.component === 2).map((c) => c.type)).toEqual(['host']);
    expect(sc.turn.server.allocations(sc.net.now).filter((a) => a.client.port === rtcpBase.port)).toEqual([]);
    expect(sc.net.runUntilTrue(() => sc.state(sc.a) === 'completed' && sc.state(sc.b) === 'completed', 30_000)).toBe(true);
    expect(sc.a.machine.core.getStats().pairs.every((p) => p.component === 1)).toBe(true);
  });

  it('a component dropped cannot run without ICE; component 1 alone starts the no-ICE state (checking until media comes)', () => {
    const sc = scenario({ seed: 'drop-noice', a: { streams: [2], stun: false }, b: { streams: [1] } });
    sc.a.machine.gather(sc.net.now);
    sc.a.machine.dropComponent(sc.net.now, 0, 2);
    expect(() => sc.a.machine.useWithoutIce(sc.net.now, 0, 2, { address: '203.0.113.20', port: 7001 })).toThrow(InvalidStateError);
    sc.a.machine.useWithoutIce(sc.net.now, 0, 1, { address: '203.0.113.20', port: 7000 });
    // Every stream runs without ICE on component 1: the no-ICE machine owns the state (checking until media arrives).
    const checking = () => sc.a.attachment.events.some((e) => e.type === 'state' && e.state === 'checking');
    expect(sc.net.runUntilTrue(checking, 1_000)).toBe(true);
  });
});
