/**
 * An ICE restart as an application drives it over SDP-like offer/answer, in virtual time, with data flowing: shared
 * by the restart scenarios (new UDP ports; TCP candidates). A datagram each way every 15 ms; the initiator restarts
 * on new bases and its offer (parameters and the candidates it gathered) arrives `delayMs` later; the answerer
 * restarts the same way and its answer takes `delayMs` back.
 */
import { expect } from 'vitest';
import type { StreamBase } from '../../src/agent-machine.js';
import type { LocalCandidate } from '../../src/candidates/candidate.js';
import type { PairInfo } from '../../src/checklist/types.js';
import { signalled, type Scenario, type Side } from './harness.js';

const text = (s: string) => new TextEncoder().encode(s);

/** The largest gap between datagrams a side received within [from, to]. */
export function largestGap(side: Side, from: number, to: number): number {
  const times = side.received.filter((r) => r.time >= from && r.time <= to).map((r) => r.time);
  if (times.length === 0) return Infinity;
  let gap = times[0]! - from;
  for (let i = 1; i < times.length; i++) gap = Math.max(gap, times[i]! - times[i - 1]!);
  return Math.max(gap, to - times.at(-1)!);
}

export interface RestartOptions {
  /** Signalling delay of the offer and of the answer, ms. */
  readonly delayMs: number;
  /** The bases a side restarts on (what `IceAgent.restart()` would bind). */
  readonly newBases: (side: Side) => StreamBase[];
  /** Stops the trickle the scenario ran until now: after the restart the offer and answer carry the candidates. */
  readonly stopTrickle: () => void;
  /** Both selected pairs are one path (default: `Scenario.sameSelectedPair`). */
  readonly samePath?: (sc: Scenario) => boolean;
  /** How long both sides may take to select a new nominated pair, beyond the two signalling delays, ms. */
  readonly settleMs: number;
}

export interface RestartOutcome {
  /** Largest gap in data each side received from the restart until 1 s after both moved. */
  readonly gapA: number;
  readonly gapB: number;
  /** The selected pairs before the restart. */
  readonly old: { readonly a: PairInfo; readonly b: PairInfo };
  /** Each side's event count when the restart began. */
  readonly mark: { readonly a: number; readonly b: number };
}

/** Runs the restart on a connected, completed scenario and waits until both sides selected a new nominated pair. */
export function restartOverOfferAnswer(sc: Scenario, initiatorName: 'a' | 'b', o: RestartOptions): RestartOutcome {
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
  o.stopTrickle();
  const mark = { a: sc.a.attachment.events.length, b: sc.b.attachment.events.length };

  const gatheredSince = (side: Side, count: number): LocalCandidate[] => side.gathered[0]!.slice(count);
  const iCount = initiator.gathered[0]!.length;
  initiator.machine.restart(sc.net.now, o.newBases(initiator));
  const offer = initiator.machine.core.getLocalParameters();
  // The offer waits for gathering (no trickle): host candidates at once, server-reflexive and relayed ones later.
  sc.net.runFor(1);
  expect(sc.net.runUntilTrue(() => initiator.machine.gatheringState === 'complete', 5_000)).toBe(true);
  const offerCands = gatheredSince(initiator, iCount);
  expect(offerCands.length).toBeGreaterThan(0);
  sc.at(sc.net.now + o.delayMs, (now) => {
    const aCount = answerer.gathered[0]!.length;
    answerer.machine.restart(now, o.newBases(answerer));
    answerer.machine.setRemoteParameters(0, offer);
    for (const c of offerCands) answerer.machine.addRemoteCandidate(now, 0, signalled(c));
    answerer.machine.endOfRemoteCandidates(0);
    const answer = answerer.machine.core.getLocalParameters();
    // The answer leaves once the answerer gathered, and takes `delayMs` to arrive.
    sc.every(1, (t) => {
      if (answerer.machine.gatheringState !== 'complete' || t === now) return true;
      const answerCands = gatheredSince(answerer, aCount);
      sc.at(t + o.delayMs, (t2) => {
        initiator.machine.setRemoteParameters(0, answer);
        for (const c of answerCands) initiator.machine.addRemoteCandidate(t2, 0, signalled(c));
        initiator.machine.endOfRemoteCandidates(0);
      });
      return false;
    });
  });
  const samePath = o.samePath ?? ((s: Scenario) => s.sameSelectedPair());
  const moved = () => {
    const pa = sc.selected(sc.a);
    const pb = sc.selected(sc.b);
    return pa?.nominated === true && pb?.nominated === true && pa.id !== old.a.id && pb.id !== old.b.id && samePath(sc);
  };
  expect(sc.net.runUntilTrue(moved, 2 * o.delayMs + o.settleMs)).toBe(true);
  sc.net.runFor(1_000);
  const end = sc.net.now;
  flowing = false;
  sc.net.runFor(100);
  return { gapA: largestGap(sc.a, start, end), gapB: largestGap(sc.b, start, end), old, mark };
}
