/**
 * Byte-exact test vectors: RFC 5769 §2.1-2.4 and RFC 8489 Appendix B.1 (with the corrections of erratum 6268,
 * derived here from the RFC's own rules). The hex lives in test/fixtures/stun/rfc-vectors.json, copied from the RFC
 * texts; when ../shared/rfc sits beside the repository the copy is re-extracted and compared.
 */
import { createHash, createHmac } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  Attr,
  attr,
  decodeStunMessage,
  encodeStunMessage,
  getAttribute,
  longTermKey,
  PasswordAlgorithm,
  prepareCredential,
  shortTermKey,
  StunMethod,
  tryDecodeStunMessage,
  userHash,
  verifyIntegrity,
  type StunMessage,
} from '../../src/stun/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const vectors = JSON.parse(readFileSync(join(here, '../fixtures/stun/rfc-vectors.json'), 'utf8')) as Record<string, string>;
const bytes = (name: string): Uint8Array => {
  const hex = vectors[name];
  if (hex === undefined) throw new Error(`no vector ${name}`);
  return new Uint8Array(Buffer.from(hex, 'hex'));
};
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

const TXID_5769 = Uint8Array.from(Buffer.from('b7e7a701bc34d686fa87dfae', 'hex'));
const PASSWORD_5769 = 'VOkJxbRl1RmTxUk/WvJxBt';

describe('fixture matches the RFC text', () => {
  // Same extraction that produced the fixture: every line starting with four two-digit hex groups, per section.
  const shared = join(here, '../../../shared/rfc');
  const extract = (file: string, from: string, to: string): string => {
    const text = readFileSync(join(shared, file), 'utf8');
    const start = text.indexOf(from);
    const section = text.slice(start, text.indexOf(to, start));
    return section
      .split('\n')
      .map((l) => /^\s+((?:[0-9a-f]{2} ){3}[0-9a-f]{2})(\s|$)/.exec(l)?.[1]?.replaceAll(' ', '') ?? '')
      .join('');
  };
  it.skipIf(!existsSync(shared))('re-extracted hex equals the fixture', () => {
    expect(extract('rfc5769.txt', '2.1.  Sample Request\n', '2.2.  Sample IPv4')).toBe(vectors['rfc5769-2.1']);
    expect(extract('rfc5769.txt', '2.2.  Sample IPv4 Response\n', '2.3.  Sample IPv6')).toBe(vectors['rfc5769-2.2']);
    expect(extract('rfc5769.txt', '2.3.  Sample IPv6 Response\n', '2.4.  Sample Request with')).toBe(vectors['rfc5769-2.3']);
    expect(extract('rfc5769.txt', '2.4.  Sample Request with Long-Term Authentication\n', '3.  Security')).toBe(vectors['rfc5769-2.4']);
    expect(extract('rfc8489.txt', 'B.1.  Sample Request with Long-Term', 'Acknowledgements\n')).toBe(vectors['rfc8489-B.1-printed']);
  });
});

