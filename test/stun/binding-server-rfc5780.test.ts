/**
 * The Binding server's NAT behaviour discovery (RFC 5780 §6): OTHER-ADDRESS, RESPONSE-ORIGIN, MAPPED-ADDRESS beside
 * XOR-MAPPED-ADDRESS, CHANGE-REQUEST choosing the source (§6.1 Table 1), 420 without a second address, and the size
 * bound. Expected responses are written out from the RFCs' field layouts, byte by byte, not with our encoder.
 */
import { describe, expect, it } from 'vitest';
import { MAX_RFC5780_RESPONSE_BYTES, StunBindingServer } from '../../src/stun/binding-server.js';
import { Attr, decodeStunMessage, getAttribute, NatAttr } from '../../src/stun/index.js';
import type { Datagram, TransportAddress } from '../../src/types.js';

const A1 = '192.0.2.1';
const A2 = '192.0.2.2';
const P1 = 3478; // 0x0d96
const P2 = 3479; // 0x0d97
const CLIENT: TransportAddress = { address: '203.0.113.5', port: 40000 }; // 0x9c40
const TXID = [0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae];

const u16 = (n: number) => [n >> 8, n & 0xff];
const ip4 = (a: string) => a.split('.').map(Number);
/** A Binding request, by hand: type 0x0001, length, cookie, transaction ID, then the attributes as given. */
const requestBytes = (attrs: number[] = []) => Uint8Array.from([0x00, 0x01, ...u16(attrs.length), 0x21, 0x12, 0xa4, 0x42, ...TXID, ...attrs]);
/** CHANGE-REQUEST (RFC 5780 §7.2): type 0x0003, length 4, flags A (change IP, 0x4) and B (change port, 0x2). */
const changeRequest = (ip: boolean, port: boolean) => [0x00, 0x03, 0x00, 0x04, 0, 0, 0, (ip ? 4 : 0) | (port ? 2 : 0)];
/** An IPv4 MAPPED-ADDRESS-layout attribute (RFC 8489 §14.1): type, length 8, 0, family 1, port, address. */
const plainAddress = (type: number, a: TransportAddress) => [...u16(type), 0x00, 0x08, 0x00, 0x01, ...u16(a.port), ...ip4(a.address)];
/** XOR-MAPPED-ADDRESS (RFC 8489 §14.2): port XOR 0x2112, address XOR the magic cookie. */
const xorAddress = (a: TransportAddress) => {
  const cookie = [0x21, 0x12, 0xa4, 0x42];
  return [0x00, 0x20, 0x00, 0x08, 0x00, 0x01, ...u16(a.port ^ 0x2112), ...ip4(a.address).map((b, i) => b ^ cookie[i]!)];
};
const successBytes = (attrs: number[]) => Uint8Array.from([0x01, 0x01, ...u16(attrs.length), 0x21, 0x12, 0xa4, 0x42, ...TXID, ...attrs]);

const rfc5780 = { primary: { address: A1, port: P1 }, alternate: { address: A2, port: P2 } };

function exchange(server: StunBindingServer, local: TransportAddress, data: Uint8Array): Datagram[] {
  server.handleReceive(0, { local, remote: CLIENT, data });
  const out: Datagram[] = [];
  for (let d = server.pollTransmit(); d; d = server.pollTransmit()) out.push(d);
  return out;
}

