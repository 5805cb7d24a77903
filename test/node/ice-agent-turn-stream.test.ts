/**
 * Relayed candidates when the TURN server is reached over TCP (`turn:…?transport=tcp`) or TLS over TCP (`turns:`),
 * RFC 8656 §3.1, against a real coturn on loopback. The relayed address is UDP either way; only the client–server
 * leg is a stream. Also: a server that refuses or never completes the connection leaves gathering bounded, and
 * close() leaves no TCP/TLS handle behind.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { IceAgent, type IceAgentOptions } from '../../src/node/ice-agent.js';
import { agentPool, connected, loopback, nextData, signal } from './agent-helpers.js';
import { coturnVersion, startCoturn, type Coturn } from '../helpers/coturn.js';


/** TCP and TLS handles alive in this process (what a leaked TURN connection would show up as). */
const streamHandles = () => process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap' || r === 'TLSWrap' || r === 'TCPWrap').length;



// Gathering already done by the caller here: signal and wait.
async function connectPair(a: IceAgent, b: IceAgent, ms: number): Promise<void> {
  const both = Promise.all([connected(a, ms), connected(b, ms)]);
  signal(a, b);
  await both;
}

/** A TCP port on loopback that nothing listens on (bound, then released). */
async function closedTcpPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('IceAgent: TURN over TCP and TLS (coturn on loopback)', () => {
  let coturn: Coturn | undefined;
  const { make, closeAll } = agentPool();
  const need = (): Coturn => {
    // Never vacuous: without coturn these tests fail (and under CI startCoturn already threw in beforeAll).
    if (!coturn) throw new Error('turnserver (coturn) is not installed: apt-get install -y coturn openssl');
    return coturn;
  };

  beforeAll(async () => {
    if (coturnVersion() === undefined && !process.env['CI']) return;
    coturn = await startCoturn({ tls: true });
    // startCoturn's readiness probes are destroyed but may not have closed yet; handle counts need them gone.
    for (let i = 0; i < 40 && streamHandles() > 0; i++) await new Promise((r) => setTimeout(r, 25));
  }, 20_000);
  afterAll(async () => {
    await coturn?.stop();
  });
  afterEach(async () => {
    await closeAll();
  });

  async function relayOnlyRoundTrip(iceServers: NonNullable<IceAgentOptions['iceServers']>, extra: IceAgentOptions = {}): Promise<void> {
    const server = need();
    const a = make({ role: 'controlling', iceServers, iceTransportPolicy: 'relay', ...extra });
    const b = make({ role: 'controlled', iceServers, iceTransportPolicy: 'relay', ...extra });
    const warnings: string[] = [];
    a.on('warning', (w) => warnings.push(w));
    b.on('warning', (w) => warnings.push(w));
    const before = streamHandles();
    await Promise.all([a.gather(), b.gather()]);
    // The only TURN server is a stream one: each agent holds its connection while the allocation lives.
    expect(streamHandles()).toBe(before + 2);
    for (const x of [a, b]) {
      const cs = x.getLocalCandidates();
      expect(cs.length, `warnings: ${warnings.join('; ')}\n${server.log().slice(-1500)}`).toBe(1);
      expect(cs[0]!.type).toBe('relay');
      // The relayed address is a UDP one (REQUESTED-TRANSPORT UDP) even though the server was reached by a stream.
      expect(cs[0]!.transport.toLowerCase()).toBe('udp');
      expect(cs[0]!.address).toBe('127.0.0.1');
    }
    await connectPair(a, b, 8000);
    expect(a.getSelectedCandidatePair()?.local.type ?? 'relay').toBe('relay');
    for (let i = 0; i < 3; i++) {
      const got = nextData(b);
      expect(a.send(Buffer.from(`a→b ${i}`))).toBe(true);
      expect(await got).toBe(`a→b ${i}`);
      const back = nextData(a);
      expect(b.send(Buffer.from(`b→a ${i}`))).toBe(true);
      expect(await back).toBe(`b→a ${i}`);
    }
    expect(warnings).toEqual([]);
  }

  it('TCP: relay-only agents connect through a TURN server reached over TCP and exchange data both ways', async () => {
    const server = need();
    await relayOnlyRoundTrip([{ urls: `turn:127.0.0.1:${server.port}?transport=tcp`, username: server.user, credential: server.password }]);
  }, 20_000);

  it('TLS: relay-only agents connect through a turns: server trusting its self-signed certificate (ca)', async () => {
    const server = need();
    await relayOnlyRoundTrip(
      [{ urls: `turns:127.0.0.1:${server.tlsPort}`, username: server.user, credential: server.password }],
      { turnTls: { ca: server.certPem } },
    );
  }, 20_000);

  it('TLS: rejectUnauthorized false also connects (no CA given)', async () => {
    const server = need();
    await relayOnlyRoundTrip(
      [{ urls: `turns:127.0.0.1:${server.tlsPort}?transport=tcp`, username: server.user, credential: server.password }],
      { turnTls: { rejectUnauthorized: false } },
    );
  }, 20_000);

  it('TLS: an untrusted certificate gives no relay candidate, a warning, and a bounded gather', async () => {
    const server = need();
    const a = make({ iceServers: [{ urls: `turns:127.0.0.1:${server.tlsPort}`, username: server.user, credential: server.password }], iceTransportPolicy: 'relay', gatherTimeoutMs: 3000 });
    const warnings: string[] = [];
    a.on('warning', (w) => warnings.push(w));
    const t0 = Date.now();
    await a.gather();
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(a.getLocalCandidates()).toEqual([]);
    expect(warnings.some((w) => /TURN server 127\.0\.0\.1:\d+ failed/.test(w) && /certificate/i.test(w)), warnings.join('; ')).toBe(true);
  }, 20_000);

  it('policy all over TCP: host and relay candidates, no server-reflexive one from the TCP mapping', async () => {
    const server = need();
    const a = make({ iceServers: [{ urls: `turn:127.0.0.1:${server.port}?transport=tcp`, username: server.user, credential: server.password }] });
    await a.gather();
    const types = a.getLocalCandidates().map((c) => c.type).sort();
    expect(types).toEqual(['host', 'relay']);
  }, 20_000);

  it('close() releases the allocation and leaves no TCP or TLS handle', async () => {
    const server = need();
    const before = streamHandles();
    const iceServers = [
      { urls: `turn:127.0.0.1:${server.port}?transport=tcp`, username: server.user, credential: server.password },
      { urls: `turns:127.0.0.1:${server.tlsPort}`, username: server.user, credential: server.password },
    ];
    const a = make({ role: 'controlling', iceServers, iceTransportPolicy: 'relay', turnTls: { ca: server.certPem } });
    const b = make({ role: 'controlled', iceServers, iceTransportPolicy: 'relay', turnTls: { ca: server.certPem } });
    await Promise.all([a.gather(), b.gather()]);
    expect(a.getLocalCandidates().filter((c) => c.type === 'relay')).toHaveLength(2);
    expect(streamHandles()).toBeGreaterThanOrEqual(before + 4); // two connections per agent while they live
    await connectPair(a, b, 8000);
    const logBefore = server.log().length;
    await closeAll();
    expect(streamHandles()).toBe(before);
    // The deallocations (Refresh with LIFETIME 0) reached the server over the connections before they closed
    // (coturn writes its log asynchronously: poll it briefly).
    const refreshes = () => (server.log().slice(logBefore).match(/REFRESH processed, success/g) ?? []).length;
    for (let i = 0; i < 40 && refreshes() < 4; i++) await new Promise((r) => setTimeout(r, 25));
    expect(refreshes(), server.log().slice(logBefore).slice(-2000)).toBeGreaterThanOrEqual(4);
  }, 20_000);
});

