/**
 * Keys, string preparation and the HMAC provider seam MESSAGE-INTEGRITY goes through (node:crypto by default).
 */
import { createHash, createHmac } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  Attr,
  attr,
  decodeStunMessage,
  encodeStunMessage,
  hmac,
  hmacInto,
  type HmacProvider,
  longTermKey,
  macEquals,
  nodeHmacProvider,
  PasswordAlgorithm,
  prepareCredential,
  setHmacProvider,
  shortTermKey,
  StunMethod,
  tryDecodeStunMessage,
  userHash,
  verifyIntegrity,
} from '../../src/stun/index.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

describe('HMAC provider seam', () => {
  const concat = (parts: readonly Uint8Array[]) => Buffer.concat(parts.map((p) => Buffer.from(p)));

  it('the default provider is node:crypto over the concatenated parts', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 150 }), fc.array(fc.uint8Array({ maxLength: 100 }), { maxLength: 4 }), (key, parts) => {
        expect(hex(nodeHmacProvider.sha1(key, parts))).toBe(createHmac('sha1', key).update(concat(parts)).digest('hex'));
        expect(hex(hmac('sha256', key, ...parts))).toBe(createHmac('sha256', key).update(concat(parts)).digest('hex'));
      }),
      { numRuns: 300 },
    );
  });

  it('a key array reused for another key is never answered with the old key (the provider keeps key objects)', () => {
    const key = Uint8Array.from(Buffer.from('first-password-123456'));
    const data = Buffer.from('message bytes');
    const first = hex(nodeHmacProvider.sha1(key, [data]));
    expect(first).toBe(createHmac('sha1', Buffer.from('first-password-123456')).update(data).digest('hex'));
    key.set(Buffer.from('other-password-654321')); // same length, same array: a caller's scratch buffer
    const second = hex(nodeHmacProvider.sha1(key, [data]));
    expect(second).toBe(createHmac('sha1', Buffer.from('other-password-654321')).update(data).digest('hex'));
    expect(second).not.toBe(first);
  });

  it('MESSAGE-INTEGRITY is signed and verified through the installed provider, over what RFC 8489 §14.5 says', () => {
    const key = shortTermKey('pw');
    const calls: { algorithm: string; bytes: string }[] = [];
    const recording: HmacProvider = {
      sha1: (k, parts) => (calls.push({ algorithm: 'sha1', bytes: hex(concat(parts)) }), nodeHmacProvider.sha1(k, parts)),
      sha256: (k, parts) => (calls.push({ algorithm: 'sha256', bytes: hex(concat(parts)) }), nodeHmacProvider.sha256(k, parts)),
    };
    const previous = setHmacProvider(recording);
    try {
      const tid = new Uint8Array(12).fill(3);
      const bytes = encodeStunMessage({ method: StunMethod.Binding, cls: 'request', transactionId: tid, attributes: [attr(Attr.USERNAME, 'a:b', tid)] }, { integrityKey: key, fingerprint: true });
      expect(verifyIntegrity(decodeStunMessage(bytes), key)).toBe('ok');
      // Sign and verify: two SHA-1 MACs over the message up to MESSAGE-INTEGRITY, the Length covering it.
      const miAt = bytes.length - 8 - 24;
      const covered = Buffer.from(bytes.subarray(0, miAt));
      covered.writeUInt16BE(miAt + 24 - 20, 2);
      expect(calls).toEqual([
        { algorithm: 'sha1', bytes: covered.toString('hex') },
        { algorithm: 'sha1', bytes: covered.toString('hex') },
      ]);
    } finally {
      setHmacProvider(previous);
    }
  });

  it('a provider that computes another MAC makes verification fail (the provider is what decides)', () => {
    const key = shortTermKey('pw');
    const bytes = encodeStunMessage({ method: StunMethod.Binding, cls: 'request', transactionId: new Uint8Array(12), attributes: [] }, { integrityKey: key, integrity: 'both' });
    const previous = setHmacProvider({ sha1: () => new Uint8Array(20), sha256: () => new Uint8Array(32) });
    try {
      expect(verifyIntegrity(decodeStunMessage(bytes), key, 'sha1')).toBe('mismatch');
      expect(verifyIntegrity(decodeStunMessage(bytes), key, 'sha256')).toBe('mismatch');
    } finally {
      setHmacProvider(previous);
    }
    expect(verifyIntegrity(decodeStunMessage(bytes), key, 'sha1')).toBe('ok');
    expect(verifyIntegrity(decodeStunMessage(bytes), key, 'sha256')).toBe('ok');
  });
});

