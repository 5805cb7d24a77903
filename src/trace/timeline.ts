/**
 * The checklist timeline: a check trace (`TraceEvent`s, see `checklist/trace.ts`) drawn as one SVG picture. One row
 * per candidate pair, grouped by agent, stream and component; a time axis; each check attempt from its first send to
 * its outcome (success, error, role conflict, time-out), its retransmissions, the peer's checks, nomination, the
 * selected pair, and agent/checklist state changes as vertical markers. Candidate details are in `<title>` elements
 * (a browser shows them on hover). Pure functions: events in, markup out; no assets, no scripts.
 * @module
 */
import type { CheckOutcome, TraceCandidate, TraceEvent } from '../checklist/trace.js';
import type { PairState } from '../checklist/pair.js';
import { TraceParseError } from '../errors.js';

/** Options of {@link renderTimelineSvg}. */
export interface TimelineOptions {
  /** Title drawn above the picture (default `icewire check timeline`). */
  readonly title?: string;
  /** Width of the time axis in px (default 900). */
  readonly plotWidth?: number;
}

/** One check transaction of a row. */
export interface TimelineCheck {
  readonly tx: string;
  readonly sentAt: number;
  readonly useCandidate: boolean;
  readonly triggered: boolean;
  readonly paceWaitMs: number;
  readonly rtoMs: number;
  readonly retransmits: number[];
  end?: { readonly t: number; readonly outcome: CheckOutcome | 'timeout'; readonly detail: string };
}

/** One pair's row of the picture. */
export interface TimelineRow {
  readonly key: string;
  readonly agent: number | undefined;
  readonly stream: number;
  readonly component: number;
  readonly pair: string;
  readonly local: TraceCandidate;
  readonly remote: TraceCandidate;
  readonly priority: string;
  readonly formedAt: number;
  prunedAt: number | undefined;
  readonly states: { t: number; state: PairState }[];
  readonly checks: Map<string, TimelineCheck>;
  readonly received: { t: number; useCandidate: boolean; answer: number }[];
  readonly nominating: { t: number; by: 'local' | 'peer' }[];
  validAt: number | undefined;
  selectedAt: number | undefined;
  readonly sending: number[];
  readonly consentLost: { t: number; reason: string }[];
}

/** A vertical line: an agent state, a concluded checklist, a role change. */
export interface TimelineMarker {
  readonly t: number;
  readonly label: string;
  readonly kind: 'state' | 'checklist' | 'role';
}

/** What the picture is drawn from: rows and markers, in order. */
export interface TimelineModel {
  readonly rows: readonly TimelineRow[];
  readonly markers: readonly TimelineMarker[];
  readonly start: number;
  readonly end: number;
}

const key = (agent: number | undefined, pair: string): string => `${agent ?? ''}|${pair}`;

