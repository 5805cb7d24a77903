/**
 * A scripted TURN "server" for virtual-time unit tests: decodes what the client transmits and builds responses with
 * the STUN encoder, so every byte the client sees is produced by the same codec a real server's would match.
 */
import { expect } from 'vitest';
import { Attr, attr, decodeStunMessage, encodeStunMessage, longTermKey, PasswordAlgorithm, type DecodedStunMessage, type StunAttribute } from '../../src/stun/index.js';
import { TurnClient, type TurnClientEvent, type TurnClientOptions } from '../../src/turnclient/index.js';
import type { Datagram, RandomSource, TransportAddress } from '../../src/types.js';
import { SeededRandom } from '../../src/testing/random.js';

export const SERVER: TransportAddress = { address: '192.0.2.1', port: 3478 };
export const LOCAL: TransportAddress = { address: '10.0.0.2', port: 50000 };
export const RELAYED: TransportAddress = { address: '192.0.2.1', port: 49152 };
export const MAPPED: TransportAddress = { address: '198.51.100.7', port: 40000 };
export const REALM = 'example.org';
export const NONCE = 'nonce-1';
export const KEY = longTermKey('user', REALM, 'pass');

/** Deterministic RandomSource: a counter, so transaction IDs differ and runs replay. */
export function seededRandom(seed = 1): RandomSource {
  return new SeededRandom(seed);
}

export function makeClient(overrides: Partial<TurnClientOptions> = {}): TurnClient {
  return new TurnClient({
    server: SERVER,
    local: LOCAL,
    username: 'user',
    password: 'pass',
    random: seededRandom(),
    software: 'icewire-test',
    ...overrides,
  });
}

/** Drains all transmits. */
export function transmits(c: TurnClient): Datagram[] {
  const out: Datagram[] = [];
  for (let d = c.pollTransmit(); d; d = c.pollTransmit()) out.push(d);
  return out;
}

/** Drains all events. */
export function events(c: TurnClient): TurnClientEvent[] {
  const out: TurnClientEvent[] = [];
  for (let e = c.pollEvent(); e; e = c.pollEvent()) out.push(e);
  return out;
}

/** Drains and decodes exactly one STUN request. */
export function oneRequest(c: TurnClient): DecodedStunMessage {
  const t = transmits(c);
  expect(t.length).toBe(1);
  return decodeStunMessage(t[0]!.data);
}

export interface ReplyOptions {
  readonly key?: Uint8Array;
  readonly integrity?: 'sha1' | 'sha256';
  readonly from?: TransportAddress;
  readonly transport?: 'udp' | 'tcp' | 'tls';
}

/** Builds a response to `req` and feeds it to the client; returns what handleReceive said. */
export function reply(
  c: TurnClient,
  now: number,
  req: DecodedStunMessage,
  cls: 'success' | 'error',
  build: (txid: Uint8Array) => StunAttribute[],
  opts: ReplyOptions = {},
): boolean {
  const data = encodeStunMessage(
    { method: req.method, cls, transactionId: req.transactionId, attributes: build(req.transactionId) },
    opts.key ? { integrityKey: opts.key, integrity: opts.integrity ?? 'sha1', fingerprint: true } : { fingerprint: true },
  );
  return c.handleReceive(now, datagramFromServer(data, opts));
}

export function datagramFromServer(data: Uint8Array, opts: ReplyOptions = {}): Datagram {
  const d: Datagram = { local: LOCAL, remote: opts.from ?? SERVER, data };
  return opts.transport && opts.transport !== 'udp' ? { ...d, transport: opts.transport } : d;
}

export function errorAttrs(code: number, reason: string, extra: (txid: Uint8Array) => StunAttribute[] = () => []) {
  return (txid: Uint8Array) => [attr(Attr.ERROR_CODE, { code, reason }, txid), ...extra(txid)];
}

/** 401 challenge attributes. */
export function challenge(code = 401, nonce = NONCE, algorithms?: number[]) {
  return errorAttrs(code, code === 401 ? 'Unauthorized' : 'Stale Nonce', (txid) => [
    attr(Attr.REALM, REALM, txid),
    attr(Attr.NONCE, nonce, txid),
    ...(algorithms ? [attr(Attr.PASSWORD_ALGORITHMS, algorithms.map((a) => ({ algorithm: a, parameters: new Uint8Array(0) })), txid)] : []),
  ]);
}

export { PasswordAlgorithm };
