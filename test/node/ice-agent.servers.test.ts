/**
 * `IceAgent` with the things around it, all on loopback: mDNS-hidden host candidates resolved over loopback
 * multicast on a private port, relay-only connectivity through a real coturn (`iceTransportPolicy: 'relay'`), and
 * gathering against the built-in STUN server.
 */
import { createSocket } from 'node:dgram';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { IceAgent } from '../../src/node/ice-agent.js';
import { agentPool, connectPair, loopback, nextData as firstData } from './agent-helpers.js';
import { startStunServer } from '../../src/node/stun-server.js';
import { coturnVersion, startCoturn, type Coturn } from '../helpers/coturn.js';





/** A UDP port free right now (bound then released), for the private mDNS group port. */
async function freeUdpPort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('IceAgent with mDNS, TURN and STUN (loopback)', () => {
  const { make, closeAll } = agentPool();
  afterEach(closeAll);

  it('mDNS: host candidates are signalled as .local names and the peers resolve each other', async () => {
    const port = await freeUdpPort();
    const mdns = { interfaceAddress: '127.0.0.1', port, group: '224.0.0.251' } as const;
    const a = make({ role: 'controlling', mdns });
    const b = make({ role: 'controlled', mdns });
    const warnings: string[] = [];
    a.on('warning', (w) => warnings.push(w));
    b.on('warning', (w) => warnings.push(w));
    await Promise.all([a.gather(), b.gather()]);
    for (const x of [a, b]) {
      const cs = x.getLocalCandidates();
      expect(cs.length).toBeGreaterThan(0);
      for (const c of cs) {
        expect(c.address).toMatch(/^[0-9a-f-]{36}\.local$/);
        expect(c.address).not.toContain('127.0.0.1');
      }
    }
    await connectPair(a, b);
    // The remote side of the selected pair is the resolved address, not the name.
    expect(a.getSelectedCandidatePair()?.remote.address ?? (await waitSelected(a)).remote.address).toBe('127.0.0.1');
    const got = firstData(b);
    expect(a.send(Buffer.from('over mdns'))).toBe(true);
    expect(await got).toBe('over mdns');
    expect(warnings).toEqual([]);
  });

  it('STUN: gathering against the built-in server completes; the loopback srflx equals host and is dropped', async () => {
    const server = await startStunServer({ address: '127.0.0.1' });
    try {
      const a = make({ iceServers: [{ urls: `stun:127.0.0.1:${server.port}` }] });
      const warnings: string[] = [];
      a.on('warning', (w) => warnings.push(w));
      const t0 = Date.now();
      await a.gather();
      expect(a.gatheringState).toBe('complete');
      // The server answered (so completion was not a time-out) well before the 5 s gathering bound.
      expect(server.stats.successResponses).toBeGreaterThanOrEqual(1);
      expect(Date.now() - t0).toBeLessThan(2000);
      const cs = a.getLocalCandidates();
      // RFC 8445 §5.1.3: the srflx candidate (127.0.0.1:port, same base) is redundant with the host candidate.
      expect(cs.map((c) => c.type)).toEqual(['host']);
      expect(warnings).toEqual([]);
    } finally {
      await server.close();
    }
  });

  it('relay policy without a TURN server: warns, signals nothing, gathering still completes', async () => {
    const a = make({ iceTransportPolicy: 'relay' });
    const warnings: string[] = [];
    a.on('warning', (w) => warnings.push(w));
    await a.gather();
    expect(a.gatheringState).toBe('complete');
    expect(a.getLocalCandidates()).toEqual([]);
    expect(warnings.some((w) => w.includes('relay'))).toBe(true);
  });

  describe('TURN relay through coturn', () => {
    let coturn: Coturn | undefined;
    beforeAll(async () => {
      if (coturnVersion() === undefined && !process.env['CI']) return; // locally without coturn: reported below
      coturn = await startCoturn({ tls: false });
    }, 20_000);
    afterAll(async () => {
      await coturn?.stop();
    });

    it('relay-only agents connect through coturn and exchange data', async () => {
      if (!coturn) {
        // Never vacuous: without coturn this test fails, and in CI startCoturn already threw in beforeAll.
        throw new Error('turnserver (coturn) is not installed: apt-get install -y coturn');
      }
      const iceServers = [{ urls: `turn:127.0.0.1:${coturn.port}`, username: coturn.user, credential: coturn.password }];
      const a = make({ role: 'controlling', iceServers, iceTransportPolicy: 'relay' });
      const b = make({ role: 'controlled', iceServers, iceTransportPolicy: 'relay' });
      const warnings: string[] = [];
      a.on('warning', (w) => warnings.push(w));
      b.on('warning', (w) => warnings.push(w));
      await Promise.all([a.gather(), b.gather()]);
      for (const x of [a, b]) {
        const cs = x.getLocalCandidates();
        expect(cs.length, `warnings: ${warnings.join('; ')}\n${coturn.log().slice(-1500)}`).toBeGreaterThan(0);
        expect(cs.every((c) => c.type === 'relay')).toBe(true);
      }
      await connectPair(a, b, 8000);
      const pa = a.getSelectedCandidatePair() ?? (await waitSelected(a));
      expect(pa.local.type).toBe('relay');
      expect(pa.remote.type).toBe('relay');
      const got = firstData(b);
      expect(a.send(Buffer.from('relayed'))).toBe(true);
      expect(await got).toBe('relayed');
      const back = firstData(a);
      expect(b.send(Buffer.from('relayed back'))).toBe(true);
      expect(await back).toBe('relayed back');
    }, 20_000);

    it('policy all with a TURN server gathers host and relay candidates', async () => {
      if (!coturn) throw new Error('turnserver (coturn) is not installed: apt-get install -y coturn');
      const iceServers = [{ urls: `turn:127.0.0.1:${coturn.port}`, username: coturn.user, credential: coturn.password }];
      const a = make({ iceServers });
      await a.gather();
      const types = a.getLocalCandidates().map((c) => c.type);
      expect(types).toContain('host');
      expect(types).toContain('relay');
    }, 20_000);
  });
});

function waitSelected(x: IceAgent, ms = 3000): Promise<{ local: { type: string; address: string }; remote: { type: string; address: string } }> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no selected pair')), ms);
    x.once('selectedcandidatepairchange', (p) => {
      clearTimeout(t);
      resolve(p);
    });
  });
}

describe('IceAgent.close() during gathering', () => {
  it('does not wait for a STUN server that never answers', async () => {
    const silent = createSocket('udp4');
    await new Promise<void>((r) => silent.bind(0, '127.0.0.1', () => r()));
    const agent = new IceAgent({ ...loopback, iceServers: [{ urls: `stun:127.0.0.1:${silent.address().port}` }], gatherTimeoutMs: 10_000 });
    try {
      const gathered = agent.gather();
      await new Promise<void>((r) => agent.once('candidate', () => r())); // sockets bound, the server is being asked
      expect(agent.gatheringState).toBe('gathering');
      const t0 = performance.now();
      await agent.close();
      expect(performance.now() - t0).toBeLessThan(1500);
      await gathered;
      expect(agent.state).toBe('closed');
    } finally {
      await agent.close();
      await new Promise<void>((r) => silent.close(() => r()));
    }
  });
});
