/**
 * The structured check trace (`src/checklist/trace.ts`) over seeded virtual-network runs: the events tell the story
 * of the run in order (checks, answers, nomination, selection), they are plain JSON, and with no sink nothing of the
 * tracer runs at all.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Tracer, type TraceEvent } from '../../src/checklist/trace.js';
import { GlobalPacer } from '../../src/stun/pacing.js';
import { scenario } from '../scenarios/harness.js';
import type { AgentContext } from '../../src/checklist/context.js';
import { CandidatePair } from '../../src/checklist/pair.js';
import type { CheckTx } from '../../src/checklist/transactions.js';
import { connectPair, Driver, host, signalled } from './harness.js';
import { tracedRun } from '../trace/traced-run.js';

type Ev<T extends TraceEvent['type']> = Extract<TraceEvent, { type: T }>;

/** Index of the first event at or after `from` that is of `type` and satisfies `pred`; -1 when none. */
function find<T extends TraceEvent['type']>(events: readonly TraceEvent[], type: T, pred: (e: Ev<T>) => boolean = () => true, from = 0): number {
  for (let i = from; i < events.length; i++) {
    const e = events[i]!;
    if (e.type === type && pred(e as Ev<T>)) return i;
  }
  return -1;
}

describe('check trace of a NAT matrix cell (EIM+APDF vs APDM+APDF with TURN)', () => {
  const run = tracedRun();
  const { events, peerEvents } = run;

  it('completes, and the trace names the pair the agent selected', () => {
    expect(run.completed).toBe(true);
    const selected = run.scenario.selected(run.scenario.a)!;
    const sel = events.filter((e): e is Ev<'selected'> => e.type === 'selected');
    expect(sel.map((e) => e.pair)).toEqual([selected.id]);
    const formed = events.find((e): e is Ev<'pair-formed'> => e.type === 'pair-formed' && e.pair === selected.id)!;
    expect(formed.remote.type).toBe('relay');
    expect(formed.remote.address).toBe(`${selected.remote.address}:${selected.remote.port}`);
  });

  it('controlling side: check, success, valid pair, nomination, USE-CANDIDATE check, success, selection, completed', () => {
    const selectedId = run.scenario.selected(run.scenario.a)!.id;
    const valid = find(events, 'pair-valid', (e) => e.pair === selectedId);
    expect(valid).toBeGreaterThan(0);
    const checkPair = (events[valid] as Ev<'pair-valid'>).checkPair;
    const sent = find(events, 'check-sent', (e) => e.pair === checkPair && !e.useCandidate);
    expect(sent).toBeGreaterThanOrEqual(0);
    const tx = (events[sent] as Ev<'check-sent'>).tx;
    const answered = find(events, 'check-response', (e) => e.tx === tx, sent);
    expect(answered).toBeGreaterThan(sent);
    const answer = events[answered] as Ev<'check-response'>;
    expect(answer).toMatchObject({ pair: checkPair, outcome: 'success' });
    expect(answer.mapped).toMatch(/^203\.0\.113\.1:\d+$/); // a's NAT mapping: the srflx address
    expect(answer.rttMs).toBeGreaterThan(140); // 2 x 70 ms one way at least
    const firstValid = find(events, 'pair-valid', (e) => e.checkPair === checkPair);
    expect(firstValid).toBeGreaterThan(answered);
    const nominating = find(events, 'nominating', (e) => e.pair === checkPair && e.by === 'local', firstValid);
    expect(nominating).toBeGreaterThan(firstValid);
    const useSent = find(events, 'check-sent', (e) => e.pair === checkPair && e.useCandidate, nominating);
    expect(useSent).toBeGreaterThan(nominating);
    const useTx = (events[useSent] as Ev<'check-sent'>).tx;
    expect((events[useSent] as Ev<'check-sent'>).triggered).toBe(true);
    const useAnswer = find(events, 'check-response', (e) => e.tx === useTx && e.outcome === 'success', useSent);
    const selected = find(events, 'selected', (e) => e.pair === selectedId, useAnswer);
    expect(useAnswer).toBeGreaterThan(useSent);
    expect(selected).toBeGreaterThan(useAnswer);
    expect(find(events, 'state', (e) => e.state === 'completed', selected)).toBeGreaterThan(selected);
    expect(find(events, 'checklist-state', (e) => e.state === 'completed', selected)).toBeGreaterThan(selected);
  });

  it('controlled side: the USE-CANDIDATE check arrives, the peer nominates, the pair is selected', () => {
    const received = find(peerEvents, 'check-received', (e) => e.useCandidate && e.answer === 200);
    expect(received).toBeGreaterThanOrEqual(0);
    const nominating = find(peerEvents, 'nominating', (e) => e.by === 'peer', received);
    expect(nominating).toBeGreaterThan(received);
    const sel = find(peerEvents, 'selected', () => true, nominating);
    expect(sel).toBeGreaterThan(nominating);
    const selectedId = run.scenario.selected(run.scenario.b)!.id;
    expect((peerEvents[sel] as Ev<'selected'>).pair).toBe(selectedId);
  });

  it('unanswered direct checks are retransmitted on the RTO, each after its first send', () => {
    const retransmits = events.filter((e): e is Ev<'check-retransmit'> => e.type === 'check-retransmit');
    expect(retransmits.length).toBeGreaterThan(0);
    for (const r of retransmits) {
      const first = events.find((e): e is Ev<'check-sent'> => e.type === 'check-sent' && e.tx === r.tx)!;
      expect(first.pair).toBe(r.pair);
      expect(r.attempt).toBeGreaterThanOrEqual(2);
      expect(r.t - first.t).toBeGreaterThanOrEqual(first.rtoMs);
    }
  });

  it('every answer follows its check, every pair is described before it is named, and time never goes back', () => {
    const described = new Set<string>();
    const sentTx = new Set<string>();
    let last = -Infinity;
    for (const e of events) {
      expect(e.t).toBeGreaterThanOrEqual(last);
      last = e.t;
      if (e.type === 'pair-formed') described.add(e.pair);
      else if ('pair' in e && e.pair !== undefined) expect(described.has(e.pair), `${e.type} names ${e.pair}`).toBe(true);
      if (e.type === 'check-sent') sentTx.add(e.tx);
      if (e.type === 'check-response' || e.type === 'check-retransmit' || e.type === 'check-timeout') expect(sentTx.has(e.tx)).toBe(true);
    }
  });

  it('gathered candidates name the server that produced them', () => {
    const gathered = (list: readonly TraceEvent[]) => list.filter((e): e is Ev<'candidate-gathered'> => e.type === 'candidate-gathered').map((e) => e.candidate);
    const stun = run.scenario.stun.address;
    const turn = run.scenario.turn.address;
    expect(gathered(events).find((c) => c.type === 'srflx')?.server).toBe(`${stun.address}:${stun.port}`);
    expect(gathered(events).find((c) => c.type === 'host')?.server).toBeUndefined();
    expect(gathered(peerEvents).find((c) => c.type === 'relay')?.server).toBe(`${turn.address}:${turn.port}`);
  });

  it('is plain JSON: every event survives JSON.stringify and JSON.parse unchanged', () => {
    for (const e of [...events, ...peerEvents]) expect(JSON.parse(JSON.stringify(e))).toEqual(e);
  });

  it('is deterministic: the same seed gives the same trace', () => {
    expect(tracedRun().events).toEqual(events);
  });
});