/** Groups a trace into rows (one per pair) and markers. Events that name an unknown pair are ignored. */
export function timelineModel(events: readonly TraceEvent[]): TimelineModel {
  const rows = new Map<string, TimelineRow>();
  /** `agent|local base|remote address` -> row, to place the peer's checks that arrived before their pair existed. */
  const byPath = new Map<string, TimelineRow>();
  const markers: TimelineMarker[] = [];
  /** `agent|type|address` of gathered candidates -> the server that produced them (pairs name only the candidate). */
  const servers = new Map<string, string>();
  const pendingReceived: { agent: number | undefined; path: string; t: number; useCandidate: boolean; answer: number }[] = [];
  let start = Infinity;
  let end = -Infinity;
  const row = (e: { agent?: number; pair?: string }): TimelineRow | undefined => (e.pair === undefined ? undefined : rows.get(key(e.agent, e.pair)));
  for (const e of events) {
    start = Math.min(start, e.t);
    end = Math.max(end, e.t);
    switch (e.type) {
      case 'candidate-gathered':
        if (e.candidate.server !== undefined) servers.set(`${e.agent ?? ''}|${e.candidate.type}|${e.candidate.address}`, e.candidate.server);
        break;
      case 'pair-formed': {
        const k = key(e.agent, e.pair);
        if (rows.has(k)) break;
        const server = e.local.server ?? servers.get(`${e.agent ?? ''}|${e.local.type}|${e.local.address}`);
        const r: TimelineRow = {
          key: k,
          agent: e.agent,
          stream: e.stream,
          component: e.component,
          pair: e.pair,
          local: server === undefined ? e.local : { ...e.local, server },
          remote: e.remote,
          priority: e.priority,
          formedAt: e.t,
          prunedAt: undefined,
          states: [{ t: e.t, state: e.state }],
          checks: new Map(),
          received: [],
          nominating: [],
          validAt: undefined,
          selectedAt: undefined,
          sending: [],
          consentLost: [],
        };
        rows.set(k, r);
        const path = `${e.agent ?? ''}|${e.local.base ?? e.local.address}|${e.remote.address}`;
        if (!byPath.has(path)) byPath.set(path, r);
        break;
      }
      case 'pair-pruned': {
        const r = row(e);
        if (r) r.prunedAt = e.t;
        break;
      }
      case 'pair-state':
        row(e)?.states.push({ t: e.t, state: e.state });
        break;
      case 'check-sent':
        row(e)?.checks.set(e.tx, {
          tx: e.tx,
          sentAt: e.t,
          useCandidate: e.useCandidate,
          triggered: e.triggered,
          paceWaitMs: e.paceWaitMs,
          rtoMs: e.rtoMs,
          retransmits: [],
        });
        break;
      case 'check-retransmit':
        row(e)?.checks.get(e.tx)?.retransmits.push(e.t);
        break;
      case 'check-response': {
        const c = row(e)?.checks.get(e.tx);
        if (c) {
          const what = e.mapped ? `mapped ${e.mapped}` : e.errorCode !== undefined ? `error ${e.errorCode}` : e.outcome;
          c.end = { t: e.t, outcome: e.outcome, detail: `${what}, RTT ${fmt(e.rttMs)} ms` };
        }
        break;
      }
      case 'check-timeout': {
        const c = row(e)?.checks.get(e.tx);
        if (c) c.end = { t: e.t, outcome: 'timeout', detail: e.cancelled ? 'timed out (cancelled check)' : 'timed out' };
        break;
      }
      case 'check-received': {
        const r = row(e);
        if (r) r.received.push({ t: e.t, useCandidate: e.useCandidate, answer: e.answer });
        else pendingReceived.push({ agent: e.agent, path: `${e.agent ?? ''}|${e.local}|${e.from}`, t: e.t, useCandidate: e.useCandidate, answer: e.answer });
        break;
      }
      case 'nominating':
        row(e)?.nominating.push({ t: e.t, by: e.by });
        break;
      case 'pair-valid': {
        const r = row(e);
        if (r && r.validAt === undefined) r.validAt = e.t;
        break;
      }
      case 'selected': {
        const r = row(e);
        if (r) r.selectedAt = e.t;
        break;
      }
      case 'sending-pair':
        row(e)?.sending.push(e.t);
        break;
      case 'consent-lost':
        row(e)?.consentLost.push({ t: e.t, reason: e.reason });
        break;
      case 'state':
        markers.push({ t: e.t, label: `${agentPrefix(e.agent)}${e.state}`, kind: 'state' });
        break;
      case 'checklist-state':
        if (e.state !== 'running') markers.push({ t: e.t, label: `${agentPrefix(e.agent)}stream ${e.stream} ${e.state}`, kind: 'checklist' });
        break;
      case 'role-change':
        markers.push({ t: e.t, label: `${agentPrefix(e.agent)}now ${e.role}`, kind: 'role' });
        break;
      default:
        break;
    }
  }
  for (const p of pendingReceived) byPath.get(p.path)?.received.push({ t: p.t, useCandidate: p.useCandidate, answer: p.answer });
  const sorted = [...rows.values()].sort(
    (a, b) => (a.agent ?? -1) - (b.agent ?? -1) || a.stream - b.stream || a.component - b.component || cmpBig(b.priority, a.priority) || a.formedAt - b.formedAt,
  );
  if (start === Infinity) start = end = 0;
  return { rows: sorted, markers, start, end };
}

function agentPrefix(agent: number | undefined): string {
  return agent === undefined ? '' : `agent ${agent}: `;
}

/** Compares two decimal strings of unsigned integers. */
function cmpBig(a: string, b: string): number {
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}

/** A number with at most one decimal. */
function fmt(n: number): string {
  return String(Math.round(n * 10) / 10);
}

/** Escapes text for XML content and attribute values. */
export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '"' ? '&quot;' : '&apos;'));
}

function describe(c: TraceCandidate): string {
  const parts = [`${c.type} ${c.address}`, `priority ${c.priority}`, `foundation ${c.foundation}`];
  if (c.base !== undefined && c.base !== c.address) parts.push(`base ${c.base}`);
  if (c.related !== undefined) parts.push(`related ${c.related}`);
  if (c.server !== undefined) parts.push(`server ${c.server}`);
  if (c.mdnsName !== undefined) parts.push(`mDNS ${c.mdnsName}`);
  return parts.join(', ');
}

