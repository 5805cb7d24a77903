import { describe, expect, it } from 'vitest';
import { AgentCore } from '../../src/checklist/agent-core.js';
import { Attr, attr } from '../../src/stun/attributes.js';
import { StunMethod } from '../../src/stun/constants.js';
import { shortTermKey } from '../../src/stun/integrity.js';
import { decodeStunMessage, encodeStunMessage } from '../../src/stun/message.js';
import { Driver, connectPair, seededRandom, type SentRecord } from './harness.js';

const txid = (s: SentRecord): string => Buffer.from(s.datagram.data.subarray(8, 20)).toString('hex');
/** First transmissions of requests only (retransmissions share the transaction ID). */
function firstRequests(d: Driver, agent?: string): SentRecord[] {
  const seen = new Set<string>();
  return d.sent.filter((s) => s.kind === 'request' && (agent === undefined || s.agent === agent) && !seen.has(txid(s)) && (seen.add(txid(s)), true));
}
const done = (...a: AgentCore[]) => () => a.every((x) => x.state === 'completed');

describe('AgentCore: core path', () => {
  it('connects with host candidates, both select the same pair, data flows both ways', () => {
    const d = new Driver({ delayMs: 10 });
    const { l, r } = connectPair(d);
    d.run(5000, done(l, r));
    expect([l.state, r.state]).toEqual(['completed', 'completed']);
    const ls = l.getSelectedPair(0, 1)!;
    const rs = r.getSelectedPair(0, 1)!;
    expect([ls.local.address, ls.remote.address]).toEqual([rs.remote.address, rs.local.address]);
    expect(ls.nominated && rs.nominated).toBe(true);
    // One RTT for the first check, then the nomination check on the next Ta tick.
    expect(d.now).toBeLessThanOrEqual(50 + 2 * 10);
    expect(d.eventsOf('L', 'state').map((e) => e.state)).toEqual(['checking', 'connected', 'completed']);
    expect(l.send(d.now, 0, 1, Buffer.from('hello'))).toBe(true);
    expect(r.send(d.now, 0, 1, Buffer.from('world'))).toBe(true);
    d.run(d.now + 100);
    expect(d.eventsOf('R', 'data').map((e) => Buffer.from(e.data).toString())).toEqual(['hello']);
    expect(d.eventsOf('L', 'data').map((e) => Buffer.from(e.data).toString())).toEqual(['world']);
    expect(d.eventsOf('R', 'data')[0]!.from).toEqual({ address: '10.0.0.1', port: 5000 });
  });

  it('checks carry the RFC 8445 §7.1 attributes with integrity and fingerprint', () => {
    const d = new Driver();
    const { l, r } = connectPair(d);
    d.run(5000, done(l, r));
    const req = decodeStunMessage(firstRequests(d, 'L')[0]!.datagram.data);
    expect(req.hasFingerprint).toBe(true);
    const lp = l.getLocalParameters();
    const rp = r.getLocalParameters();
    const { getAttribute, hasAttribute } = awaitAttrs();
    expect(getAttribute(req, Attr.USERNAME)).toBe(`${rp.ufrag}:${lp.ufrag}`);
    expect(getAttribute(req, Attr.PRIORITY)! >>> 24).toBe(110);
    expect(getAttribute(req, Attr.ICE_CONTROLLING)).toBe(l.tieBreaker);
    expect(hasAttribute(req, Attr.ICE_CONTROLLED)).toBe(false);
    const { verifyIntegrity } = awaitMsg();
    expect(verifyIntegrity(req, shortTermKey(rp.pwd))).toBe('ok');
    const nom = d.sent.filter((s) => s.agent === 'L' && s.useCandidate);
    expect(nom.length).toBeGreaterThan(0);
    expect(d.sent.filter((s) => s.agent === 'R' && s.useCandidate)).toHaveLength(0);
  });

  it('skips unreachable higher-priority candidates; connected within round trips, not timeouts', () => {
    const d = new Driver({ delayMs: 10 });
    const { l, r } = connectPair(d, {
      rBases: [
        { address: '10.0.9.1', port: 6000 },
        { address: '10.0.9.2', port: 6000 },
        { address: '10.0.0.2', port: 6000 },
      ],
      unreachable: [
        { address: '10.0.9.1', port: 6000 },
        { address: '10.0.9.2', port: 6000 },
      ],
    });
    // R's first two addresses are owned by nobody: unreachable. R still owns them for its own sends.
    d.run(60_000, () => l.state === 'connected');
    expect(d.now).toBeLessThan(300);
    d.run(60_000, done(l, r));
    expect(l.getSelectedPair(0, 1)!.remote.address).toBe('10.0.0.2');
    expect(r.getSelectedPair(0, 1)!.local.address).toBe('10.0.0.2');
    expect(l.getSelectedPair(0, 1)!.local.address).toBe(r.getSelectedPair(0, 1)!.remote.address);
  });

  it('repairs a role conflict when both start controlling', () => {
    const d = new Driver();
    const { l, r } = connectPair(d, { r: { role: 'controlling' } });
    d.run(10_000, done(l, r));
    expect([l.state, r.state]).toEqual(['completed', 'completed']);
    expect(new Set([l.role, r.role])).toEqual(new Set(['controlling', 'controlled']));
    expect(d.sent.some((s) => s.kind === 'error')).toBe(true);
    expect(l.getSelectedPair(0, 1)!.local.address).toBe(r.getSelectedPair(0, 1)!.remote.address);
  });

  it('repairs a role conflict when both start controlled', () => {
    const d = new Driver();
    const { l, r } = connectPair(d, { l: { role: 'controlled' } });
    d.run(10_000, done(l, r));
    expect(new Set([l.role, r.role])).toEqual(new Set(['controlling', 'controlled']));
    const switched = [...d.eventsOf('L', 'role-change'), ...d.eventsOf('R', 'role-change')];
    expect(switched.length).toBeGreaterThan(0);
  });

  it('completes under 30% loss and both agree', () => {
    const rnd = seededRandom(12345);
    const d = new Driver({ delayMs: 15, drop: () => rnd.bytes(1)[0]! < 0.3 * 256 });
    const { l, r } = connectPair(d, { lBases: [{ address: '10.0.0.1', port: 5000 }, { address: '10.0.0.3', port: 5000 }] });
    d.run(120_000, done(l, r));
    expect([l.state, r.state]).toEqual(['completed', 'completed']);
    expect(l.getSelectedPair(0, 1)!.local.address).toBe(r.getSelectedPair(0, 1)!.remote.address);
    expect(l.getSelectedPair(0, 1)!.remote.address).toBe(r.getSelectedPair(0, 1)!.local.address);
  });

  it('answers a bad USERNAME or integrity with 401 and a request without USERNAME with 400, changing nothing', () => {
    const d = new Driver();
    const { l, r } = connectPair(d);
    r.handleTimeout(0);
    while (r.pollTransmit());
    while (r.pollEvent());
    const before = r.getStats();
    const id = new Uint8Array(12).fill(3);
    const rp = r.getLocalParameters();
    const probe = (username: string | undefined, pwd: string) => {
      const attributes = [attr(Attr.PRIORITY, 1, id), attr(Attr.ICE_CONTROLLING, 1n, id)];
      if (username !== undefined) attributes.unshift(attr(Attr.USERNAME, username, id));
      const data = encodeStunMessage({ method: StunMethod.Binding, cls: 'request', transactionId: id, attributes }, { integrityKey: shortTermKey(pwd), fingerprint: true });
      expect(r.handleReceive(0, { local: { address: '10.0.0.2', port: 6000 }, remote: { address: '10.66.0.1', port: 1 }, data })).toBe(true);
      const out = r.pollTransmit()!;
      expect(r.pollTransmit()).toBeUndefined();
      const m = decodeStunMessage(out.data);
      return { cls: m.cls, code: awaitAttrs().getAttribute(m, Attr.ERROR_CODE)?.code, integrity: m.integrityOffset >= 0 };
    };
    expect(probe('nope:x', rp.pwd)).toEqual({ cls: 'error', code: 401, integrity: false });
    expect(probe(`${rp.ufrag}:x`, 'wrong-password-wrong-password')).toEqual({ cls: 'error', code: 401, integrity: false });
    expect(probe(undefined, rp.pwd)).toEqual({ cls: 'error', code: 400, integrity: false });
    expect(r.pollEvent()).toBeUndefined();
    const after = r.getStats();
    expect(after.pairs).toEqual(before.pairs);
    expect(after.dropped['request-username']).toBe(1);
    expect(after.dropped['request-integrity']).toBe(1);
    // A good one is answered with success and learns a peer-reflexive candidate.
    const ok = probe(`${rp.ufrag}:x`, rp.pwd);
    expect(ok.cls).toBe('success');
    void l;
  });
});

