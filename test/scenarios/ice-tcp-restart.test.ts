/**
 * ICE restarts with TCP candidates in virtual time, as `IceAgent` does them: new UDP host ports, the TCP bases (the
 * listeners) kept (RFC 6544 §9.2), a datagram each way every 15 ms. TCP only, and UDP beside TCP with UDP blocked
 * by a NAT so TCP carries the call.
 */
import { describe, expect, it } from 'vitest';
import type { StreamBase } from '../../src/agent-machine.js';
import { scenario, type Scenario, type Side, type SideOptions } from './harness.js';
import { restartOverOfferAnswer } from './restart-run.js';

/** What IceAgent.restart() binds: new UDP ports; the TCP listeners and active bases stay. */
function newBases(side: Side): StreamBase[] {
  return side.machine.bases.map((b) => (b.transport === 'tcp' ? b : { ...b, address: { address: b.address.address, port: b.address.port + 100 } }));
}

function restartRun(seed: string, initiatorName: 'a' | 'b', a: SideOptions, b: SideOptions, delayMs = 100): { sc: Scenario; gapA: number; gapB: number } {
  let live = true;
  const sc = scenario({ seed, signallingDelayMs: 20, a: { ...a, signal: () => live }, b: { ...b, signal: () => live } }).start();
  expect(sc.runUntilConnected(60_000)).toBe(true);
  expect(sc.net.runUntilTrue(() => sc.state(sc.a) === 'completed' && sc.state(sc.b) === 'completed', 5_000)).toBe(true);
  const r = restartOverOfferAnswer(sc, initiatorName, { delayMs, newBases, stopTrickle: () => (live = false), samePath, settleMs: 10_000 });
  // RFC 6544 §8 closes unselected connections once ICE processing completes: not before the side's new session
  // selected (meanwhile the agent stays completed on the previous pair, RFC 8445 §12.1, and the checks need them).
  for (const side of [sc.a, sc.b]) {
    const events = side.attachment.events.slice(side === sc.a ? r.mark.a : r.mark.b);
    const oldId = (side === sc.a ? r.old.a : r.old.b).id;
    const selectedAt = events.findIndex((e) => e.type === 'selected-pair' && e.pair.id !== oldId && e.pair.nominated);
    expect(selectedAt).toBeGreaterThanOrEqual(0);
    expect(events.slice(0, selectedAt).filter((e) => e.type === 'tcp-close' && e.reason === 'not selected')).toEqual([]);
  }
  return { sc, gapA: r.gapA, gapB: r.gapB };
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
