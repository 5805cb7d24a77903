/**
 * IceUdpMux on real sockets, loopback only: many agents on one port, lite and full, data to the right agent,
 * restarts on the mux port, close, hostile datagrams, and TURN on the agents' own sockets beside the mux (coturn).
 */
import { createSocket, type Socket } from 'node:dgram';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { IceArgumentError } from '../../src/errors.js';
import { IceAgent } from '../../src/node/ice-agent.js';
import { IceUdpMux, UdpMuxError } from '../../src/node/udp-mux.js';
import { AttributeType, StunMethod } from '../../src/stun/constants.js';
import { encodeStunMessage } from '../../src/stun/message.js';
import { startCoturn, type Coturn } from '../helpers/coturn.js';
import { connected, connectPair, loopback, signal } from './agent-helpers.js';

const agents: IceAgent[] = [];
const muxes: IceUdpMux[] = [];
const sockets: Socket[] = [];
function make(o: ConstructorParameters<typeof IceAgent>[0] = {}): IceAgent {
  const a = new IceAgent({ ...loopback, ...o });
  agents.push(a);
  return a;
}
async function mux(o: Partial<Parameters<typeof IceUdpMux.bind>[0]> = {}): Promise<IceUdpMux> {
  const m = await IceUdpMux.bind({ addresses: ['127.0.0.1'], ...o });
  muxes.push(m);
  return m;
}
afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.close()));
  await Promise.all(muxes.splice(0).map((m) => m.close()));
  for (const s of sockets.splice(0)) s.close();
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

describe('IceUdpMux: many agents on one port (loopback)', () => {
  it('20 lite agents on one port with 20 full peers: every host candidate is the mux port, data reaches its own agent', async () => {
    const m = await mux();
    const port = m.addresses[0]!.port;
    const servers = Array.from({ length: 20 }, () => make({ udpMux: m, lite: true }));
    const peers = Array.from({ length: 20 }, () => make({ role: 'controlling' }));
    await Promise.all(servers.map((s, i) => connectPair(s, peers[i]!, 10_000)));
    expect(m.agentCount).toBe(20);
    for (const s of servers) expect(s.getLocalCandidates().map((c) => [c.type, c.port])).toEqual([['host', port]]);
    const got = servers.map(() => [] as string[]);
    servers.forEach((s, i) => s.on('data', (d) => got[i]!.push(d.toString())));
    peers.forEach((p, i) => {
      for (let k = 0; k < 3; k++) p.send(Buffer.from(`\x80peer${i}`));
    });
    await waitFor(() => got.every((g) => g.length === 3), 3000);
    got.forEach((g, i) => expect(g).toEqual([`\x80peer${i}`, `\x80peer${i}`, `\x80peer${i}`]));
    // And back: each peer hears its own server.
    const back = peers.map(() => [] as string[]);
    peers.forEach((p, i) => p.on('data', (d) => back[i]!.push(d.toString())));
    servers.forEach((s, i) => s.send(Buffer.from(`\x80srv${i}`)));
    await waitFor(() => back.every((b) => b.length === 1), 3000);
    back.forEach((b, i) => expect(b).toEqual([`\x80srv${i}`]));
    expect(m.stats.routes).toBeGreaterThanOrEqual(20);
    expect(m.stats.conflicts).toBe(0);
  }, 20_000);

  it('full (controlling) agents on a mux connect to peers on their own sockets', async () => {
    const m = await mux();
    const on = Array.from({ length: 5 }, () => make({ udpMux: m, role: 'controlling' }));
    const peers = Array.from({ length: 5 }, () => make({ role: 'controlled' }));
    await Promise.all(on.map((a, i) => connectPair(a, peers[i]!, 10_000)));
    for (const a of on) expect(a.getSelectedCandidatePair()!.local.port).toBe(m.addresses[0]!.port);
  }, 20_000);

  it('restart on a mux keeps the port and routes the new ufrag; the old one goes once the new session selects', async () => {
    const m = await mux();
    const s = make({ udpMux: m, lite: true });
    const p = make({ role: 'controlling' });
    await connectPair(s, p);
    const oldUfrag = s.getLocalParameters().ufrag;
    p.restart();
    // The lite side sees the peer's new credentials and restarts too (RFC 8445 §9).
    s.setRemoteParameters(p.getLocalParameters());
    await new Promise((r) => setTimeout(r, 0));
    const newUfrag = s.getLocalParameters().ufrag;
    expect(newUfrag).not.toBe(oldUfrag);
    const stats0 = m.stats.ufrags;
    expect(stats0).toBe(2); // both routed while the previous pair carries data
    await p.gather();
    p.setRemoteParameters(s.getLocalParameters());
    for (const c of p.getLocalCandidates()) s.addRemoteCandidate(c);
    for (const c of s.getLocalCandidates()) p.addRemoteCandidate(c);
    expect(s.getLocalCandidates().map((c) => c.port)).toEqual([m.addresses[0]!.port]);
    await waitFor(() => m.stats.ufrags === 1, 5000);
    const got: string[] = [];
    s.on('data', (d) => got.push(d.toString()));
    p.send(Buffer.from('\x80after'));
    await waitFor(() => got.length === 1, 3000);
    expect(got).toEqual(['\x80after']);
  }, 15_000);

  it('close() takes the agent off the mux at once: its routes go, its peer\'s data is dropped as no-route', async () => {
    const m = await mux();
    const s = make({ udpMux: m, lite: true });
    const p = make({ role: 'controlling' });
    await connectPair(s, p);
    expect(m.routeOwner(m.addresses[0]!, p.getSelectedCandidatePair()!.local)).toBeDefined();
    const closing = s.close();
    expect(m.agentCount).toBe(0);
    expect(m.stats.routes).toBe(0);
    await closing;
    const before = m.stats.dropped['no-route'];
    p.send(Buffer.from('\x80late'));
    await waitFor(() => m.stats.dropped['no-route'] > before, 2000);
  });

  it('hostile datagrams are dropped and counted, and never reach an agent', async () => {
    const m = await mux();
    const s = make({ udpMux: m, lite: true });
    await s.gather();
    let data = 0;
    s.on('data', () => data++);
    const raw = createSocket('udp4');
    sockets.push(raw);
    await new Promise<void>((r) => raw.bind(0, '127.0.0.1', r));
    const to = m.addresses[0]!;
    const tx = () => Uint8Array.from({ length: 12 }, (_, i) => i);
    const req = (username: string) => encodeStunMessage({ method: StunMethod.Binding, cls: 'request', transactionId: tx(), attributes: [{ type: AttributeType.USERNAME, value: new TextEncoder().encode(username) }] }, { integrityKey: new Uint8Array(16), fingerprint: true });
    for (let i = 0; i < 50; i++) raw.send(req(`nobody${i}:x`), to.port, to.address);
    for (let i = 0; i < 20; i++) raw.send(Buffer.from([0x80, 0x60, 0, i]), to.port, to.address);
    raw.send(Buffer.from([0, 1, 0, 0]), to.port, to.address);
    raw.send(encodeStunMessage({ method: StunMethod.Binding, cls: 'success', transactionId: tx(), attributes: [] }), to.port, to.address);
    await waitFor(() => {
      const d = m.stats.dropped;
      return d['unknown-ufrag'] === 50 && d['no-route'] === 20 && d['malformed-stun'] === 1 && d['unknown-transaction'] === 1;
    }, 3000);
    expect(data).toBe(0);
    expect(m.stats).toMatchObject({ routes: 0, transactions: 0, agents: 1 });
  });

  it('limits and misuse: max agents, a ufrag taken, components > 1, a closed mux', async () => {
    const m = await mux({ maxAgents: 1 });
    await make({ udpMux: m, ufrag: 'same', pwd: 'p'.repeat(22) }).gather();
    await expect(make({ udpMux: m }).gather()).rejects.toThrow(UdpMuxError);
    const m2 = await mux();
    await make({ udpMux: m2, ufrag: 'twin', pwd: 'p'.repeat(22) }).gather();
    await expect(make({ udpMux: m2, ufrag: 'twin', pwd: 'q'.repeat(22) }).gather()).rejects.toMatchObject({ reason: 'ufrag-taken' });
    expect(() => new IceAgent({ udpMux: m2, components: 2 })).toThrow(IceArgumentError);
    const m3 = await mux();
    await m3.close();
    await expect(make({ udpMux: m3 }).gather()).rejects.toThrow(/closed/);
    await expect(IceUdpMux.bind({ addresses: [] })).rejects.toThrow(/addresses/);
    await expect(IceUdpMux.bind({ addresses: ['127.0.0.1'], port: m2.addresses[0]!.port })).rejects.toThrow(/bind|port/i);
  });
});

