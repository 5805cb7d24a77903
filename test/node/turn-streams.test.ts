/**
 * TurnStreams (the Node edge of TURN over TCP) against a plain TCP server on loopback that plays the TURN server's
 * byte stream: frames split across writes are re-assembled, ChannelData padding is stripped, transmits go to the
 * right connection, a stream that cannot be framed is closed and reported, and close() leaves no handle.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { TurnStreams, type TurnStreamsOptions } from '../../src/node/turn-streams.js';
import { encodeStunMessage, StunMethod } from '../../src/stun/index.js';
import { encodeChannelData } from '../../src/turnclient/index.js';
import type { Datagram, TransportAddress } from '../../src/types.js';

const streamHandles = () => process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap' || r === 'TLSWrap').length;

interface Harness {
  readonly streams: TurnStreams;
  readonly server: TransportAddress;
  readonly datagrams: Datagram[];
  readonly log: string[];
  /** The server side of the next accepted connection. */
  readonly accepted: Promise<Socket>;
  readonly connected: Promise<TransportAddress>;
}

const servers: Server[] = [];
const peers = new Set<Socket>();
const toClose: TurnStreams[] = [];
afterEach(async () => {
  await Promise.all(toClose.splice(0).map((s) => s.close()));
  for (const p of peers) p.destroy();
  peers.clear();
  await Promise.all(servers.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))));
});

async function harness(o: Partial<TurnStreamsOptions> = {}): Promise<Harness> {
  let accept!: (s: Socket) => void;
  const accepted = new Promise<Socket>((r) => (accept = r));
  const srv = createServer((s) => {
    peers.add(s);
    s.on('error', () => {});
    accept(s);
  });
  servers.push(srv);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const server = { address: '127.0.0.1', port: (srv.address() as { port: number }).port };
  const datagrams: Datagram[] = [];
  const log: string[] = [];
  let onConnected!: (l: TransportAddress) => void;
  const connected = new Promise<TransportAddress>((r) => (onConnected = r));
  const streams = new TurnStreams({
    connectTimeoutMs: 2000,
    onDatagram: (d) => datagrams.push(d),
    onConnected: (id, local) => {
      log.push(`connected ${id}`);
      onConnected(local);
      return true;
    },
    onConnectFailed: (id, reason) => log.push(`failed ${id} ${reason}`),
    onClosed: (id) => log.push(`closed ${id}`),
    ...o,
  });
  toClose.push(streams);
  return { streams, server, datagrams, log, accepted, connected };
}

const until = async (f: () => boolean, ms = 2000): Promise<void> => {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
};

const stun = (fill: number) =>
  encodeStunMessage({ method: StunMethod.Binding, cls: 'success', transactionId: new Uint8Array(12).fill(fill), attributes: [] }, { fingerprint: true });

