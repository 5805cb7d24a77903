/**
 * ICE-TCP in the sans-IO core (RFC 6544): pairing by tcptype, checks over connections opened on `tcp-connect` and
 * accepted ones, RFC 4571 framing, failures of connections, and the bounds on inbound connections. Virtual time.
 */
import { describe, expect, it } from 'vitest';
import type { LocalCandidate } from '../../src/candidates/candidate.js';
import { canPair } from '../../src/checklist/checklist.js';
import type { DataEvent } from '../../src/checklist/data-path.js';
import type { AgentCoreOptions } from '../../src/checklist/types.js';
import { encodeCheckRequest } from '../../src/checklist/checks.js';
import { shortTermKey } from '../../src/stun/integrity.js';
import { frameRfc4571 } from '../../src/stun/rfc4571.js';
import { host, signalled } from './harness.js';
import { tcpHost, TcpWorld } from './tcp-harness.js';

/** L (controlling) and R (controlled), TCP candidates of the given types, signalled both ways. */
function tcpPair(world: TcpWorld, lTypes: ('active' | 'passive')[], rTypes: ('active' | 'passive')[], lOpts: Partial<AgentCoreOptions> = {}, rOpts: Partial<AgentCoreOptions> = {}) {
  const lc = lTypes.map((t, i) => tcpHost('10.0.0.1', 7000 + i, t));
  const rc = rTypes.map((t, i) => tcpHost('10.0.0.2', 8000 + i, t));
  const l = world.add('L', { role: 'controlling', ...lOpts }, lc.filter((c) => c.tcpType !== 'active').map((c) => c.base));
  const r = world.add('R', { role: 'controlled', ...rOpts }, rc.filter((c) => c.tcpType !== 'active').map((c) => c.base));
  l.addStream(1);
  r.addStream(1);
  for (const c of lc) l.addLocalCandidate(0, c);
  for (const c of rc) r.addLocalCandidate(0, c);
  l.setRemoteParameters(0, r.getLocalParameters());
  r.setRemoteParameters(0, l.getLocalParameters());
  for (const c of rc) l.addRemoteCandidate(0, signalled(c));
  for (const c of lc) r.addRemoteCandidate(0, signalled(c));
  l.endOfRemoteCandidates(0);
  r.endOfRemoteCandidates(0);
  return { l, r, lc, rc };
}

const both = (w: TcpWorld) => () => w.agents.get('L')!.state === 'completed' && w.agents.get('R')!.state === 'completed';

describe('RFC 6544 §6.2 pairing', () => {
  const a = tcpHost('10.0.0.1', 9, 'active');
  const p = tcpHost('10.0.0.1', 7000, 'passive');
  const so = tcpHost('10.0.0.1', 7001, 'so');
  const rem = (c: LocalCandidate) => signalled({ ...c, address: '10.0.0.2' });

  it('pairs active with passive, passive with active, so with so, and nothing else', () => {
    expect(canPair(a, rem(p))).toBe(true);
    expect(canPair(p, rem(a))).toBe(true);
    expect(canPair(so, rem(so))).toBe(true);
    for (const [l, r] of [[a, a], [p, p], [a, so], [so, a], [p, so], [so, p]] as const) expect(canPair(l, rem(r))).toBe(false);
  });

  it('never pairs TCP with UDP, nor a TCP candidate without tcptype', () => {
    expect(canPair(a, signalled(host('10.0.0.2', 7000)))).toBe(false);
    const { tcpType: _t, ...untyped } = rem(p);
    expect(canPair(a, untyped)).toBe(false);
  });

  it('keeps a UDP and a TCP candidate on the same address and port number: two transport addresses', () => {
    const w = new TcpWorld();
    const l = w.add('L', { role: 'controlling' }, []);
    l.addStream(1);
    l.addLocalCandidate(0, host('10.0.0.1', 7000));
    l.addLocalCandidate(0, tcpHost('10.0.0.1', 7000, 'passive'));
    l.addLocalCandidate(0, tcpHost('10.0.0.1', 7000, 'passive')); // a true duplicate is still dropped
    l.setRemoteParameters(0, { ufrag: 'rrrr', pwd: 'rrrrrrrrrrrrrrrrrrrrrr' });
    l.addRemoteCandidate(0, signalled(tcpHost('10.0.0.2', 9, 'active')));
    l.addRemoteCandidate(0, signalled(host('10.0.0.2', 8000)));
    // Only the UDP pair is checked by L; the passive TCP candidate waits for R's connection, but it exists: a check
    // arriving on it finds it (tcpAccepted takes connections only on a known passive base).
    expect(l.getChecklist(0).pairs.map((p) => p.local.transport)).toEqual(['udp']);
    expect(l.tcpAccepted(0, { address: '10.0.0.1', port: 7000 }, { address: '10.0.0.2', port: 40000 })).toBeDefined();
  });

  it('prunes pairs whose local candidate is passive: only the active side checks', () => {
    const w = new TcpWorld();
    const { l, r } = tcpPair(w, ['passive'], ['active']);
    expect(l.getChecklist(0).pairs).toHaveLength(0);
    expect(r.getChecklist(0).pairs).toHaveLength(1);
    expect(r.getChecklist(0).pairs[0]!.local.tcpType).toBe('active');
  });
});