const STATE_FILL: Readonly<Record<PairState, string>> = {
  frozen: '#eceff1',
  waiting: '#dbeafe',
  'in-progress': '#fef3c7',
  succeeded: '#dcfce7',
  failed: '#fee2e2',
};

const OUTCOME_CLASS: Readonly<Record<CheckOutcome | 'timeout', string>> = {
  success: 'success',
  error: 'error',
  'role-conflict': 'conflict',
  asymmetric: 'error',
  'no-mapped-address': 'error',
  timeout: 'timeout',
};

const STYLE = `
text { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 11px; fill: #1f2937; }
.title { font-size: 15px; font-weight: bold; }
.group { font-weight: bold; fill: #374151; }
.axis line, .tick line { stroke: #9ca3af; }
.grid { stroke: #e5e7eb; }
.marker line { stroke-dasharray: 3 3; stroke-width: 1; }
.marker.state line { stroke: #6d28d9; } .marker.state text { fill: #6d28d9; }
.marker.checklist line { stroke: #0f766e; } .marker.checklist text { fill: #0f766e; }
.marker.role line { stroke: #c2410c; } .marker.role text { fill: #c2410c; }
.selected-row { fill: none; stroke: #15803d; stroke-width: 2; }
.span { stroke: #6b7280; stroke-width: 1.5; }
.check-sent { fill: #fff; stroke: #1d4ed8; stroke-width: 1.5; }
.check-sent.use-candidate { fill: #ede9fe; stroke: #7c3aed; }
.retransmit { stroke: #1d4ed8; stroke-width: 2; }
.outcome.success { fill: #16a34a; }
.outcome.error { fill: #dc2626; }
.outcome.conflict { fill: #ea580c; }
.outcome.timeout { fill: none; stroke: #4b5563; stroke-width: 2; }
.received { fill: #9ca3af; }
.received.use-candidate { fill: #7c3aed; }
.nominating { fill: none; stroke: #7c3aed; stroke-width: 2; }
.selected { fill: #15803d; }
.sending { fill: #0891b2; }
.consent-lost { fill: #111827; }
.pruned { stroke: #6b7280; stroke-width: 2; }
`;

/** Shapes: one drawing per mark kind, used in the rows and in the legend alike. */
const shape = {
  checkSent: (x: number, y: number, use: boolean) =>
    use ? `<path class="mark check-sent use-candidate" d="M${x} ${y - 6}L${x + 6} ${y}L${x} ${y + 6}L${x - 6} ${y}Z"` : `<circle class="mark check-sent" cx="${x}" cy="${y}" r="4.5"`,
  retransmit: (x: number, y: number) => `<line class="mark retransmit" x1="${x}" y1="${y - 6}" x2="${x}" y2="${y + 6}"`,
  success: (x: number, y: number) => `<circle class="mark outcome success" cx="${x}" cy="${y}" r="5"`,
  error: (x: number, y: number, cls: string) => `<rect class="mark outcome ${cls}" x="${x - 4.5}" y="${y - 4.5}" width="9" height="9"`,
  timeout: (x: number, y: number) => `<path class="mark outcome timeout" d="M${x - 4} ${y - 4}L${x + 4} ${y + 4}M${x + 4} ${y - 4}L${x - 4} ${y + 4}"`,
  received: (x: number, y: number, use: boolean) => `<path class="mark received${use ? ' use-candidate' : ''}" d="M${x} ${y + 3}L${x - 4} ${y + 10}L${x + 4} ${y + 10}Z"`,
  nominating: (x: number, y: number) => `<path class="mark nominating" d="M${x} ${y - 9}L${x + 5} ${y - 3}L${x} ${y + 3}L${x - 5} ${y - 3}Z"`,
  selected: (x: number, y: number) => `<path class="mark selected" d="${star(x, y, 7)}"`,
  sending: (x: number, y: number) => `<path class="mark sending" d="M${x} ${y - 10}L${x + 7} ${y - 7}L${x} ${y - 4}Z"`,
  consentLost: (x: number, y: number) => `<rect class="mark consent-lost" x="${x - 1.5}" y="${y - 9}" width="3" height="18"`,
  pruned: (x: number, y: number) => `<line class="mark pruned" x1="${x}" y1="${y - 8}" x2="${x}" y2="${y + 8}"`,
};