describe('TurnStreams', () => {
  it('frames split across writes come back whole, ChannelData without padding, tagged with the transport', async () => {
    const h = await harness();
    h.streams.connect({ type: 'turn-connect', id: 'c1', server: h.server, transport: 'tcp', base: { address: '127.0.0.1', port: 5000 } });
    const peer = await h.accepted;
    const local = await h.connected;
    expect(local.address).toBe('127.0.0.1');
    const a = stun(1);
    const cd = encodeChannelData(0x4001, new Uint8Array([1, 2, 3, 4, 5]), true); // 4 + 5 bytes, padded to 12
    expect(cd.length).toBe(12);
    const wire = new Uint8Array([...a, ...cd]);
    peer.write(wire.subarray(0, 5));
    await new Promise((r) => setTimeout(r, 20));
    peer.write(wire.subarray(5));
    await until(() => h.datagrams.length === 2);
    expect(h.datagrams[0]).toEqual({ local, remote: h.server, data: a, transport: 'tcp' });
    expect(Array.from(h.datagrams[1]!.data)).toEqual(Array.from(cd.subarray(0, 9)));
    expect(h.streams.stats.frames).toBe(2);
  });

  it('send writes to the connection named by local + remote + transport, and drops anything else', async () => {
    const h = await harness();
    h.streams.connect({ type: 'turn-connect', id: 'c1', server: h.server, transport: 'tcp', base: { address: '127.0.0.1', port: 5000 } });
    const peer = await h.accepted;
    const local = await h.connected;
    const got: Buffer[] = [];
    peer.on('data', (b: Buffer) => got.push(b));
    const frame = stun(2);
    expect(h.streams.send({ local, remote: h.server, data: frame, transport: 'tcp' })).toBe(true);
    expect(h.streams.send({ local, remote: h.server, data: frame, transport: 'tls' })).toBe(false);
    expect(h.streams.send({ local: { ...local, port: local.port + 1 }, remote: h.server, data: frame, transport: 'tcp' })).toBe(false);
    await until(() => Buffer.concat(got).length === frame.length);
    expect(new Uint8Array(Buffer.concat(got))).toEqual(frame);
    expect(h.streams.stats.dropped).toBe(2);
  });

  it('a byte stream that cannot be framed closes the connection and reports it', async () => {
    const h = await harness();
    h.streams.connect({ type: 'turn-connect', id: 'c1', server: h.server, transport: 'tcp', base: { address: '127.0.0.1', port: 5000 } });
    const peer = await h.accepted;
    await h.connected;
    peer.write(Buffer.from([0x80, 0, 0, 4, 0, 0, 0, 0])); // first byte neither STUN nor ChannelData
    await until(() => h.log.includes('closed c1'));
    expect(h.streams.stats.framingErrors).toBe(1);
    expect(h.streams.size).toBe(0);
  });

  it('the server closing the connection is reported once; disconnect() is not reported', async () => {
    const h = await harness();
    h.streams.connect({ type: 'turn-connect', id: 'c1', server: h.server, transport: 'tcp', base: { address: '127.0.0.1', port: 5000 } });
    const peer = await h.accepted;
    await h.connected;
    peer.end();
    await until(() => h.log.includes('closed c1'));
    expect(h.log.filter((l) => l === 'closed c1')).toHaveLength(1);

    const h2 = await harness();
    h2.streams.connect({ type: 'turn-connect', id: 'c2', server: h2.server, transport: 'tcp', base: { address: '127.0.0.1', port: 5000 } });
    await h2.accepted;
    await h2.connected;
    h2.streams.handleEvent({ type: 'turn-disconnect', id: 'c2' });
    await new Promise((r) => setTimeout(r, 50));
    expect(h2.log).toEqual(['connected c2']);
  });

  it('onConnected returning false closes the new connection', async () => {
    const h = await harness({ onConnected: () => false });
    const before = streamHandles();
    h.streams.connect({ type: 'turn-connect', id: 'c1', server: h.server, transport: 'tcp', base: { address: '127.0.0.1', port: 5000 } });
    const peer = await h.accepted;
    await new Promise<void>((r) => peer.once('close', () => r()));
    expect(h.streams.size).toBe(0);
    await h.streams.close();
    expect(streamHandles()).toBe(before);
  });

  it('close() ends live connections and leaves no handle', async () => {
    const h = await harness();
    const before = streamHandles();
    h.streams.connect({ type: 'turn-connect', id: 'c1', server: h.server, transport: 'tcp', base: { address: '127.0.0.1', port: 5000 } });
    const peer = await h.accepted;
    await h.connected;
    const peerClosed = new Promise<void>((r) => peer.once('close', () => r()));
    await h.streams.close();
    await peerClosed;
    expect(streamHandles()).toBe(before);
    expect(h.log).toEqual(['connected c1']);
    // After close, new requests are ignored.
    h.streams.connect({ type: 'turn-connect', id: 'c3', server: h.server, transport: 'tcp', base: { address: '127.0.0.1', port: 5000 } });
    expect(h.streams.size).toBe(0);
  });
});
