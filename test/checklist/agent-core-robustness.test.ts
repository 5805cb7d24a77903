import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AgentCore } from '../../src/checklist/agent-core.js';
import { InvalidStateError } from '../../src/errors.js';
import { Driver, connectPair, host, seededRandom, signalled, twoHostAgents } from './harness.js';

const done = (...a: AgentCore[]) => () => a.every((x) => x.state === 'completed');

describe('bad network input never throws (drop and count)', () => {
  it('random datagrams and mutated checks are dropped or answered, never thrown', () => {
    const d = new Driver();
    const { l, r } = connectPair(d);
    d.run(5000, done(l, r));
    const sample = d.sent.filter((s) => s.kind === 'request' || s.kind === 'success').map((s) => s.datagram.data);
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ minLength: 0, maxLength: 120 }),
          fc.tuple(fc.constantFrom(...sample), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 })).map(([m, flips]) => {
            const out = Uint8Array.from(m);
            for (const [i, v] of flips) out[i % out.length] = v;
            return out;
          }),
          fc.uint8Array({ minLength: 0, maxLength: 80 }).map((tail) => {
            // A STUN header (Binding request, right cookie) followed by random attributes.
            const out = new Uint8Array(20 + ((tail.length + 3) & ~3));
            out.set([0, 1, (out.length - 20) >> 8, (out.length - 20) & 0xff, 0x21, 0x12, 0xa4, 0x42]);
            out.set(tail, 20);
            return out;
          }),
        ),
        (data) => {
          expect(() => {
            r.handleReceive(d.now, { local: { address: '10.0.0.2', port: 6000 }, remote: { address: '10.0.0.1', port: 5000 }, data });
            r.handleTimeout(d.now);
            while (r.pollTransmit());
            while (r.pollEvent());
          }).not.toThrow();
        },
      ),
      { numRuns: 500 },
    );
    expect(r.state).toBe('completed');
  });
});

describe('limits and API misuse', () => {
  it('enforces the remote-candidate limit and ignores candidates after end-of-candidates', () => {
    const a = new AgentCore({ random: seededRandom(1), remoteCandidateLimit: 3 });
    a.addStream(1);
    a.addLocalCandidate(0, host('10.0.0.1', 1));
    a.setRemoteParameters(0, { ufrag: 'abcd', pwd: 'x'.repeat(22) });
    for (let i = 0; i < 5; i++) a.addRemoteCandidate(0, signalled(host(`10.0.1.${i + 1}`, 9)));
    expect(a.getChecklist(0).pairs).toHaveLength(3);
    expect(a.getStats().dropped['remote-limit']).toBe(2);
    const b = new AgentCore({ random: seededRandom(2), checklistLimit: 2 });
    b.addStream(1);
    b.addLocalCandidate(0, host('10.0.0.1', 1));
    b.setRemoteParameters(0, { ufrag: 'abcd', pwd: 'x'.repeat(22) });
    for (let i = 0; i < 4; i++) b.addRemoteCandidate(0, signalled(host(`10.0.1.${i + 1}`, 9, 1, 65535 - i)));
    expect(b.getChecklist(0).pairs.map((p) => p.remote.address)).toEqual(['10.0.1.1', '10.0.1.2']);
    b.endOfRemoteCandidates(0);
    b.addRemoteCandidate(0, signalled(host('10.0.1.9', 9)));
    expect(b.getStats().dropped['remote-after-end']).toBe(1);
  });

  it('validates options and indices; close() stops everything and send() then throws', () => {
    expect(() => new AgentCore({ random: seededRandom(1), consentIntervalMs: 1000 })).toThrow(RangeError);
    expect(() => new AgentCore({ random: seededRandom(1), keepaliveIntervalMs: 1000 })).toThrow(RangeError);
    expect(() => new AgentCore({ random: seededRandom(1), pwd: 'short' })).toThrow(RangeError);
    const d = new Driver();
    const { l, r } = connectPair(d);
    expect(() => l.addRemoteCandidate(7, signalled(host('10.0.0.9', 1)))).toThrow(RangeError);
    d.run(5000, done(l, r));
    l.close();
    d.drain();
    expect(l.state).toBe('closed');
    expect(l.pollTimeout()).toBeUndefined();
    expect(() => l.send(d.now, 0, 1, new Uint8Array(1))).toThrow(InvalidStateError);
    expect(() => l.restart()).toThrow(InvalidStateError);
    const before = d.sent.length;
    d.run(d.now + 60_000);
    expect(d.sent.filter((s, i) => i >= before && s.agent === 'L')).toHaveLength(0);
  });

  it('exposes per-pair stats', () => {
    const d = new Driver();
    const { l, r } = connectPair(d);
    d.run(5000, done(l, r));
    l.send(d.now, 0, 1, new Uint8Array(100));
    d.run(d.now + 50);
    const sel = l.getSelectedPair(0, 1)!;
    const st = l.getStats().pairs.find((p) => p.id === sel.id)!;
    expect(st.nominated).toBe(true);
    expect(st.requestsSent).toBeGreaterThanOrEqual(2);
    expect(st.responsesReceived).toBeGreaterThanOrEqual(2);
    expect(st.requestsReceived).toBeGreaterThanOrEqual(1);
    expect(st.bytesSent).toBe(100);
    expect(st.currentRoundTripTime).toBe(0.02);
    expect(r.getStats().pairs.find((p) => p.nominated)!.bytesReceived).toBe(100);
  });
});

