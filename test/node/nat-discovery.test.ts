/**
 * RFC 5780 over real loopback sockets: our Node STUN server on 127.0.0.1 and 127.0.0.2 (both on `lo`) answering
 * CHANGE-REQUEST from its other sockets, `discoverNat` against it, and `discoverNat` against a real coturn started
 * with two listening addresses. Loopback has no NAT, so the classification here is the no-NAT one; the NAT
 * combinations are covered in virtual time (test/stun/nat-discovery.test.ts). Every socket and process is closed.
 */
import { createSocket } from 'node:dgram';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { discoverNat } from '../../src/node/nat-discovery.js';
import { startStunServer, type RunningStunServer } from '../../src/node/stun-server.js';
import { decodeStunMessage, getAttribute, NatAttr } from '../../src/stun/index.js';
import { startCoturn, type Coturn } from '../helpers/coturn.js';

const FAST = { rtoMs: 100, rc: 3, rm: 4 }; // a silent test gives up after 0.7 s

async function ask(server: RunningStunServer, change: number): Promise<{ from: { address: string; port: number }; other: unknown; origin: unknown }> {
  const s = createSocket('udp4');
  try {
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
    const txid = Buffer.from('0102030405060708090a0b0c', 'hex');
    const req = Buffer.concat([Buffer.from('000100082112a442', 'hex'), txid, Buffer.from([0, 3, 0, 4, 0, 0, 0, change])]);
    const got = new Promise<{ msg: Buffer; rinfo: { address: string; port: number } }>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no answer')), 2000);
      s.once('message', (msg, rinfo) => {
        clearTimeout(t);
        resolve({ msg, rinfo });
      });
    });
    s.send(req, server.port, server.address);
    const { msg, rinfo } = await got;
    const m = decodeStunMessage(new Uint8Array(msg));
    return { from: { address: rinfo.address, port: rinfo.port }, other: getAttribute(m, NatAttr.OTHER_ADDRESS), origin: getAttribute(m, NatAttr.RESPONSE_ORIGIN) };
  } finally {
    s.close();
  }
}

describe('our STUN server with a second loopback address', () => {
  let server: RunningStunServer;
  beforeAll(async () => {
    server = await startStunServer({ address: '127.0.0.1', alternate: { address: '127.0.0.2' } });
  });
  afterAll(() => server?.close());

  it('listens on both ports of both addresses and answers CHANGE-REQUEST from the socket Table 1 names', async () => {
    const alt = server.alternate!;
    expect(alt.address).toBe('127.0.0.2');
    expect(alt.port).not.toBe(server.port);
    const other = { address: '127.0.0.2', port: alt.port };
    for (const [flags, from] of [
      [0, { address: '127.0.0.1', port: server.port }],
      [4, { address: '127.0.0.2', port: server.port }],
      [2, { address: '127.0.0.1', port: alt.port }],
      [6, { address: '127.0.0.2', port: alt.port }],
    ] as const) {
      const r = await ask(server, flags);
      expect(r.from, `flags ${flags}`).toEqual(from);
      expect(r.origin).toEqual(from);
      expect(r.other).toEqual(other);
    }
  });

  it('discoverNat: no NAT on loopback, endpoint-independent filtering through the other sockets, hairpinning', async () => {
    const steps: string[] = [];
    const before = server.stats.changedOriginResponses;
    const r = await discoverNat({ server: { address: server.address, port: server.port }, localAddress: '127.0.0.1', timing: FAST, onStep: (s) => steps.push(s) });
    expect(r).toMatchObject({ udp: true, natted: false, mapping: 'endpoint-independent', filtering: 'endpoint-independent', hairpinning: true, problems: [] });
    expect(r.otherAddress).toEqual(server.alternate);
    expect(steps).toEqual(['connectivity', 'filtering', 'mapping', 'hairpinning']);
    expect(server.stats.changedOriginResponses - before).toBeGreaterThanOrEqual(1);
  });

  it('learns the local address from the route when none is given', async () => {
    const r = await discoverNat({ server: { address: server.address, port: server.port }, timing: FAST, hairpin: false });
    expect(r.mappedAddress?.address).toBe('127.0.0.1');
    expect(r.hairpinning).toBeUndefined();
  });

  it('rejects a name for a server, and an aborted run closes its sockets', async () => {
    await expect(discoverNat({ server: { address: 'stun.invalid', port: 3478 } })).rejects.toThrow(RangeError);
    const ac = new AbortController();
    const p = discoverNat({ server: { address: '127.0.0.1', port: 9 }, localAddress: '127.0.0.1', signal: ac.signal });
    setTimeout(() => ac.abort(new Error('stop')), 50);
    await expect(p).rejects.toThrow('stop');
  });
});

describe('a plain server (no second address)', () => {
  it('discoverNat reports the mapped address and why mapping and filtering are unknown', async () => {
    const plain = await startStunServer({ address: '127.0.0.1' });
    try {
      const r = await discoverNat({ server: { address: plain.address, port: plain.port }, localAddress: '127.0.0.1', timing: FAST, hairpin: false });
      expect(r).toMatchObject({ udp: true, natted: false, otherAddress: undefined, mapping: undefined, filtering: undefined });
      expect(r.problems.join()).toMatch(/OTHER-ADDRESS/);
    } finally {
      await plain.close();
    }
  });
});

describe('coturn with RFC 5780 on 127.0.0.1 and 127.0.0.2', () => {
  let coturn: Coturn;
  beforeAll(async () => {
    coturn = await startCoturn({ tls: false, rfc5780AltIp: '127.0.0.2' });
  }, 20_000);
  afterAll(() => coturn?.stop());

  it('discoverNat classifies loopback through coturn as it does through our server', async () => {
    const r = await discoverNat({ server: { address: '127.0.0.1', port: coturn.port }, localAddress: '127.0.0.1', timing: FAST });
    expect(r, coturn.log().slice(-2000)).toMatchObject({ udp: true, natted: false, mapping: 'endpoint-independent', filtering: 'endpoint-independent', hairpinning: true, problems: [] });
    expect(r.otherAddress).toEqual({ address: '127.0.0.2', port: coturn.altPort });
    expect(r.responseOrigin).toEqual({ address: '127.0.0.1', port: coturn.port });
  });
});
