/**
 * The ChannelData message (RFC 8656 §12.4-12.6) and a sans-IO framer that splits a TCP/TLS byte stream into STUN
 * messages and ChannelData frames (RFC 8656 §12.5: ChannelData is padded to a multiple of 4 on streams; STUN
 * messages always are).
 * @module
 */

/** First valid channel number (RFC 8656 §12, table 2). */
export const MIN_CHANNEL = 0x4000;
/** Last valid channel number (RFC 8656 §12, table 2: 0x4000 through 0x4FFF). */
export const MAX_CHANNEL = 0x4fff;
/** Size of the ChannelData header. */
export const CHANNEL_DATA_HEADER = 4;

/** A decoded ChannelData message. `data` is a view into the input, not a copy. */
export interface ChannelData {
  readonly channel: number;
  readonly data: Uint8Array;
}

/** True for a number in the allowed channel range 0x4000-0x4FFF. */
export function isValidChannel(n: number): boolean {
  return Number.isInteger(n) && n >= MIN_CHANNEL && n <= MAX_CHANNEL;
}

/**
 * True when the first byte says ChannelData (RFC 8656 §12 table 3 / RFC 7983: 64..79). Values 0x5000-0xFFFF are
 * reserved and not ChannelData.
 */
export function looksLikeChannelData(data: Uint8Array): boolean {
  return data.length >= CHANNEL_DATA_HEADER && data[0]! >= 0x40 && data[0]! <= 0x4f;
}

/**
 * Encodes a ChannelData message. `pad` rounds the size up to a multiple of 4 with zero bytes (required on TCP/TLS,
 * optional on UDP; RFC 8656 §12.5). The Length field never counts the padding.
 */
export function encodeChannelData(channel: number, data: Uint8Array, pad = false): Uint8Array {
  if (!isValidChannel(channel)) throw new RangeError(`channel number 0x${channel.toString(16)} outside 0x4000-0x4FFF`);
  if (data.length > 0xffff) throw new RangeError('ChannelData payload longer than 65535 bytes');
  const size = CHANNEL_DATA_HEADER + data.length;
  const out = new Uint8Array(pad ? (size + 3) & ~3 : size);
  out[0] = channel >> 8;
  out[1] = channel & 0xff;
  out[2] = data.length >> 8;
  out[3] = data.length & 0xff;
  out.set(data, CHANNEL_DATA_HEADER);
  return out;
}

/**
 * Decodes a ChannelData message from one datagram (or one framed unit), or returns undefined when it is not valid:
 * a channel outside 0x4000-0x4FFF, or fewer bytes than the Length field claims (RFC 8656 §12.6). Trailing bytes
 * (padding) are allowed. Never throws.
 */
export function decodeChannelData(bytes: Uint8Array): ChannelData | undefined {
  if (bytes.length < CHANNEL_DATA_HEADER) return undefined;
  const channel = (bytes[0]! << 8) | bytes[1]!;
  if (!isValidChannel(channel)) return undefined;
  const length = (bytes[2]! << 8) | bytes[3]!;
  if (CHANNEL_DATA_HEADER + length > bytes.length) return undefined;
  return { channel, data: bytes.subarray(CHANNEL_DATA_HEADER, CHANNEL_DATA_HEADER + length) };
}

/** Why the framer gave up on a stream. */
export type FramerError = 'bad-frame' | 'oversize';

/**
 * Splits a TURN-over-TCP/TLS byte stream into whole frames: STUN messages (20-byte header plus the Length field)
 * and ChannelData messages (4-byte header plus Length, padded to 4). Chunks may arrive split or coalesced at any
 * byte. A byte stream has no resynchronisation point, so after an invalid first byte the framer stops for good
 * (`error` is set) and the caller should close the connection.
 */
export class StreamFramer {
  #buffer: Uint8Array = new Uint8Array(0);
  #start = 0;
  #end = 0;
  #error: FramerError | undefined;
  readonly #maxFrame: number;

  /** `maxFrame` bounds the size a header may announce (default 65535 + header, the protocol maximum). */
  constructor(maxFrame = 0xffff + 20) {
    this.#maxFrame = maxFrame;
  }

  /** Set once the stream is unusable; `push` then returns no more frames. */
  get error(): FramerError | undefined {
    return this.#error;
  }

  /** Bytes held waiting for the rest of a frame. */
  get buffered(): number {
    return this.#end - this.#start;
  }

  /**
   * Appends `chunk` and returns every frame it completes, in stream order. Each frame is a fresh copy (safe to keep).
   * ChannelData frames are returned without their padding.
   */
  push(chunk: Uint8Array): Uint8Array[] {
    if (this.#error) return [];
    this.#append(chunk);
    const frames: Uint8Array[] = [];
    for (;;) {
      const avail = this.#end - this.#start;
      if (avail < 4) break;
      const b = this.#buffer;
      const s = this.#start;
      const first = b[s]!;
      const length = (b[s + 2]! << 8) | b[s + 3]!;
      let frameLen: number;
      let wireLen: number;
      if (first < 0x40) {
        // STUN: the top two bits are zero and the body is a multiple of 4 (RFC 8489 §5).
        if ((first & 0xc0) !== 0 || length % 4 !== 0) {
          this.#error = 'bad-frame';
          return frames;
        }
        frameLen = 20 + length;
        wireLen = frameLen;
      } else if (first <= 0x4f) {
        frameLen = CHANNEL_DATA_HEADER + length;
        wireLen = (frameLen + 3) & ~3;
      } else {
        this.#error = 'bad-frame';
        return frames;
      }
      if (wireLen > this.#maxFrame) {
        this.#error = 'oversize';
        return frames;
      }
      if (avail < wireLen) break;
      frames.push(b.slice(s, s + frameLen));
      this.#start += wireLen;
    }
    if (this.#start === this.#end) this.#start = this.#end = 0;
    return frames;
  }

  #append(chunk: Uint8Array): void {
    const need = this.#end - this.#start + chunk.length;
    if (this.#end + chunk.length > this.#buffer.length) {
      // Compact, and grow geometrically when the live bytes do not fit.
      const next = need > this.#buffer.length ? new Uint8Array(Math.max(need, this.#buffer.length * 2, 4096)) : this.#buffer;
      if (next === this.#buffer) this.#buffer.copyWithin(0, this.#start, this.#end);
      else next.set(this.#buffer.subarray(this.#start, this.#end), 0);
      this.#end -= this.#start;
      this.#start = 0;
      this.#buffer = next;
    }
    this.#buffer.set(chunk, this.#end);
    this.#end += chunk.length;
  }
}
