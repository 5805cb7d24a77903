/**
 * The timeline renderer (`src/trace/timeline.ts`): pure, so checked on its markup. The README picture
 * (`docs/timeline-example.svg`) is the renderer's output for the seeded run of `traced-run.ts`; a test compares
 * them, so the picture cannot go stale. Regenerate it with
 * `UPDATE_TIMELINE_EXAMPLE=1 npx vitest run test/trace/timeline.test.ts`.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { TraceCandidate, TraceEvent } from '../../src/checklist/trace.js';
import { TraceParseError } from '../../src/errors.js';
import { escapeXml, parseTraceLines, renderTimelineHtml, renderTimelineSvg, timelineModel } from '../../src/trace/timeline.js';
import { tracedRun } from './traced-run.js';

const EXAMPLE = new URL('../../docs/timeline-example.svg', import.meta.url);
const EXAMPLE_TITLE = 'icewire check timeline: EIM+APDF NAT (controlling) vs APDM+APDF NAT with TURN, 70 ms one way, 5% loss';

/** The README picture, from its seeded run. */
export function exampleSvg(): string {
  return renderTimelineSvg(tracedRun().events, { title: EXAMPLE_TITLE });
}

const count = (svg: string, re: RegExp): number => svg.match(re)?.length ?? 0;

const cand = (type: TraceCandidate['type'], address: string): TraceCandidate => ({ type, address, transport: 'udp', priority: 1, foundation: '1', component: 1 });

