import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Attr, attr, encodeStunMessage, StunMethod } from '../../src/stun/index.js';
import { decodeChannelData, encodeChannelData, isValidChannel, looksLikeChannelData, StreamFramer } from '../../src/turnclient/channel-data.js';

describe('ChannelData codec (RFC 8656 §12.4-12.6)', () => {
  it('encodes header, length without padding, and pads only when asked', () => {
    const m = encodeChannelData(0x4001, Uint8Array.of(0xaa, 0xbb, 0xcc));
    expect([...m]).toEqual([0x40, 0x01, 0x00, 0x03, 0xaa, 0xbb, 0xcc]);
    const p = encodeChannelData(0x4001, Uint8Array.of(0xaa, 0xbb, 0xcc), true);
    expect([...p]).toEqual([0x40, 0x01, 0x00, 0x03, 0xaa, 0xbb, 0xcc, 0x00]);
    expect(encodeChannelData(0x4fff, new Uint8Array(0), true).length).toBe(4);
  });

  it('accepts exactly 0x4000-0x4FFF', () => {
    expect(isValidChannel(0x3fff)).toBe(false);
    expect(isValidChannel(0x4000)).toBe(true);
    expect(isValidChannel(0x4fff)).toBe(true);
    expect(isValidChannel(0x5000)).toBe(false);
    expect(() => encodeChannelData(0x5000, new Uint8Array(1))).toThrow(RangeError);
    expect(decodeChannelData(Uint8Array.of(0x50, 0x00, 0x00, 0x00))).toBeUndefined();
    expect(looksLikeChannelData(Uint8Array.of(0x50, 0, 0, 0))).toBe(false);
  });

  it('rejects a datagram shorter than the claimed length, tolerates trailing padding', () => {
    expect(decodeChannelData(Uint8Array.of(0x40, 0x00, 0x00, 0x05, 1, 2, 3, 4))).toBeUndefined();
    expect(decodeChannelData(Uint8Array.of(0x40, 0x00, 0x00, 0x01, 9, 0, 0, 0))).toEqual({ channel: 0x4000, data: Uint8Array.of(9) });
  });

  it('round-trips any channel and payload', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0x4000, max: 0x4fff }), fc.uint8Array({ maxLength: 300 }), fc.boolean(), (ch, data, pad) => {
        const d = decodeChannelData(encodeChannelData(ch, data, pad));
        expect(d?.channel).toBe(ch);
        expect(d?.data).toEqual(data);
      }),
    );
  });
});

describe('StreamFramer', () => {
  const stun = (n: number) => {
    const txid = new Uint8Array(12).fill(n);
    return encodeStunMessage({ method: StunMethod.Data, cls: 'indication', transactionId: txid, attributes: [attr(Attr.SOFTWARE, 'x'.repeat(n % 7), txid)] }, { fingerprint: true });
  };

  it('splits any chunking of a stream of STUN and padded ChannelData frames back into the frames', () => {
    const frame = fc.oneof(
      fc.tuple(fc.integer({ min: 0x4000, max: 0x4fff }), fc.uint8Array({ maxLength: 70 })).map(([ch, d]) => ({ kind: 'cd' as const, ch, d })),
      fc.integer({ min: 0, max: 20 }).map((n) => ({ kind: 'stun' as const, n })),
    );
    fc.assert(
      fc.property(fc.array(frame, { maxLength: 12 }), fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 30 }), (frames, cuts) => {
        const expected = frames.map((f) => (f.kind === 'cd' ? encodeChannelData(f.ch, f.d, false) : stun(f.n)));
        const wire = Buffer.concat(frames.map((f) => (f.kind === 'cd' ? encodeChannelData(f.ch, f.d, true) : stun(f.n))));
        const framer = new StreamFramer();
        const got: Uint8Array[] = [];
        let pos = 0;
        let i = 0;
        while (pos < wire.length) {
          const n = cuts[i++ % cuts.length]!;
          got.push(...framer.push(new Uint8Array(wire.subarray(pos, pos + n))));
          pos += n;
        }
        expect(got.map((g) => [...g])).toEqual(expected.map((e) => [...e]));
        expect(framer.buffered).toBe(0);
        expect(framer.error).toBeUndefined();
      }),
    );
  });

  it('holds a partial frame until the rest arrives', () => {
    const f = new StreamFramer();
    const cd = encodeChannelData(0x4000, Uint8Array.of(1, 2, 3, 4, 5), true);
    expect(f.push(cd.subarray(0, 3))).toEqual([]);
    expect(f.push(cd.subarray(3, 9))).toEqual([]);
    expect(f.buffered).toBe(9);
    expect(f.push(cd.subarray(9))).toEqual([encodeChannelData(0x4000, Uint8Array.of(1, 2, 3, 4, 5))]);
  });

  it('stops for good on a byte that starts neither STUN nor ChannelData', () => {
    const f = new StreamFramer();
    expect(f.push(Uint8Array.of(0x80, 0, 0, 0, 0, 0))).toEqual([]);
    expect(f.error).toBe('bad-frame');
    expect(f.push(encodeChannelData(0x4000, Uint8Array.of(1), true))).toEqual([]);
    const g = new StreamFramer();
    expect(g.push(Uint8Array.of(0x00, 0x01, 0x00, 0x03))).toEqual([]); // STUN length not a multiple of 4
    expect(g.error).toBe('bad-frame');
  });
});