describe('IceAgent: unreachable TURN over TCP/TLS (no coturn needed)', () => {
  const agents: IceAgent[] = [];
  const servers: Server[] = [];
  const sockets = new Set<Socket>();
  afterEach(async () => {
    await Promise.all(agents.splice(0).map((a) => a.close()));
    for (const s of sockets) s.destroy();
    sockets.clear();
    await Promise.all(servers.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))));
  });

  it('a TCP TURN server that refuses connections: gathering completes at once with no relay candidate and a warning', async () => {
    const port = await closedTcpPort();
    const before = streamHandles();
    const a = new IceAgent({ ...loopback, iceServers: [{ urls: `turn:127.0.0.1:${port}?transport=tcp`, username: 'u', credential: 'p' }], iceTransportPolicy: 'relay', gatherTimeoutMs: 2000 });
    agents.push(a);
    const warnings: string[] = [];
    a.on('warning', (w) => warnings.push(w));
    const t0 = Date.now();
    await a.gather();
    expect(Date.now() - t0).toBeLessThan(1500);
    expect(a.gatheringState).toBe('complete');
    expect(a.getLocalCandidates()).toEqual([]);
    expect(warnings.some((w) => w.includes(`TURN server 127.0.0.1:${port} failed`) && /ECONNREFUSED/.test(w)), warnings.join('; ')).toBe(true);
    await a.close();
    expect(streamHandles()).toBe(before);
  });

  it('a TLS server that accepts but never answers the handshake: gathering ends at gatherTimeoutMs, nothing leaks', async () => {
    const server = createServer((s) => {
      sockets.add(s);
      s.on('error', () => {});
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as { port: number }).port;
    const before = streamHandles();
    const a = new IceAgent({ ...loopback, iceServers: [{ urls: `turns:127.0.0.1:${port}`, username: 'u', credential: 'p' }], gatherTimeoutMs: 800 });
    agents.push(a);
    const warnings: string[] = [];
    a.on('warning', (w) => warnings.push(w));
    const t0 = Date.now();
    await a.gather();
    const took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(700);
    expect(took).toBeLessThan(2000);
    expect(a.getLocalCandidates().map((c) => c.type)).toEqual(['host']);
    expect(warnings.some((w) => w.includes(`TURN server 127.0.0.1:${port} failed`)), warnings.join('; ')).toBe(true);
    await a.close();
    await serverSidesClosed();
    expect(streamHandles()).toBe(before);
  });

  /** The accepting sockets of the fake servers live in this process too: close them before counting handles. */
  async function serverSidesClosed(): Promise<void> {
    await Promise.all([...sockets].map((s) => (s.closed ? undefined : new Promise<void>((r) => s.once('close', () => r()).destroy()))));
    sockets.clear();
  }

  it('close() during a pending TLS connect (gather still running) aborts it and leaves no handle', async () => {
    const server = createServer((s) => {
      sockets.add(s);
      s.on('error', () => {});
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as { port: number }).port;
    const before = streamHandles();
    const a = new IceAgent({ ...loopback, iceServers: [{ urls: `turns:127.0.0.1:${port}`, username: 'u', credential: 'p' }], gatherTimeoutMs: 1500 });
    agents.push(a);
    const accepted = new Promise<void>((r) => server.once('connection', () => r()));
    void a.gather().catch(() => undefined);
    await accepted;
    expect(streamHandles()).toBeGreaterThan(before);
    const t0 = Date.now();
    await a.close();
    // IceAgent.close() lets a running gather finish first: bounded by gatherTimeoutMs.
    expect(Date.now() - t0).toBeLessThan(2500);
    expect(a.state).toBe('closed');
    await serverSidesClosed();
    expect(streamHandles()).toBe(before);
  });
});
