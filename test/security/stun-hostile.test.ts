import { describe, expect, it } from 'vitest';
import { unknownComprehensionRequired } from '../../src/stun/attributes.js';
import { encodeStunMessage, tryDecodeStunMessage } from '../../src/stun/message.js';
import { StunMethod } from '../../src/stun/constants.js';

describe('STUN layer against hostile input', () => {
  it('refuses a maximal datagram of ~16k attributes at decode, and lists unknown attributes in linear time', () => {
    // The largest UDP payload, packed with zero-length attributes of distinct unknown comprehension-required types.
    const n = 16_000;
    const attributes = Array.from({ length: n }, (_, i) => ({ type: 0x4000 + i, value: new Uint8Array(0) }));
    const data = encodeStunMessage({ method: StunMethod.Binding, cls: 'request', transactionId: new Uint8Array(12), attributes }, { fingerprint: true });
    const refused = tryDecodeStunMessage(data);
    expect(!refused.ok && refused.reason).toBe('too-many-attributes');
    // The listing stays linear for whoever builds such a message object (e.g. another decoder).
    const small = tryDecodeStunMessage(encodeStunMessage({ method: StunMethod.Binding, cls: 'request', transactionId: new Uint8Array(12), attributes: [] }));
    if (!small.ok) throw new Error(small.reason);
    const r = { message: { ...small.message, attributes } };
    const t0 = performance.now();
    const unknown = unknownComprehensionRequired(r.message);
    const ms = performance.now() - t0;
    expect(unknown).toHaveLength(n);
    expect(unknown[0]).toBe(0x4000);
    expect(new Set(unknown).size).toBe(n);
    // Quadratic: ~100 ms here (more on a loaded machine); linear: ~1 ms.
    expect(ms).toBeLessThan(40);
    // Duplicates are listed once, in first-seen order.
    expect(unknownComprehensionRequired({ ...r.message, attributes: [attributes[2]!, attributes[1]!, attributes[2]!] })).toEqual([0x4002, 0x4001]);
  });

  it('encoded messages never share bytes: a view kept by the caller is never overwritten', () => {
    const kept = encodeStunMessage({ method: StunMethod.Binding, cls: 'request', transactionId: new Uint8Array(12).fill(7), attributes: [] }, { fingerprint: true });
    const copy = Uint8Array.from(kept);
    for (let i = 0; i < 5000; i++) {
      const m = encodeStunMessage({ method: StunMethod.Binding, cls: 'success', transactionId: new Uint8Array(12).fill(i & 0xff), attributes: [{ type: 0x8022, value: new Uint8Array(i % 300).fill(0xee) }] }, { fingerprint: true });
      expect(m.byteOffset + m.byteLength <= kept.byteOffset || m.buffer !== kept.buffer || m.byteOffset >= kept.byteOffset + kept.byteLength).toBe(true);
    }
    expect(kept).toEqual(copy);
  });
});