describe('renderTimelineSvg', () => {
  const run = tracedRun();
  const svg = renderTimelineSvg(run.events);

  it('draws one row per pair, every check, outcome and retransmission of the trace, and the state markers', () => {
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(count(svg, /<g class="row"/g)).toBe(run.expected.rows);
    // Marks in rows (the legend draws one of each kind besides).
    expect(count(svg, /class="mark check-sent/g)).toBe(run.expected.checks + 2);
    expect(count(svg, /class="mark outcome success"/g)).toBe(run.expected.successes + 1);
    expect(count(svg, /class="mark retransmit"/g)).toBe(run.expected.retransmits + 1);
    expect(count(svg, /class="mark selected"/g)).toBe(run.expected.selected + 1);
    expect(count(svg, /<g class="marker state"/g)).toBe(run.expected.states);
    expect(count(svg, /class="mark nominating"/g)).toBe(run.events.filter((e) => e.type === 'nominating').length + 1);
  });

  it('puts candidate details in <title> elements (hover) and nothing external in the markup', () => {
    const formed = run.events.find((e): e is Extract<TraceEvent, { type: 'pair-formed' }> => e.type === 'pair-formed' && e.remote.type === 'relay')!;
    expect(svg).toContain(`remote: relay ${formed.remote.address}, priority ${formed.remote.priority}`);
    expect(svg).toMatch(/local: srflx 203\.0\.113\.1:\d+, priority \d+, foundation \w+, base 192\.168\.\d+\.\d+:5000, related .*, server 198\.51\.100\.1:3478/);
    expect(svg).not.toMatch(/href|<script|url\(|@import/i);
  });

  it('draws a timed-out check, an error and a role conflict with their own marks', () => {
    const events: TraceEvent[] = [
      { t: 0, type: 'pair-formed', stream: 0, component: 1, pair: 'p0', local: cand('host', '10.0.0.1:1'), remote: cand('host', '10.0.0.2:1'), priority: '9', state: 'waiting' },
      { t: 0, type: 'check-sent', pair: 'p0', tx: 'aa', role: 'controlling', useCandidate: false, triggered: false, paceWaitMs: 0, rtoMs: 500 },
      { t: 500, type: 'check-retransmit', pair: 'p0', tx: 'aa', attempt: 2 },
      { t: 39_500, type: 'check-timeout', pair: 'p0', tx: 'aa', cancelled: false },
      { t: 50, type: 'check-sent', pair: 'p0', tx: 'bb', role: 'controlling', useCandidate: false, triggered: false, paceWaitMs: 5, rtoMs: 500 },
      { t: 90, type: 'check-response', pair: 'p0', tx: 'bb', outcome: 'error', rttMs: 40, errorCode: 400 },
      { t: 100, type: 'check-sent', pair: 'p0', tx: 'cc', role: 'controlling', useCandidate: true, triggered: true, paceWaitMs: 0, rtoMs: 500 },
      { t: 140, type: 'check-response', pair: 'p0', tx: 'cc', outcome: 'role-conflict', rttMs: 40, errorCode: 487 },
      { t: 39_500, type: 'pair-state', pair: 'p0', state: 'failed' },
    ];
    const out = renderTimelineSvg(events);
    expect(count(out, /class="mark outcome timeout"/g)).toBe(2);
    expect(count(out, /class="mark outcome error"/g)).toBe(2);
    expect(count(out, /class="mark outcome conflict"/g)).toBe(2);
    expect(count(out, /class="mark check-sent use-candidate"/g)).toBe(2);
    expect(out).toContain('pacer wait 5 ms');
    expect(out).toContain('error 400, RTT 40 ms');
    expect(out).toContain('class="band failed"');
  });

  it('groups rows by agent, stream and component, and places early peer checks on their pair', () => {
    const events: TraceEvent[] = [
      { t: 5, type: 'check-received', local: '10.0.0.1:1', from: '10.0.0.9:7', useCandidate: false, answer: 200, agent: 1 },
      { t: 6, type: 'pair-formed', agent: 1, stream: 0, component: 2, pair: 'p1', local: { ...cand('host', '10.0.0.1:1'), base: '10.0.0.1:1' }, remote: cand('prflx', '10.0.0.9:7'), priority: '5', state: 'waiting' },
      { t: 0, type: 'pair-formed', agent: 0, stream: 0, component: 1, pair: 'p1', local: cand('host', '10.0.0.1:2'), remote: cand('host', '10.0.0.3:2'), priority: '7', state: 'frozen' },
    ];
    const model = timelineModel(events);
    expect(model.rows.map((r) => [r.agent, r.component, r.pair])).toEqual([
      [0, 1, 'p1'],
      [1, 2, 'p1'],
    ]);
    expect(model.rows[1]!.received).toHaveLength(1);
    const out = renderTimelineSvg(events);
    expect(out).toContain('agent 0 · stream 0 · component 1');
    expect(out).toContain('agent 1 · stream 0 · component 2');
  });

  it('escapes whatever the trace carries', () => {
    const evil = '<script>alert(1)</script>&"\'';
    const events: TraceEvent[] = [
      { t: 0, type: 'pair-formed', stream: 0, component: 1, pair: evil, local: cand('host', evil), remote: cand('host', '1.2.3.4:5'), priority: '1', state: 'frozen' },
      { t: 1, type: 'state', state: evil as 'new' },
    ];
    const out = renderTimelineSvg(events, { title: evil });
    expect(out).not.toContain('<script>');
    expect(out).toContain(escapeXml(evil));
    expect(escapeXml(evil)).toBe('&lt;script&gt;alert(1)&lt;/script&gt;&amp;&quot;&apos;');
  });

  it('draws an empty trace as an empty picture, not a crash', () => {
    const out = renderTimelineSvg([]);
    expect(out).toContain('no candidate pairs in this trace');
    expect(count(out, /<g class="row"/g)).toBe(0);
  });

  it('HTML: one self-contained page around the same SVG', () => {
    const html = renderTimelineHtml(run.events, { title: 'x' });
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(html).toContain(renderTimelineSvg(run.events, { title: 'x' }));
    expect(html).not.toMatch(/<script|<link|src=/i);
  });
});

describe('parseTraceLines', () => {
  it('reads JSON lines back into the events', () => {
    const { events } = tracedRun();
    const text = `${events.map((e) => JSON.stringify(e)).join('\n')}\n\n`;
    expect(parseTraceLines(text)).toEqual(events);
  });

  it.each([
    ['not JSON', '{"t":0,"type":"state","state":"new"}\n{oops', 2],
    ['no type', '{"t":0}', 1],
    ['no time', '{"type":"state"}', 1],
    ['an array', '[1,2]', 1],
    ['a pair without candidates', '{"t":0,"type":"pair-formed","pair":"p0","stream":0,"component":1,"priority":"1","state":"frozen"}', 1],
    ['a bad priority', '{"t":0,"type":"pair-formed","pair":"p0","stream":0,"component":1,"priority":1}', 1],
    ['a gathered candidate without its candidate', '{"t":0,"type":"candidate-gathered","stream":0}', 1],
    ['a pair id that is not text', '{"t":0,"type":"check-sent","pair":{}}', 1],
  ])('refuses %s with a TraceParseError naming the line', (_name, text, line) => {
    let err: unknown;
    try {
      parseTraceLines(text);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TraceParseError);
    expect((err as TraceParseError).line).toBe(line);
    expect((err as TraceParseError).code).toBe('ERR_TRACE_PARSE');
  });
});

describe('docs/timeline-example.svg', () => {
  it('is what the renderer draws for the seeded example run (regenerate: UPDATE_TIMELINE_EXAMPLE=1)', () => {
    const svg = exampleSvg();
    if (process.env['UPDATE_TIMELINE_EXAMPLE']) writeFileSync(EXAMPLE, svg);
    expect(readFileSync(EXAMPLE, 'utf8')).toBe(svg);
  });
});
