/**
 * The check trace on the Node edge: `IceAgent` and `IceSdpSession` take the `trace` option, `traceToFile` writes JSON
 * lines that `parseTraceLines` reads back. Loopback only; agents, sessions and the temporary folder are closed or
 * removed after each test.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { TraceEvent } from '../../src/checklist/trace.js';
import { IceSdpSession } from '../../src/node/sdp-session.js';
import { traceToFile, traceToStream } from '../../src/node/trace-file.js';
import { parseTraceLines } from '../../src/trace/timeline.js';
import { agentPool, connectPair, loopback } from './agent-helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'icewire-trace-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const pool = agentPool();
const sessions: IceSdpSession[] = [];
afterEach(async () => {
  await pool.closeAll();
  await Promise.all(sessions.splice(0).map((s) => s.close()));
});

describe('the trace on real sockets', () => {
  it('IceAgent with traceToFile: the file holds the run as JSON lines, gathering to selection', async () => {
    const path = join(dir, 'agent.jsonl');
    const file = traceToFile(path);
    const a = pool.make({ ...loopback, trace: file.trace });
    const b = pool.make(loopback);
    await connectPair(a, b);
    await new Promise((r) => setTimeout(r, 300)); // nomination
    await file.close();
    const events = parseTraceLines(readFileSync(path, 'utf8'));
    const types = events.map((e) => e.type);
    for (const t of ['candidate-gathered', 'remote-candidate', 'pair-formed', 'check-sent', 'check-response', 'pair-valid', 'sending-pair', 'state']) {
      expect(types).toContain(t);
    }
    const gathered = events.find((e): e is Extract<TraceEvent, { type: 'candidate-gathered' }> => e.type === 'candidate-gathered')!;
    expect(gathered.candidate).toMatchObject({ type: 'host', address: expect.stringMatching(/^127\.0\.0\.1:\d+$/) });
    const pair = a.getSelectedCandidatePair()!;
    const sending = events.filter((e) => e.type === 'sending-pair').map((e) => (e as { pair: string }).pair);
    const formed = events.find((e): e is Extract<TraceEvent, { type: 'pair-formed' }> => e.type === 'pair-formed' && e.pair === sending.at(-1))!;
    expect(formed.local.address).toBe(`${pair.local.address}:${pair.local.port}`);
    expect(formed.remote.address).toBe(`${pair.remote.address}:${pair.remote.port}`);
  });

  it('traceToStream writes one JSON line per event; a closed file drops events without throwing', async () => {
    const stream = new PassThrough();
    let text = '';
    stream.on('data', (b: Buffer) => (text += b.toString()));
    const sink = traceToStream(stream);
    sink({ t: 1, type: 'state', state: 'checking' });
    sink({ t: 2, type: 'role-change', role: 'controlled' });
    expect(text).toBe('{"t":1,"type":"state","state":"checking"}\n{"t":2,"type":"role-change","role":"controlled"}\n');
    const file = traceToFile(join(dir, 'closed.jsonl'));
    await file.close();
    expect(() => file.trace({ t: 3, type: 'state', state: 'new' })).not.toThrow();
    await expect(file.close()).resolves.toBeUndefined();
  });

  it('a file that cannot be opened: close() rejects, the sink never throws', async () => {
    const file = traceToFile(join(dir, 'no-such-folder', 'x.jsonl'));
    expect(() => file.trace({ t: 0, type: 'state', state: 'new' })).not.toThrow();
    await expect(file.close()).rejects.toThrow(/ENOENT/);
  });

  it('IceSdpSession: one sink for all its agents, each event tagged with its transport index', async () => {
    const events: TraceEvent[] = [];
    const appSdp = ['v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=-', 't=0 0', 'm=audio 9 RTP/AVP 0', 'c=IN IP4 0.0.0.0', 'a=rtcp-mux', 'm=video 9 RTP/AVP 96', 'c=IN IP4 0.0.0.0', 'a=rtcp-mux', ''].join('\r\n');
    const alice = new IceSdpSession({ ...loopback, trace: (e) => events.push(e) });
    const bob = new IceSdpSession(loopback);
    sessions.push(alice, bob);
    await bob.setRemoteDescription(await alice.createOffer(appSdp), 'offer');
    await alice.setRemoteDescription(await bob.createAnswer(appSdp), 'answer');
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline && !([0, 1] as const).every((i) => events.some((e) => e.type === 'sending-pair' && e.agent === i))) await new Promise((r) => setTimeout(r, 20));
    expect(events.length).toBeGreaterThan(0);
    expect(events.every((e) => e.agent === 0 || e.agent === 1)).toBe(true);
    for (const i of [0, 1]) expect(events.some((e) => e.type === 'sending-pair' && e.agent === i)).toBe(true);
  });
});
