/**
 * Properties of the STUN codec (fast-check): encode/decode round trips, and decoding of arbitrary or mutated bytes
 * never throwing anything but the typed decode error.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { StunDecodeError, type StunDecodeReason } from '../../src/errors.js';
import { formatIp } from '../../src/ip.js';
import {
  Attr,
  attr,
  attributeCodec,
  AttributeType,
  decodeStunMessage,
  encodeStunMessage,
  getAttribute,
  knownAttributeTypes,
  MAX_STUN_ATTRIBUTES,
  PasswordAlgorithm,
  StunMethod,
  tryDecodeStunMessage,
  unknownComprehensionRequired,
  verifyIntegrity,
  type AttributeCodec,
  type EncodeOptions,
  type StunAttribute,
  type StunClass,
  type StunMessage,
} from '../../src/stun/index.js';

const REASONS: readonly StunDecodeReason[] = [
  'short-header',
  'not-stun',
  'bad-cookie',
  'bad-length',
  'attribute-overrun',
  'bad-padding',
  'bad-attribute',
  'fingerprint-mismatch',
];
const PROTECTING: ReadonlySet<number> = new Set([AttributeType.MESSAGE_INTEGRITY, AttributeType.MESSAGE_INTEGRITY_SHA256, AttributeType.FINGERPRINT]);

// A typed attribute: the codec, the value, and how to compare what comes back.
interface Typed {
  readonly codec: AttributeCodec<unknown>;
  readonly value: unknown;
}
const typed = <T>(codec: AttributeCodec<T>, value: fc.Arbitrary<T>): fc.Arbitrary<Typed> =>
  value.map((v) => ({ codec: codec as AttributeCodec<unknown>, value: v }));

const address = fc
  .tuple(fc.oneof(fc.uint8Array({ minLength: 4, maxLength: 4 }), fc.uint8Array({ minLength: 16, maxLength: 16 })), fc.integer({ min: 0, max: 0xffff }))
  .map(([ip, port]) => ({ address: formatIp(ip), port }));
const text = (maxChars: number) => fc.string({ unit: 'binary', maxLength: maxChars });
const algorithm = fc.record({ algorithm: fc.integer({ min: 0, max: 0xffff }), parameters: fc.uint8Array({ maxLength: 12 }) });

const typedAttribute: fc.Arbitrary<Typed> = fc.oneof(
  typed(Attr.MAPPED_ADDRESS, address),
  typed(Attr.XOR_MAPPED_ADDRESS, address),
  typed(Attr.ALTERNATE_SERVER, address),
  typed(Attr.USERNAME, text(100).filter((s) => Buffer.byteLength(s) <= 508)),
  typed(Attr.USERHASH, fc.uint8Array({ minLength: 32, maxLength: 32 })),
  typed(Attr.REALM, text(60)),
  typed(Attr.NONCE, text(60)),
  typed(Attr.SOFTWARE, text(60)),
  typed(Attr.ALTERNATE_DOMAIN, fc.string({ unit: fc.constantFrom(...'abcxyz019-.'), maxLength: 255 })),
  typed(Attr.ERROR_CODE, fc.record({ code: fc.integer({ min: 300, max: 699 }), reason: text(60) })),
  typed(Attr.UNKNOWN_ATTRIBUTES, fc.array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 9 })),
  typed(Attr.PASSWORD_ALGORITHM, algorithm),
  typed(Attr.PASSWORD_ALGORITHMS, fc.array(algorithm, { maxLength: 4 })),
  typed(Attr.PRIORITY, fc.integer({ min: 0, max: 0xffffffff })),
  typed(Attr.USE_CANDIDATE, fc.constant(true as const)),
  typed(Attr.ICE_CONTROLLED, fc.bigInt({ min: 0n, max: (1n << 64n) - 1n })),
  typed(Attr.ICE_CONTROLLING, fc.bigInt({ min: 0n, max: (1n << 64n) - 1n })),
);
const rawAttribute: fc.Arbitrary<StunAttribute> = fc.record({
  type: fc.integer({ min: 0, max: 0xffff }).filter((t) => !PROTECTING.has(t)),
  value: fc.uint8Array({ maxLength: 64 }),
});

const transactionId = fc.uint8Array({ minLength: 12, maxLength: 12 });
const cls = fc.constantFrom<StunClass>('request', 'indication', 'success', 'error');
const options: fc.Arbitrary<EncodeOptions> = fc.record(
  {
    integrityKey: fc.uint8Array({ minLength: 1, maxLength: 80 }),
    integrity: fc.constantFrom('sha1' as const, 'sha256' as const, 'both' as const),
    sha256Length: fc.constantFrom(16, 20, 24, 28, 32),
    fingerprint: fc.boolean(),
    padding: fc.integer({ min: 0, max: 255 }),
  },
  { requiredKeys: [] },
);

interface Case {
  readonly message: StunMessage;
  readonly typedAt: ReadonlyMap<number, Typed>; // attribute index -> typed value it was built from
  readonly options: EncodeOptions;
}
const messageCase: fc.Arbitrary<Case> = fc
  .record({
    method: fc.integer({ min: 0, max: 0xfff }),
    cls,
    transactionId,
    parts: fc.array(fc.oneof(typedAttribute.map((t) => ({ t })), rawAttribute.map((r) => ({ r }))), { maxLength: 8 }),
    options,
  })
  .map(({ method, cls, transactionId, parts, options }) => {
    const typedAt = new Map<number, Typed>();
    const attributes = parts.map((p, i) => {
      if ('t' in p) {
        typedAt.set(i, p.t);
        return attr(p.t.codec, p.t.value, transactionId);
      }
      return p.r;
    });
    return { message: { method, cls, transactionId, attributes }, typedAt, options };
  });

function expectTypedFailure(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(StunDecodeError);
    expect(REASONS).toContain((e as StunDecodeError).reason);
  }
}

/** Every registered codec on every attribute, plus integrity checks: nothing may throw. */
function exerciseDecoded(data: Uint8Array): void {
  const r = tryDecodeStunMessage(data);
  if (!r.ok) {
    expect(REASONS).toContain(r.reason);
    expect(r.offset).toBeGreaterThanOrEqual(0);
    expect(r.offset).toBeLessThanOrEqual(data.length);
    expectTypedFailure(() => decodeStunMessage(data));
    return;
  }
  const m = r.message;
  for (const t of knownAttributeTypes()) {
    const codec = attributeCodec(t);
    if (codec) getAttribute(m, codec);
  }
  unknownComprehensionRequired(m);
  expect(['ok', 'mismatch', 'missing']).toContain(verifyIntegrity(m, new Uint8Array([1, 2, 3])));
  expect(['ok', 'mismatch', 'missing']).toContain(verifyIntegrity(m, new Uint8Array([1, 2, 3]), 'sha1'));
}