describe('checks over TCP connections', () => {
  for (const [name, lt, rt] of [
    ['controlling active, controlled passive', ['active'], ['passive']],
    ['controlling passive, controlled active', ['passive'], ['active']],
    ['both active and passive', ['active', 'passive'], ['active', 'passive']],
  ] as const) {
    it(`connects: ${name}`, () => {
      const w = new TcpWorld();
      const { l, r } = tcpPair(w, [...lt], [...rt]);
      w.run(5000, both(w));
      expect(l.state).toBe('completed');
      expect(r.state).toBe('completed');
      const ls = l.getSelectedPair(0, 1)!;
      const rs = r.getSelectedPair(0, 1)!;
      expect(ls.local.transport).toBe('tcp');
      expect(rs.local.transport).toBe('tcp');
      expect(ls.nominated && rs.nominated).toBe(true);
      // Every message on a connection carries its RFC 4571 length.
      for (const f of w.wire) expect((f.data[0]! << 8) | f.data[1]!).toBe(f.data.length - 2);
      // Data both ways on the selected pair.
      expect(l.send(w.now, 0, 1, new Uint8Array([0x80, 1, 2, 3]))).toBe(true);
      expect(r.send(w.now, 0, 1, new Uint8Array([0x80, 9]))).toBe(true);
      w.run(w.now + 100);
      const rData = w.events.get('R')!.filter((e) => e.type === 'data');
      const lData = w.events.get('L')!.filter((e) => e.type === 'data');
      expect(rData.map((e) => [...(e as { data: Uint8Array }).data])).toEqual([[0x80, 1, 2, 3]]);
      expect(lData.map((e) => [...(e as { data: Uint8Array }).data])).toEqual([[0x80, 9]]);
    });
  }

  it('sends one check per connection, never a retransmission (RFC 6544 §7.1)', () => {
    const w = new TcpWorld();
    tcpPair(w, ['active'], ['passive']);
    w.run(5000, both(w));
    w.run(w.now + 3000);
    const requestsL = w.wire.filter((f) => f.from === 'L' && f.data[2] === 0x00 && f.data[3] === 0x01);
    // The controlling side's check, its nominating check, consent after 5 s at the earliest: no duplicates.
    const ids = requestsL.map((f) => Buffer.from(f.data.subarray(10, 22)).toString('hex'));
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('frames survive any cut of the byte stream', () => {
    const w = new TcpWorld(10, 3);
    const { l, r } = tcpPair(w, ['active'], ['passive']);
    w.run(5000, both(w));
    expect(l.state).toBe('completed');
    expect(r.state).toBe('completed');
  });

  it('the passive side answers on the accepted connection and checks back on it (triggered check)', () => {
    const w = new TcpWorld();
    const { r } = tcpPair(w, ['active'], ['passive']);
    w.run(5000, both(w));
    const rReq = w.wire.filter((f) => f.from === 'R' && f.data[2] === 0x00 && f.data[3] === 0x01);
    expect(rReq.length).toBeGreaterThan(0);
    expect(rReq.every((f) => f.local.port === 8000)).toBe(true);
    // The peer's ephemeral port is a peer-reflexive remote candidate of type active.
    const prflx = w.events.get('R')!.find((e) => e.type === 'prflx-remote') as { candidate: { tcpType?: string; transport: string } } | undefined;
    expect(prflx?.candidate.transport).toBe('tcp');
    expect(prflx?.candidate.tcpType).toBe('active');
    expect(r.getSelectedPair(0, 1)!.remote.type).toBe('prflx');
  });

  it('uses regular nomination with TCP candidates even when aggressive is asked for (RFC 6544 §8)', () => {
    const w = new TcpWorld();
    tcpPair(w, ['active'], ['passive'], { nomination: 'aggressive' });
    w.run(5000, both(w));
    const firstCheck = w.wire.find((f) => f.from === 'L' && f.data[2] === 0x00 && f.data[3] === 0x01)!;
    // USE-CANDIDATE (0x0025) absent from the first check.
    const hex = Buffer.from(firstCheck.data).toString('hex');
    expect(hex.includes('00250000')).toBe(false);
  });

  it('a refused connection fails its pair (RFC 6544 §7.1) and the agent fails once the PAC timer ran out', () => {
    const w = new TcpWorld();
    const { l } = tcpPair(w, ['active'], ['passive'], { failureGraceMs: 2000 });
    w.listeners.clear();
    w.run(5000, () => l.state === 'failed');
    expect(l.getChecklist(0).pairs[0]!.state).toBe('failed');
    expect(l.state).toBe('failed');
  });

  it('an attempt that never completes is given up after tcpConnectTimeoutMs', () => {
    const w = new TcpWorld();
    const { l } = tcpPair(w, ['active'], ['passive'], { tcpConnectTimeoutMs: 1500 });
    w.blackholes.add('10.0.0.2:8000');
    w.run(1400);
    expect(l.getChecklist(0).pairs[0]!.state).toBe('in-progress');
    w.run(1600);
    expect(l.getChecklist(0).pairs[0]!.state).toBe('failed');
    const close = w.events.get('L')!.find((e) => e.type === 'tcp-close');
    expect(close).toMatchObject({ reason: 'connect timeout' });
  });

  it('a reset of the selected connection that cannot be reopened (RFC 6544 §11.1) loses consent and fails the agent', () => {
    const w = new TcpWorld();
    const { l, r } = tcpPair(w, ['active'], ['passive']);
    w.run(5000, both(w));
    const id = [...w.ends.values()].find((e) => e.agent === 'L' && e.open)!.id;
    w.listeners.clear(); // the reopening attempts are refused
    w.reset('L', id);
    w.run(w.now + 5000, () => l.state === 'failed');
    w.run(w.now + 40_000, () => r.state === 'failed'); // the passive side waits for a new connection, consent ends it
    expect(w.events.get('L')!.some((e) => e.type === 'consent-lost')).toBe(true);
    expect(w.events.get('R')!.some((e) => e.type === 'consent-lost')).toBe(true);
    expect(l.send(w.now, 0, 1, new Uint8Array([0x80]))).toBe(false);
    expect(l.state).toBe('failed');
    expect(r.state).toBe('failed');
  });

  it('closes connections of pairs that were not selected once completed (RFC 6544 §8)', () => {
    const w = new TcpWorld();
    const { l, r } = tcpPair(w, ['active', 'passive'], ['active', 'passive']);
    w.run(5000, both(w));
    w.run(w.now + 200);
    expect(l.tcpConnections).toBe(1);
    expect(r.tcpConnections).toBe(1);
    expect([...w.ends.values()].filter((e) => e.open)).toHaveLength(2);
  });
});

describe("the edge's direct route for data frames (takeTcp)", () => {
  /** A Binding indication (a keepalive, RFC 8445 §11): STUN, handled in full, changing nothing. */
  const indication = new Uint8Array([0x00, 0x11, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42, ...Array.from({ length: 12 }, (_v, i) => i + 1)]);
  const concat = (...parts: Uint8Array[]) => {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let o = 0;
    for (const p of parts) (out.set(p, o), (o += p.length));
    return out;
  };

  function connected() {
    const w = new TcpWorld();
    const { l, r } = tcpPair(w, ['active'], ['passive']);
    w.run(5000, both(w));
    const end = [...w.ends.values()].find((e) => e.agent === 'R' && e.open)!;
    w.drain();
    return { w, l, r, at: { local: end.local, remote: end.remote, transport: 'tcp' as const } };
  }

  it('hands back the data frames of a chunk as events, views of the chunk, with nothing queued', () => {
    const { w, r, at } = connected();
    const chunk = concat(frameRfc4571(new Uint8Array([0x80, 1])), frameRfc4571(new Uint8Array([0x80, 2, 3])));
    const before = r.getStats().pairs.find((p) => p.nominated)!.bytesReceived;
    const out: DataEvent[] = [];
    expect(r.takeTcp(w.now, { ...at, data: chunk }, out)).toBe('data');
    expect(out.map((e) => [...e.data])).toEqual([[0x80, 1], [0x80, 2, 3]]);
    expect(out.every((e) => e.data.buffer === chunk.buffer && e.component === 1)).toBe(true);
    expect(out[0]!.from).toEqual(at.remote);
    expect(r.pollEvent()).toBeUndefined();
    expect(r.pollTransmit()).toBeUndefined();
    expect(r.getStats().pairs.find((p) => p.nominated)!.bytesReceived - before).toBe(5);
  });

  it('handles a STUN frame among them in full and says so; a frame split across chunks still arrives', () => {
    const { w, r, at } = connected();
    const stream = concat(frameRfc4571(new Uint8Array([0x80, 1])), frameRfc4571(indication), frameRfc4571(new Uint8Array([0x80, 2, 3])));
    const out: DataEvent[] = [];
    expect(r.takeTcp(w.now, { ...at, data: stream.subarray(0, 30) }, out)).toBe('control');
    expect(r.takeTcp(w.now, { ...at, data: stream.subarray(30) }, out)).toBe('data');
    expect(out.map((e) => [...e.data])).toEqual([[0x80, 1], [0x80, 2, 3]]);
    expect(r.getStats().dropped).toEqual({});
  });

  it('drops data of an unknown connection as handleReceive does', () => {
    const { w, r, at } = connected();
    const out: DataEvent[] = [];
    expect(r.takeTcp(w.now, { ...at, remote: { address: '10.0.0.9', port: 1 }, data: frameRfc4571(new Uint8Array([0x80])) }, out)).toBe('unknown');
    expect(out).toEqual([]);
    expect(r.getStats().dropped['tcp-unknown-connection']).toBe(1);
  });
});

describe('dropping a component (rtcp-mux accepted, RFC 5761 §5.1.3)', () => {
  it("closes the component's connections at once, even while the checks still run", () => {
    const w = new TcpWorld();
    const lc = [tcpHost('10.0.0.1', 9, 'active', 1), tcpHost('10.0.0.1', 9, 'active', 2)];
    const rc = [tcpHost('10.0.0.2', 8000, 'passive', 1), tcpHost('10.0.0.2', 8001, 'passive', 2)];
    const l = w.add('L', { role: 'controlling' });
    const r = w.add('R', { role: 'controlled' }, rc.map((c) => c.base));
    l.addStream(2);
    r.addStream(2);
    for (const c of lc) l.addLocalCandidate(0, c);
    for (const c of rc) r.addLocalCandidate(0, c);
    l.setRemoteParameters(0, r.getLocalParameters());
    r.setRemoteParameters(0, l.getLocalParameters());
    for (const c of rc) l.addRemoteCandidate(0, signalled(c));
    for (const c of lc) r.addRemoteCandidate(0, signalled(c));
    const open = (agent: string) => [...w.ends.values()].filter((e) => e.agent === agent && e.open).length;
    w.run(5000, () => open('L') === 2);
    expect(l.state).not.toBe('completed');
    l.dropComponent(0, 2);
    r.dropComponent(0, 2);
    w.drain();
    for (const name of ['L', 'R']) {
      expect(w.events.get(name)!.filter((e) => e.type === 'tcp-close').map((e) => (e as { reason: string }).reason)).toEqual(['component dropped']);
    }
    expect(l.tcpConnections).toBe(1);
    expect(r.tcpConnections).toBe(1);
    w.run(w.now + 5000, both(w));
    expect(l.state).toBe('completed');
    expect(open('L') + open('R')).toBe(2);
  });
});

describe('simultaneous-open candidates', () => {
  it("an attempt still connecting gives way to the peer's connection on the same route, which carries its check", () => {
    const w = new TcpWorld();
    const lc = tcpHost('10.0.0.1', 7002, 'so');
    const rc = tcpHost('10.0.0.2', 8002, 'so');
    const l = w.add('L', { role: 'controlling' }, [lc.base]);
    const r = w.add('R', { role: 'controlled' }, [rc.base]);
    for (const [x, mine] of [[l, lc], [r, rc]] as const) {
      x.addStream(1);
      x.addLocalCandidate(0, mine);
    }
    l.setRemoteParameters(0, r.getLocalParameters());
    r.setRemoteParameters(0, l.getLocalParameters());
    w.blackholes.add('10.0.0.2:8002'); // L's SYNs are lost: only R's connection will come through
    l.addRemoteCandidate(0, signalled(rc));
    w.run(100);
    const attempt = w.events.get('L')!.find((e) => e.type === 'tcp-connect') as { id: string; local: { port: number } };
    expect(attempt.local.port).toBe(7002); // from the so candidate's own port
    r.addRemoteCandidate(0, signalled(lc));
    w.run(5000, both(w));
    expect(w.events.get('L')!).toContainEqual(expect.objectContaining({ type: 'tcp-close', id: attempt.id, reason: 'superseded by the peer connection' }));
    expect(l.state).toBe('completed');
    expect(r.state).toBe('completed');
    expect(l.tcpConnections).toBe(1);
  });
});

describe('inbound connection bounds', () => {
  function passiveAgent(w: TcpWorld, opts: Partial<AgentCoreOptions> = {}) {
    const pc = tcpHost('10.0.0.2', 8000, 'passive');
    const r = w.add('R', { role: 'controlled', ufrag: 'rrrr', pwd: 'rrrrrrrrrrrrrrrrrrrrrr', ...opts }, [pc.base]);
    r.addStream(1);
    r.addLocalCandidate(0, pc);
    return { r, base: pc.base };
  }
  const from = (port: number) => ({ address: '10.0.0.9', port });

  it('refuses connections beyond tcpPendingInboundLimit until one proves itself', () => {
    const w = new TcpWorld();
    const { r, base } = passiveAgent(w, { tcpPendingInboundLimit: 2 });
    expect(r.tcpAccepted(0, base, from(1))).toBeDefined();
    expect(r.tcpAccepted(0, base, from(2))).toBeDefined();
    expect(r.tcpAccepted(0, base, from(3))).toBeUndefined();
    expect(r.getStats().dropped['tcp-accept-limit']).toBe(1);
  });

  it('refuses a connection on an address that is no passive base', () => {
    const w = new TcpWorld();
    const { r } = passiveAgent(w);
    expect(r.tcpAccepted(0, { address: '10.0.0.2', port: 8001 }, from(1))).toBeUndefined();
  });

  it('closes a connection that sends no check within tcpFirstCheckTimeoutMs', () => {
    const w = new TcpWorld();
    const { r, base } = passiveAgent(w, { tcpFirstCheckTimeoutMs: 3000 });
    r.handleTimeout(0); // the command deadline of adding the candidate
    const id = r.tcpAccepted(0, base, from(1))!;
    expect(r.pollTimeout()).toBe(3000);
    r.handleTimeout(3000);
    const events = [];
    for (let e = r.pollEvent(); e; e = r.pollEvent()) events.push(e);
    expect(events).toContainEqual(expect.objectContaining({ type: 'tcp-close', id, reason: 'no check' }));
    expect(r.tcpConnections).toBe(0);
  });

  it('closes a connection whose first frame is not an authenticated check for us', () => {
    const w = new TcpWorld();
    const { r, base } = passiveAgent(w);
    const id = r.tcpAccepted(0, base, from(1))!;
    const wrongKey = encodeCheckRequest({ transactionId: new Uint8Array(12), username: 'rrrr:xx', priority: 1, role: 'controlling', tieBreaker: 1n, useCandidate: false, key: shortTermKey('not-the-password-at-all') });
    expect(r.handleReceive(0, { local: base, remote: from(1), data: frameRfc4571(wrongKey), transport: 'tcp' })).toBe(true);
    const events = [];
    for (let e = r.pollEvent(); e; e = r.pollEvent()) events.push(e);
    expect(events).toContainEqual(expect.objectContaining({ type: 'tcp-close', id }));
    expect(r.pollTransmit()).toBeUndefined(); // no answer at all, not even a 401
    const id2 = r.tcpAccepted(0, base, from(2))!;
    r.handleReceive(0, { local: base, remote: from(2), data: frameRfc4571(new Uint8Array([0x80, 1, 2])), transport: 'tcp' });
    const ev2 = [];
    for (let e = r.pollEvent(); e; e = r.pollEvent()) ev2.push(e);
    expect(ev2).toContainEqual(expect.objectContaining({ type: 'tcp-close', id: id2 }));
  });

  it('accepts a real check on an accepted connection and answers it framed', () => {
    const w = new TcpWorld();
    const { r, base } = passiveAgent(w);
    r.setRemoteParameters(0, { ufrag: 'llll', pwd: 'llllllllllllllllllllll' });
    r.tcpAccepted(0, base, from(1));
    const check = encodeCheckRequest({ transactionId: new Uint8Array(12).fill(7), username: 'rrrr:llll', priority: 1, role: 'controlling', tieBreaker: 1n, useCandidate: false, key: shortTermKey('rrrrrrrrrrrrrrrrrrrrrr') });
    const framed = frameRfc4571(check);
    // Cut in two reads.
    r.handleReceive(0, { local: base, remote: from(1), data: framed.subarray(0, 5), transport: 'tcp' });
    expect(r.pollTransmit()).toBeUndefined();
    r.handleReceive(0, { local: base, remote: from(1), data: framed.subarray(5), transport: 'tcp' });
    const answer = r.pollTransmit()!;
    expect(answer.transport).toBe('tcp');
    expect((answer.data[0]! << 8) | answer.data[1]!).toBe(answer.data.length - 2);
    expect(answer.data[2]).toBe(0x01); // Binding success response
    expect(answer.data[3]).toBe(0x01);
  });

  it('closes an unproven connection that starts a frame longer than a check, holding no more than its prefix', () => {
    const w = new TcpWorld();
    const { r, base } = passiveAgent(w);
    const id = r.tcpAccepted(0, base, from(1))!;
    r.handleReceive(0, { local: base, remote: from(1), data: new Uint8Array([0xff, 0xff, 1, 2, 3]), transport: 'tcp' });
    const events = [];
    for (let e = r.pollEvent(); e; e = r.pollEvent()) events.push(e);
    expect(events).toContainEqual(expect.objectContaining({ type: 'tcp-close', id }));
    expect(r.getStats().dropped['tcp-oversized']).toBe(1);
  });

  it('drops bytes of an unknown connection', () => {
    const w = new TcpWorld();
    const { r, base } = passiveAgent(w);
    expect(r.handleReceive(0, { local: base, remote: from(1), data: new Uint8Array([0, 1, 0]), transport: 'tcp' })).toBe(false);
    expect(r.getStats().dropped['tcp-unknown-connection']).toBe(1);
  });
});