describe('RFC 5769 §2.1 sample request', () => {
  const wire = bytes('rfc5769-2.1');
  const key = shortTermKey(PASSWORD_5769);

  it('decodes and verifies', () => {
    const m = decodeStunMessage(wire);
    expect(m.method).toBe(StunMethod.Binding);
    expect(m.cls).toBe('request');
    expect(hex(m.transactionId)).toBe(hex(TXID_5769));
    expect(getAttribute(m, Attr.SOFTWARE)).toBe('STUN test client');
    expect(getAttribute(m, Attr.PRIORITY)).toBe(0x6e0001ff);
    expect(getAttribute(m, Attr.ICE_CONTROLLED)).toBe(0x932ff9b151263b36n);
    expect(getAttribute(m, Attr.USERNAME)).toBe('evtj:h6vY');
    expect(m.hasFingerprint).toBe(true);
    expect(verifyIntegrity(m, key)).toBe('ok');
    expect(verifyIntegrity(m, shortTermKey('VOkJxbRl1RmTxUk/WvJxBT'))).toBe('mismatch');
    expect(verifyIntegrity(m, key, 'sha256')).toBe('missing');
  });

  const typed: StunMessage = {
    method: StunMethod.Binding,
    cls: 'request',
    transactionId: TXID_5769,
    attributes: [
      attr(Attr.SOFTWARE, 'STUN test client', TXID_5769),
      attr(Attr.PRIORITY, 0x6e0001ff, TXID_5769),
      attr(Attr.ICE_CONTROLLED, 0x932ff9b151263b36n, TXID_5769),
      attr(Attr.USERNAME, 'evtj:h6vY', TXID_5769),
    ],
  };

  it('re-encodes byte for byte with space padding (the vector pads USERNAME with 0x20)', () => {
    const out = encodeStunMessage(typed, { integrityKey: key, fingerprint: true, padding: 0x20 });
    expect(hex(out)).toBe(hex(wire));
  });

  it('with the default zero padding differs exactly in the padding, MAC and CRC, and still verifies', () => {
    const out = encodeStunMessage(typed, { integrityKey: key, fingerprint: true });
    expect(out.length).toBe(wire.length);
    const differing = [...out.keys()].filter((i) => out[i] !== wire[i]);
    // USERNAME's value sits at 64..72, so its 3 padding bytes are 73..75; the rest of the difference is confined to
    // the MESSAGE-INTEGRITY value (80..99) and the FINGERPRINT value (104..107).
    expect(differing.filter((i) => i < 80)).toEqual([73, 74, 75]);
    expect(differing.every((i) => i < 80 || (i >= 80 && i < 100) || i >= 104)).toBe(true);
    expect(differing.some((i) => i >= 80 && i < 100)).toBe(true);
    expect(differing.some((i) => i >= 104)).toBe(true);
    const m = decodeStunMessage(out);
    expect(verifyIntegrity(m, key)).toBe('ok');
    expect(getAttribute(m, Attr.USERNAME)).toBe('evtj:h6vY');
  });
});

describe.each([
  ['rfc5769-2.2', '192.0.2.1'],
  ['rfc5769-2.3', '2001:db8:1234:5678:11:2233:4455:6677'],
])('RFC 5769 %s response', (name, address) => {
  const wire = bytes(name);
  const key = shortTermKey(PASSWORD_5769);

  it('decodes and verifies', () => {
    const m = decodeStunMessage(wire);
    expect(m.cls).toBe('success');
    expect(getAttribute(m, Attr.XOR_MAPPED_ADDRESS)).toEqual({ address, port: 32853 });
    expect(getAttribute(m, Attr.SOFTWARE)).toBe('test vector');
    expect(m.hasFingerprint).toBe(true);
    expect(verifyIntegrity(m, key)).toBe('ok');
  });

  it('re-encodes byte for byte (SOFTWARE padded with 0x20)', () => {
    const typed: StunMessage = {
      method: StunMethod.Binding,
      cls: 'success',
      transactionId: TXID_5769,
      attributes: [attr(Attr.SOFTWARE, 'test vector', TXID_5769), attr(Attr.XOR_MAPPED_ADDRESS, { address, port: 32853 }, TXID_5769)],
    };
    expect(hex(encodeStunMessage(typed, { integrityKey: key, fingerprint: true, padding: 0x20 }))).toBe(hex(wire));
    // Zero padding changes the covered bytes, so MAC and CRC change too, but it is still valid.
    const zero = encodeStunMessage(typed, { integrityKey: key, fingerprint: true });
    expect(hex(zero)).not.toBe(hex(wire));
    expect(verifyIntegrity(decodeStunMessage(zero), key)).toBe('ok');
  });
});