describe('pacer wait', () => {
  /** L's check-sent events when L (4 bases, so 4 pairs) and R share `pacer`. */
  function checks(pacer: GlobalPacer | undefined): Ev<'check-sent'>[] {
    const events: TraceEvent[] = [];
    const driver = new Driver({ delayMs: 10 });
    const bases = [0, 1, 2, 3].map((i) => ({ address: `10.0.0.${i + 1}`, port: 5000 }));
    connectPair(driver, { l: { trace: (e) => events.push(e), ...(pacer ? { pacer } : {}) }, r: pacer ? { pacer } : {}, lBases: bases });
    driver.run(2000);
    return events.filter((e): e is Ev<'check-sent'> => e.type === 'check-sent');
  }

  it("a check the process-wide pacer held says how long: at most the time since the agent's previous check", () => {
    // A 60 ms pacer interval is above Ta (50 ms): the two agents' checks must queue for it.
    const sent = checks(new GlobalPacer({ intervalMs: 60 }));
    const held = sent.filter((e) => e.paceWaitMs > 0);
    expect(held.length).toBeGreaterThan(0);
    for (const e of held) {
      const before = sent.filter((p) => p.t < e.t).at(-1);
      expect(e.paceWaitMs).toBeLessThanOrEqual(e.t - (before?.t ?? 0));
    }
    expect(checks(undefined).every((e) => e.paceWaitMs === 0)).toBe(true);
  });

  it('a hold that ended with nothing left to check is not charged to the next check', () => {
    const events: TraceEvent[] = [];
    const ctx = { now: 0, streams: [] } as unknown as AgentContext;
    const tracer = new Tracer((e) => events.push(e), ctx);
    const pair = new CandidatePair('p0', 0, host('10.0.0.1', 1), signalled(host('10.0.0.2', 2)), 1n);
    const tx = (id: number): CheckTx =>
      ({ kind: 'check', pair, request: { local: pair.local.base, remote: pair.local.base, data: new Uint8Array(20).fill(id) }, useCandidate: false, role: 'controlling', sentAt: 0, cancelled: false }) as unknown as CheckTx;
    tracer.pacerRefused(100);
    tracer.checkSent(130, tx(1), false, 500);
    tracer.pacerRefused(200);
    tracer.nothingToCheck();
    tracer.checkSent(900, tx(2), false, 500);
    expect(events.filter((e): e is Ev<'check-sent'> => e.type === 'check-sent').map((e) => [e.t, e.paceWaitMs, e.tx])).toEqual([
      [130, 30, '0101010101010101010101'.padEnd(24, '01')],
      [900, 0, '0202020202020202020202'.padEnd(24, '02')],
    ]);
  });
});