describe('round trip', () => {
  it('decode(encode(m)) equals m, typed attributes decode to their values, protection verifies', () => {
    fc.assert(
      fc.property(messageCase, ({ message, typedAt, options }) => {
        const wire = encodeStunMessage(message, options);
        expect(wire.length % 4).toBe(0);
        const d = decodeStunMessage(wire);
        expect(d.method).toBe(message.method);
        expect(d.cls).toBe(message.cls);
        expect([...d.transactionId]).toEqual([...message.transactionId]);
        expect(d.attributes.map((a) => [a.type, [...a.value]])).toEqual(message.attributes.map((a) => [a.type, [...a.value]]));
        expect(d.ignoredAttributes).toBe(0);
        expect(d.hasFingerprint).toBe(options.fingerprint === true);
        for (const [i, t] of typedAt) {
          const a = d.attributes[i]!;
          expect(t.codec.decode(a.value, d.transactionId)).toEqual(t.value);
        }
        const key = options.integrityKey;
        if (key) {
          const which = options.integrity ?? 'sha1';
          expect(d.integrityOffset >= 0).toBe(which !== 'sha256');
          expect(d.integritySha256Offset >= 0).toBe(which !== 'sha1');
          expect(verifyIntegrity(d, key)).toBe('ok');
          const wrong = key.slice();
          wrong[0]! ^= 1;
          expect(verifyIntegrity(d, wrong)).toBe('mismatch');
        } else {
          expect(verifyIntegrity(d, new Uint8Array([1]))).toBe('missing');
        }
      }),
      { numRuns: 1500 },
    );
  });

  it('a message too large for the shared slab (over 2 KiB) gets a buffer of its own, and is signed over its own bytes', () => {
    const txid = new Uint8Array(12).fill(4);
    const key = new TextEncoder().encode('a-password-of-22-chars');
    const attributes = [0xc001, 0xc002, 0xc003].map((type, i) => ({ type, value: new Uint8Array(1001 + i).fill(type & 0xff) }));
    encodeStunMessage({ method: 1, cls: 'request', transactionId: txid, attributes: [] }); // the slab is in use
    const wire = encodeStunMessage({ method: 1, cls: 'request', transactionId: txid, attributes }, { integrityKey: key, integrity: 'both', fingerprint: true });
    expect([wire.byteOffset, wire.buffer.byteLength]).toEqual([0, wire.length]);
    const d = decodeStunMessage(wire);
    expect(d.hasFingerprint).toBe(true);
    expect(verifyIntegrity(d, key, 'sha1')).toBe('ok');
    expect(verifyIntegrity(d, key, 'sha256')).toBe('ok');
    expect(d.attributes.map((a) => [a.type, a.value.length, a.value[0]])).toEqual([
      [0xc001, 1001, 0x01],
      [0xc002, 1002, 0x02],
      [0xc003, 1003, 0x03],
    ]);
  });

  it('text attributes are UTF-8 wherever a non-ASCII character sits (in a 4-character step or the tail)', () => {
    const txid = new Uint8Array(12);
    for (let length = 1; length <= 11; length++) {
      const ascii = 'abcdefghijk'.slice(0, length);
      expect(Buffer.from(attr(Attr.USERNAME, ascii, txid).value).toString('latin1')).toBe(ascii);
      for (let at = 0; at < length; at++) {
        const text = ascii.slice(0, at) + '\u00e9' + ascii.slice(at + 1);
        expect(Buffer.from(attr(Attr.USERNAME, text, txid).value).equals(Buffer.from(text, 'utf8'))).toBe(true);
      }
    }
  });

  it('typed codecs refuse out-of-range values with RangeError, not silent wrapping', () => {
    const txid = new Uint8Array(12);
    expect(() => attr(Attr.PRIORITY, 2 ** 32, txid)).toThrow(RangeError);
    expect(() => attr(Attr.PRIORITY, -1, txid)).toThrow(RangeError);
    expect(() => attr(Attr.ICE_CONTROLLING, 1n << 64n, txid)).toThrow(RangeError);
    expect(() => attr(Attr.ICE_CONTROLLED, -1n, txid)).toThrow(RangeError);
    expect(() => attr(Attr.XOR_MAPPED_ADDRESS, { address: '1.2.3.4', port: 70000 }, txid)).toThrow(RangeError);
    expect(() => attr(Attr.XOR_MAPPED_ADDRESS, { address: 'host.local', port: 1 }, txid)).toThrow(RangeError);
    expect(() => attr(Attr.UNKNOWN_ATTRIBUTES, [0x10000], txid)).toThrow(RangeError);
    expect(() => attr(Attr.ERROR_CODE, { code: 299, reason: '' }, txid)).toThrow(RangeError);
    expect(() => attr(Attr.ERROR_CODE, { code: 400, reason: 'x'.repeat(128) }, txid)).toThrow(RangeError);
    expect(() => attr(Attr.USERNAME, 'u'.repeat(509), txid)).toThrow(RangeError);
    expect(() => attr(Attr.SOFTWARE, 's'.repeat(128), txid)).toThrow(RangeError);
    expect(() => attr(Attr.REALM, 'r'.repeat(764), txid)).toThrow(RangeError);
    // REALM and NONCE are echoed from the server, so whatever decodes must encode again.
    expect(attr(Attr.NONCE, 'n'.repeat(763), txid).value.length).toBe(763);
    expect(() => attr(Attr.ALTERNATE_DOMAIN, 'ex\u00e4mple.org', txid)).toThrow(RangeError);
    expect(() => encodeStunMessage({ method: 0x1000, cls: 'request', transactionId: txid, attributes: [] })).toThrow(RangeError);
    expect(() => encodeStunMessage({ method: 1, cls: 'request', transactionId: new Uint8Array(11), attributes: [] })).toThrow(RangeError);
  });

  it('receivers parse what RFC 8489 says they must: USERNAME up to 763 bytes, REALM/NONCE/SOFTWARE 763', () => {
    const txid = new Uint8Array(12);
    const long = new Uint8Array(763).fill(0x61);
    expect(Attr.USERNAME.decode(long, txid)).toBe('a'.repeat(763));
    expect(Attr.NONCE.decode(long, txid)).toBe('a'.repeat(763));
    expect(Attr.USERNAME.decode(new Uint8Array(764).fill(0x61), txid)).toBeUndefined();
    expect(Attr.USERNAME.decode(Uint8Array.of(0xff), txid)).toBeUndefined();
    expect(Attr.ALTERNATE_DOMAIN.decode(Uint8Array.of(0xc3, 0xa4), txid)).toBeUndefined();
  });

  it('XOR-MAPPED-ADDRESS XORs port with the cookie top and the address with cookie+transaction ID (RFC 8489 §14.2)', () => {
    const txid = Uint8Array.from({ length: 12 }, (_, i) => i + 1);
    const v4 = attr(Attr.XOR_MAPPED_ADDRESS, { address: '192.0.2.1', port: 32853 }, txid).value;
    expect(Buffer.from(v4).toString('hex')).toBe('0001a147e112a643');
    const v6 = attr(Attr.XOR_MAPPED_ADDRESS, { address: '::', port: 0 }, txid).value;
    expect(Buffer.from(v6).toString('hex')).toBe('00022112' + '2112a442' + '0102030405060708090a0b0c');
    expect(Buffer.from(attr(Attr.MAPPED_ADDRESS, { address: '192.0.2.1', port: 32853 }, txid).value).toString('hex')).toBe('00018055c0000201');
  });
});

