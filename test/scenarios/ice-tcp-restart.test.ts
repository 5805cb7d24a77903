/**
 * ICE restarts with TCP candidates in virtual time, as `IceAgent` does them: new UDP host ports, the TCP bases (the
 * listeners) kept (RFC 6544 §9.2), a datagram each way every 15 ms. TCP only, and UDP beside TCP with UDP blocked
 * by a NAT so TCP carries the call.
 */
import { describe, expect, it } from 'vitest';
import type { StreamBase } from '../../src/agent-machine.js';
import type { LocalCandidate } from '../../src/candidates/candidate.js';
import { scenario, signalled, type Scenario, type Side, type SideOptions } from './harness.js';

const text = (s: string) => new TextEncoder().encode(s);

function largestGap(side: Side, from: number, to: number): number {
  const times = side.received.filter((r) => r.time >= from && r.time <= to).map((r) => r.time);
  if (times.length === 0) return Infinity;
  let gap = times[0]! - from;
  for (let i = 1; i < times.length; i++) gap = Math.max(gap, times[i]! - times[i - 1]!);
  return Math.max(gap, to - times.at(-1)!);
}

/** What IceAgent.restart() binds: new UDP ports; the TCP listeners and active bases stay. */
function newBases(side: Side): StreamBase[] {
  return side.machine.bases.map((b) => (b.transport === 'tcp' ? b : { ...b, address: { address: b.address.address, port: b.address.port + 100 } }));
}

function restartRun(seed: string, initiatorName: 'a' | 'b', a: SideOptions, b: SideOptions, delayMs = 100): { sc: Scenario; gapA: number; gapB: number } {
  let live = true;
  const sc = scenario({ seed, signallingDelayMs: 20, a: { ...a, signal: () => live }, b: { ...b, signal: () => live } }).start();
  expect(sc.runUntilConnected(60_000)).toBe(true);
  expect(sc.net.runUntilTrue(() => sc.state(sc.a) === 'completed' && sc.state(sc.b) === 'completed', 5_000)).toBe(true);
  const initiator = initiatorName === 'a' ? sc.a : sc.b;
  const answerer = sc.peer(initiator);
  const old = { a: sc.selected(sc.a)!, b: sc.selected(sc.b)! };
  let flowing = true;
  let n = 0;
  sc.every(15, (now) => {
    for (const side of [sc.a, sc.b]) side.machine.send(now, 0, 1, text(`${side.name}${n}`));
    n++;
    return flowing;
  });
  sc.net.runFor(300);
  const start = sc.net.now;
  live = false;
  const since = (side: Side, count: number): LocalCandidate[] => side.gathered[0]!.slice(count);
  const iCount = initiator.gathered[0]!.length;
  initiator.machine.restart(sc.net.now, newBases(initiator));
  const offer = initiator.machine.core.getLocalParameters();
  sc.net.runFor(1);
  expect(sc.net.runUntilTrue(() => initiator.machine.gatheringState === 'complete', 5_000)).toBe(true);
  const offerCands = since(initiator, iCount);
  sc.at(sc.net.now + delayMs, (now) => {
    const aCount = answerer.gathered[0]!.length;
    answerer.machine.restart(now, newBases(answerer));
    answerer.machine.setRemoteParameters(0, offer);
    for (const c of offerCands) answerer.machine.addRemoteCandidate(now, 0, signalled(c));
    answerer.machine.endOfRemoteCandidates(0);
    const answer = answerer.machine.core.getLocalParameters();
    sc.every(1, (t) => {
      if (answerer.machine.gatheringState !== 'complete' || t === now) return true;
      const answerCands = since(answerer, aCount);
      sc.at(t + delayMs, (t2) => {
        initiator.machine.setRemoteParameters(0, answer);
        for (const c of answerCands) initiator.machine.addRemoteCandidate(t2, 0, signalled(c));
        initiator.machine.endOfRemoteCandidates(0);
      });
      return false;
    });
  });
  const moved = () => {
    const pa = sc.selected(sc.a);
    const pb = sc.selected(sc.b);
    return pa?.nominated === true && pb?.nominated === true && pa.id !== old.a.id && pb.id !== old.b.id && samePath(sc);
  };
  const mark = { a: sc.a.attachment.events.length, b: sc.b.attachment.events.length };
  expect(sc.net.runUntilTrue(moved, 2 * delayMs + 10_000)).toBe(true);
  // RFC 6544 §8 closes unselected connections once ICE processing completes: not before the side's new session
  // selected (meanwhile the agent stays completed on the previous pair, RFC 8445 §12.1, and the checks need them).
  for (const side of [sc.a, sc.b]) {
    const events = side.attachment.events.slice(side === sc.a ? mark.a : mark.b);
    const oldId = (side === sc.a ? old.a : old.b).id;
    const selectedAt = events.findIndex((e) => e.type === 'selected-pair' && e.pair.id !== oldId && e.pair.nominated);
    expect(selectedAt).toBeGreaterThanOrEqual(0);
    expect(events.slice(0, selectedAt).filter((e) => e.type === 'tcp-close' && e.reason === 'not selected')).toEqual([]);
  }
  sc.net.runFor(1_000);
  const end = sc.net.now;
  flowing = false;
  sc.net.runFor(100);
  return { sc, gapA: largestGap(sc.a, start, end), gapB: largestGap(sc.b, start, end) };
}

/**
 * Both selected pairs are the same path. An active TCP candidate names port 9 (RFC 6544 §4.5), so a TCP pair is
 * matched by the passive end's address and the other end's IP.
 */
function samePath(sc: Scenario): boolean {
  const pa = sc.selected(sc.a);
  const pb = sc.selected(sc.b);
  if (!pa || !pb || pa.local.transport !== pb.local.transport) return false;
  if (pa.local.transport !== 'tcp') return sc.sameSelectedPair();
  const [act, pas] = pa.local.tcpType === 'passive' ? [pb, pa] : [pa, pb];
  return act.remote.address === pas.local.address && act.remote.port === pas.local.port && pas.remote.address === act.local.address;
}

const tcpOnly = { udp: false, stun: false, tcp: ['active', 'passive'] } as const;

describe('ICE restart with TCP candidates (virtual time)', () => {
  for (const initiator of ['a', 'b'] as const) {
    it(`TCP only, ${initiator === 'a' ? 'controlling' : 'controlled'} side restarts: the connection is kept and carries the new session`, () => {
      const r = restartRun(`tcp-restart-${initiator}`, initiator, tcpOnly, tcpOnly);
      expect(r.gapA).toBeLessThanOrEqual(100);
      expect(r.gapB).toBeLessThanOrEqual(100);
      expect(r.sc.net.tcpConnections).toBe(2);
    });
    it(`UDP blocked, TCP carries the call, ${initiator === 'a' ? 'controlling' : 'controlled'} side restarts`, () => {
      const r = restartRun(`tcp-udp-restart-${initiator}`, initiator, { tcp: ['active'], nat: 'port-restricted', natOptions: { blockUdp: true } }, { stun: false, tcp: ['passive'] });
      expect(r.gapA).toBeLessThanOrEqual(100);
      expect(r.gapB).toBeLessThanOrEqual(100);
    });
  }
});
