/**
 * `turn:` / `turns:` URIs (RFC 7065 §3.1), the RTCIceServer configuration shape (W3C webrtc-pc §4.2.1), and the pure
 * half of the RFC 5928 server resolution: which DNS SRV name to ask and in what order to try the answers
 * (RFC 2782 priority then weighted random). The DNS queries themselves are IO and live in `src/node/turn-resolve.ts`.
 * @module
 */
import { TurnError } from '../errors.js';
import { canonicalIp, ipFamily } from '../ip.js';
import type { RandomSource, TransportProtocol } from '../types.js';

/** Default port of TURN over UDP and TCP (RFC 8656 §4.1). */
export const DEFAULT_TURN_PORT = 3478;
/** Default port of TURN over TLS (and DTLS) (RFC 8656 §4.1). */
export const DEFAULT_TURNS_PORT = 5349;

/** A parsed TURN URI. `transport` is what the client speaks to the server: `turns:` without transport is TLS. */
export interface TurnUri {
  readonly secure: boolean;
  /** Host name or IP literal (IPv6 without brackets, canonical form). */
  readonly host: string;
  /** The port written in the URI, if any. */
  readonly explicitPort: number | undefined;
  /** `explicitPort` or the default of the scheme (3478 / 5349). */
  readonly port: number;
  readonly transport: TransportProtocol;
  /** True when `host` is an IP literal (no DNS needed). */
  readonly isIpLiteral: boolean;
}

function bad(uri: string, why: string): TurnError {
  return new TurnError(0, 'bad-uri', `bad TURN URI "${uri}": ${why}`);
}

/**
 * Parses `turn:host[:port][?transport=udp|tcp]` or `turns:...` (RFC 7065 §3.1; scheme and transport are
 * case-insensitive). `turn:` defaults to UDP, `turns:` to TLS over TCP. `turns:` with `transport=udp` means DTLS,
 * which icewire does not implement, so it is rejected, as is any other transport. Throws `TurnError`
 * (reason `'bad-uri'`).
 */
export function parseTurnUri(uri: string): TurnUri {
  const m = /^(turns?):(\[[^\]]*\]|[^:?/[\]]*)(?::(\d*))?(?:\?(.*))?$/i.exec(uri.trim());
  if (!m) throw bad(uri, 'expected turn:host[:port][?transport=udp|tcp] or turns:...');
  const secure = m[1]!.toLowerCase() === 'turns';
  let host = m[2]!;
  if (host === '') throw bad(uri, 'missing host');
  let isIpLiteral = false;
  if (host.startsWith('[')) {
    const inner = host.slice(1, -1);
    if (ipFamily(inner) !== 6) throw bad(uri, 'bracketed host is not an IPv6 address');
    host = canonicalIp(inner);
    isIpLiteral = true;
  } else if (ipFamily(host) === 4) {
    isIpLiteral = true;
  } else {
    // RFC 3986 reg-name, restricted to what DNS can carry.
    if (!/^[A-Za-z0-9._~!$&'()*+,;=%-]+$/.test(host)) throw bad(uri, 'invalid host name');
    if (/^[\d.]+$/.test(host)) throw bad(uri, 'invalid IPv4 address');
    host = host.toLowerCase();
  }
  let explicitPort: number | undefined;
  if (m[3] !== undefined && m[3] !== '') {
    explicitPort = Number(m[3]);
    if (!Number.isInteger(explicitPort) || explicitPort < 1 || explicitPort > 65535) throw bad(uri, 'port out of range');
  }
  let transport: TransportProtocol = secure ? 'tls' : 'udp';
  if (m[4] !== undefined) {
    const q = /^transport=([A-Za-z0-9._~-]+)$/i.exec(m[4]);
    if (!q) throw bad(uri, 'the only query allowed is ?transport=<udp|tcp>');
    const t = q[1]!.toLowerCase();
    if (t === 'tcp') transport = secure ? 'tls' : 'tcp';
    else if (t === 'udp') {
      if (secure) throw bad(uri, 'turns: over UDP is DTLS, which is not supported');
      transport = 'udp';
    } else throw bad(uri, `unsupported transport "${t}"`);
  }
  return {
    secure,
    host,
    explicitPort,
    port: explicitPort ?? (secure ? DEFAULT_TURNS_PORT : DEFAULT_TURN_PORT),
    transport,
    isIpLiteral,
  };
}

/** Formats a TurnUri back to text (`?transport=` written only when it is not the scheme's default). */
export function formatTurnUri(u: TurnUri): string {
  const host = u.host.includes(':') ? `[${u.host}]` : u.host;
  const port = u.explicitPort !== undefined ? `:${u.explicitPort}` : '';
  const query = u.secure ? '' : u.transport === 'tcp' ? '?transport=tcp' : '';
  return `${u.secure ? 'turns' : 'turn'}:${host}${port}${query}`;
}

/** The RTCIceServer dictionary (W3C webrtc-pc). Only password credentials exist for TURN today. */
export interface IceServerConfig {
  readonly urls: string | readonly string[];
  readonly username?: string;
  readonly credential?: string;
}

/** One TURN server to try, with its long-term credentials. */
export interface TurnServerConfig {
  readonly uri: TurnUri;
  readonly username: string;
  readonly password: string;
}

/** A STUN server from the same configuration (RFC 7064 `stun:` / `stuns:`), passed through for the gatherer. */
export interface StunServerConfig {
  readonly host: string;
  readonly port: number;
  readonly secure: boolean;
}

/**
 * Normalises an RTCIceServer list: each `turn:`/`turns:` URL becomes a `TurnServerConfig` (username and credential
 * are required, as webrtc-pc requires for TURN URLs), each `stun:`/`stuns:` URL a `StunServerConfig`. Throws
 * `TurnError` (`'bad-uri'` or `'bad-config'`) on anything else.
 */
export function normalizeIceServers(servers: readonly IceServerConfig[]): {
  turn: TurnServerConfig[];
  stun: StunServerConfig[];
} {
  const turn: TurnServerConfig[] = [];
  const stun: StunServerConfig[] = [];
  for (const s of servers) {
    const urls = typeof s.urls === 'string' ? [s.urls] : s.urls;
    if (urls.length === 0) throw new TurnError(0, 'bad-config', 'RTCIceServer.urls is empty');
    for (const url of urls) {
      const scheme = /^([a-z]+):/i.exec(url.trim())?.[1]?.toLowerCase();
      if (scheme === 'turn' || scheme === 'turns') {
        if (s.username === undefined || s.credential === undefined) {
          throw new TurnError(0, 'bad-config', `TURN URL ${url} needs username and credential`);
        }
        turn.push({ uri: parseTurnUri(url), username: s.username, password: s.credential });
      } else if (scheme === 'stun' || scheme === 'stuns') {
        stun.push(parseStunUri(url));
      } else {
        throw bad(url, 'scheme must be turn, turns, stun or stuns');
      }
    }
  }
  return { turn, stun };
}

function parseStunUri(uri: string): StunServerConfig {
  const m = /^(stuns?):(\[[^\]]*\]|[^:?/[\]]+)(?::(\d+))?$/i.exec(uri.trim());
  if (!m) throw bad(uri, 'expected stun:host[:port]');
  const secure = m[1]!.toLowerCase() === 'stuns';
  let host = m[2]!;
  if (host.startsWith('[')) {
    const inner = host.slice(1, -1);
    if (ipFamily(inner) !== 6) throw bad(uri, 'bracketed host is not an IPv6 address');
    host = canonicalIp(inner);
  }
  const port = m[3] !== undefined ? Number(m[3]) : secure ? DEFAULT_TURNS_PORT : DEFAULT_TURN_PORT;
  if (port < 1 || port > 65535) throw bad(uri, 'port out of range');
  return { host, port, secure };
}