function star(x: number, y: number, r: number): string {
  let d = '';
  for (let i = 0; i < 10; i++) {
    const a = (Math.PI / 5) * i - Math.PI / 2;
    const rr = i % 2 === 0 ? r : r * 0.45;
    d += `${i === 0 ? 'M' : 'L'}${fmt(x + rr * Math.cos(a))} ${fmt(y + rr * Math.sin(a))}`;
  }
  return `${d}Z`;
}

/** An element opened by `shape` closed with its tooltip. */
function titled(open: string, title: string): string {
  const tag = open.slice(1, open.indexOf(' '));
  return `${open}><title>${escapeXml(title)}</title></${tag}>`;
}

/** A "nice" tick step (1, 2, 5 x 10^n ms) giving about `target` ticks over `span`. */
function tickStep(span: number, target: number): number {
  const raw = Math.max(span / target, 1e-3);
  const p = 10 ** Math.floor(Math.log10(raw));
  const m = raw / p;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}

const ROW_H = 24;
const LABEL_W = 470;
const LEGEND: readonly [string, (x: number, y: number) => string][] = [
  ['check sent', (x, y) => shape.checkSent(x, y, false)],
  ['with USE-CANDIDATE', (x, y) => shape.checkSent(x, y, true)],
  ['retransmission', shape.retransmit],
  ['success', shape.success],
  ['error', (x, y) => shape.error(x, y, 'error')],
  ['487 role conflict', (x, y) => shape.error(x, y, 'conflict')],
  ['time-out', shape.timeout],
  ["peer's check", (x, y) => shape.received(x, y - 6, false)],
  ['nomination', (x, y) => shape.nominating(x, y + 3)],
  ['selected', shape.selected],
  ['sending pair', (x, y) => shape.sending(x, y + 7)],
  ['consent lost', shape.consentLost],
  ['pruned', shape.pruned],
];