describe('hmacInto', () => {
  it('writes the first `max` bytes of the MAC at an offset and leaves the rest of `out` alone, with any provider', () => {
    const key = shortTermKey('pw');
    const data = Buffer.from('the message up to MESSAGE-INTEGRITY');
    const sha1 = createHmac('sha1', key).update(data).digest();
    const sha256 = createHmac('sha256', key).update(data).digest();
    const check = () => {
      const out = new Uint8Array(40).fill(0xee);
      expect(hmacInto('sha1', key, data, out, 4, 20)).toBe(20);
      expect(hex(out.subarray(4, 24))).toBe(hex(sha1));
      expect([...out.subarray(0, 4), ...out.subarray(24)].every((b) => b === 0xee)).toBe(true);
      const truncated = new Uint8Array(40).fill(0xee);
      expect(hmacInto('sha256', key, data, truncated, 8, 16)).toBe(16);
      expect(hex(truncated.subarray(8, 24))).toBe(hex(sha256.subarray(0, 16)));
      expect(truncated[24]).toBe(0xee);
    };
    check();
    const previous = setHmacProvider({ sha1: (k, parts) => nodeHmacProvider.sha1(k, parts), sha256: (k, parts) => nodeHmacProvider.sha256(k, parts) });
    try {
      check();
    } finally {
      setHmacProvider(previous);
    }
  });

  it('a key array reused for another key is never answered with the old key', () => {
    const key = Uint8Array.from(Buffer.from('first-password-123456'));
    const data = Buffer.from('message bytes');
    const out = new Uint8Array(20);
    hmacInto('sha1', key, data, out, 0, 20);
    expect(hex(out)).toBe(createHmac('sha1', Buffer.from('first-password-123456')).update(data).digest('hex'));
    key.set(Buffer.from('other-password-654321'));
    hmacInto('sha1', key, data, out, 0, 20);
    expect(hex(out)).toBe(createHmac('sha1', Buffer.from('other-password-654321')).update(data).digest('hex'));
  });

  it('a reused key array that differs from the old key in any one byte gets the new key (head, middle or tail)', () => {
    const first = 'abcdefghijklmnopqrstuvwxyz0'; // 27 bytes: six 4-byte steps and a 3-byte tail
    const key = Uint8Array.from(Buffer.from(first));
    const data = Buffer.from('message bytes');
    const out = new Uint8Array(20);
    for (const at of [0, 13, 23, 24, 26]) {
      key.set(Buffer.from(first));
      hmacInto('sha1', key, data, out, 0, 20);
      key[at] = 0x5a;
      hmacInto('sha1', key, data, out, 0, 20);
      expect(hex(out)).toBe(createHmac('sha1', key.slice()).update(data).digest('hex'));
    }
  });

  it('a provider returning a MAC shorter than the attribute makes verification fail, not pass on the bytes it gave', () => {
    const key = shortTermKey('pw');
    const bytes = encodeStunMessage({ method: StunMethod.Binding, cls: 'request', transactionId: new Uint8Array(12), attributes: [] }, { integrityKey: key });
    const real = nodeHmacProvider;
    expect(verifyIntegrity(decodeStunMessage(bytes), key)).toBe('ok'); // leaves the right MAC in any scratch
    // The first 10 bytes are right; a check that compared only what the provider returned would pass.
    const previous = setHmacProvider({ sha1: (k, parts) => real.sha1(k, parts).subarray(0, 10), sha256: (k, parts) => real.sha256(k, parts) });
    try {
      expect(verifyIntegrity(decodeStunMessage(bytes), key)).toBe('mismatch');
    } finally {
      setHmacProvider(previous);
    }
  });
});

describe('macEquals', () => {
  it('compares a (possibly truncated) MAC in constant time and refuses empty or over-long ones', () => {
    const mac = new Uint8Array(32).fill(5);
    expect(macEquals(mac.subarray(0, 16), mac)).toBe(true);
    expect(macEquals(new Uint8Array(16).fill(6), mac)).toBe(false);
    expect(macEquals(new Uint8Array(0), mac)).toBe(false);
    expect(macEquals(new Uint8Array(33), mac)).toBe(false);
  });
});

