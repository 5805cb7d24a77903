/**
 * The TURN client against a real coturn on 127.0.0.1, over UDP, TCP and TLS. Requires `turnserver`: the suite
 * fails (never skips) when it is missing. Every server is killed by PID in afterAll.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TurnError } from '../../src/errors.js';
import { openTurnAllocation, type TurnAllocation, type TurnAllocationOptions } from '../../src/node/turn-transport.js';
import { isValidChannel, type TurnClientEvent } from '../../src/turnclient/index.js';
import type { TransportAddress } from '../../src/types.js';
import { startCoturn, type Coturn } from '../helpers/coturn.js';

type Transport = 'udp' | 'tcp' | 'tls';

// Short server timers for the refresh test: allocation 3 s, permission 3 s, channel 4 s, nonce 2 s.
const SHORT = { allocation: 3, permission: 3, channel: 4, nonce: 2 };

let plain: Coturn;
let short: Coturn;
let quota: Coturn;
const open: TurnAllocation[] = [];

beforeAll(async () => {
  [plain, short, quota] = await Promise.all([
    startCoturn(),
    startCoturn({
      maxAllocateLifetimeSec: SHORT.allocation,
      permissionLifetimeSec: SHORT.permission,
      channelLifetimeSec: SHORT.channel,
      staleNonceSec: SHORT.nonce,
    }),
    startCoturn({ userQuota: 1, extraUsers: [['q-udp', 'pq'], ['q-tcp', 'pq'], ['q-tls', 'pq']] }),
  ]);
}, 30_000);

afterAll(async () => {
  await Promise.allSettled(open.map((a) => a.close()));
  await Promise.allSettled([plain?.stop(), short?.stop(), quota?.stop()]);
});

function options(server: Coturn, transport: Transport, extra: Partial<TurnAllocationOptions> = {}): TurnAllocationOptions {
  return {
    server: { address: server.host, port: transport === 'tls' ? server.tlsPort : server.port },
    transport,
    username: server.user,
    password: server.password,
    ca: server.certPem,
    localAddress: '127.0.0.1',
    software: 'icewire-test',
    timeoutMs: 10_000,
    ...extra,
  };
}

async function alloc(server: Coturn, transport: Transport, extra: Partial<TurnAllocationOptions> = {}): Promise<TurnAllocation> {
  const a = await openTurnAllocation(options(server, transport, extra));
  open.push(a);
  return a;
}

/** Resolves with the next datagram `a` receives from `from` whose payload satisfies `match`. */
function nextData(a: TurnAllocation, from: TransportAddress, match: (d: Uint8Array) => boolean, ms = 5000): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      off();
      reject(new Error(`no data from ${from.address}:${from.port} within ${ms} ms`));
    }, ms);
    const off = a.onData((peer, data) => {
      if (peer.address === from.address && peer.port === from.port && match(data)) {
        clearTimeout(t);
        off();
        resolve(data);
      }
    });
  });
}

/** Sends `payload` from `a` to `b`'s relayed address until `b` receives it (UDP may drop the first tries). */
async function relay(a: TurnAllocation, b: TurnAllocation, payload: Uint8Array): Promise<Uint8Array> {
  const got = nextData(b, a.relayed[0]!, (d) => Buffer.from(d).equals(Buffer.from(payload)));
  a.send(b.relayed[0]!, payload);
  const timer = setInterval(() => a.send(b.relayed[0]!, payload), 300);
  try {
    return await got;
  } finally {
    clearInterval(timer);
  }
}

const text = (s: string) => new TextEncoder().encode(s);