describe('controlled side: USE-CANDIDATE before the pair succeeded (RFC 8445 §7.3.1.5)', () => {
  it('nominates when the triggered check succeeds', () => {
    const d = new Driver({ delayMs: 10 });
    const { l, r, rc } = twoHostAgents(d, { nomination: 'aggressive' });
    l.setRemoteParameters(0, r.getLocalParameters());
    r.setRemoteParameters(0, l.getLocalParameters());
    l.addRemoteCandidate(0, signalled(rc)); // R never learns L's candidate by signalling
    d.run(5000, done(l, r));
    const rReq = d.requestsOf('R');
    // R's first check is the triggered one, sent when L's nominating check arrived (t = 10)...
    expect(rReq[0]!.t).toBe(10);
    // ...and the pair is nominated (selected) only when that check succeeded (t = 30).
    expect(r.state).toBe('completed');
    const sel = d.eventsOf('R', 'selected-pair');
    expect(sel).toHaveLength(1);
    expect(sel[0]!.pair.remote.type).toBe('prflx');
  });
});

describe('unknown comprehension-required attributes (RFC 8489 §6.3.1.1)', () => {
  it('an authenticated request with one gets 420 listing it, integrity-protected', async () => {
    const { Attr, attr, getAttribute } = await import('../../src/stun/attributes.js');
    const { encodeStunMessage, decodeStunMessage, verifyIntegrity } = await import('../../src/stun/message.js');
    const { shortTermKey } = await import('../../src/stun/integrity.js');
    const a = new AgentCore({ random: seededRandom(5), role: 'controlled' });
    a.addStream(1);
    a.addLocalCandidate(0, host('10.0.0.2', 6000));
    const lp = a.getLocalParameters();
    const id = new Uint8Array(12).fill(9);
    const data = encodeStunMessage(
      {
        method: 0x001,
        cls: 'request',
        transactionId: id,
        attributes: [attr(Attr.USERNAME, `${lp.ufrag}:peer`, id), attr(Attr.PRIORITY, 5, id), attr(Attr.ICE_CONTROLLING, 1n, id), { type: 0x0030, value: new Uint8Array(4) }],
      },
      { integrityKey: shortTermKey(lp.pwd), fingerprint: true },
    );
    expect(a.handleReceive(0, { local: { address: '10.0.0.2', port: 6000 }, remote: { address: '10.0.0.9', port: 1 }, data })).toBe(true);
    const out = decodeStunMessage(a.pollTransmit()!.data);
    expect(getAttribute(out, Attr.ERROR_CODE)?.code).toBe(420);
    expect(getAttribute(out, Attr.UNKNOWN_ATTRIBUTES)).toEqual([0x0030]);
    expect(verifyIntegrity(out, shortTermKey(lp.pwd))).toBe('ok');
  });
});