describe('credentials', () => {
  it('short-term key is OpaqueString(password) as UTF-8 (RFC 8489 §9.1.1)', () => {
    expect(hex(shortTermKey('VOkJxbRl1RmTxUk/WvJxBt'))).toBe(Buffer.from('VOkJxbRl1RmTxUk/WvJxBt').toString('hex'));
    // U+00A0 (no-break space) maps to U+0020; e + combining acute composes to U+00E9 (NFC).
    expect(hex(shortTermKey('a\u00a0e\u0301'))).toBe(Buffer.from('a \u00e9', 'utf8').toString('hex'));
  });

  it('long-term keys: MD5 (16 bytes) and SHA-256 (32 bytes) of username:realm:password (RFC 8489 §9.2.2, §18.5.1)', () => {
    const md5 = longTermKey('user', 'realm', 'pass', PasswordAlgorithm.MD5);
    const sha = longTermKey('user', 'realm', 'pass', PasswordAlgorithm.SHA256);
    expect(md5.length).toBe(16);
    expect(sha.length).toBe(32);
    expect(hex(sha)).toBe(createHash('sha256').update('user:realm:pass').digest('hex'));
  });

  it('USERHASH is SHA-256(username ":" realm)', () => {
    expect(hex(userHash('bob', 'example.org'))).toBe(createHash('sha256').update('bob:example.org').digest('hex'));
  });

  it('OpaqueString rejects controls and default-ignorable code points; SASLprep maps B.1 to nothing', () => {
    expect(() => prepareCredential('a\u0007b')).toThrow(RangeError);
    expect(() => prepareCredential('a\u200bb')).toThrow(RangeError);
    expect(prepareCredential('a\u00adb', 'saslprep')).toBe('ab');
    expect(prepareCredential('\u2168', 'saslprep')).toBe('IX');
    expect(prepareCredential('\u2168', 'opaque-string')).toBe('\u2168');
    expect(prepareCredential('a\u0007b', 'none')).toBe('a\u0007b');
  });
});

describe('integrity in messages (RFC 8489 §14.5-14.7)', () => {
  const txid = new Uint8Array(12).fill(7);
  const key = shortTermKey('pw');
  const base = {
    method: StunMethod.Binding,
    cls: 'success' as const,
    transactionId: txid,
    attributes: [attr(Attr.XOR_MAPPED_ADDRESS, { address: '2001:db8::1', port: 3478 }, txid)],
  };

  it('both MACs, then FINGERPRINT: each verifies and each Length adjustment is the RFC one', () => {
    const out = encodeStunMessage(base, { integrityKey: key, integrity: 'both', fingerprint: true });
    const m = decodeStunMessage(out);
    expect(verifyIntegrity(m, key)).toBe('ok');
    expect(verifyIntegrity(m, key, 'sha1')).toBe('ok');
    expect(verifyIntegrity(m, key, 'sha256')).toBe('ok');
    // MESSAGE-INTEGRITY: HMAC over the message up to it, with Length counting through MESSAGE-INTEGRITY.
    const mi = m.integrityOffset;
    const covered = out.slice(0, mi);
    covered[2] = 0;
    covered[3] = mi + 24 - 20;
    expect(hex(out.subarray(mi + 4, mi + 24))).toBe(createHmac('sha1', key).update(covered).digest('hex'));
    const mi2 = m.integritySha256Offset;
    const covered2 = out.slice(0, mi2);
    covered2[3] = mi2 + 36 - 20;
    expect(hex(out.subarray(mi2 + 4, mi2 + 36))).toBe(createHmac('sha256', key).update(covered2).digest('hex'));
  });

  it('truncated MESSAGE-INTEGRITY-SHA256 (16..32 bytes, multiple of 4) verifies; other lengths are refused', () => {
    for (const n of [16, 20, 24, 28, 32]) {
      const out = encodeStunMessage(base, { integrityKey: key, integrity: 'sha256', sha256Length: n });
      expect(verifyIntegrity(decodeStunMessage(out), key)).toBe('ok');
    }
    for (const n of [12, 18, 36]) expect(() => encodeStunMessage(base, { integrityKey: key, integrity: 'sha256', sha256Length: n })).toThrow(RangeError);
  });

  it('attributes after MESSAGE-INTEGRITY are ignored, except FINGERPRINT (§14.5)', () => {
    const signed = encodeStunMessage(base, { integrityKey: key });
    // Append an attribute after MESSAGE-INTEGRITY by hand (SOFTWARE "x"), fixing up the Length.
    const extra = Uint8Array.from([0x80, 0x22, 0x00, 0x01, 0x78, 0, 0, 0]);
    const out = new Uint8Array(signed.length + extra.length);
    out.set(signed);
    out.set(extra, signed.length);
    out[3] = out.length - 20;
    const m = decodeStunMessage(out);
    expect(m.ignoredAttributes).toBe(1);
    expect(m.attributes.map((a) => a.type)).toEqual([Attr.XOR_MAPPED_ADDRESS.type]);
    expect(verifyIntegrity(m, key)).toBe('ok');
  });

  it('a flipped bit anywhere in the covered part makes MESSAGE-INTEGRITY fail', () => {
    const out = encodeStunMessage(base, { integrityKey: key });
    const m0 = decodeStunMessage(out);
    let decodedFlips = 0;
    for (let i = 0; i < m0.integrityOffset; i++) {
      if (i === 2 || i === 3) continue; // the Length field is what the decoder needs to frame the message
      const bad = out.slice();
      bad[i]! ^= 0x01;
      const r = tryDecodeStunMessage(bad);
      // A flip in the cookie or an attribute header may already stop decoding; otherwise the MAC must catch it.
      if (r.ok) {
        decodedFlips++;
        expect(verifyIntegrity(r.message, key), `byte ${i}`).toBe('mismatch');
      }
    }
    expect(decodedFlips).toBeGreaterThan(20);
  });
  it('a hand-built message whose MAC offset claims an impossible length is a mismatch, never an empty compare or a throw', () => {
    const key = shortTermKey('pw');
    const m = decodeStunMessage(encodeStunMessage({ method: StunMethod.Binding, cls: 'request', transactionId: new Uint8Array(12), attributes: [] }, { integrityKey: key, integrity: 'both' }));
    const off = m.integritySha256Offset;
    for (const claimed of [0, 8, 36, 0xfffc]) {
      const raw = m.raw.slice();
      raw[off + 2] = claimed >> 8;
      raw[off + 3] = claimed & 0xff;
      expect(verifyIntegrity({ ...m, raw }, key, 'sha256'), `length ${claimed}`).toBe('mismatch');
    }
    // A MESSAGE-INTEGRITY offset past the end of the bytes.
    expect(verifyIntegrity({ ...m, integritySha256Offset: -1, integrityOffset: m.raw.length - 8 }, key, 'sha1')).toBe('mismatch');
  });
});