/** Renders a trace as a standalone SVG document. */
export function renderTimelineSvg(events: readonly TraceEvent[], options: TimelineOptions = {}): string {
  const model = timelineModel(events);
  const plotW = options.plotWidth ?? 900;
  const left = LABEL_W + 20;
  const span = Math.max(model.end - model.start, 1);
  const x = (t: number): number => Math.round((left + ((t - model.start) / span) * plotW) * 10) / 10;
  const out: string[] = [];
  let y = 28;
  out.push(`<text class="title" x="12" y="${y}">${escapeXml(options.title ?? 'icewire check timeline')}</text>`);
  y += 22;
  // Legend, wrapped over as many lines as it needs.
  let lx = 20;
  out.push('<g class="legend">');
  for (const [label, draw] of LEGEND) {
    const w = 28 + label.length * 6.7;
    if (lx + w > left + plotW) {
      lx = 20;
      y += 20;
    }
    out.push(titled(draw(lx, y - 4), label), `<text x="${lx + 11}" y="${y}">${escapeXml(label)}</text>`);
    lx += w;
  }
  out.push('</g>');
  y += 12;
  // Pair-state colours, as a legend line of their own.
  lx = 20;
  y += 14;
  for (const [state, fill] of Object.entries(STATE_FILL)) {
    out.push(`<rect x="${lx}" y="${y - 10}" width="14" height="12" fill="${fill}" stroke="#d1d5db"/><text x="${lx + 18}" y="${y}">${state}</text>`);
    lx += 30 + state.length * 6.7;
  }
  y += 16;
  const markerTop = y;
  y += 8 + 14 * Math.min(model.markers.length, 6);
  const rowsTop = y;
  const body: string[] = [];
  let group = '';
  for (const r of model.rows) {
    const g = `${r.agent === undefined ? '' : `agent ${r.agent} · `}stream ${r.stream} · component ${r.component}`;
    if (g !== group) {
      group = g;
      y += 18;
      body.push(`<text class="group" x="12" y="${y}">${escapeXml(g)}</text>`);
      y += 6;
    }
    body.push(renderRow(r, y, left, plotW, model.end, x));
    y += ROW_H;
  }
  const rowsBottom = y + 4;
  // Axis with ticks and grid lines.
  const step = tickStep(span, 10);
  const axis: string[] = [`<g class="axis"><line x1="${left}" y1="${rowsBottom}" x2="${left + plotW}" y2="${rowsBottom}"/>`];
  for (let t = Math.ceil(model.start / step) * step; t <= model.end + 1e-9; t += step) {
    const tx = x(t);
    axis.push(`<line class="grid" x1="${tx}" y1="${rowsTop}" x2="${tx}" y2="${rowsBottom}"/>`);
    axis.push(`<g class="tick"><line x1="${tx}" y1="${rowsBottom}" x2="${tx}" y2="${rowsBottom + 5}"/><text x="${tx}" y="${rowsBottom + 17}" text-anchor="middle">${fmt(t - model.start)}</text></g>`);
  }
  axis.push(`<text x="${left + plotW}" y="${rowsBottom + 32}" text-anchor="end">ms since the first event (t = ${fmt(model.start)})</text></g>`);
  // State markers: vertical lines over every row, labels stacked above them.
  const marks: string[] = ['<g class="markers">'];
  model.markers.forEach((m, i) => {
    const mx = x(m.t);
    const ly = markerTop + 12 + 14 * (i % 6);
    marks.push(
      `<g class="marker ${m.kind}"><line x1="${mx}" y1="${ly + 2}" x2="${mx}" y2="${rowsBottom}"/><text x="${mx + 3}" y="${ly}">${escapeXml(m.label)}</text><title>${escapeXml(`${fmt(m.t - model.start)} ms: ${m.label}`)}</title></g>`,
    );
  });
  marks.push('</g>');
  if (model.rows.length === 0) body.push(`<text x="${left}" y="${rowsTop + 20}">no candidate pairs in this trace</text>`);
  const height = rowsBottom + 44;
  const width = left + plotW + 160;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`,
    `<style>${STYLE}</style>`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    ...out,
    ...axis,
    '<g class="rows">',
    ...body,
    '</g>',
    ...marks,
    '</svg>',
    '',
  ].join('\n');
}

function renderRow(r: TimelineRow, y: number, left: number, plotW: number, end: number, x: (t: number) => number): string {
  const cy = y + ROW_H / 2;
  const parts: string[] = [`<g class="row" data-pair="${escapeXml(r.pair)}">`];
  const label = `${r.pair} ${r.local.type} ${r.local.address} → ${r.remote.type} ${r.remote.address}`;
  const tip = `pair ${r.pair}, priority ${r.priority}\nlocal: ${describe(r.local)}\nremote: ${describe(r.remote)}`;
  parts.push(`<text class="pair-label" x="20" y="${cy + 4}">${escapeXml(label)}<title>${escapeXml(tip)}</title></text>`);
  // Pair-state bands from formation to pruning (or the end of the trace).
  const stop = r.prunedAt ?? end;
  r.states.forEach((s, i) => {
    const from = s.t;
    const to = Math.min(r.states[i + 1]?.t ?? stop, stop);
    if (to < from) return;
    const w = Math.max(x(to) - x(from), 1);
    parts.push(`<rect class="band ${s.state}" x="${x(from)}" y="${y + 3}" width="${fmt(w)}" height="${ROW_H - 6}" fill="${STATE_FILL[s.state]}"><title>${escapeXml(`${s.state} from ${fmt(from)} ms`)}</title></rect>`);
  });
  if (r.selectedAt !== undefined) parts.push(`<rect class="selected-row" x="${left - 4}" y="${y + 1}" width="${plotW + 8}" height="${ROW_H - 2}" rx="3"/>`);
  for (const c of r.checks.values()) {
    const endT = c.end?.t;
    if (endT !== undefined) parts.push(`<line class="span" x1="${x(c.sentAt)}" y1="${cy}" x2="${x(endT)}" y2="${cy}"/>`);
    const flags = [c.useCandidate ? 'USE-CANDIDATE' : '', c.triggered ? 'triggered' : '', c.paceWaitMs > 0 ? `pacer wait ${fmt(c.paceWaitMs)} ms` : ''].filter(Boolean).join(', ');
    parts.push(titled(shape.checkSent(x(c.sentAt), cy, c.useCandidate), `check ${c.tx} sent at ${fmt(c.sentAt)} ms${flags ? ` (${flags})` : ''}, RTO ${c.rtoMs} ms`));
    for (const t of c.retransmits) parts.push(titled(shape.retransmit(x(t), cy), `retransmission of ${c.tx} at ${fmt(t)} ms`));
    if (c.end) {
      const ex = x(c.end.t);
      const tip = `${c.tx}: ${c.end.detail} at ${fmt(c.end.t)} ms`;
      const o = OUTCOME_CLASS[c.end.outcome];
      parts.push(titled(o === 'success' ? shape.success(ex, cy) : o === 'timeout' ? shape.timeout(ex, cy) : shape.error(ex, cy, o), tip));
    }
  }
  for (const rc of r.received) parts.push(titled(shape.received(x(rc.t), cy, rc.useCandidate), `peer's check at ${fmt(rc.t)} ms${rc.useCandidate ? ' with USE-CANDIDATE' : ''}, answered ${rc.answer}`));
  for (const n of r.nominating) parts.push(titled(shape.nominating(x(n.t), cy), `nomination (${n.by === 'local' ? 'we nominate' : 'the peer nominates'}) at ${fmt(n.t)} ms`));
  for (const t of r.sending) parts.push(titled(shape.sending(x(t), cy), `data goes on this pair from ${fmt(t)} ms`));
  for (const l of r.consentLost) parts.push(titled(shape.consentLost(x(l.t), cy), `consent ${l.reason} at ${fmt(l.t)} ms`));
  if (r.prunedAt !== undefined) parts.push(titled(shape.pruned(x(r.prunedAt), cy), `pruned at ${fmt(r.prunedAt)} ms`));
  if (r.selectedAt !== undefined) {
    parts.push(titled(shape.selected(x(r.selectedAt), cy), `selected (nominated) at ${fmt(r.selectedAt)} ms`));
    parts.push(`<text class="selected-label" x="${left + plotW + 10}" y="${cy + 4}" fill="#15803d">selected</text>`);
  } else if (r.validAt !== undefined) {
    parts.push(`<text x="${left + plotW + 10}" y="${cy + 4}" fill="#16a34a">valid</text>`);
  }
  parts.push('</g>');
  return parts.join('');
}

