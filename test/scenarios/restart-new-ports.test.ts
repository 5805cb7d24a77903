/**
 * ICE restarts on new host ports (as libwebrtc does), in virtual time: both roles restarting, signalling delays of
 * 0, 300 and 1,000 ms each way, a datagram each way every 15 ms. No gap in data over 100 ms on either side, both ends
 * on the same new pair afterwards (on the new ports), and the old bases released once the new session selected.
 */
import { describe, expect, it } from 'vitest';
import type { AgentMachineEvent, StreamBase } from '../../src/agent-machine.js';
import { scenario, type Scenario, type Side } from './harness.js';
import { restartOverOfferAnswer } from './restart-run.js';

function eventsOf<T extends AgentMachineEvent['type']>(side: Side, sc: Scenario, type: T): Extract<AgentMachineEvent, { type: T }>[] {
  void sc;
  return (side.attachment.events as AgentMachineEvent[]).filter((e): e is Extract<AgentMachineEvent, { type: T }> => e.type === type);
}

/** New host bases for `side`: the same addresses, ports moved by 100. */
function newBases(side: Side): StreamBase[] {
  return side.machine.bases.map((b) => ({ ...b, address: { address: b.address.address, port: b.address.port + 100 } }));
}

interface Run {
  readonly gapA: number;
  readonly gapB: number;
  readonly sc: Scenario;
  readonly released: { a: number; b: number };
}

/**
 * A restart by `initiator` over SDP-like signalling: the offer carries the initiator's new parameters and its new
 * host candidates; the answerer restarts on new ports too and answers the same way, `delayMs` after each.
 */
function restartRun(initiatorName: 'a' | 'b', delayMs: number, turn = false): Run {
  let live = true; // candidates trickle on their own until the restart; after it, the offer/answer carries them
  const side = turn ? ({ nat: 'symmetric', turn: true } as const) : ({ stun: false } as const);
  const sc = scenario({
    seed: `restart-${initiatorName}-${delayMs}-${turn}`,
    signallingDelayMs: 20,
    a: { ...side, signal: () => live },
    b: { ...side, signal: () => live },
  }).start();
  expect(sc.runUntilConnected(10_000)).toBe(true);
  expect(sc.net.runUntilTrue(() => sc.state(sc.a) === 'completed' && sc.state(sc.b) === 'completed', 5_000)).toBe(true);
  const { gapA, gapB, old } = restartOverOfferAnswer(sc, initiatorName, { delayMs, newBases, stopTrickle: () => (live = false), settleMs: 5_000 });
  // Both ends on the new ports (a relayed pair: on new allocations).
  const pa = sc.selected(sc.a)!;
  if (turn) {
    expect(pa.local.type).toBe('relay');
    expect(pa.local.port).not.toBe(old.a.local.port);
    expect(pa.remote.port).not.toBe(old.a.remote.port);
  } else {
    expect(pa.local.port).toBe(old.a.local.port + 100);
    expect(pa.remote.port).toBe(old.a.remote.port + 100);
  }
  return {
    sc,
    gapA,
    gapB,
    released: { a: eventsOf(sc.a, sc, 'bases-released').length, b: eventsOf(sc.b, sc, 'bases-released').length },
  };
}

describe('ICE restart on new ports (virtual time)', () => {
  for (const initiator of ['a', 'b'] as const) {
    for (const delay of [0, 300, 1000]) {
      it(`${initiator === 'a' ? 'controlling' : 'controlled'} side restarts, ${delay} ms signalling each way: no gap over 100 ms`, () => {
        const r = restartRun(initiator, delay);
        expect(r.gapA).toBeLessThanOrEqual(100);
        expect(r.gapB).toBeLessThanOrEqual(100);
        expect(r.sc.state(r.sc.a)).toBe('completed');
        expect(r.sc.state(r.sc.b)).toBe('completed');
        // The old bases were released once the new session selected, on both sides.
        expect(r.released).toEqual({ a: 1, b: 1 });
      });
    }
  }

  it('behind symmetric NATs (a relayed path): the new session allocates anew, the old allocations are deleted', () => {
    const r = restartRun('a', 300, true);
    expect(r.gapA).toBeLessThanOrEqual(100);
    expect(r.gapB).toBeLessThanOrEqual(100);
    expect(r.released).toEqual({ a: 1, b: 1 });
    // Only the new session's allocations are left on the server, one per side (each side allocated once per base).
    r.sc.net.runFor(500);
    const live = r.sc.turn.server.allocations(r.sc.net.now);
    expect(live.length).toBe(2);
    const liveRelayed = live.flatMap((x) => x.relayed.map((a) => `${a.address}:${a.port}`));
    const relayedNow = [r.sc.selected(r.sc.a)!.local, r.sc.selected(r.sc.b)!.local].filter((c) => c.type === 'relay');
    expect(relayedNow.length).toBeGreaterThan(0);
    for (const c of relayedNow) expect(liveRelayed).toContain(`${c.address}:${c.port}`);
  });
});
