/**
 * A seeded run on the virtual network with the check trace on, for the trace and timeline tests and for the README
 * picture (`docs/timeline-example.svg`): agent a behind a port-restricted cone NAT (EIM+APDF), agent b behind a
 * symmetric NAT (APDM+APDF) with a TURN server, both with the STUN server. No direct path exists (RFC 4787: the
 * symmetric side's new mapping is filtered by a's NAT), so a's direct checks go unanswered and the pair through b's
 * relay is selected. The trace is a's (the controlling side).
 */
import type { TraceEvent } from '../../src/checklist/trace.js';
import { scenario, type Scenario } from '../scenarios/harness.js';

export interface TracedRun {
  readonly scenario: Scenario;
  /** a's trace. */
  readonly events: TraceEvent[];
  /** b's trace. */
  readonly peerEvents: TraceEvent[];
  readonly completed: boolean;
  /** What the picture of `events` must show, counted from the trace. */
  readonly expected: {
    readonly rows: number;
    readonly checks: number;
    readonly successes: number;
    readonly retransmits: number;
    readonly selected: number;
    readonly states: number;
  };
}

/** Seed of the README picture's run. */
export const EXAMPLE_SEED = 2025;

/** Runs the scenario until both sides completed, then `afterMs` more (so that unanswered checks time out). */
export function tracedRun(seed = EXAMPLE_SEED, afterMs = 3000): TracedRun {
  const events: TraceEvent[] = [];
  const peerEvents: TraceEvent[] = [];
  const sc = scenario({
    seed,
    a: { nat: 'port-restricted', agent: { trace: (e) => events.push(e) } },
    b: { nat: 'symmetric', turn: true, agent: { trace: (e) => peerEvents.push(e) } },
    // Long-haul delay with a little loss: slow answers make the controlling side wait, retransmit and give up.
    publicConditions: { delayMs: 70, jitterMs: 10, loss: 0.05 },
  }).start();
  const completed = sc.runUntilCompleted(20_000);
  sc.net.runFor(afterMs);
  const count = (type: TraceEvent['type'], pred: (e: TraceEvent) => boolean = () => true) => events.filter((e) => e.type === type && pred(e)).length;
  return {
    scenario: sc,
    events,
    peerEvents,
    completed,
    expected: {
      rows: count('pair-formed'),
      checks: count('check-sent'),
      successes: count('check-response', (e) => e.type === 'check-response' && e.outcome === 'success'),
      retransmits: count('check-retransmit'),
      selected: new Set(events.flatMap((e) => (e.type === 'selected' ? [e.pair] : []))).size,
      states: count('state'),
    },
  };
}