describe('hostile input', () => {
  it('arbitrary bytes: a message or a typed failure, never another exception (10,000 runs)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (data) => exerciseDecoded(data)),
      { numRuns: 10_000 },
    );
  });

  it('arbitrary bodies behind a valid header (exercises attribute framing; 10,000 runs)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0x3fff }), transactionId, fc.uint8Array({ maxLength: 160 }), fc.integer({ min: 0, max: 0xffff }), (type, txid, body, lengthField) => {
        const data = new Uint8Array(20 + body.length);
        data[0] = type >> 8;
        data[1] = type & 0xff;
        const len = lengthField % 2 === 0 ? body.length & ~3 : lengthField;
        data[2] = len >> 8;
        data[3] = len & 0xff;
        data.set([0x21, 0x12, 0xa4, 0x42], 4);
        data.set(txid, 8);
        data.set(body, 20);
        exerciseDecoded(data);
      }),
      { numRuns: 10_000 },
    );
  });

  it('mutated valid messages: a message or a typed failure (10,000 runs)', () => {
    const mutation = fc.oneof(
      fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
      fc.record({ kind: fc.constant('set' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
      fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
      fc.record({ kind: fc.constant('append' as const), bytes: fc.uint8Array({ maxLength: 12 }) }),
    );
    fc.assert(
      fc.property(messageCase, fc.array(mutation, { minLength: 1, maxLength: 4 }), ({ message, options }, mutations) => {
        let data = encodeStunMessage(message, options).slice();
        for (const m of mutations) {
          if (m.kind === 'append') {
            const n = new Uint8Array(data.length + m.bytes.length);
            n.set(data);
            n.set(m.bytes, data.length);
            data = n;
          } else if (data.length > 0) {
            const at = m.at % data.length;
            if (m.kind === 'flip') data[at]! ^= 1 << m.bit;
            else if (m.kind === 'set') data[at] = m.byte;
            else data = data.slice(0, at);
          }
        }
        exerciseDecoded(data);
      }),
      { numRuns: 10_000 },
    );
  });

  it('every registered codec on random values: a value or undefined, never a throw (10,000 runs)', () => {
    const types = [...knownAttributeTypes()].filter((t) => attributeCodec(t) !== undefined);
    expect(types.length).toBeGreaterThanOrEqual(17);
    fc.assert(
      fc.property(fc.constantFrom(...types), fc.uint8Array({ maxLength: 80 }), transactionId, (type, value, txid) => {
        const codec = attributeCodec(type)!;
        codec.decode(value, txid);
        getAttribute({ method: StunMethod.Binding, cls: 'request', transactionId: txid, attributes: [{ type, value }] }, codec);
      }),
      { numRuns: 10_000 },
    );
  });

  it('decode failures carry the right reason', () => {
    const ok = encodeStunMessage({ method: 1, cls: 'request', transactionId: new Uint8Array(12), attributes: [attr(Attr.PRIORITY, 1, new Uint8Array(12))] }, { fingerprint: true });
    const reason = (d: Uint8Array) => {
      const r = tryDecodeStunMessage(d);
      return r.ok ? 'ok' : r.reason;
    };
    expect(reason(ok)).toBe('ok');
    expect(reason(ok.subarray(0, 19))).toBe('short-header');
    const notStun = ok.slice();
    notStun[0] = 0x80;
    expect(reason(notStun)).toBe('not-stun');
    const cookie = ok.slice();
    cookie[4] = 0;
    expect(reason(cookie)).toBe('bad-cookie');
    expect(reason(ok.subarray(0, ok.length - 4))).toBe('bad-length');
    const crc = ok.slice();
    crc[crc.length - 1]! ^= 1;
    expect(reason(crc)).toBe('fingerprint-mismatch');
    const odd = ok.slice();
    odd[3] = odd[3]! + 1;
    expect(reason(odd)).toBe('bad-length');
    // Attribute length running past the message.
    const overrun = ok.slice();
    overrun[23] = 0x40;
    expect(reason(overrun)).toBe('attribute-overrun');
    expect(PasswordAlgorithm.SHA256).toBe(2);
    expect(() => decodeStunMessage(crc)).toThrow(StunDecodeError);
  });
});

describe('cheap drops of absurd messages (issue 16, item 3)', () => {
  it(`a message with more than ${MAX_STUN_ATTRIBUTES} attributes is refused before the rest is read`, () => {
    const build = (n: number) => {
      const id = new Uint8Array(12).fill(9);
      const attributes = Array.from({ length: n }, (_, i) => ({ type: 0xc100 + (i % 0x3000), value: new Uint8Array(4) }));
      return encodeStunMessage({ method: StunMethod.Binding, cls: 'request', transactionId: id, attributes });
    };
    expect(tryDecodeStunMessage(build(MAX_STUN_ATTRIBUTES)).ok).toBe(true);
    const r = tryDecodeStunMessage(build(MAX_STUN_ATTRIBUTES + 1));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toBe('too-many-attributes');
    // 8,000 attributes (64 KB): refused at the 65th, whatever follows.
    const big = tryDecodeStunMessage(build(8_000));
    expect(!big.ok && big.reason).toBe('too-many-attributes');
  });
});

describe('decoding a Buffer (what node:dgram delivers)', () => {
  it('attribute values and transaction ID are plain Uint8Array views of the received bytes, not copies', () => {
    const id = new Uint8Array(12).fill(7);
    const key = new TextEncoder().encode('pwd-of-twenty-two-chars');
    const encoded = encodeStunMessage(
      { method: StunMethod.Binding, cls: 'request', transactionId: id, attributes: [attr(Attr.USERNAME, 'a:b', id), attr(Attr.PRIORITY, 7, id)] },
      { integrityKey: key, fingerprint: true },
    );
    // A Buffer at an offset into a larger pool, as node's pooled Buffers are.
    const pool = Buffer.alloc(encoded.length + 40);
    pool.set(encoded, 24);
    const received = pool.subarray(24, 24 + encoded.length);
    const m = decodeStunMessage(received);
    expect(m.raw).toBe(received);
    for (const v of [m.transactionId, ...m.attributes.map((a) => a.value)]) {
      // Plain views: cheaper to make than Buffer views (Buffer's species constructor runs in JS).
      expect(Object.getPrototypeOf(v)).toBe(Uint8Array.prototype);
      expect(v.buffer).toBe(received.buffer);
    }
    expect(m.transactionId.byteOffset).toBe(received.byteOffset + 8);
    expect(getAttribute(m, Attr.USERNAME)).toBe('a:b');
    expect(getAttribute(m, Attr.PRIORITY)).toBe(7);
    expect(verifyIntegrity(m, key)).toBe('ok');
    // The check reads the message, never writes it.
    expect(Buffer.compare(received, encoded)).toBe(0);
  });
});