/** Renders a trace as a self-contained HTML page holding the SVG (no scripts, no external assets). */
export function renderTimelineHtml(events: readonly TraceEvent[], options: TimelineOptions = {}): string {
  const title = escapeXml(options.title ?? 'icewire check timeline');
  return [
    '<!DOCTYPE html>',
    '<html lang="en"><head><meta charset="utf-8">',
    `<title>${title}</title>`,
    '<style>body { margin: 0; background: #f9fafb; } main { padding: 12px; overflow-x: auto; }</style>',
    '</head><body><main>',
    renderTimelineSvg(events, options),
    '</main></body></html>',
    '',
  ].join('\n');
}

/** Reads a JSON-lines trace (as `traceToFile` writes it). Blank lines are skipped; a bad line is a `TraceParseError`. */
export function parseTraceLines(text: string): TraceEvent[] {
  const out: TraceEvent[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      throw new TraceParseError('not JSON', i + 1);
    }
    const problem = eventProblem(v);
    if (problem !== undefined) throw new TraceParseError(`not a trace event: ${problem}`, i + 1);
    out.push(v as TraceEvent);
  }
  return out;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** What makes `v` unusable as an event for the picture, or undefined. Unknown types pass (they are not drawn). */
function eventProblem(v: unknown): string | undefined {
  if (!isObject(v)) return 'not an object';
  if (typeof v['type'] !== 'string') return 'no "type"';
  if (typeof v['t'] !== 'number' || !Number.isFinite(v['t'])) return 'no numeric "t"';
  if (v['agent'] !== undefined && typeof v['agent'] !== 'number') return '"agent" is not a number';
  if (v['pair'] !== undefined && typeof v['pair'] !== 'string') return '"pair" is not a string';
  for (const k of ['tx', 'state', 'outcome', 'label', 'role', 'reason', 'local', 'from'] as const) {
    if (v[k] !== undefined && typeof v[k] !== 'string' && !(v['type'] === 'pair-formed' && (k === 'local'))) return `"${k}" is not a string`;
  }
  if (v['type'] === 'candidate-gathered' || v['type'] === 'remote-candidate' || v['type'] === 'local-candidate') {
    const c = v['candidate'];
    if (!isObject(c) || typeof c['type'] !== 'string' || typeof c['address'] !== 'string') return `${v['type']} needs a "candidate"`;
  }
  if (v['type'] === 'pair-formed') {
    if (typeof v['pair'] !== 'string' || typeof v['priority'] !== 'string' || !/^\d+$/.test(v['priority'])) return 'pair-formed needs "pair" and a decimal "priority"';
    if (typeof v['stream'] !== 'number' || typeof v['component'] !== 'number') return 'pair-formed needs "stream" and "component"';
    for (const side of ['local', 'remote'] as const) {
      const c = v[side];
      if (!isObject(c) || typeof c['type'] !== 'string' || typeof c['address'] !== 'string') return `pair-formed needs a "${side}" candidate`;
    }
  }
  return undefined;
}
