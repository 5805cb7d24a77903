/**
 * IceTcpMux on real sockets, loopback only: many agents' passive ICE-TCP candidates on one listening port, lite and
 * full, beside a udpMux, restarts and closes, hostile connections, misuse, and IceSdpSession calls on one TCP port.
 */
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { IceArgumentError } from '../../src/errors.js';
import { IceAgent, type IceAgentOptions } from '../../src/node/ice-agent.js';
import { IceSdpSession } from '../../src/node/sdp-session.js';
import { IceTcpMux } from '../../src/node/tcp-mux.js';
import { IceUdpMux } from '../../src/node/udp-mux.js';
import { AttributeType, StunMethod } from '../../src/stun/constants.js';
import { encodeStunMessage } from '../../src/stun/message.js';
import { UdpMuxError } from '../../src/stun/mux-router.js';
import { frameRfc4571 } from '../../src/stun/rfc4571.js';
import { connectPair, loopback, nextData } from './agent-helpers.js';

const agents: IceAgent[] = [];
const sessions: IceSdpSession[] = [];
const muxes: { close(): Promise<void> }[] = [];
const sockets: Socket[] = [];
function make(o: IceAgentOptions = {}): IceAgent {
  const a = new IceAgent({ ...loopback, ...o });
  agents.push(a);
  return a;
}
async function tcpMux(o: Partial<Parameters<typeof IceTcpMux.listen>[0]> = {}): Promise<IceTcpMux> {
  const m = await IceTcpMux.listen({ addresses: ['127.0.0.1'], ...o });
  muxes.push(m);
  return m;
}
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(sessions.splice(0).map((s) => s.close()));
  await Promise.all(agents.splice(0).map((a) => a.close()));
  await Promise.all(muxes.splice(0).map((m) => m.close()));
});

function waitFor(p: () => boolean, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const start = Date.now();
    const t = setInterval(() => {
      if (p()) {
        clearInterval(t);
        resolve();
      } else if (Date.now() - start > ms) {
        clearInterval(t);
        reject(new Error('timed out'));
      }
    }, 5);
  });
}

/** A raw TCP connection to the mux; resolves once connected. `closed` resolves when the mux closes it. */
async function raw(m: IceTcpMux): Promise<{ socket: Socket; closed: Promise<void> }> {
  const to = m.addresses[0]!;
  const socket = connect({ host: to.address, port: to.port });
  sockets.push(socket);
  socket.on('error', () => undefined);
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  await new Promise<void>((r, j) => {
    socket.once('connect', () => r());
    socket.once('error', j);
  });
  return { socket, closed };
}
const check = (username: string): Uint8Array =>
  frameRfc4571(
    encodeStunMessage(
      { method: StunMethod.Binding, cls: 'request', transactionId: Uint8Array.from({ length: 12 }, (_, i) => i), attributes: [{ type: AttributeType.USERNAME, value: new TextEncoder().encode(username) }] },
      { integrityKey: new Uint8Array(16), fingerprint: true },
    ),
  );
const passivePort = (a: IceAgent) => a.getLocalCandidates().find((c) => c.transport === 'tcp' && c.tcpType === 'passive')?.port;