describe.each(['udp', 'tcp', 'tls'] as const)('coturn over %s', (transport) => {
  it('allocates a relayed address on loopback with the mapped address of the base', async () => {
    const a = await alloc(plain, transport);
    expect(a.relayed).toHaveLength(1);
    expect(a.relayed[0]!.address).toBe('127.0.0.1');
    expect(a.relayed[0]!.port).toBeGreaterThan(0);
    expect(a.mapped).toEqual(a.local);
    expect(a.lifetimeSec).toBeGreaterThan(0);
    expect(a.client.state).toBe('allocated');
    expect(a.client.stats.authRetries).toBe(1);
    await a.close();
  });

  it('installs permissions and relays data both ways with Send and Data indications', async () => {
    const a = await alloc(plain, transport, { autoBindChannel: false });
    const b = await alloc(plain, transport, { autoBindChannel: false });
    await a.createPermission(b.relayed[0]!.address);
    await b.createPermission(a.relayed[0]!.address);
    expect(a.client.hasPermission('127.0.0.1')).toBe(true);
    expect([...(await relay(a, b, text('hello from a')))]).toEqual([...text('hello from a')]);
    expect([...(await relay(b, a, text('hello from b')))]).toEqual([...text('hello from b')]);
    expect(a.client.stats.sendIndications).toBeGreaterThan(0);
    expect(a.client.stats.dataIndications).toBeGreaterThan(0);
    expect(a.client.stats.channelDataSent + a.client.stats.channelDataReceived).toBe(0);
    await Promise.all([a.close(), b.close()]);
  });

  it('queues data to a new peer until the automatic permission is installed', async () => {
    const a = await alloc(plain, transport, { autoBindChannel: false });
    const b = await alloc(plain, transport, { autoBindChannel: false });
    await b.createPermission(a.relayed[0]!.address);
    const got = nextData(b, a.relayed[0]!, () => true);
    a.send(b.relayed[0]!, text('first')); // no permission yet: queued, CreatePermission sent
    expect(a.client.hasPermission(b.relayed[0]!.address)).toBe(false);
    expect([...(await got)]).toEqual([...text('first')]);
    await Promise.all([a.close(), b.close()]);
  });

  it('binds channels and relays ChannelData both ways, with odd lengths (padding on streams)', async () => {
    const a = await alloc(plain, transport);
    const b = await alloc(plain, transport);
    const chA = await a.bindChannel(b.relayed[0]!);
    const chB = await b.bindChannel(a.relayed[0]!);
    expect(isValidChannel(chA)).toBe(true);
    expect(isValidChannel(chB)).toBe(true);
    expect(a.client.channelFor(b.relayed[0]!)).toBe(chA);
    for (const len of [1, 2, 3, 4, 5, 7, 1000]) {
      const p = new Uint8Array(len).map((_, i) => (i * 13 + len) & 0xff);
      expect([...(await relay(a, b, p))]).toEqual([...p]);
      const q = p.map((x) => x ^ 0xff);
      expect([...(await relay(b, a, q))]).toEqual([...q]);
    }
    expect(a.client.stats.channelDataSent).toBeGreaterThanOrEqual(7);
    expect(a.client.stats.channelDataReceived).toBeGreaterThanOrEqual(7);
    expect(b.client.stats.channelDataReceived).toBeGreaterThanOrEqual(7);
    expect(a.client.stats.sendIndications).toBe(0);
    expect(a.client.stats.malformed + b.client.stats.malformed).toBe(0);
    await Promise.all([a.close(), b.close()]);
  });

  it('reports a wrong password as a typed 401 TurnError', async () => {
    const err = await openTurnAllocation(options(plain, transport, { password: 'wrong' })).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TurnError);
    expect((err as TurnError).errorCode).toBe(401);
    expect((err as TurnError).reason).toBe('unauthorized');
  });

  it('deallocates on close: the per-user quota of 1 is free again (486 before)', async () => {
    // One user per transport, so that one test's housekeeping delay cannot leak into the next.
    const user = { username: `q-${transport}`, password: 'pq' };
    const a = await alloc(quota, transport, user);
    const err = await openTurnAllocation(options(quota, transport, user)).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TurnError);
    expect((err as TurnError).errorCode).toBe(486);
    expect((err as TurnError).reason).toBe('quota-reached');
    const t0 = performance.now();
    await a.close();
    expect(a.client.state).toBe('closed');
    expect(performance.now() - t0).toBeLessThan(2000); // answered, not timed out
    // Without the delete the allocation would hold the quota for its 600 s lifetime. coturn frees a deleted UDP
    // session on its next 1 s housekeeping tick (TCP/TLS at once), so retry for at most 3 s.
    let c: TurnAllocation | undefined;
    for (const deadline = performance.now() + 3000; c === undefined && performance.now() < deadline; ) {
      c = await alloc(quota, transport, user).catch(async (e: unknown) => {
        expect((e as TurnError).errorCode).toBe(486);
        await new Promise((r) => setTimeout(r, 200));
        return undefined;
      });
    }
    expect(c?.client.state).toBe('allocated');
    await c?.close();
  });
});