describe('RFC 5769 §2.4 long-term request', () => {
  const wire = bytes('rfc5769-2.4');
  const username = '\u30DE\u30C8\u30EA\u30C3\u30AF\u30B9';
  const rawPassword = 'The\u00ADM\u00AAtr\u2168';

  it('SASLprep maps the password to "TheMatrIX" (RFC 5769 §2.4)', () => {
    expect(prepareCredential(rawPassword, 'saslprep')).toBe('TheMatrIX');
  });

  it('decodes and verifies with the MD5 long-term key (no FINGERPRINT in this vector)', () => {
    const m = decodeStunMessage(wire);
    expect(getAttribute(m, Attr.USERNAME)).toBe(username);
    expect(getAttribute(m, Attr.NONCE)).toBe('f//499k954d6OL34oL9FSTvy64sA');
    expect(getAttribute(m, Attr.REALM)).toBe('example.org');
    expect(m.hasFingerprint).toBe(false);
    const key = longTermKey(username, 'example.org', rawPassword, PasswordAlgorithm.MD5, 'saslprep');
    // Independent check of the key: MD5 of the UTF-8 of "username:realm:TheMatrIX".
    expect(hex(key)).toBe(createHash('md5').update(`${username}:example.org:TheMatrIX`, 'utf8').digest('hex'));
    expect(verifyIntegrity(m, key)).toBe('ok');
    expect(verifyIntegrity(m, longTermKey(username, 'example.org', 'TheMatrix', PasswordAlgorithm.MD5, 'saslprep'))).toBe('mismatch');
  });

  it('re-encodes byte for byte (zero padding)', () => {
    const txid = wire.subarray(8, 20);
    const typed: StunMessage = {
      method: StunMethod.Binding,
      cls: 'request',
      transactionId: txid,
      attributes: [
        attr(Attr.USERNAME, username, txid),
        attr(Attr.NONCE, 'f//499k954d6OL34oL9FSTvy64sA', txid),
        attr(Attr.REALM, 'example.org', txid),
      ],
    };
    const key = longTermKey(username, 'example.org', rawPassword, PasswordAlgorithm.MD5, 'saslprep');
    expect(hex(encodeStunMessage(typed, { integrityKey: key }))).toBe(hex(wire));
  });
});

describe('RFC 8489 §9.2.2 key example', () => {
  it("MD5('user:realm:pass') = 0x8493fbc53ba582fb4c044c456bdc40eb", () => {
    expect(hex(longTermKey('user', 'realm', 'pass'))).toBe('8493fbc53ba582fb4c044c456bdc40eb');
  });
});

/*
 * RFC 8489 Appendix B.1, as printed, is wrong in two ways (erratum 6268, verified):
 *  1. The header Length is 0x9c = 156, the size of the whole printed message including the 20-byte header, but
 *     §5 says Length excludes the header: the body is 156 - 20 = 136 = 0x88 bytes.
 *  2. The MAC was computed with a SHA-256 long-term key, yet the request carries no PASSWORD-ALGORITHM. §9.2.2:
 *     without PASSWORD-ALGORITHM the key is the MD5 one; a SHA-256 key needs PASSWORD-ALGORITHM = 0x0002 (§14.12,
 *     §18.5.1.2) in the request, which also changes what the MAC covers.
 * A third wrinkle, not part of that erratum: the text says the password becomes "TheMatrIX" after OpaqueString,
 * but OpaqueString (RFC 8265, FreeformClass) rejects U+00AD and keeps U+00AA and U+2168 (NFC); "TheMatrIX" is the
 * SASLprep result of RFC 5769 §2.4, and it is the password that reproduces the printed MAC, so we use it.
 * Below we (a) show our decoder rejects the printed bytes for the reason (1), (b) show the printed MAC is exactly
 * HMAC-SHA256 under the SHA-256 key over the bytes with the wrong Length and no PASSWORD-ALGORITHM, so it cannot
 * verify under RFC rules, and (c) derive the corrected message from typed values and the RFC's rules, then compare
 * it with the bytes erratum 6268 publishes.
 */
