/**
 * RFC 4571 framing: every STUN message and every application datagram on an ICE-TCP connection (RFC 6544 §7.1,
 * §10) is preceded by a 16-bit length. The TURN stream framer (`turnclient/channel-data.ts`) reads STUN/ChannelData
 * lengths instead; this one reads the 2-byte prefix. Pure: bytes in, frames out.
 * @module
 */

/** Largest payload one RFC 4571 frame can carry (the length field is 16 bits). */
export const MAX_RFC4571_PAYLOAD = 0xffff;

/** Prefixes `payload` with its 16-bit length (RFC 4571 §2). @throws RangeError over 65535 bytes. */
export function frameRfc4571(payload: Uint8Array): Uint8Array {
  const n = payload.length;
  if (n > MAX_RFC4571_PAYLOAD) throw new RangeError(`an RFC 4571 frame carries at most 65535 bytes, not ${n}`);
  const out = new Uint8Array(n + 2);
  out[0] = n >>> 8;
  out[1] = n & 0xff;
  out.set(payload, 2);
  return out;
}

/**
 * Splits a received byte stream into RFC 4571 frames. It never holds more than one partial frame, and that frame at
 * most `maxFrame` bytes long (default 65535): a longer length prefix sets `error` and every later push returns
 * nothing, since a stream cannot be resynchronised once a frame is refused.
 *
 * Frames are copies, unless `views`: then the frames a chunk holds whole are views of that chunk (no copy on the
 * data path), for a caller whose chunks are never reused (Node gives each socket read its own memory). A frame that
 * spans chunks is still a copy: the held bytes live in a buffer the framer reuses.
 */
export class Rfc4571Framer {
  #buffer = new Uint8Array(0);
  #start = 0;
  #end = 0;
  #maxFrame: number;
  #error = false;
  readonly #views: boolean;

  constructor(maxFrame: number = MAX_RFC4571_PAYLOAD, views = false) {
    this.#maxFrame = maxFrame;
    this.#views = views;
  }

  /** A frame longer than the limit arrived: the stream is unusable. */
  get error(): boolean {
    return this.#error;
  }

  /** Bytes held waiting for the rest of a frame (at most `maxFrame + 2`). */
  get buffered(): number {
    return this.#end - this.#start;
  }

  /** Changes the frame-length limit for frames not yet started (a connection proven by a check may carry media). */
  set maxFrame(n: number) {
    this.#maxFrame = n;
  }

  /** Appends `chunk`; returns every frame it completes, in order (copies, or views of `chunk`: see the class). */
  push(chunk: Uint8Array): Uint8Array[] {
    const frames: Uint8Array[] = [];
    if (this.#error) return frames;
    let offset = 0;
    // The common case: nothing buffered, whole frames in the chunk, sliced without copying the chunk first.
    if (this.#end === this.#start) {
      while (chunk.length - offset >= 2) {
        const n = (chunk[offset]! << 8) | chunk[offset + 1]!;
        if (n > this.#maxFrame) {
          this.#error = true;
          return frames;
        }
        if (chunk.length - offset - 2 < n) break;
        frames.push(this.#views ? chunk.subarray(offset + 2, offset + 2 + n) : chunk.slice(offset + 2, offset + 2 + n));
        offset += 2 + n;
      }
      if (offset === chunk.length) return frames;
    }
    this.#append(chunk, offset);
    for (;;) {
      const avail = this.#end - this.#start;
      if (avail < 2) break;
      const b = this.#buffer;
      const n = (b[this.#start]! << 8) | b[this.#start + 1]!;
      if (n > this.#maxFrame) {
        this.#error = true;
        this.#start = this.#end = 0;
        return frames;
      }
      if (avail - 2 < n) break;
      frames.push(b.slice(this.#start + 2, this.#start + 2 + n));
      this.#start += 2 + n;
    }
    if (this.#start === this.#end) this.#start = this.#end = 0;
    return frames;
  }

  #append(chunk: Uint8Array, offset: number): void {
    const add = chunk.length - offset;
    const live = this.#end - this.#start;
    if (this.#end + add > this.#buffer.length) {
      const next = live + add > this.#buffer.length ? new Uint8Array(Math.max(live + add, this.#buffer.length * 2, 256)) : this.#buffer;
      if (next === this.#buffer) next.copyWithin(0, this.#start, this.#end);
      else next.set(this.#buffer.subarray(this.#start, this.#end), 0);
      this.#buffer = next;
      this.#end = live;
      this.#start = 0;
    }
    this.#buffer.set(chunk.subarray(offset), this.#end);
    this.#end += add;
  }
}