// One server-side timer set, the three transports side by side (concurrent keeps the wall time near 10 s).
describe('coturn refresh timers', () => {
  it.concurrent.each(['udp', 'tcp', 'tls'] as const)(
    'over %s: keeps allocation, permissions and channels alive past two of their lifetimes, through stale nonces',
    async (transport) => {
      // coturn grants min(max(requested, 600), --max-allocate-lifetime) on Allocate, so asking for 3 s gets 3 s. A
      // Refresh follows RFC 8656 §8.2 to the letter (a request below the default gets the default, 600 s), so the
      // allocation is refreshed once at 1.5 s and then holds 600 s; permissions and channels keep their short
      // server lifetimes and are refreshed repeatedly.
      const clientTimers = { lifetimeSec: SHORT.allocation, permissionLifetimeSec: SHORT.permission, channelLifetimeSec: SHORT.channel };
      const a = await alloc(short, transport, clientTimers);
      const b = await alloc(short, transport, clientTimers);
      expect(a.lifetimeSec).toBe(SHORT.allocation);
      const evA: TurnClientEvent[] = [];
      a.onEvent((e) => evA.push(e));
      await b.createPermission(a.relayed[0]!.address);
      await relay(a, b, text('warm-up a')); // installs permission + channel a→b
      await relay(b, a, text('warm-up b'));
      const t0 = performance.now();
      // Past two channel lifetimes (the longest timer), hence two permission and two allocation lifetimes too.
      const waitMs = 2 * SHORT.channel * 1000 + 500;
      await new Promise((r) => setTimeout(r, waitMs));
      const count = (pred: (e: TurnClientEvent) => boolean) => evA.filter(pred).length;
      const refreshed = evA.filter((e) => e.type === 'refreshed');
      expect(refreshed.length).toBeGreaterThanOrEqual(1);
      expect(count((e) => e.type === 'permission' && e.refreshed)).toBeGreaterThanOrEqual(3);
      expect(count((e) => e.type === 'channel' && e.refreshed)).toBeGreaterThanOrEqual(2);
      expect(evA.filter((e) => e.type === 'error')).toEqual([]);
      // The 2 s nonce went stale: every 438 was retried with the new nonce.
      expect(a.client.stats.staleNonceRetries).toBeGreaterThanOrEqual(1);
      expect(a.client.state).toBe('allocated');
      expect(performance.now() - t0).toBeGreaterThan(2 * SHORT.channel * 1000);
      // Server-side allocation (3 s), permission (3 s) and channel (4 s) would all be gone without refreshes.
      expect([...(await relay(a, b, text('after refresh a')))]).toEqual([...text('after refresh a')]);
      expect([...(await relay(b, a, text('after refresh b')))]).toEqual([...text('after refresh b')]);
      expect(a.client.stats.channelDataSent).toBeGreaterThan(0);
      expect(a.client.stats.sendIndications).toBeGreaterThan(0);
      await Promise.all([a.close(), b.close()]);
    },
    30_000,
  );
});