describe('IceUdpMux with TURN on the agents\' own sockets (coturn on loopback)', () => {
  let turn: Coturn;
  beforeAll(async () => {
    turn = await startCoturn({ tls: false });
  }, 30_000);
  afterAll(async () => {
    await turn?.stop();
  });

  it('two agents on one mux each get their own allocation, and one connects through it to a relay-only peer', async () => {
    const m = await mux();
    const iceServers = [{ urls: `turn:127.0.0.1:${turn.port}`, username: turn.user, credential: turn.password }];
    const a = make({ udpMux: m, iceServers, role: 'controlling' });
    const b = make({ udpMux: m, iceServers, role: 'controlling' });
    await Promise.all([a.gather(), b.gather()]);
    for (const x of [a, b]) {
      const types = x.getLocalCandidates().map((c) => c.type).sort();
      expect(types).toEqual(['host', 'relay']); // no srflx from the TURN socket: it answers no checks
      expect(x.getLocalCandidates().find((c) => c.type === 'host')!.port).toBe(m.addresses[0]!.port);
    }
    const relayOnly = make({ role: 'controlled', iceTransportPolicy: 'relay', iceServers });
    await relayOnly.gather();
    const up = Promise.all([connected(a, 10_000), connected(relayOnly, 10_000)]);
    signal(a, relayOnly);
    await up;
    const got: string[] = [];
    relayOnly.on('data', (d) => got.push(d.toString()));
    a.send(Buffer.from('\x80via-turn'));
    await waitFor(() => got.length === 1, 3000);
    expect(got).toEqual(['\x80via-turn']);
  }, 30_000);
});