describe('receiving data (RFC 8445 §12.2)', () => {
  it('takes data from any signalled candidate on a local base, refuses unknown sources', () => {
    const d = new Driver();
    const { l, r } = connectPair(d, { endOfCandidates: false });
    d.run(5000, done(l, r));
    // A second, never-paired remote candidate of L (component 1) is signalled to R.
    r.addRemoteCandidate(0, signalled(host('10.0.0.77', 5000)));
    while (r.pollEvent());
    const base = { address: '10.0.0.2', port: 6000 };
    expect(r.handleReceive(d.now, { local: base, remote: { address: '10.0.0.77', port: 5000 }, data: Uint8Array.of(0x80, 1, 2) })).toBe(true);
    expect(r.pollEvent()).toMatchObject({ type: 'data', stream: 0, component: 1 });
    expect(r.handleReceive(d.now, { local: base, remote: { address: '10.66.6.6', port: 1 }, data: Uint8Array.of(0x80, 1, 2) })).toBe(false);
    expect(r.getStats().dropped['data-unknown-path']).toBe(1);
  });
});

describe('junk remote candidates at the limit (issue 16: a hostile signalling channel)', () => {
  it('a peer-reflexive candidate from an authenticated check replaces an idle one: the real peer still connects', () => {
    const d = new Driver();
    const { l, r } = twoHostAgents(d);
    l.setRemoteParameters(0, r.getLocalParameters());
    r.setRemoteParameters(0, l.getLocalParameters());
    // L's remote list is filled with 100 candidates nobody answers, of higher priority than anything real.
    for (let i = 0; i < 100; i++) {
      l.addRemoteCandidate(0, { foundation: `j${i}`, component: 1, transport: 'udp', priority: 2 ** 31 - 1 - i, address: `10.66.${i >> 8}.${i & 255}`, port: 9, type: 'host' });
    }
    expect(l.getStats().dropped['remote-limit'] ?? 0).toBe(0);
    // R knows L; L learns R only from R's checks (as a peer-reflexive candidate).
    r.addRemoteCandidate(0, signalled(host('10.0.0.1', 5000)));
    d.run(10_000, () => l.state === 'completed' && r.state === 'completed');
    expect([l.state, r.state]).toEqual(['completed', 'completed']);
    expect(l.getSelectedPair(0, 1)!.remote.address).toBe('10.0.0.2');
    expect(l.getStats().dropped['remote-evicted']).toBe(1);
    expect(l.getStats().dropped['prflx-remote-limit'] ?? 0).toBe(0);
    // The evicted junk candidate is reported, not only counted (IceAgent turns this into a `warning`).
    const dropped = d.eventsOf('L', 'remote-candidate-dropped');
    expect(dropped).toHaveLength(1);
    expect(dropped[0]).toMatchObject({ stream: 0, reason: 'evicted-for-peer-reflexive' });
    expect(dropped[0]!.candidate.address).toMatch(/^10\.66\./);
  });
});

describe('oversized Binding messages (issue 16, item 3)', () => {
  it('are dropped and counted before decoding, whatever they carry', async () => {
    const { MAX_CHECK_MESSAGE_BYTES } = await import('../../src/checklist/agent-core.js');
    const { encodeCheckRequest } = await import('../../src/checklist/checks.js');
    const { attr, Attr, encodeStunMessage, StunMethod } = await import('../../src/stun/index.js');
    const a = new AgentCore({ random: seededRandom(5) });
    a.addStream(1);
    a.addLocalCandidate(0, host('10.0.0.1', 5000));
    const lp = a.getLocalParameters();
    const id = new Uint8Array(12).fill(4);
    // A genuine check padded with a 2 KB SOFTWARE-like attribute: authenticated, but too big to be worth a decode.
    const pad = encodeStunMessage({ method: StunMethod.Binding, cls: 'request', transactionId: id, attributes: [attr(Attr.USERNAME, `${lp.ufrag}:x`, id), { type: 0x8022, value: new Uint8Array(MAX_CHECK_MESSAGE_BYTES) }] });
    expect(a.handleReceive(0, { local: { address: '10.0.0.1', port: 5000 }, remote: { address: '10.0.0.9', port: 9 }, data: pad })).toBe(false);
    expect(a.getStats().dropped['stun-oversized']).toBe(1);
    expect(a.pollTransmit()).toBeUndefined(); // no answer, not even a 401
    // A normal check still gets its answer.
    const ok = encodeCheckRequest({ transactionId: id, username: `${lp.ufrag}:x`, priority: 1, role: 'controlled', tieBreaker: 1n, useCandidate: false, key: new Uint8Array(16) });
    a.handleReceive(1, { local: { address: '10.0.0.1', port: 5000 }, remote: { address: '10.0.0.9', port: 9 }, data: ok });
    expect(a.pollTransmit()).toBeDefined();
  });
});