describe('coturn redirects and address families', () => {
  let target: Coturn;
  let redirector: Coturn;
  beforeAll(async () => {
    target = await startCoturn({ extraRelayIps: ['::1'] });
    redirector = await startCoturn({ alternateServer: `127.0.0.1:${target.port}`, extraArgs: [`--tls-alternate-server=127.0.0.1:${target.tlsPort}`] });
  }, 30_000);
  afterAll(async () => {
    await Promise.allSettled([target?.stop(), redirector?.stop()]);
  });

  it.each(['udp', 'tcp', 'tls'] as const)('follows 300 Try Alternate over %s and allocates on the alternate server', async (transport) => {
    // TLS: the edge reconnects to the alternate and verifies its (different) self-signed certificate.
    const a = await alloc(redirector, transport, { ca: [redirector.certPem, target.certPem] });
    expect(a.client.server).toEqual({ address: '127.0.0.1', port: transport === 'tls' ? target.tlsPort : target.port });
    expect(a.client.state).toBe('allocated');
    // The allocation is really on the target: it relays to a peer allocated there directly.
    const b = await alloc(target, transport);
    await b.createPermission(a.relayed[0]!.address);
    expect([...(await relay(a, b, text('via redirect')))]).toEqual([...text('via redirect')]);
    expect([...(await relay(b, a, text('back')))]).toEqual([...text('back')]);
    await Promise.all([a.close(), b.close()]);
  });

  it('over TLS refuses a server whose certificate is not trusted', async () => {
    const err = await openTurnAllocation(options(target, 'tls', { ca: redirector.certPem })).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TurnError);
    expect((err as TurnError).reason).toBe('connection-closed');
    expect(String((err as Error).message)).toMatch(/certificate/i);
  });

  it('allocates an IPv6 relayed address with REQUESTED-ADDRESS-FAMILY and relays between two IPv6 relays', async () => {
    const a = await alloc(target, 'udp', { requestedFamily: 'ipv6' });
    const b = await alloc(target, 'udp', { requestedFamily: 'ipv6' });
    expect(a.relayed).toEqual([{ address: '::1', port: expect.any(Number) }]);
    await b.createPermission('::1');
    expect([...(await relay(a, b, text('over v6')))]).toEqual([...text('over v6')]);
    expect([...(await relay(b, a, text('back over v6')))]).toEqual([...text('back over v6')]);
    // IPv4 peers are refused locally: no IPv4 relayed address (RFC 8656 §10.1).
    expect(() => a.send({ address: '127.0.0.1', port: 9 }, text('x'))).toThrow(TurnError);
    await Promise.all([a.close(), b.close()]);
  });
});

describe('unreachable server (no coturn needed)', () => {
  it('UDP: reports a typed 408 time-out after the (shortened) retransmission schedule', async () => {
    // A port nobody listens on: bind, read the port, close.
    const { createSocket } = await import('node:dgram');
    const s = createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
    const port = s.address().port;
    await new Promise<void>((r) => s.close(() => r()));
    const t0 = performance.now();
    const err = await openTurnAllocation({
      server: { address: '127.0.0.1', port },
      username: 'u',
      password: 'p',
      localAddress: '127.0.0.1',
      timing: { rtoMs: 50, rc: 3, rm: 4 },
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TurnError);
    expect((err as TurnError).errorCode).toBe(408);
    expect((err as TurnError).reason).toBe('timeout');
    // 3 sends at 0, 50, 150 ms, then 4 × 50 ms: 350 ms.
    expect(performance.now() - t0).toBeGreaterThanOrEqual(340);
    expect(performance.now() - t0).toBeLessThan(3000);
  });

  it('TCP: a refused connection rejects with a typed error', async () => {
    const { createServer } = await import('node:net');
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const port = (srv.address() as { port: number }).port;
    await new Promise<void>((r) => srv.close(() => r()));
    const err = await openTurnAllocation({ server: { address: '127.0.0.1', port }, transport: 'tcp', username: 'u', password: 'p' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TurnError);
    expect((err as TurnError).reason).toBe('connection-closed');
  });
});