describe('RFC 8489 Appendix B.1 (SHA-256, USERHASH, long-term) and erratum 6268', () => {
  const printed = bytes('rfc8489-B.1-printed');
  const username = '\u30DE\u30C8\u30EA\u30C3\u30AF\u30B9';
  const realm = 'example.org';
  const nonce = 'obMatJos2AAACf//499k954d6OL34oL9FSTvy64sA';
  const password = 'TheMatrIX';
  const txid = printed.slice(8, 20);
  const sha256Key = longTermKey(username, realm, password, PasswordAlgorithm.SHA256);
  const md5Key = longTermKey(username, realm, password, PasswordAlgorithm.MD5);

  it('OpaqueString does not turn the printed password into "TheMatrIX"', () => {
    expect(() => prepareCredential('The\u00ADM\u00AAtr\u2168', 'opaque-string')).toThrow(RangeError);
    expect(prepareCredential('M\u00AAtr\u2168', 'opaque-string')).toBe('M\u00AAtr\u2168');
    expect(prepareCredential('The\u00ADM\u00AAtr\u2168', 'saslprep')).toBe(password);
  });

  it('the printed USERHASH is SHA-256(username ":" realm) (§14.4), so that part is right', () => {
    expect(hex(printed.subarray(24, 56))).toBe(hex(userHash(username, realm)));
    expect(hex(userHash(username, realm))).toBe(createHash('sha256').update(`${username}:${realm}`, 'utf8').digest('hex'));
  });

  it('(a) the printed Length counts the header, so the printed bytes do not decode', () => {
    expect(printed.length).toBe(156);
    expect((printed[2]! << 8) | printed[3]!).toBe(156);
    const r = tryDecodeStunMessage(printed);
    expect(r).toMatchObject({ ok: false, reason: 'bad-length' });
  });

  it('(b) the printed MAC is HMAC-SHA256(SHA-256 key) over the wrong Length and cannot verify by RFC rules', () => {
    const macStart = printed.length - 32;
    const printedMac = hex(printed.subarray(macStart));
    const coveredAsPrinted = printed.slice(0, macStart - 4); // up to the MESSAGE-INTEGRITY-SHA256 header
    // What produced it: the SHA-256 key, Length left at 0x9c.
    expect(createHmac('sha256', sha256Key).update(coveredAsPrinted).digest('hex')).toBe(printedMac);
    // With Length fixed to 0x88 (what §14.6 prescribes: up to and including MESSAGE-INTEGRITY-SHA256), it fails
    // under both keys, and §9.2.2 would pick the MD5 key here anyway, since there is no PASSWORD-ALGORITHM.
    const repaired = printed.slice();
    repaired[2] = 0x00;
    repaired[3] = 0x88;
    const m = decodeStunMessage(repaired);
    expect(m.integritySha256Offset).toBe(printed.length - 36);
    expect(getAttribute(m, Attr.PASSWORD_ALGORITHM)).toBeUndefined();
    expect(verifyIntegrity(m, sha256Key)).toBe('mismatch');
    expect(verifyIntegrity(m, md5Key)).toBe('mismatch');
  });

  it('(c) derived from the rules: USERHASH, NONCE, REALM, PASSWORD-ALGORITHM=SHA-256, MESSAGE-INTEGRITY-SHA256', () => {
    const typed: StunMessage = {
      method: StunMethod.Binding,
      cls: 'request',
      transactionId: txid,
      attributes: [
        attr(Attr.USERHASH, userHash(username, realm), txid),
        attr(Attr.NONCE, nonce, txid),
        attr(Attr.REALM, realm, txid),
        attr(Attr.PASSWORD_ALGORITHM, { algorithm: PasswordAlgorithm.SHA256, parameters: new Uint8Array(0) }, txid),
      ],
    };
    const derived = encodeStunMessage(typed, { integrityKey: sha256Key, integrity: 'sha256' });
    // Length: 136 bytes of the printed body + 8 for PASSWORD-ALGORITHM (4-byte header, 4-byte value) = 0x90.
    expect(derived.length).toBe(20 + 0x90);
    expect(hex(derived.subarray(0, 4))).toBe('00010090');
    // Everything before PASSWORD-ALGORITHM is the printed message, apart from the Length field.
    expect(hex(derived.subarray(4, 120))).toBe(hex(printed.subarray(4, 120)));
    expect(hex(derived.subarray(120, 128))).toBe('001d000400020000');
    expect(hex(derived.subarray(128, 132))).toBe('001c0020');
    // The MAC recomputed independently of our codec: HMAC-SHA256 over the first 128 bytes with Length = 0x90.
    const expectedMac = createHmac('sha256', sha256Key).update(derived.subarray(0, 128)).digest('hex');
    expect(hex(derived.subarray(132))).toBe(expectedMac);
    // The value erratum 6268 publishes for the corrected vector agrees with our derivation.
    expect(expectedMac).toBe('b5c7bf005b6c52a21c51c5e892f81924136296cb927c4314' + '9309278cc6518e65');

    const m = decodeStunMessage(derived);
    expect(getAttribute(m, Attr.PASSWORD_ALGORITHM)).toEqual({ algorithm: PasswordAlgorithm.SHA256, parameters: new Uint8Array(0) });
    expect(hex(getAttribute(m, Attr.USERHASH)!)).toBe(hex(printed.subarray(24, 56)));
    expect(verifyIntegrity(m, sha256Key)).toBe('ok');
    expect(verifyIntegrity(m, sha256Key, 'sha256')).toBe('ok');
    expect(verifyIntegrity(m, md5Key)).toBe('mismatch');
    expect(verifyIntegrity(m, sha256Key, 'sha1')).toBe('missing');
  });
});