describe('IceTcpMux: many agents\' passive ICE-TCP candidates on one port (loopback)', () => {
  it('20 lite agents on one TCP port with 20 full active peers: each connection reaches its own agent, data both ways', async () => {
    const m = await tcpMux();
    const port = m.addresses[0]!.port;
    const servers = Array.from({ length: 20 }, () => make({ tcpMux: m, transports: ['tcp'], lite: true }));
    const peers = Array.from({ length: 20 }, () => make({ role: 'controlling', transports: ['tcp'], tcpTypes: ['active'] }));
    await Promise.all(servers.map((s, i) => connectPair(s, peers[i]!, 10_000)));
    expect(m.agentCount).toBe(20);
    for (const s of servers) expect(s.getLocalCandidates().map((c) => [c.transport, c.tcpType, c.port])).toEqual([['tcp', 'passive', port]]);
    for (const s of servers) expect(s.getSelectedCandidatePair()!.local.port).toBe(port);
    const got = servers.map(() => [] as string[]);
    servers.forEach((s, i) => s.on('data', (d) => got[i]!.push(d.toString())));
    peers.forEach((p, i) => {
      for (let k = 0; k < 3; k++) expect(p.send(Buffer.from(`peer${i}`))).toBe(true);
    });
    await waitFor(() => got.every((g) => g.length === 3), 3000);
    got.forEach((g, i) => expect(g).toEqual([`peer${i}`, `peer${i}`, `peer${i}`]));
    const back = peers.map(() => [] as string[]);
    peers.forEach((p, i) => p.on('data', (d) => back[i]!.push(d.toString())));
    servers.forEach((s, i) => s.send(Buffer.from(`srv${i}`)));
    await waitFor(() => back.every((b) => b.length === 1), 3000);
    back.forEach((b, i) => expect(b).toEqual([`srv${i}`]));
    const st = m.stats;
    expect(st.routed).toBeGreaterThanOrEqual(20);
    expect(st.pending).toBe(0);
    expect(Object.values(st.dropped).reduce((a, b) => a + b, 0)).toBe(0);
  }, 30_000);

  it('full agents on the mux (controlling and controlled) take the peers\' active connections on the mux port', async () => {
    const m = await tcpMux();
    const port = m.addresses[0]!.port;
    const on = [make({ tcpMux: m, transports: ['tcp'], role: 'controlling' }), make({ tcpMux: m, transports: ['tcp'], role: 'controlled' })];
    const peers = [make({ transports: ['tcp'], tcpTypes: ['active'], role: 'controlled' }), make({ transports: ['tcp'], tcpTypes: ['active'], role: 'controlling' })];
    await Promise.all(on.map((a, i) => connectPair(a, peers[i]!, 10_000)));
    for (const a of on) {
      expect(passivePort(a)).toBe(port);
      // Active candidates as without a mux (port 9).
      expect(a.getLocalCandidates().some((c) => c.tcpType === 'active' && c.port === 9)).toBe(true);
      expect(a.getSelectedCandidatePair()!.local).toMatchObject({ transport: 'tcp', port });
    }
    const got = nextData(on[0]!);
    peers[0]!.send(Buffer.from('to the controlling one'));
    expect(await got).toBe('to the controlling one');
  }, 20_000);

  it('beside a udpMux: UDP on the UDP mux port, passive TCP on the TCP mux port, a TCP-only peer connects', async () => {
    const u = await IceUdpMux.bind({ addresses: ['127.0.0.1'] });
    muxes.push(u);
    const t = await tcpMux();
    const s = make({ udpMux: u, tcpMux: t, lite: true });
    const p = make({ role: 'controlling', transports: ['tcp'], tcpTypes: ['active'] });
    await connectPair(s, p);
    expect(s.getLocalCandidates().map((c) => [c.transport, c.port])).toEqual([
      ['udp', u.addresses[0]!.port],
      ['tcp', t.addresses[0]!.port],
    ]);
    expect(s.getSelectedCandidatePair()!.local).toMatchObject({ transport: 'tcp', port: t.addresses[0]!.port });
    expect(u.agentCount).toBe(1);
    expect(t.agentCount).toBe(1);
    // And a full agent on both muxes, with a UDP peer: UDP is used, through the UDP mux.
    const f = make({ udpMux: u, tcpMux: t, role: 'controlled' });
    const q = make({ role: 'controlling' });
    await connectPair(f, q);
    expect(f.getSelectedCandidatePair()!.local).toMatchObject({ transport: 'udp', port: u.addresses[0]!.port });
  }, 20_000);

  it('a lite TCP-only agent on the mux needs no host address of its own (a namespace with only lo, filtered out)', async () => {
    const m = await tcpMux();
    const s = make({ tcpMux: m, transports: ['tcp'], lite: true, addressFilter: () => false });
    const p = make({ role: 'controlling', transports: ['tcp'], tcpTypes: ['active'] });
    await connectPair(s, p);
    expect(s.getLocalCandidates().map((c) => [c.transport, c.tcpType, c.port])).toEqual([['tcp', 'passive', m.addresses[0]!.port]]);
    // A full one still needs one, for its active candidates.
    await expect(make({ tcpMux: m, transports: ['tcp'], addressFilter: () => false }).gather()).rejects.toThrow(/no host address/);
  });

  it('restart: the new ufrag routes beside the old one, the old one goes once the new session selects', async () => {
    const m = await tcpMux();
    const s = make({ tcpMux: m, transports: ['tcp'], lite: true });
    const p = make({ role: 'controlling', transports: ['tcp'], tcpTypes: ['active'] });
    await connectPair(s, p);
    const oldUfrag = s.getLocalParameters().ufrag;
    p.restart();
    s.setRemoteParameters(p.getLocalParameters());
    await new Promise((r) => setTimeout(r, 0));
    const newUfrag = s.getLocalParameters().ufrag;
    expect(newUfrag).not.toBe(oldUfrag);
    expect(m.stats.ufrags).toBe(2);
    await p.gather();
    p.setRemoteParameters(s.getLocalParameters());
    for (const c of p.getLocalCandidates()) s.addRemoteCandidate(c);
    for (const c of s.getLocalCandidates()) p.addRemoteCandidate(c);
    expect(passivePort(s)).toBe(m.addresses[0]!.port);
    await waitFor(() => m.stats.ufrags === 1, 8000);
    const got = nextData(s);
    p.send(Buffer.from('after restart'));
    expect(await got).toBe('after restart');
    // A new connection naming the old ufrag is closed by the mux; one naming the new ufrag reaches the agent (which
    // then closes it: the check's integrity is wrong).
    const before = m.stats;
    const old = await raw(m);
    old.socket.write(check(`${oldUfrag}:x`));
    await old.closed;
    expect(m.stats.dropped['unknown-ufrag']).toBe(before.dropped['unknown-ufrag'] + 1);
    const cur = await raw(m);
    cur.socket.write(check(`${newUfrag}:x`));
    await cur.closed;
    expect(m.stats.routed).toBe(before.routed + 1);
    expect(s.getStats()!.dropped['tcp-first-frame']).toBe(1);
    expect(s.state === 'connected' || s.state === 'completed').toBe(true);
  }, 20_000);

  it('close() takes the agent off the mux at once; a connection naming its ufrag is then closed as unknown', async () => {
    const m = await tcpMux();
    const s = make({ tcpMux: m, transports: ['tcp'], lite: true });
    const p = make({ role: 'controlling', transports: ['tcp'], tcpTypes: ['active'] });
    await connectPair(s, p);
    const ufrag = s.getLocalParameters().ufrag;
    await p.close(); // else it reopens the selected connection (RFC 6544 §11.1), naming s's ufrag on the mux too
    const closing = s.close();
    expect(m.agentCount).toBe(0);
    expect(m.stats.ufrags).toBe(0);
    await closing;
    const c = await raw(m);
    c.socket.write(check(`${ufrag}:x`));
    await c.closed;
    expect(m.stats.dropped['unknown-ufrag']).toBe(1);
  });

  it('hostile connections are closed (at once, or after the first-frame time-out), counted, and never reach an agent', async () => {
    const m = await tcpMux({ maxPending: 4, firstFrameTimeoutMs: 300 });
    const s = make({ tcpMux: m, transports: ['tcp'], lite: true });
    await s.gather();
    let data = 0;
    s.on('data', () => data++);
    const unknown = await raw(m);
    unknown.socket.write(check('nobody:x'));
    const rtp = await raw(m);
    rtp.socket.write(frameRfc4571(Uint8Array.from([0x80, 0x60, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1])));
    const http = await raw(m);
    http.socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    const started = Date.now();
    await Promise.all([unknown.closed, rtp.closed, http.closed]);
    // Four silent ones (one sends half a length prefix) fill the pending cap; the fifth is refused at accept.
    const silent = await Promise.all([raw(m), raw(m), raw(m), raw(m)]);
    silent[0]!.socket.write(Buffer.from([0]));
    await waitFor(() => m.stats.pending === 4, 2000);
    const refused = await raw(m);
    await refused.closed;
    expect(m.stats.dropped['pending-limit']).toBe(1);
    await Promise.all(silent.map((x) => x.closed));
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    // A peer that gives up early.
    const early = await raw(m);
    await waitFor(() => m.stats.pending === 1, 2000);
    early.socket.destroy();
    await waitFor(() => m.stats.pending === 0, 2000);
    expect(m.stats.dropped).toEqual({ 'pending-limit': 1, 'oversized-frame': 1, 'not-a-check': 1, 'no-username': 0, 'unknown-ufrag': 1, timeout: 4, 'closed-early': 1 });
    expect(m.stats.routed).toBe(0);
    expect(data).toBe(0);
    expect(s.getStats()!.dropped['tcp-first-frame'] ?? 0).toBe(0);
  });

  it('limits and misuse: a ufrag taken, components > 1, transports without tcp, a closed mux, bad listen options', async () => {
    const m = await tcpMux({ maxAgents: 1 });
    await make({ tcpMux: m, transports: ['tcp'], ufrag: 'same', pwd: 'p'.repeat(22) }).gather();
    await expect(make({ tcpMux: m, transports: ['tcp'] }).gather()).rejects.toThrow(UdpMuxError);
    const m2 = await tcpMux();
    await make({ tcpMux: m2, transports: ['tcp'], ufrag: 'twin', pwd: 'p'.repeat(22) }).gather();
    await expect(make({ tcpMux: m2, transports: ['tcp'], ufrag: 'twin', pwd: 'q'.repeat(22) }).gather()).rejects.toMatchObject({ reason: 'ufrag-taken' });
    expect(() => new IceAgent({ tcpMux: m2, components: 2 })).toThrow(IceArgumentError);
    expect(() => new IceAgent({ tcpMux: m2, transports: ['udp'] })).toThrow(IceArgumentError);
    const m3 = await tcpMux();
    await m3.close();
    await expect(make({ tcpMux: m3 }).gather()).rejects.toThrow(/closed/);
    expect(() => m3.open('late', () => undefined)).toThrow(/closed/);
    await expect(IceTcpMux.listen({ addresses: [] })).rejects.toThrow(/addresses/);
    await expect(IceTcpMux.listen({ addresses: ['localhost'] })).rejects.toThrow(/addresses/);
    await expect(IceTcpMux.listen({ addresses: ['127.0.0.1'], port: m2.addresses[0]!.port })).rejects.toThrow(/EADDRINUSE/);
    await expect(IceTcpMux.listen({ addresses: ['127.0.0.1'], maxPending: 0 })).rejects.toThrow(UdpMuxError);
  });
});