function awaitAttrs() {
  // Small indirection so the attribute helpers are imported once.
  return attrHelpers;
}
function awaitMsg() {
  return msgHelpers;
}
import * as attrHelpers from '../../src/stun/attributes.js';
import * as msgHelpers from '../../src/stun/message.js';

describe('AgentCore: pacing (RFC 8445 §14.2)', () => {
  function unreachable(n: number) {
    return Array.from({ length: n }, (_, i) => ({ address: `10.0.9.${i + 1}`, port: 6000 }));
  }
  it('spaces new checks exactly Ta = 50 ms by default', () => {
    const d = new Driver();
    const { l } = connectPair(d, { rBases: unreachable(8), unreachable: unreachable(8), endOfCandidates: false });
    d.muted.add('R');
    d.run(2000);
    const times = firstRequests(d, 'L').map((s) => s.t);
    expect(times.length).toBe(8);
    expect(times[0]).toBe(0);
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBe(50);
    expect(l.taMs).toBe(50);
  });

  it('uses the higher negotiated Ta (remote proposes 120 ms)', () => {
    const d = new Driver();
    const { l, r } = connectPair(d, { rBases: unreachable(5), unreachable: unreachable(5), r: { pacingMs: 120 }, endOfCandidates: false });
    d.muted.add('R');
    expect(r.getLocalParameters().pacingMs).toBe(120);
    d.run(2000);
    const times = firstRequests(d, 'L').map((s) => s.t);
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBe(120);
    expect(l.taMs).toBe(120);
  });
});
