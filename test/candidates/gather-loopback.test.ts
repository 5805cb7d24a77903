import { createSocket, type Socket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { Gatherer, type GathererEvent, type GathererOptions, type MdnsRegistrar } from '../../src/candidates/gatherer.js';
import { MachineDriver } from '../../src/node/driver.js';
import { cryptoRandom } from '../../src/node/random.js';
import { startStunServer, type RunningStunServer } from '../../src/node/stun-server.js';
import type { TransportAddress } from '../../src/types.js';

/** Binds a UDP socket on 127.0.0.1 with an OS-chosen port. */
function bindLoopback(): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    s.once('error', reject);
    s.bind(0, '127.0.0.1', () => resolve(s));
  });
}

const closers: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (closers.length) await closers.pop()!();
});

/** Runs a gatherer over one real socket until it completes; returns its events and the time it took. */
async function gather(options: Omit<GathererOptions, 'random' | 'bases'>): Promise<{ events: GathererEvent[]; ms: number; base: TransportAddress; g: Gatherer }> {
  const sock = await bindLoopback();
  closers.push(() => new Promise<void>((r) => sock.close(() => r())));
  const base = { address: '127.0.0.1', port: sock.address().port };
  const g = new Gatherer({ random: cryptoRandom, bases: [{ address: base, component: 1 }], ...options });
  const events: GathererEvent[] = [];
  const driver = new MachineDriver({ send: (d) => sock.send(d.data, d.remote.port, d.remote.address), unref: true });
  closers.push(() => driver.close());
  sock.on('message', (msg, rinfo) => driver.receive({ local: base, remote: { address: rinfo.address, port: rinfo.port }, data: new Uint8Array(msg) }));
  const done = new Promise<void>((resolve) => {
    driver.attach(g, (e) => {
      events.push(e);
      if (e.type === 'state' && e.state === 'complete') resolve();
    });
  });
  const t0 = driver.now();
  g.start(t0);
  driver.kick(g);
  await done;
  return { events, ms: driver.now() - t0, base, g };
}

describe('gathering on loopback against a real STUN server', () => {
  let server: RunningStunServer;

  it('a live server answers (srflx equal to host is eliminated) and a dead one is cut off at gatherTimeoutMs', async () => {
    server = await startStunServer({ address: '127.0.0.1', port: 0 });
    closers.push(() => server.close());
    // A socket that swallows everything: a STUN server that never answers.
    const dead = await bindLoopback();
    closers.push(() => new Promise<void>((r) => dead.close(() => r())));
    let deadReceived = 0;
    dead.on('message', () => deadReceived++);
    const deadAddr = { address: '127.0.0.1', port: dead.address().port };

    const { events, ms, g } = await gather({
      stunServers: [{ address: server.address, port: server.port }, deadAddr],
      gatherTimeoutMs: 700,
      stunTiming: { rtoMs: 100 },
    });
    const kinds = events.map((e) => e.type);
    expect(kinds).toEqual(['state', 'candidate', 'server-failed', 'end-of-candidates', 'state']);
    expect(events[2]).toMatchObject({ type: 'server-failed', server: deadAddr, reason: 'gather timeout' });
    // Not behind a NAT: the reflexive address equals the host candidate, so §5.1.3 drops it.
    expect(g.stats.redundant).toBe(1);
    expect(g.stats.bindingRequests).toBe(2);
    expect(deadReceived).toBeGreaterThanOrEqual(2); // first send plus retransmissions
    expect(ms).toBeGreaterThanOrEqual(690);
    expect(ms).toBeLessThan(1500);
  }, 5000);

  it('with mDNS names the reflexive candidate is kept, with raddr 0.0.0.0 rport 9', async () => {
    server = await startStunServer({ address: '127.0.0.1', port: 0 });
    closers.push(() => server.close());
    const mdns: MdnsRegistrar = { register: () => '1f4712db-ea17-4bcf-a596-105139dfd8bf.local' };
    const { events, base, ms } = await gather({ stunServers: [{ address: server.address, port: server.port }], mdns, gatherTimeoutMs: 2000 });
    const cands = events.flatMap((e) => (e.type === 'candidate' ? [e.candidate] : []));
    expect(cands.map((c) => c.type)).toEqual(['host', 'srflx']);
    expect(cands[0]!.mdnsName).toBe('1f4712db-ea17-4bcf-a596-105139dfd8bf.local');
    expect(cands[1]).toMatchObject({ address: '127.0.0.1', port: base.port, relatedAddress: '0.0.0.0', relatedPort: 9, base });
    // A live loopback server answers well before the bound.
    expect(ms).toBeLessThan(1000);
  }, 5000);
});
