/**
 * RFC 7983 first-byte demultiplexing (ranges as tabulated in RFC 8656 §12, Table 3).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { classifyPacket, isDataByte, type PacketKind } from '../../src/stun/demux.js';
import { encodeStunMessage, StunMethod } from '../../src/stun/index.js';

const stun = encodeStunMessage({ method: StunMethod.Binding, cls: 'request', transactionId: new Uint8Array(12), attributes: [] });

function expected(first: number): PacketKind {
  if (first >= 16 && first <= 19) return 'zrtp';
  if (first >= 20 && first <= 63) return 'dtls';
  if (first >= 64 && first <= 79) return 'channel-data';
  if (first >= 128 && first <= 191) return 'rtp';
  return 'unknown';
}

describe('classifyPacket', () => {
  it('every first byte outside 0..3 maps to its RFC 7983 range (a 32-byte packet of that byte)', () => {
    const counts: Record<PacketKind, number> = { stun: 0, 'channel-data': 0, dtls: 0, rtp: 0, zrtp: 0, unknown: 0 };
    for (let b = 4; b < 256; b++) {
      const kind = classifyPacket(new Uint8Array(32).fill(b));
      expect(kind, `first byte ${b}`).toBe(expected(b));
      counts[kind]++;
    }
    expect(counts).toEqual({ stun: 0, 'channel-data': 16, dtls: 44, rtp: 64, zrtp: 4, unknown: 124 });
  });

  it('0..3 is STUN only with the magic cookie and a sane header', () => {
    expect(classifyPacket(stun)).toBe('stun');
    for (const b of [0, 1, 2, 3]) {
      const s = stun.slice();
      s[0] = b;
      expect(classifyPacket(s)).toBe('stun');
    }
    const noCookie = stun.slice();
    noCookie[5] = 0;
    expect(classifyPacket(noCookie)).toBe('unknown');
    expect(classifyPacket(stun.subarray(0, 19))).toBe('unknown');
    const oddLength = stun.slice();
    oddLength[3] = 2;
    expect(classifyPacket(oddLength)).toBe('unknown');
    expect(classifyPacket(new Uint8Array(0))).toBe('unknown');
  });

  it('real first bytes: ChannelData 0x4000 and 0x4FFF, DTLS handshake 22, RTP v2 0x80, RTCP SR 0x80/200, ZRTP 0x10', () => {
    expect(classifyPacket(Uint8Array.of(0x40, 0x00, 0x00, 0x04, 1, 2, 3, 4))).toBe('channel-data');
    expect(classifyPacket(Uint8Array.of(0x4f, 0xff, 0x00, 0x00))).toBe('channel-data');
    expect(classifyPacket(Uint8Array.of(0x50, 0x00, 0x00, 0x00))).toBe('unknown'); // reserved channel range
    expect(classifyPacket(Uint8Array.of(22, 0xfe, 0xfd))).toBe('dtls');
    expect(classifyPacket(Uint8Array.of(0x80, 0x60, 0, 1))).toBe('rtp');
    expect(classifyPacket(Uint8Array.of(0x80, 200, 0, 6))).toBe('rtp');
    expect(classifyPacket(Uint8Array.of(0x10, 0, 0x50, 0x5a))).toBe('zrtp');
  });

  it('never throws and agrees with the first byte on arbitrary input', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (d) => {
        const kind = classifyPacket(d);
        if (d.length === 0) expect(kind).toBe('unknown');
        else if (d[0]! <= 3) expect(['stun', 'unknown']).toContain(kind);
        else expect(kind).toBe(expected(d[0]!));
      }),
      { numRuns: 2000 },
    );
  });
});

describe('isDataByte', () => {
  it('agrees with classifyPacket for every first byte: false exactly for the STUN and ChannelData ranges', () => {
    for (let b = 0; b < 256; b++) {
      const kind = classifyPacket(new Uint8Array(32).fill(b));
      const machinery = b <= 3 || kind === 'stun' || kind === 'channel-data';
      expect(isDataByte(b), `first byte ${b}`).toBe(!machinery);
    }
  });
});