describe('verifying without copying the message', () => {
  const key = shortTermKey('pw');
  const tid = new Uint8Array(12).fill(9);
  const encode = () =>
    encodeStunMessage({ method: StunMethod.Binding, cls: 'request', transactionId: tid, attributes: [attr(Attr.USERNAME, 'a:b', tid)] }, { integrityKey: key, fingerprint: true });
  const HEADER = 20;
  const miLength = (bytes: Uint8Array) => bytes.length - 8 - HEADER; // Length through MESSAGE-INTEGRITY
  const lengthOf = (b: Uint8Array) => (b[2]! << 8) | b[3]!;

  it('the Length covers MESSAGE-INTEGRITY while the MAC is computed, and the received bytes are as before afterwards', () => {
    const bytes = encode();
    const before = hex(bytes);
    const seen: number[] = [];
    const real = nodeHmacProvider;
    const previous = setHmacProvider({
      sha1: (k, parts) => (seen.push(lengthOf(bytes)), real.sha1(k, parts)),
      sha256: (k, parts) => real.sha256(k, parts),
    });
    try {
      expect(verifyIntegrity(decodeStunMessage(bytes), key)).toBe('ok');
    } finally {
      setHmacProvider(previous);
    }
    // Patched in place (no copy of the message), for the duration of the MAC only.
    expect(seen).toEqual([miLength(bytes)]);
    expect(hex(bytes)).toBe(before);
    expect(tryDecodeStunMessage(bytes).ok).toBe(true); // FINGERPRINT still matches
  });

  it('a provider that throws leaves the received bytes as they were', () => {
    const bytes = encode();
    const before = hex(bytes);
    const previous = setHmacProvider({
      sha1: () => {
        throw new Error('provider failed');
      },
      sha256: () => new Uint8Array(32),
    });
    try {
      expect(() => verifyIntegrity(decodeStunMessage(bytes), key)).toThrow('provider failed');
    } finally {
      setHmacProvider(previous);
    }
    expect(hex(bytes)).toBe(before);
    expect(verifyIntegrity(decodeStunMessage(bytes), key)).toBe('ok');
  });

  it('a message in a SharedArrayBuffer (other threads may read it) is never patched: its MAC input is a copy', () => {
    const encoded = encode();
    const shared = new Uint8Array(new SharedArrayBuffer(encoded.length + 16), 8, encoded.length);
    shared.set(encoded);
    const seen: { during: number; input: number }[] = [];
    const real = nodeHmacProvider;
    const previous = setHmacProvider({
      sha1: (k, parts) => (seen.push({ during: lengthOf(shared), input: lengthOf(parts[0]!) }), real.sha1(k, parts)),
      sha256: (k, parts) => real.sha256(k, parts),
    });
    try {
      expect(verifyIntegrity(decodeStunMessage(shared), key)).toBe('ok');
    } finally {
      setHmacProvider(previous);
    }
    expect(seen).toEqual([{ during: encoded.length - HEADER, input: miLength(encoded) }]);
    expect(hex(shared)).toBe(hex(encoded));
  });

  it('a message whose Length already ends at MESSAGE-INTEGRITY is hashed as it is', () => {
    const bytes = encodeStunMessage({ method: StunMethod.Binding, cls: 'request', transactionId: tid, attributes: [] }, { integrityKey: key });
    const before = hex(bytes);
    expect(verifyIntegrity(decodeStunMessage(bytes), key)).toBe('ok');
    expect(hex(bytes)).toBe(before);
    bytes[bytes.length - 1]! ^= 1;
    expect(verifyIntegrity(decodeStunMessage(bytes), key)).toBe('mismatch');
  });
});
