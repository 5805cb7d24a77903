import { describe, expect, it } from 'vitest';
import { frameRfc4571, Rfc4571Framer } from '../../src/stun/rfc4571.js';

const bytes = (...b: number[]) => new Uint8Array(b);

describe('RFC 4571 framing', () => {
  it('prefixes the 16-bit length and refuses more than 65535 bytes', () => {
    expect([...frameRfc4571(bytes(1, 2, 3))]).toEqual([0, 3, 1, 2, 3]);
    expect(frameRfc4571(new Uint8Array(65535)).length).toBe(65537);
    expect(() => frameRfc4571(new Uint8Array(65536))).toThrow(RangeError);
  });

  it('splits a stream cut anywhere into the frames sent, empty frames included', () => {
    const frames = [bytes(1), bytes(), bytes(2, 3, 4), new Uint8Array(300).fill(9)];
    const stream = Buffer.concat(frames.map((f) => frameRfc4571(f)));
    for (const cut of [1, 2, 3, 7, 64, stream.length]) {
      const f = new Rfc4571Framer();
      const out: Uint8Array[] = [];
      for (let i = 0; i < stream.length; i += cut) out.push(...f.push(stream.subarray(i, i + cut)));
      expect(out.map((x) => [...x])).toEqual(frames.map((x) => [...x]));
      expect(f.buffered).toBe(0);
    }
  });

  it('holds one partial frame at most, and refuses a frame over its limit for good', () => {
    const f = new Rfc4571Framer(100);
    expect(f.push(bytes(0, 50, 1, 2))).toEqual([]);
    expect(f.buffered).toBe(4);
    const g = new Rfc4571Framer(100);
    expect(g.push(bytes(0, 3, 1, 2, 3, 0, 101))).toHaveLength(1);
    expect(g.error).toBe(true);
    expect(g.buffered).toBe(0);
    expect(g.push(bytes(0, 1, 5))).toEqual([]);
  });

  it('with views, frames a chunk holds whole are views of it; a frame spanning chunks is still a copy', () => {
    const f = new Rfc4571Framer(undefined, true);
    const chunk = bytes(0, 2, 7, 8, 0, 1, 9, 0, 3, 1);
    const [a, b] = f.push(chunk);
    expect(a!.buffer).toBe(chunk.buffer);
    expect([a!.byteOffset, [...a!], [...b!]]).toEqual([2, [7, 8], [9]]);
    const [c] = f.push(bytes(2, 3));
    chunk.fill(0);
    expect([...c!]).toEqual([1, 2, 3]);
  });

  it('copies frames: the caller may reuse its chunk', () => {
    const chunk = bytes(0, 2, 7, 8);
    const [frame] = new Rfc4571Framer().push(chunk);
    chunk.fill(0);
    expect([...frame!]).toEqual([7, 8]);
  });
});
