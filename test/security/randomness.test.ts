import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cryptoRandom } from '../../src/node/random.js';

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

describe('randomness', () => {
  it('nothing in src/ uses Math.random, and only src/node/random.ts draws from node:crypto directly', () => {
    const root = new URL('../../src/', import.meta.url).pathname;
    for (const file of sources(root)) {
      const text = readFileSync(file, 'utf8');
      expect(text, file).not.toMatch(/Math\.random\s*\(/);
      if (file.endsWith('node/random.ts')) continue;
      // No random function imported from node:crypto, nor reached through the crypto globals.
      for (const m of text.matchAll(/import\s*\{([^}]*)\}\s*from\s*'(node:)?crypto'/g)) {
        expect(m[1], file).not.toMatch(/\brandom|getRandomValues/);
      }
      expect(text, file).not.toMatch(/crypto\.(random\w*|getRandomValues)\s*\(/);
    }
  });

  it('the pooled CSPRNG hands out each byte once and never aliases its pool', () => {
    // 12-byte IDs straddle the 4096-byte refills; 50k draws span ~140 refills.
    const seen = new Set<string>();
    const first = cryptoRandom.bytes(12);
    const snapshot = Buffer.from(first).toString('hex');
    let draws = 0;
    let badLength = 0;
    for (let i = 0; i < 50_000; i++) {
      const n = i % 7 === 0 ? 8 : 12;
      const b = cryptoRandom.bytes(n);
      if (b.length !== n) badLength++;
      if (n === 12) {
        draws++;
        seen.add(Buffer.from(b).toString('hex'));
      }
      b.fill(0xff); // a caller scribbling on its bytes must not touch the pool
    }
    expect(badLength).toBe(0);
    expect(seen.size).toBe(draws);
    expect(Buffer.from(first).toString('hex')).toBe(snapshot);
    // Large draws bypass the pool and are still filled.
    const big = cryptoRandom.bytes(10_000);
    expect(big.length).toBe(10_000);
    expect(big.some((x) => x !== 0)).toBe(true);
    // Rough uniformity of the low 6 bits that ufrag/pwd characters use.
    const counts = new Array<number>(64).fill(0);
    const sample = cryptoRandom.bytes(64_000);
    for (const x of sample) counts[x & 63]!++;
    for (const c of counts) expect(Math.abs(c - 1000)).toBeLessThan(200);
  });
});
