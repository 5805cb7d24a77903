/**
 * Demultiplexing of the protocols that share an ICE socket, by the first byte of the datagram (RFC 7983 §7, as
 * tabulated again in RFC 8656 §12 for TURN ChannelData). Sans-IO and allocation-free.
 *
 * | first byte | protocol |
 * | --- | --- |
 * | 0..3 | STUN (and only if the magic cookie is there, see below) |
 * | 16..19 | ZRTP |
 * | 20..63 | DTLS |
 * | 64..79 | TURN ChannelData (channel numbers 0x4000..0x4FFF, RFC 8656 §12) |
 * | 128..191 | RTP / RTCP |
 * | others | reserved: "MUST be dropped" (RFC 8656 §12, Table 3) |
 * @module
 */
import { looksLikeStun } from './message.js';

/** What a datagram on a multiplexed ICE socket is. `'unknown'` must be dropped. */
export type PacketKind = 'stun' | 'channel-data' | 'dtls' | 'rtp' | 'zrtp' | 'unknown';

/**
 * Classifies a datagram by its first byte (RFC 7983). A first byte of 0..3 counts as STUN only when the rest of the
 * header is STUN-shaped (at least 20 bytes, length a multiple of 4, magic cookie; RFC 8489 §5 / RFC 7983 §5):
 * otherwise it is `'unknown'`, since no other protocol of RFC 7983 uses that range. The other kinds are decided by
 * the first byte alone; their own parsers check the rest.
 */
export function classifyPacket(data: Uint8Array): PacketKind {
  if (data.length === 0) return 'unknown';
  const b = data[0]!;
  if (b <= 3) return looksLikeStun(data) ? 'stun' : 'unknown';
  if (b >= 16 && b <= 19) return 'zrtp';
  if (b >= 20 && b <= 63) return 'dtls';
  if (b >= 64 && b <= 79) return 'channel-data';
  if (b >= 128 && b <= 191) return 'rtp';
  return 'unknown';
}

/**
 * True when a first byte rules out both STUN (0..3) and TURN ChannelData (64..79), the two kinds an ICE agent's own
 * machinery (checks, TURN clients, gathering) consumes: what remains is application data (DTLS, RTP, ZRTP) or a
 * reserved value the receiver drops. The edge's data fast path asks this per datagram, so it takes the byte, not the
 * buffer, and allocates nothing. An empty datagram has no first byte: pass 0, which counts as STUN-range.
 */
export function isDataByte(b0: number): boolean {
  return b0 > 3 && (b0 < 64 || b0 > 79);
}