describe('the direct data path (takeSend, takeData)', () => {
  it('hands back what send and handleReceive would queue, with the same accounting', () => {
    const d = new Driver();
    const { l, r } = connectPair(d);
    d.run(5_000, () => l.state === 'completed' && r.state === 'completed');
    const out = l.takeSend(d.now, 0, 1, new Uint8Array([0x80, 1, 2]))!;
    const sel = l.getSelectedPair(0, 1)!;
    expect(out).toEqual({ local: sel.local.base, remote: { address: sel.remote.address, port: sel.remote.port }, data: new Uint8Array([0x80, 1, 2]) });
    expect(l.pollTransmit()).toBeUndefined(); // not queued
    const e = r.takeData(d.now, { local: out.remote, remote: out.local, data: out.data })!;
    expect(e).toMatchObject({ type: 'data', stream: 0, component: 1, from: out.local });
    expect(r.pollEvent()).toBeUndefined(); // not queued either
    expect(r.getStats().pairs.find((p) => p.nominated)!.bytesReceived).toBe(3);
    // Off any known path: nothing, and counted like a dropped datagram.
    expect(r.takeData(d.now, { local: out.remote, remote: { address: '10.9.9.9', port: 1 }, data: out.data })).toBeUndefined();
    expect(r.getStats().dropped['data-unknown-path']).toBe(1);
    // No pair for the component: undefined, as send() returns false.
    expect(l.takeSend(d.now, 0, 2, new Uint8Array([0x80]))).toBeUndefined();
  });
});

describe('the pair limit holds for the checklist set (RFC 8445 §6.1.2.5)', () => {
  it('is split evenly over the streams, and re-split when a stream is added later', () => {
    const a = new AgentCore({ random: seededRandom(8), checklistLimit: 12 });
    const fill = (stream: number, n: number) => {
      for (let i = 0; i < n; i++) a.addLocalCandidate(stream, host(`10.0.${stream}.${i + 1}`, 5000, 1, 65535 - i, `L${stream}_${i}`));
      a.setRemoteParameters(stream, { ufrag: 'peer', pwd: 'p'.repeat(22) });
      for (let i = 0; i < n; i++) a.addRemoteCandidate(stream, signalled(host(`10.9.${stream}.${i + 1}`, 6000, 1, 65535 - i, `R${stream}_${i}`)));
    };
    a.addStream(1);
    a.addStream(1);
    fill(0, 4);
    fill(1, 4);
    const sizes = () => [0, 1, 2].slice(0, a.streamCount).map((s) => a.getChecklist(s).pairs.length);
    expect(sizes()).toEqual([6, 6]); // 16 pairs offered per stream, 12 for the set
    a.addStream(1);
    expect(sizes()).toEqual([4, 4, 0]); // a third stream: every checklist down to its share
    fill(2, 4);
    expect(sizes()).toEqual([4, 4, 4]);
    expect(sizes().reduce((x, y) => x + y)).toBeLessThanOrEqual(12);
    expect(a.getStats().pairs.length).toBeLessThanOrEqual(12); // the discarded pairs are forgotten, not just unlisted
  });
});
