/**
 * The sans-IO Binding server (RFC 8489 §6.3): answers, 420 and 400 paths, drops with counters, the response-size
 * bound, and robustness against arbitrary input.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  MAX_BINDING_RESPONSE_BYTES,
  MAX_QUEUED_RESPONSES,
  MAX_UNKNOWN_ATTRIBUTES,
  StunBindingServer,
} from '../../src/stun/binding-server.js';
import {
  Attr,
  attr,
  decodeStunMessage,
  encodeStunMessage,
  getAttribute,
  shortTermKey,
  StunMethod,
  type EncodeOptions,
  type StunAttribute,
  type StunClass,
} from '../../src/stun/index.js';
import type { Datagram, TransportAddress } from '../../src/types.js';

const LOCAL: TransportAddress = { address: '192.0.2.10', port: 3478 };
const CLIENT: TransportAddress = { address: '198.51.100.7', port: 40123 };
const TXID = Uint8Array.from({ length: 12 }, (_, i) => 0xa0 + i);

function request(attributes: StunAttribute[] = [], options: EncodeOptions = {}, cls: StunClass = 'request', method: number = StunMethod.Binding): Uint8Array {
  return encodeStunMessage({ method, cls, transactionId: TXID, attributes }, options);
}

function exchange(server: StunBindingServer, data: Uint8Array, remote: TransportAddress = CLIENT, transport?: Datagram['transport']): Datagram[] {
  const dg: Datagram = transport ? { local: LOCAL, remote, data, transport } : { local: LOCAL, remote, data };
  server.handleReceive(0, dg);
  const out: Datagram[] = [];
  for (let d = server.pollTransmit(); d; d = server.pollTransmit()) out.push(d);
  return out;
}

describe('success responses', () => {
  it('answers a Binding request with XOR-MAPPED-ADDRESS of the source, same transaction ID, back to the source', () => {
    const server = new StunBindingServer();
    const [res, ...more] = exchange(server, request());
    expect(more).toHaveLength(0);
    expect(res!.local).toEqual(LOCAL);
    expect(res!.remote).toEqual(CLIENT);
    expect(res!.transport).toBeUndefined();
    const m = decodeStunMessage(res!.data);
    expect(m.cls).toBe('success');
    expect(m.method).toBe(StunMethod.Binding);
    expect([...m.transactionId]).toEqual([...TXID]);
    expect(getAttribute(m, Attr.XOR_MAPPED_ADDRESS)).toEqual(CLIENT);
    expect(m.hasFingerprint).toBe(false);
    expect(m.attributes).toHaveLength(1);
    expect(server.stats).toMatchObject({ received: 1, answered: 1, successResponses: 1 });
  });

  it('mirrors FINGERPRINT, adds SOFTWARE when configured, keeps the transport', () => {
    const server = new StunBindingServer({ software: 'icewire test' });
    const [res] = exchange(server, request([], { fingerprint: true }), CLIENT, 'tcp');
    const m = decodeStunMessage(res!.data);
    expect(m.hasFingerprint).toBe(true);
    expect(getAttribute(m, Attr.SOFTWARE)).toBe('icewire test');
    expect(res!.transport).toBe('tcp');
    const always = new StunBindingServer({ alwaysFingerprint: true });
    expect(decodeStunMessage(exchange(always, request())[0]!.data).hasFingerprint).toBe(true);
  });

  it('IPv6 sources, and IPv4-mapped IPv6 sources reported as IPv4', () => {
    const server = new StunBindingServer();
    const v6 = { address: '2001:db8::7', port: 1 };
    expect(getAttribute(decodeStunMessage(exchange(server, request(), v6)[0]!.data), Attr.XOR_MAPPED_ADDRESS)).toEqual(v6);
    const mapped = { address: '::ffff:203.0.113.9', port: 5 };
    expect(getAttribute(decodeStunMessage(exchange(server, request(), mapped)[0]!.data), Attr.XOR_MAPPED_ADDRESS)).toEqual({ address: '203.0.113.9', port: 5 });
  });

  it('an ICE check (USERNAME, PRIORITY, ICE-CONTROLLING, USE-CANDIDATE, MESSAGE-INTEGRITY) is answered without integrity', () => {
    const server = new StunBindingServer();
    const check = request(
      [attr(Attr.USERNAME, 'a:b', TXID), attr(Attr.PRIORITY, 1, TXID), attr(Attr.ICE_CONTROLLING, 5n, TXID), attr(Attr.USE_CANDIDATE, true, TXID)],
      { integrityKey: shortTermKey('pw'), fingerprint: true },
    );
    const m = decodeStunMessage(exchange(server, check)[0]!.data);
    expect(m.cls).toBe('success');
    expect(m.integrityOffset).toBe(-1);
    expect(getAttribute(m, Attr.USERNAME)).toBeUndefined(); // RFC 8489 §9.1.3: never echo USERNAME
  });

  it('a malformed comprehension-optional attribute is ignored (RFC 8489 §6.3)', () => {
    const server = new StunBindingServer();
    const res = exchange(server, request([{ type: Attr.SOFTWARE.type, value: Uint8Array.of(0xff, 0xfe) }]));
    expect(decodeStunMessage(res[0]!.data).cls).toBe('success');
  });
});

describe('error responses', () => {
  it('420 lists the unknown comprehension-required attributes once each, and ignores unknown optional ones', () => {
    const server = new StunBindingServer();
    const res = exchange(
      server,
      request([
        { type: 0x0031, value: new Uint8Array(4) },
        { type: 0x8fff, value: new Uint8Array(1) }, // unknown, comprehension-optional: ignored
        { type: 0x7ffe, value: new Uint8Array(0) },
        { type: 0x0031, value: new Uint8Array(8) },
        attr(Attr.PRIORITY, 1, TXID),
      ], { fingerprint: true }),
    );
    const m = decodeStunMessage(res[0]!.data);
    expect(m.cls).toBe('error');
    expect(getAttribute(m, Attr.ERROR_CODE)).toEqual({ code: 420, reason: 'Unknown Attribute' });
    expect(getAttribute(m, Attr.UNKNOWN_ATTRIBUTES)).toEqual([0x0031, 0x7ffe]);
    expect(getAttribute(m, Attr.XOR_MAPPED_ADDRESS)).toBeUndefined();
    expect(m.hasFingerprint).toBe(true);
    expect(server.stats).toMatchObject({ answered: 1, unknownAttributeResponses: 1, successResponses: 0 });
  });

  it(`420 lists at most ${MAX_UNKNOWN_ATTRIBUTES} types, whatever the request carries`, () => {
    const server = new StunBindingServer();
    // 60: more than the 420 may list, under the decoder's attribute cap (MAX_STUN_ATTRIBUTES).
    const many = Array.from({ length: 60 }, (_, i) => ({ type: 0x0100 + i, value: new Uint8Array(0) }));
    const m = decodeStunMessage(exchange(server, request(many))[0]!.data);
    expect(getAttribute(m, Attr.UNKNOWN_ATTRIBUTES)).toEqual(many.slice(0, MAX_UNKNOWN_ATTRIBUTES).map((a) => a.type));
  });

  it('400 when a known comprehension-required attribute is malformed (PRIORITY of 3 bytes, USE-CANDIDATE with a value)', () => {
    const server = new StunBindingServer();
    for (const bad of [
      { type: Attr.PRIORITY.type, value: new Uint8Array(3) },
      { type: Attr.USE_CANDIDATE.type, value: new Uint8Array(4) },
      { type: Attr.USERNAME.type, value: Uint8Array.of(0xc3) },
    ]) {
      const m = decodeStunMessage(exchange(server, request([bad]))[0]!.data);
      expect(m.cls).toBe('error');
      expect(getAttribute(m, Attr.ERROR_CODE)?.code).toBe(400);
    }
    expect(server.stats.badRequestResponses).toBe(3);
  });
});

describe('drops', () => {
  it('counts and drops indications, responses, other methods, non-STUN and malformed STUN', () => {
    const server = new StunBindingServer();
    const bad = request([attr(Attr.PRIORITY, 1, TXID)], { fingerprint: true }).slice();
    bad[bad.length - 1]! ^= 1;
    const truncated = request([attr(Attr.PRIORITY, 1, TXID)]).subarray(0, 24);
    const inputs: Uint8Array[] = [
      request([], {}, 'indication'),
      request([], {}, 'success'),
      request([], {}, 'error'),
      request([], {}, 'request', StunMethod.Allocate),
      Uint8Array.of(0x80, 0x60, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0), // RTP
      new Uint8Array(0),
      bad, // FINGERPRINT does not match
      truncated, // STUN-shaped header whose Length runs past the datagram
    ];
    for (const data of inputs) expect(exchange(server, data)).toHaveLength(0);
    const s = server.stats;
    expect(s.received).toBe(inputs.length);
    expect(s.answered).toBe(0);
    expect(s.dropped).toMatchObject({ indication: 1, response: 2, 'unsupported-method': 1, 'not-stun': 2, 'fingerprint-mismatch': 1, malformed: 1 });
    expect(s.malformedByReason).toEqual({ 'fingerprint-mismatch': 1, 'bad-length': 1 });
  });

  it('handleReceive returns false only for non-STUN', () => {
    const server = new StunBindingServer();
    expect(server.handleReceive(0, { local: LOCAL, remote: CLIENT, data: Uint8Array.of(0x40, 0, 0, 0) })).toBe(false);
    expect(server.handleReceive(0, { local: LOCAL, remote: CLIENT, data: request([], {}, 'indication') })).toBe(true);
    expect(server.handleReceive(0, { local: LOCAL, remote: CLIENT, data: request() })).toBe(true);
  });

  it('a source that is not an IP literal is dropped, not thrown on', () => {
    const server = new StunBindingServer();
    expect(exchange(server, request(), { address: 'peer.local', port: 1 })).toHaveLength(0);
    expect(server.stats.dropped['bad-source']).toBe(1);
  });

  it(`queues at most ${MAX_QUEUED_RESPONSES} undrained responses`, () => {
    const server = new StunBindingServer();
    const data = request();
    for (let i = 0; i < MAX_QUEUED_RESPONSES + 3; i++) server.handleReceive(i, { local: LOCAL, remote: CLIENT, data });
    expect(server.stats.dropped['queue-full']).toBe(3);
    let n = 0;
    while (server.pollTransmit()) n++;
    expect(n).toBe(MAX_QUEUED_RESPONSES);
  });

  it('has no timers and no events; stats are snapshots', () => {
    const server = new StunBindingServer();
    expect(server.pollTimeout()).toBeUndefined();
    server.handleTimeout(1e9);
    expect(server.pollEvent()).toBeUndefined();
    const before = server.stats;
    exchange(server, request());
    expect(before.received).toBe(0);
    expect(server.stats.received).toBe(1);
  });
});

describe('amplification bound', () => {
  it(`the documented worst case is reached and is ${MAX_BINDING_RESPONSE_BYTES} bytes`, () => {
    const server = new StunBindingServer({ software: 'x'.repeat(64) });
    const many = Array.from({ length: 20 }, (_, i) => ({ type: 0x0100 + i, value: new Uint8Array(0) }));
    const res = exchange(server, request(many, { fingerprint: true }));
    expect(res[0]!.data.length).toBe(MAX_BINDING_RESPONSE_BYTES);
    const v6 = exchange(server, request([], { fingerprint: true }), { address: '2001:db8::1', port: 9 });
    expect(v6[0]!.data.length).toBe(120);
    expect(() => new StunBindingServer({ software: 'x'.repeat(65) })).toThrow(RangeError);
  });

  it('arbitrary datagrams never throw and never produce more than one response of at most the bound', () => {
    const server = new StunBindingServer({ software: 'icewire' });
    const header = (cls: number, len: number) => Uint8Array.of(cls, 0x01, len >> 8, len & 0xff, 0x21, 0x12, 0xa4, 0x42, ...TXID);
    const datagram = fc.oneof(
      fc.uint8Array({ maxLength: 300 }),
      // A Binding request header in front of arbitrary attribute bytes, with a consistent Length.
      fc.uint8Array({ maxLength: 300 }).map((body) => {
        const b = body.subarray(0, body.length & ~3);
        const d = new Uint8Array(20 + b.length);
        d.set(header(0x00, b.length));
        d.set(b, 20);
        return d;
      }),
    );
    fc.assert(
      fc.property(datagram, fc.constantFrom(CLIENT, { address: '2001:db8::9', port: 65535 }), (data, remote) => {
        const out = exchange(server, data, remote);
        expect(out.length).toBeLessThanOrEqual(1);
        for (const d of out) expect(d.data.length).toBeLessThanOrEqual(MAX_BINDING_RESPONSE_BYTES);
      }),
      { numRuns: 10_000 },
    );
    const s = server.stats;
    expect(s.received).toBe(10_000);
    const dropped = Object.values(s.dropped).reduce((a, b) => a + b, 0);
    expect(s.answered + dropped).toBe(s.received);
    expect(s.answered).toBeGreaterThan(0);
  });
});
