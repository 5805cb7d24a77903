/**
 * STUN codec throughput on one core: encode + decode + verify of a typical ICE Binding request (USERNAME, PRIORITY,
 * ICE-CONTROLLING, USE-CANDIDATE, MESSAGE-INTEGRITY, FINGERPRINT), beside a floor measured in the same run: what
 * that path cannot avoid, two HMAC-SHA1 (node:crypto `createHmac`: sign, verify) plus two CRC-32 (node:zlib `crc32`:
 * append, check) over the same bytes. Goal: the path at most 1.5x the floor. Floor and path are measured back to
 * back in each of many short rounds, and the ratio is the median of the per-round ratios, so background load on a
 * shared machine hits both alike. A last row holds the path to the same goal against a stricter floor whose MACs are
 * read as strings, as the path's default HMAC provider reads them: the floor pays a Buffer per MAC that the
 * path no longer does, so meeting the goal against it alone would flatter the path.
 * @module
 */
import { createHmac } from 'node:crypto';
import { crc32 } from 'node:zlib';
import {
  Attr,
  attr,
  encodeStunMessage,
  getAttribute,
  hasAttribute,
  shortTermKey,
  StunMethod,
  tryDecodeStunMessage,
  verifyIntegrity,
  type StunMessage,
} from '../src/stun/index.js';
import { goalAtMost } from './goal.js';
import type { BenchResult } from './run.js';

/** Bench name used by `npm run bench -- <name>`. */
export const name = 'stun-codec';

// Many short rounds; each round times every function back to back, and ratios are taken within a round before
// the median, so load from other processes (this is a shared 2-core machine) mostly cancels out.
const ROUNDS = 31;
const ROUND_MS = 40;

const transactionId = Uint8Array.from([0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae]);
// RFC 8839 §5.4: ice-ufrag 4..256 chars, ice-pwd 22..256 chars; these are typical browser lengths.
const username = 'Hs8dPq2kz9Lw:9xLmR4tWq7Bc';
const key = shortTermKey('asd88fgpdd777uzjYhagZg9Jc3');
const tieBreaker = 0x932ff9b151263b36n;
const priority = 0x6e0001ff;

function buildRequest(): StunMessage {
  return {
    method: StunMethod.Binding,
    cls: 'request',
    transactionId,
    attributes: [
      attr(Attr.USERNAME, username, transactionId),
      attr(Attr.PRIORITY, priority, transactionId),
      attr(Attr.ICE_CONTROLLING, tieBreaker, transactionId),
      attr(Attr.USE_CANDIDATE, true, transactionId),
    ],
  };
}

const ENCODE_OPTIONS = { integrityKey: key, fingerprint: true } as const;

let sink = 0;

/** The measured path: build from typed values, encode with MI + FINGERPRINT, decode (checks FINGERPRINT), verify MI. */
function path(): void {
  const bytes = encodeStunMessage(buildRequest(), ENCODE_OPTIONS);
  const r = tryDecodeStunMessage(bytes);
  if (!r.ok || verifyIntegrity(r.message, key) !== 'ok') throw new Error('bench message did not verify');
  sink ^= bytes[bytes.length - 1]!;
}

/** The path plus reading every attribute back as typed values (what an ICE responder does next). */
function pathWithRead(): void {
  const bytes = encodeStunMessage(buildRequest(), ENCODE_OPTIONS);
  const r = tryDecodeStunMessage(bytes);
  if (!r.ok || verifyIntegrity(r.message, key) !== 'ok') throw new Error('bench message did not verify');
  const m = r.message;
  const u = getAttribute(m, Attr.USERNAME);
  const p = getAttribute(m, Attr.PRIORITY);
  const t = getAttribute(m, Attr.ICE_CONTROLLING);
  if (u === undefined || p === undefined || t === undefined || !hasAttribute(m, Attr.USE_CANDIDATE)) throw new Error('read failed');
  sink ^= p & 0xff;
}