describe('consent in the trace', () => {
  it('consent checks and their answers, then silence: the expiry is traced as such (RFC 7675)', () => {
    const events: TraceEvent[] = [];
    const driver = new Driver({ delayMs: 10 });
    connectPair(driver, { l: { trace: (e) => events.push(e) } });
    driver.run(12_000);
    expect(events.some((e) => e.type === 'consent-response' && e.outcome === 'success')).toBe(true);
    driver.muted.add('R');
    driver.run(60_000);
    const lost = events.filter((e): e is Ev<'consent-lost'> => e.type === 'consent-lost');
    expect(lost).toHaveLength(1);
    expect(lost[0]!.reason).toBe('expired');
    const lastAnswer = events.filter((e) => e.type === 'consent-response').at(-1)!;
    expect(lost[0]!.t - lastAnswer.t).toBeGreaterThanOrEqual(30_000 - 6000);
    expect(find(events, 'state', (e) => e.state === 'failed')).toBeGreaterThan(events.indexOf(lost[0]!));
  });
});

describe('role conflicts in the trace', () => {
  it('two controlling agents: the conflict, the role change and the selection are traced', () => {
    const a: TraceEvent[] = [];
    const b: TraceEvent[] = [];
    const sc = scenario({ seed: 11, a: { agent: { trace: (e) => a.push(e) } }, b: { role: 'controlling', agent: { trace: (e) => b.push(e) } } }).start();
    expect(sc.runUntilCompleted(10_000)).toBe(true);
    const all = [...a, ...b];
    expect(all.some((e) => e.type === 'role-conflict')).toBe(true);
    expect(all.filter((e) => e.type === 'role-change').map((e) => (e as Ev<'role-change'>).role)).toContain('controlled');
    expect(a.some((e) => e.type === 'selected') && b.some((e) => e.type === 'selected')).toBe(true);
  });
});

describe('off by default', () => {
  afterEach(() => vi.restoreAllMocks());

  const methods = Object.getOwnPropertyNames(Tracer.prototype).filter((n) => n !== 'constructor');

  function spyAll(): { readonly calls: () => number } {
    const spies = methods.map((m) => vi.spyOn(Tracer.prototype as unknown as Record<string, (...a: unknown[]) => unknown>, m));
    return { calls: () => spies.reduce((n, s) => n + s.mock.calls.length, 0) };
  }

  it('without a sink no tracer method runs over a whole run (gathering, checks, nomination, consent)', () => {
    expect(methods.length).toBeGreaterThan(15);
    const spy = spyAll();
    const sc = scenario({ seed: 5, a: { nat: 'port-restricted' }, b: { nat: 'symmetric', turn: true }, publicConditions: { delayMs: 40, loss: 0.05 } }).start();
    expect(sc.runUntilCompleted(20_000)).toBe(true);
    sc.net.runFor(12_000); // consent checks
    expect(spy.calls()).toBe(0);
  });

  it('with a sink the same run calls them (the spies do see calls)', () => {
    const spy = spyAll();
    const sink = vi.fn();
    const sc = scenario({ seed: 5, a: { nat: 'port-restricted', agent: { trace: sink } }, b: { nat: 'symmetric', turn: true }, publicConditions: { delayMs: 40, loss: 0.05 } }).start();
    expect(sc.runUntilCompleted(20_000)).toBe(true);
    sc.net.runFor(12_000);
    expect(spy.calls()).toBeGreaterThan(20);
    const types = new Set(sink.mock.calls.map(([e]) => (e as TraceEvent).type));
    for (const t of ['check-sent', 'check-response', 'nominating', 'selected', 'consent-sent', 'consent-response', 'state']) expect(types).toContain(t);
  });
});
