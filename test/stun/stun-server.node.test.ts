/**
 * The Node UDP STUN server over real loopback sockets (127.0.0.1, and ::1 when it can be bound). Every socket is
 * closed and every wait is bounded.
 */
import { createSocket, type Socket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { startStunServer, type RunningStunServer } from '../../src/node/stun-server.js';
import { cryptoRandom } from '../../src/node/random.js';
import {
  Attr,
  attr,
  decodeStunMessage,
  encodeStunMessage,
  getAttribute,
  newTransactionId,
  StunMethod,
  TransactionTable,
  type DecodedStunMessage,
  type StunAttribute,
} from '../../src/stun/index.js';

const WAIT_MS = 3000;

async function canBind(address: string): Promise<boolean> {
  const s = createSocket({ type: 'udp6', ipv6Only: true });
  try {
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.bind({ address, port: 0 }, () => resolve());
    });
    return true;
  } catch {
    return false;
  } finally {
    s.close();
  }
}
const ipv6 = await canBind('::1');

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function clientSocket(type: 'udp4' | 'udp6', address: string): Promise<Socket> {
  const s = createSocket({ type, ipv6Only: type === 'udp6' });
  await new Promise<void>((resolve) => s.bind({ address, port: 0 }, () => resolve()));
  cleanup.push(() => new Promise<void>((resolve) => s.close(() => resolve())));
  return s;
}

async function server(address: string, software?: string): Promise<RunningStunServer> {
  const s = await startStunServer(software === undefined ? { address, port: 0 } : { address, port: 0, software });
  cleanup.push(() => s.close());
  return s;
}

/**
 * Sends a Binding request through a TransactionTable, retransmitting on the RFC schedule in real time, until the
 * matching response arrives (bounded by WAIT_MS).
 */
async function binding(socket: Socket, srv: RunningStunServer, attributes: StunAttribute[] = []): Promise<DecodedStunMessage> {
  const table = new TransactionTable<null>();
  const txid = newTransactionId(cryptoRandom);
  const data = encodeStunMessage({ method: StunMethod.Binding, cls: 'request', transactionId: txid, attributes }, { fingerprint: true });
  const local = { address: socket.address().address, port: socket.address().port };
  const t0 = performance.now();
  const flush = () => {
    for (let d = table.pollTransmit(); d; d = table.pollTransmit()) socket.send(d.data, d.remote.port, d.remote.address);
  };
  return new Promise<DecodedStunMessage>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      const at = table.pollTimeout();
      if (at !== undefined) timer = setTimeout(() => (table.handleTimeout(performance.now() - t0), flush(), arm()), Math.max(0, at - (performance.now() - t0)));
    };
    const giveUp = setTimeout(() => finish(new Error('no STUN response in time')), WAIT_MS);
    const onMessage = (msg: Buffer) => {
      const m = decodeStunMessage(new Uint8Array(msg));
      if (table.take(m.transactionId) !== undefined) finish(m);
    };
    const finish = (r: DecodedStunMessage | Error) => {
      clearTimeout(timer);
      clearTimeout(giveUp);
      socket.off('message', onMessage);
      if (r instanceof Error) reject(r);
      else resolve(r);
    };
    socket.on('message', onMessage);
    table.start(0, txid, { local, remote: { address: srv.address, port: srv.port }, data }, null);
    flush();
    arm();
  });
}

function sendRaw(socket: Socket, srv: RunningStunServer, data: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => socket.send(data, srv.port, srv.address, (err) => (err ? reject(err) : resolve())));
}

describe('startStunServer over loopback UDP', () => {
  it('IPv4: Binding round trip reports the client address and port', async () => {
    const srv = await server('127.0.0.1', 'icewire-test');
    expect(srv.address).toBe('127.0.0.1');
    expect(srv.port).toBeGreaterThan(0);
    const client = await clientSocket('udp4', '127.0.0.1');
    const m = await binding(client, srv);
    expect(m.cls).toBe('success');
    expect(getAttribute(m, Attr.XOR_MAPPED_ADDRESS)).toEqual({ address: '127.0.0.1', port: client.address().port });
    expect(getAttribute(m, Attr.SOFTWARE)).toBe('icewire-test');
    expect(m.hasFingerprint).toBe(true);
    expect(srv.stats.successResponses).toBeGreaterThanOrEqual(1);
  });

  it.skipIf(!ipv6)('IPv6 (::1): Binding round trip', async () => {
    const srv = await server('::1');
    const client = await clientSocket('udp6', '::1');
    const m = await binding(client, srv);
    expect(getAttribute(m, Attr.XOR_MAPPED_ADDRESS)).toEqual({ address: '::1', port: client.address().port });
  });

  it('malformed datagrams are counted, not fatal, and the server keeps answering; 420 for unknown attributes', async () => {
    const srv = await server('127.0.0.1');
    const client = await clientSocket('udp4', '127.0.0.1');
    const good = encodeStunMessage({ method: StunMethod.Binding, cls: 'request', transactionId: new Uint8Array(12).fill(1), attributes: [] }, { fingerprint: true });
    const badCrc = good.slice();
    badCrc[badCrc.length - 1]! ^= 0xff;
    await sendRaw(client, srv, Uint8Array.of(1, 2, 3)); // not STUN
    await sendRaw(client, srv, good.subarray(0, 20 + 4)); // Length runs past the datagram
    await sendRaw(client, srv, badCrc);
    await sendRaw(client, srv, new Uint8Array(1200).fill(0x41)); // ChannelData-looking junk
    const txid = new Uint8Array(12).fill(9);
    const m420 = await binding(client, srv, [{ type: 0x0033, value: new Uint8Array(4) }, attr(Attr.PRIORITY, 7, txid)]);
    expect(m420.cls).toBe('error');
    expect(getAttribute(m420, Attr.ERROR_CODE)?.code).toBe(420);
    expect(getAttribute(m420, Attr.UNKNOWN_ATTRIBUTES)).toEqual([0x0033]);
    // Loopback delivers in order, so the junk sent before was processed before this answer.
    const s = srv.stats;
    expect(s.dropped['not-stun']).toBe(2);
    expect(s.dropped.malformed).toBe(1);
    expect(s.dropped['fingerprint-mismatch']).toBe(1);
    expect(s.unknownAttributeResponses).toBeGreaterThanOrEqual(1);
    expect((await binding(client, srv)).cls).toBe('success');
  });

  it('close resolves, twice, and frees the port', async () => {
    const srv = await startStunServer({ address: '127.0.0.1', port: 0 });
    await srv.close();
    await srv.close();
    const again = await startStunServer({ address: '127.0.0.1', port: srv.port });
    expect(again.port).toBe(srv.port);
    await again.close();
  });

  it('a bind failure rejects', async () => {
    const srv = await server('127.0.0.1');
    await expect(startStunServer({ address: '127.0.0.1', port: srv.port })).rejects.toThrow();
  });
});