describe('RFC 5780 responses, byte for byte', () => {
  // §6.1 Table 1, for a request arriving on each of the four sockets and each flag combination.
  const table: [string, TransportAddress, boolean, boolean, TransportAddress, TransportAddress][] = [];
  for (const [da, ca] of [[A1, A2], [A2, A1]] as const) {
    for (const [dp, cp] of [[P1, P2], [P2, P1]] as const) {
      table.push([`none at ${da}:${dp}`, { address: da, port: dp }, false, false, { address: da, port: dp }, { address: ca, port: cp }]);
      table.push([`change IP at ${da}:${dp}`, { address: da, port: dp }, true, false, { address: ca, port: dp }, { address: ca, port: cp }]);
      table.push([`change port at ${da}:${dp}`, { address: da, port: dp }, false, true, { address: da, port: cp }, { address: ca, port: cp }]);
      table.push([`change IP and port at ${da}:${dp}`, { address: da, port: dp }, true, true, { address: ca, port: cp }, { address: ca, port: cp }]);
    }
  }
  it.each(table)('%s: sent from Table 1 source, OTHER-ADDRESS Ca:Cp, RESPONSE-ORIGIN the source', (_name, local, ip, port, source, other) => {
    const server = new StunBindingServer({ rfc5780 });
    const [res, ...more] = exchange(server, local, requestBytes(changeRequest(ip, port)));
    expect(more).toHaveLength(0);
    expect(res!.local).toEqual(source);
    expect(res!.remote).toEqual(CLIENT);
    const expected = successBytes([...xorAddress(CLIENT), ...plainAddress(0x0001, CLIENT), ...plainAddress(0x802b, source), ...plainAddress(0x802c, other)]);
    expect([...res!.data]).toEqual([...expected]);
    expect(server.stats.changedOriginResponses).toBe(ip || port ? 1 : 0);
  });

  it('a request without RFC 5780 attributes still gets OTHER-ADDRESS and RESPONSE-ORIGIN (§6.1)', () => {
    const server = new StunBindingServer({ rfc5780 });
    const [res] = exchange(server, { address: A1, port: P1 }, requestBytes());
    const self = { address: A1, port: P1 };
    expect([...res!.data]).toEqual([...successBytes([...xorAddress(CLIENT), ...plainAddress(0x0001, CLIENT), ...plainAddress(0x802b, self), ...plainAddress(0x802c, { address: A2, port: P2 })])]);
  });

  it('a server without a second address answers CHANGE-REQUEST with 420 listing 0x0003, and sends no OTHER-ADDRESS (§6)', () => {
    const server = new StunBindingServer();
    const local = { address: A1, port: P1 };
    const [res] = exchange(server, local, requestBytes(changeRequest(true, true)));
    // 420: class 4 number 20, reason "Unknown Attribute" (17 bytes, padded to 20), then UNKNOWN-ATTRIBUTES 0x0003.
    const reason = [...'Unknown Attribute'].map((c) => c.charCodeAt(0));
    const errorCode = [0x00, 0x09, ...u16(4 + reason.length), 0, 0, 4, 20, ...reason, 0, 0, 0];
    const unknown = [0x00, 0x0a, 0x00, 0x02, 0x00, 0x03, 0, 0];
    const body = [...errorCode, ...unknown];
    expect(res!.local).toEqual(local);
    expect([...res!.data]).toEqual([0x01, 0x11, ...u16(body.length), 0x21, 0x12, 0xa4, 0x42, ...TXID, ...body]);
    const [plain] = exchange(server, local, requestBytes());
    expect([...plain!.data]).toEqual([...successBytes(xorAddress(CLIENT))]);
  });

  it('a request on an address the server was not given is answered as by a plain server (420 for CHANGE-REQUEST)', () => {
    const server = new StunBindingServer({ rfc5780 });
    const [res] = exchange(server, { address: A1, port: 5000 }, requestBytes(changeRequest(false, true)));
    expect(decodeStunMessage(res!.data).cls).toBe('error');
    expect(getAttribute(decodeStunMessage(res!.data), Attr.ERROR_CODE)?.code).toBe(420);
    const [plain] = exchange(server, { address: A1, port: 5000 }, requestBytes());
    expect(getAttribute(decodeStunMessage(plain!.data), NatAttr.OTHER_ADDRESS)).toBeUndefined();
  });

  it('a CHANGE-REQUEST over TCP is not honoured (420): responses never leave another connection', () => {
    const server = new StunBindingServer({ rfc5780 });
    server.handleReceive(0, { local: { address: A1, port: P1 }, remote: CLIENT, data: requestBytes(changeRequest(true, false)), transport: 'tcp' });
    const res = server.pollTransmit()!;
    expect(res.local).toEqual({ address: A1, port: P1 });
    expect(getAttribute(decodeStunMessage(res.data), Attr.ERROR_CODE)?.code).toBe(420);
  });

  it('RESPONSE-PORT and PADDING are not served: 420 (they would redirect or pad the answer)', () => {
    const server = new StunBindingServer({ rfc5780 });
    const responsePort = [0x00, 0x27, 0x00, 0x04, ...u16(9), 0, 0];
    const padding = [0x00, 0x26, 0x00, 0x08, 0, 0, 0, 0, 0, 0, 0, 0];
    for (const [a, type] of [[responsePort, 0x27], [padding, 0x26]] as const) {
      const [res, ...more] = exchange(server, { address: A1, port: P1 }, requestBytes([...a]));
      expect(more).toHaveLength(0);
      expect(res!.remote).toEqual(CLIENT);
      const m = decodeStunMessage(res!.data);
      expect(getAttribute(m, Attr.ERROR_CODE)?.code).toBe(420);
      expect(getAttribute(m, Attr.UNKNOWN_ATTRIBUTES)).toEqual([type]);
    }
  });

  it('a malformed CHANGE-REQUEST gets 400 from the address it arrived on', () => {
    const server = new StunBindingServer({ rfc5780 });
    const [res] = exchange(server, { address: A1, port: P1 }, requestBytes([0x00, 0x03, 0x00, 0x02, 0, 6, 0, 0]));
    expect(res!.local).toEqual({ address: A1, port: P1 });
    expect(getAttribute(decodeStunMessage(res!.data), Attr.ERROR_CODE)?.code).toBe(400);
  });

  it(`the IPv6 worst case is exactly ${MAX_RFC5780_RESPONSE_BYTES} bytes, one response per request`, () => {
    const server = new StunBindingServer({
      software: 'x'.repeat(64),
      alwaysFingerprint: true,
      rfc5780: { primary: { address: '2001:db8::1', port: P1 }, alternate: { address: '2001:db8::2', port: P2 } },
    });
    server.handleReceive(0, { local: { address: '2001:db8::1', port: P1 }, remote: { address: '2001:db8::99', port: 1 }, data: requestBytes(changeRequest(true, true)) });
    const res = server.pollTransmit()!;
    expect(server.pollTransmit()).toBeUndefined();
    expect(res.data.length).toBe(MAX_RFC5780_RESPONSE_BYTES);
    expect(res.local).toEqual({ address: '2001:db8::2', port: P2 });
  });

  it('refuses a configuration it cannot serve', () => {
    const bad = [
      { primary: { address: A1, port: P1 }, alternate: { address: A1, port: P2 } },
      { primary: { address: A1, port: P1 }, alternate: { address: A2, port: P1 } },
      { primary: { address: A1, port: P1 }, alternate: { address: '2001:db8::2', port: P2 } },
      { primary: { address: 'stun.example', port: P1 }, alternate: { address: A2, port: P2 } },
      { primary: { address: A1, port: 0 }, alternate: { address: A2, port: P2 } },
    ];
    for (const r of bad) expect(() => new StunBindingServer({ rfc5780: r })).toThrow(RangeError);
  });
});