const sample = encodeStunMessage(buildRequest(), ENCODE_OPTIONS);

/** The floor: two HMAC-SHA1 and two CRC-32 over the encoded request's bytes. */
function floor(): void {
  const a = createHmac('sha1', key).update(sample).digest();
  const b = createHmac('sha1', key).update(sample).digest();
  sink ^= a[0]! ^ b[1]! ^ (crc32(sample) & 0xff) ^ (crc32(sample) & 0xff00);
}

/**
 * The floor with each MAC read as a latin1 string, as the path's default HMAC provider reads it: node's Buffer
 * digest allocates an ArrayBuffer per MAC, which the floor above counts and the path avoids. Reported beside the
 * goal (which stays against `floor`) so the reader sees the path against the least node:crypto allows.
 */
function floorStringDigests(): void {
  const a = createHmac('sha1', key).update(sample).digest('binary');
  const b = createHmac('sha1', key).update(sample).digest('binary');
  sink ^= a.charCodeAt(0) ^ b.charCodeAt(1) ^ (crc32(sample) & 0xff) ^ (crc32(sample) & 0xff00);
}

function nsPerOp(fn: () => void, iterations: number): number {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) fn();
  return Number(process.hrtime.bigint() - t0) / iterations;
}

function calibrate(fn: () => void): number {
  for (let i = 0; i < 20_000; i++) fn(); // warm up (JIT)
  const ns = nsPerOp(fn, 20_000);
  return Math.max(1000, Math.round((ROUND_MS * 1e6) / ns));
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

/** Runs the bench. */
export async function run(): Promise<BenchResult[]> {
  const fns = { floor, path, pathWithRead };
  const names = Object.keys(fns) as (keyof typeof fns)[];
  const iters = Object.fromEntries(names.map((k) => [k, calibrate(fns[k])])) as Record<keyof typeof fns, number>;
  const samples = Object.fromEntries(names.map((k) => [k, [] as number[]])) as Record<keyof typeof fns, number[]>;
  for (let r = 0; r < ROUNDS; r++) {
    for (const k of names) samples[k].push(nsPerOp(fns[k], iters[k]));
  }
  const ratio = (a: number[], b: number[]) => median(a.map((x, i) => x / b[i]!));
  const pathRatio = ratio(samples.path, samples.floor);
  // Rounds of their own, after the goal's, so adding this row leaves the goal's rounds as they were.
  const strict = { floor: [] as number[], path: [] as number[] };
  const strictIters = calibrate(floorStringDigests);
  for (let r = 0; r < ROUNDS; r++) {
    strict.floor.push(nsPerOp(floorStringDigests, strictIters));
    strict.path.push(nsPerOp(path, iters.path));
  }
  const strictRatio = ratio(strict.path, strict.floor);
  if (sink === 0x1234_5678) console.log(''); // keep `sink` observable
  return [
    { name: 'floor: 2 HMAC-SHA1 + 2 CRC-32 (node:crypto, zlib)', value: 1e9 / median(samples.floor), unit: 'msg/s', note: `${sample.length}-byte request` },
    { name: 'encode + decode + verify', value: 1e9 / median(samples.path), unit: 'msg/s' },
    { name: 'ratio (encode+decode+verify) / floor', value: pathRatio, unit: 'x', note: `${goalAtMost(pathRatio, 1.5)}; median of per-round ratios` },
    { name: '... + read typed attributes', value: 1e9 / median(samples.pathWithRead), unit: 'msg/s' },
    { name: 'ratio (with attribute reads) / floor', value: ratio(samples.pathWithRead, samples.floor), unit: 'x' },
    { name: 'floor, MACs read as strings', value: 1e9 / median(strict.floor), unit: 'msg/s', note: 'no Buffer per MAC, as the path reads them' },
    { name: 'ratio (encode+decode+verify) / that floor', value: strictRatio, unit: 'x', note: `${goalAtMost(strictRatio, 1.5)}; own rounds, after the above` },
  ];
}