// ---- RFC 5928 resolution (pure part) ------------------------------------------------------------------------

/** One DNS SRV answer (the shape node:dns returns). */
export interface SrvRecord {
  readonly name: string;
  readonly port: number;
  readonly priority: number;
  readonly weight: number;
}

/** What to ask DNS for a URI (RFC 5928 §3). */
export type ResolutionPlan =
  /** An IP literal: no DNS at all. */
  | { readonly kind: 'literal'; readonly address: string; readonly port: number }
  /** An explicit port: A/AAAA of the host only, no SRV (RFC 5928 §3). */
  | { readonly kind: 'host'; readonly host: string; readonly port: number }
  /** SRV first, then A/AAAA of the host with the default port when SRV gives nothing. */
  | { readonly kind: 'srv'; readonly name: string; readonly host: string; readonly fallbackPort: number };

/** The SRV owner name: `_turn._udp.`, `_turn._tcp.` or `_turns._tcp.` + host (RFC 5928 §3, RFC 8656 §5). */
export function srvName(uri: TurnUri): string {
  const service = uri.secure ? '_turns' : '_turn';
  const proto = uri.transport === 'udp' ? '_udp' : '_tcp';
  return `${service}.${proto}.${uri.host}`;
}

/** The DNS steps for `uri`. */
export function resolutionPlan(uri: TurnUri): ResolutionPlan {
  if (uri.isIpLiteral) return { kind: 'literal', address: uri.host, port: uri.port };
  if (uri.explicitPort !== undefined) return { kind: 'host', host: uri.host, port: uri.explicitPort };
  return { kind: 'srv', name: srvName(uri), host: uri.host, fallbackPort: uri.port };
}

/**
 * Orders SRV answers for trying (RFC 2782): ascending priority; within one priority, repeatedly pick a record with
 * probability proportional to its weight (weight-0 records first in the running sum, so they get a small chance).
 * A single "." target means the service is not offered (RFC 2782), so it yields an empty list.
 */
export function orderSrvRecords(records: readonly SrvRecord[], random: RandomSource): SrvRecord[] {
  if (records.length === 1 && (records[0]!.name === '.' || records[0]!.name === '')) return [];
  const byPriority = new Map<number, SrvRecord[]>();
  for (const r of records) {
    const list = byPriority.get(r.priority) ?? [];
    list.push(r);
    byPriority.set(r.priority, list);
  }
  const out: SrvRecord[] = [];
  for (const prio of [...byPriority.keys()].sort((a, b) => a - b)) {
    // RFC 2782: zero-weight entries are placed at the beginning of the list before the running sums.
    const pool = byPriority.get(prio)!.slice().sort((a, b) => (a.weight === 0 ? 0 : 1) - (b.weight === 0 ? 0 : 1));
    while (pool.length > 0) {
      const total = pool.reduce((n, r) => n + r.weight, 0);
      const pick = total === 0 ? 0 : randomInt(random, total + 1);
      let sum = 0;
      let idx = pool.length - 1;
      for (let i = 0; i < pool.length; i++) {
        sum += pool[i]!.weight;
        if (sum >= pick) {
          idx = i;
          break;
        }
      }
      out.push(pool[idx]!);
      pool.splice(idx, 1);
    }
  }
  return out;
}

// Uniform integer in [0, n) from 32 random bits (the bias is negligible for DNS weights, which are 16-bit).
function randomInt(random: RandomSource, n: number): number {
  const b = random.bytes(4);
  const v = ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
  return v % n;
}