describe('IceSdpSession with tcpMux', () => {
  const app = ['v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=-', 't=0 0', 'm=audio 9 TCP/RTP/AVP 0', 'c=IN IP4 0.0.0.0', 'a=rtcp-mux', 'a=sendrecv', ''].join('\r\n');
  const up = (x: IceAgent) => new Promise<void>((resolve) => (x.state === 'connected' || x.state === 'completed' ? resolve() : x.on('statechange', (s) => (s === 'connected' || s === 'completed') && resolve())));

  it('five calls answered on one TCP port (lite, TCP only), one component each, media to the right call', async () => {
    const m = await tcpMux();
    const port = m.addresses[0]!.port;
    const calls = await Promise.all(
      Array.from({ length: 5 }, async () => {
        const caller = new IceSdpSession({ ...loopback, transports: ['tcp'], tcpTypes: ['active'] });
        const gateway = new IceSdpSession({ tcpMux: m, transports: ['tcp'], lite: true });
        sessions.push(caller, gateway);
        await gateway.setRemoteDescription(await caller.createOffer(app), 'offer');
        const answer = await gateway.createAnswer(app);
        expect(answer).toMatch(new RegExp(`a=candidate:\\S+ 1 tcp \\d+ 127\\.0\\.0\\.1 ${port} typ host tcptype passive`));
        expect(answer).not.toMatch(/a=candidate:\S+ 2 /);
        await caller.setRemoteDescription(answer, 'answer');
        await Promise.all([up(caller.agent()!), up(gateway.agent()!)]);
        return { caller, gateway };
      }),
    );
    expect(m.agentCount).toBe(5);
    const heard = await Promise.all(
      calls.map(({ caller, gateway }, i) => {
        const got = nextData(gateway.agent()!);
        caller.agent()!.send(Buffer.from(`call${i}`));
        return got;
      }),
    );
    expect(heard).toEqual(calls.map((_c, i) => `call${i}`));
    // An offer from a session on the TCP mux carries one component too.
    const offerer = new IceSdpSession({ tcpMux: m, transports: ['tcp'] });
    sessions.push(offerer);
    const offer = await offerer.createOffer(app.replace('a=rtcp-mux\r\n', ''));
    expect(offer).not.toMatch(/a=candidate:\S+ 2 /);
  }, 30_000);
});
