/**
 * Components that run without ICE, as a sans-IO machine: the peer's SDP had no ICE attributes, or RFC 8839 §4.2.5
 * ice-mismatch says it did not understand ours. Data then goes to the signalled `c=`/`m=` address and nothing is
 * checked, so three rules stand in for ICE. Such peers (PBXes, media relays, SBCs) speak RTP and RTCP, not STUN.
 *
 * - **Keepalives** (RFC 6263; RFC 8445 §11 leaves these peers to it): after `keepaliveIntervalMs` (15 s, RFC 6263
 *   §6's Tr) without sending, an RTP packet with no payload and a payload type the peer discards (§4.6: a dynamic
 *   one the session did not negotiate; RFC 3550 §5.1 makes receivers ignore unknown types), on an RTCP component an
 *   RTCP compound packet (empty Receiver Report + SDES CNAME, RFC 3550 §6.1). `'rtcp'` sends that on the RTP
 *   component too (§4.3, peers that multiplex RTCP), `'stun'` a Binding indication, `'none'` nothing.
 * - **Latching** (symmetric RTP, RFC 4961; COMEDIA ideas of RFC 4145): data from the signalled address is always
 *   taken. The first datagram from elsewhere, while nothing came from the signalled address yet, latches the
 *   destination to its source (a peer behind a NAT, a media relay). Afterwards other sources are dropped and counted
 *   (`droppedOtherSource`, drop reason `no-ice-other-source`), except that the destination moves (re-latches) when
 *   the current source has been silent for `relatchSilenceMs` and one other source sent `relatchPackets` datagrams
 *   in a row (a NAT that re-mapped the peer, a relay that moved), or back to the signalled address when it speaks.
 *   A new remote description (`add` again) starts over.
 * - **State**: `checking` once every stream runs without ICE, `connected` once every stream received data (RTP or
 *   RTCP, anything but STUN) from the peer, `disconnected` while a stream has heard nothing for `silenceTimeoutMs`
 *   (10 s by default: longer than RTCP's randomised 5 s interval, RFC 3550 §6.2, so a held call that still sends RTCP
 *   stays connected; a stream that never heard anything goes `disconnected` as long after setup), `connected` again
 *   when data returns. Never `failed`: without checks nothing proves a peer gone for good; the application decides
 *   when to hang up.
 *
 * Same drain contract as every machine (`src/machine.ts`). The owner routes transmits (a relayed `local` still needs
 * wrapping) and offers it only datagrams nobody else took.
 * @module
 */
import type { AgentEvent, AgentState } from './checklist/types.js';
import { encodeKeepalive } from './checklist/checks.js';
import { canonicalIp } from './ip.js';
import type { SansIoMachine } from './machine.js';
import { looksLikeStun } from './stun/message.js';
import type { Datagram, RandomSource, TransportAddress } from './types.js';

/** Default idle period before a keepalive (RFC 6263 §6: Tr, 15 s unless configured; RFC 8445 §11 uses 15 s too). */
export const NO_ICE_KEEPALIVE_MS = 15_000;
/** Default of `silenceTimeoutMs`. */
export const NO_ICE_SILENCE_TIMEOUT_MS = 10_000;
/** Default of `relatchSilenceMs`. */
export const NO_ICE_RELATCH_SILENCE_MS = 2_000;
/** Default of `relatchPackets`. */
export const NO_ICE_RELATCH_PACKETS = 5;

/** What goes out on an idle component without ICE (see {@link WithoutIceOptions.keepalive}). */
export type NoIceKeepalive = 'rtp' | 'rtcp' | 'stun' | 'none';

/** Settings of components running without ICE (`IceAgentOptions.withoutIce`). */
export interface WithoutIceOptions {
  /**
   * Keepalive of the RTP component (component 1). Default `'rtp'`: an RTP header with no payload and an unused
   * payload type (RFC 6263 §4.6). `'rtcp'`: an RTCP Receiver Report + SDES CNAME, only right when the peer
   * multiplexes RTCP (RFC 6263 §4.3, RFC 5761). `'stun'`: a STUN Binding indication (peers known to take STUN).
   * `'none'`: nothing. RTCP components (component 2 and up) send the RTCP packet for `'rtp'` and `'rtcp'`.
   */
  readonly keepalive?: NoIceKeepalive;
  /** Idle time (ms) without sending on a component before a keepalive goes (default 15000, RFC 6263 §6). */
  readonly keepaliveIntervalMs?: number;
  /**
   * Payload type of RTP keepalives: one the session did not negotiate (RFC 6263 §4.6), 35..63 or 96..127 (never
   * 64..95, which collide with RTCP under rtcp-mux, RFC 5761 §4). Default: `IceSdpSession` picks the highest one
   * unused in both descriptions; otherwise 127.
   */
  readonly payloadType?: number;
  /**
   * SSRC of keepalives (RTP and RTCP). Default: a random one per stream, since icewire does not write your media
   * and cannot interleave its sequence numbers with yours. Give your media's SSRC to make keepalives part of your
   * stream (RFC 6263 §4.6): each then repeats the sequence number and timestamp of the last RTP packet you sent with
   * it (a duplicate the peer drops, and no gap or step back when your media resumes).
   */
  readonly ssrc?: number;
  /** Silence (ms) after which the agent is `disconnected` (default 10000; see the module notes). */
  readonly silenceTimeoutMs?: number;
  /** Silence (ms) of the latched source before another may take over (default 2000). */
  readonly relatchSilenceMs?: number;
  /** Datagrams in a row another source must send to take over (default 5). */
  readonly relatchPackets?: number;
}

/** Per-component settings given with {@link NoIcePaths.add} (the SDP layer knows the payload types in use). */
export interface NoIcePathOptions {
  readonly keepalive?: NoIceKeepalive;
  readonly payloadType?: number;
}

/** Why a component's destination changed. */
export type LatchReason = 'first-packet' | 'signalled' | 'source-silent';

/** What {@link NoIcePaths} reports (the `data` and `state` shapes are the agent's own). */
export type NoIceEvent =
  /**
   * A component's destination moved to the source of what came back: `first-packet` (the first latch),
   * `signalled` (back to the signalled address, which spoke), `source-silent` (re-latched, see the module notes).
   */
  | {
      readonly type: 'latched';
      readonly stream: number;
      readonly component: number;
      readonly remote: TransportAddress;
      readonly previous: TransportAddress;
      readonly reason: LatchReason;
    }
  | Extract<AgentEvent, { type: 'data' }>
  | { readonly type: 'state'; readonly state: Extract<AgentState, 'checking' | 'connected' | 'disconnected'> };

/** Statistics of one component running without ICE. */
export interface NoIcePathStats {
  readonly stream: number;
  readonly component: number;
  /** The `c=`/`m=` (or `a=rtcp`) address of the remote description. */
  readonly signalled: TransportAddress;
  /** Where data goes now (the signalled address, or the latched source). */
  readonly remote: TransportAddress;
  readonly packetsReceived: number;
  readonly bytesReceived: number;
  readonly packetsSent: number;
  readonly bytesSent: number;
  readonly keepalivesSent: number;
  /** Datagrams from sources other than the current one, dropped after latching. */
  readonly droppedOtherSource: number;
  /** `now` of the last datagram taken, if any. */
  readonly lastReceivedAt: number | undefined;
}

/** Options of {@link NoIcePaths}. */
export interface NoIcePathsOptions extends WithoutIceOptions {
  /** Draws SSRCs, sequence numbers, timestamps, CNAMEs and STUN transaction ids. */
  readonly random: RandomSource;
  /** Components per data stream, as the agent has them. */
  readonly streams: readonly number[];
}

interface Path {
  readonly stream: number;
  readonly component: number;
  local: TransportAddress;
  signalled: TransportAddress;
  remote: TransportAddress;
  keepalive: NoIceKeepalive;
  payloadType: number;
  /** Something came from the signalled address, or we latched: no first-packet latch any more. */
  settled: boolean;
  /** Last datagram from the current destination (for the re-latch rule). */
  currentAt: number;
  /** The run of datagrams in a row from one other source. */
  candidate: string | undefined;
  run: number;
  keepaliveAt: number;
  setupAt: number;
  lastReceivedAt: number | undefined;
  packetsReceived: number;
  bytesReceived: number;
  packetsSent: number;
  bytesSent: number;
  keepalivesSent: number;
  droppedOtherSource: number;
}

/** The RTP/RTCP identity keepalives of one stream share. */
interface Source {
  readonly ssrc: number;
  readonly cname: string;
  readonly startAt: number;
  readonly tsBase: number;
  seq: number;
  /** Last RTP packet the application sent with `ssrc` (given by the application only). */
  media: { seq: number; ts: number } | undefined;
}

const key = (a: TransportAddress) => `${canonicalIp(a.address)}|${a.port}`;
const u16 = (b: Uint8Array) => ((b[0]! << 8) | b[1]!) >>> 0;
const u32 = (b: Uint8Array, o = 0) => ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;

/** Whether `pt` may be a keepalive payload type: unassigned or dynamic, outside RTCP's 64..95 (RFC 5761 §4). */
export function isKeepalivePayloadType(pt: number): boolean {
  return Number.isInteger(pt) && ((pt >= 96 && pt <= 127) || (pt >= 35 && pt <= 63));
}

/**
 * The payload type for RTP keepalives given the formats of a session (`m=` format lists, any count): the highest
 * dynamic one (127 down to 96) none of them uses, else the highest unassigned one (63 down to 35, RFC 3551 §6),
 * else undefined. RFC 6263 §4.6: a type the peers did not negotiate, so the receiver discards the packet.
 */
export function unusedPayloadType(formats: Iterable<string>): number | undefined {
  const used = new Set<number>();
  for (const f of formats) for (const t of f.trim().split(/\s+/)) if (/^\d+$/.test(t)) used.add(Number(t));
  for (let pt = 127; pt >= 96; pt--) if (!used.has(pt)) return pt;
  for (let pt = 63; pt >= 35; pt--) if (!used.has(pt)) return pt;
  return undefined;
}

/** Throws `RangeError` for a bad option (an agent checks them when made, before any component runs without ICE). */
export function checkWithoutIceOptions(o: WithoutIceOptions): void {
  const positive = (name: string, v: number | undefined) => {
    if (v !== undefined && !(Number.isFinite(v) && v > 0)) throw new RangeError(`withoutIce.${name} must be a positive number of ms`);
  };
  positive('keepaliveIntervalMs', o.keepaliveIntervalMs);
  positive('silenceTimeoutMs', o.silenceTimeoutMs);
  positive('relatchSilenceMs', o.relatchSilenceMs);
  if (o.relatchPackets !== undefined && !(Number.isInteger(o.relatchPackets) && o.relatchPackets >= 1)) {
    throw new RangeError('withoutIce.relatchPackets must be an integer >= 1');
  }
  checkPathOptions(o);
  if (o.ssrc !== undefined && !(Number.isInteger(o.ssrc) && o.ssrc >= 0 && o.ssrc <= 0xffffffff)) {
    throw new RangeError('withoutIce.ssrc must be a 32-bit unsigned integer');
  }
}

/** Throws `RangeError` for a bad {@link NoIcePathOptions} (also checked by {@link NoIcePaths.add}). */
export function checkPathOptions(o: NoIcePathOptions): void {
  if (o.keepalive !== undefined && !['rtp', 'rtcp', 'stun', 'none'].includes(o.keepalive)) {
    throw new RangeError(`withoutIce.keepalive must be 'rtp', 'rtcp', 'stun' or 'none'`);
  }
  if (o.payloadType !== undefined && !isKeepalivePayloadType(o.payloadType)) {
    throw new RangeError('withoutIce.payloadType must be 35..63 or 96..127 (RFC 6263 §4.6, RFC 5761 §4)');
  }
}

/** The components of one agent that run without ICE. */
export class NoIcePaths implements SansIoMachine<NoIceEvent> {
  readonly #options: NoIcePathsOptions;
  readonly #keepaliveMs: number;
  readonly #silenceMs: number;
  readonly #relatchMs: number;
  readonly #relatchPackets: number;
  /** By `stream:component`, and by local base (where datagrams for them arrive). */
  readonly #paths = new Map<string, Path>();
  readonly #byLocal = new Map<string, Path>();
  readonly #sources = new Map<number, Source>();
  readonly #transmits: Datagram[] = [];
  readonly #events: NoIceEvent[] = [];
  #state: 'new' | 'checking' | 'connected' | 'disconnected' = 'new';
  #closed = false;

  /** Throws `RangeError` for a bad option. */
  constructor(options: NoIcePathsOptions) {
    checkWithoutIceOptions(options);
    this.#options = options;
    this.#keepaliveMs = options.keepaliveIntervalMs ?? NO_ICE_KEEPALIVE_MS;
    this.#silenceMs = options.silenceTimeoutMs ?? NO_ICE_SILENCE_TIMEOUT_MS;
    this.#relatchMs = options.relatchSilenceMs ?? NO_ICE_RELATCH_SILENCE_MS;
    this.#relatchPackets = options.relatchPackets ?? NO_ICE_RELATCH_PACKETS;
  }

  /** Components running without ICE (0: the agent is all ICE, and the owner can skip this machine). */
  get size(): number {
    return this.#paths.size;
  }

  /**
   * Runs a component without ICE: data goes from `local` (a base of the component) to `remote`, the signalled
   * address. Calling it again (a new remote description) re-targets the component and starts latching over; its
   * counters and what it last heard are kept. Throws `RangeError` for bad `options`.
   */
  add(now: number, stream: number, component: number, local: TransportAddress, remote: TransportAddress, options: NoIcePathOptions = {}): void {
    checkPathOptions(options);
    const id = `${stream}:${component}`;
    const old = this.#paths.get(id);
    if (old) this.#byLocal.delete(key(old.local));
    const path: Path = {
      stream,
      component,
      local,
      signalled: remote,
      remote,
      keepalive: options.keepalive ?? this.#options.keepalive ?? 'rtp',
      payloadType: options.payloadType ?? this.#options.payloadType ?? 127,
      settled: false,
      currentAt: now,
      candidate: undefined,
      run: 0,
      keepaliveAt: old?.keepaliveAt ?? now + this.#keepaliveMs,
      setupAt: old?.setupAt ?? now,
      lastReceivedAt: old?.lastReceivedAt,
      packetsReceived: old?.packetsReceived ?? 0,
      bytesReceived: old?.bytesReceived ?? 0,
      packetsSent: old?.packetsSent ?? 0,
      bytesSent: old?.bytesSent ?? 0,
      keepalivesSent: old?.keepalivesSent ?? 0,
      droppedOtherSource: old?.droppedOtherSource ?? 0,
    };
    this.#paths.set(id, path);
    this.#byLocal.set(key(local), path);
    this.#updateState(now);
  }

  /** The destination of a component (after latching, the address that answered), or undefined when it uses ICE. */
  destination(stream: number, component: number): TransportAddress | undefined {
    return this.#paths.get(`${stream}:${component}`)?.remote;
  }

  /** Per-component statistics. */
  stats(): NoIcePathStats[] {
    return [...this.#paths.values()].map((p) => ({
      stream: p.stream,
      component: p.component,
      signalled: p.signalled,
      remote: p.remote,
      packetsReceived: p.packetsReceived,
      bytesReceived: p.bytesReceived,
      packetsSent: p.packetsSent,
      bytesSent: p.bytesSent,
      keepalivesSent: p.keepalivesSent,
      droppedOtherSource: p.droppedOtherSource,
      lastReceivedAt: p.lastReceivedAt,
    }));
  }

  /** Datagrams dropped because they came from a source other than the latched one, over all components. */
  get droppedOtherSource(): number {
    let n = 0;
    for (const p of this.#paths.values()) n += p.droppedOtherSource;
    return n;
  }

  /** Queues application data on a component's path. Returns false when the component uses ICE (or after close). */
  send(now: number, stream: number, component: number, data: Uint8Array): boolean {
    const path = this.#paths.get(`${stream}:${component}`);
    if (path === undefined || this.#closed) return false;
    this.#transmits.push({ local: path.local, remote: path.remote, data });
    path.packetsSent++;
    path.bytesSent += data.length;
    // RFC 6263 §6: keepalives only when no media goes.
    path.keepaliveAt = now + this.#keepaliveMs;
    if (this.#options.ssrc !== undefined) this.#noteMedia(now, stream, data);
    return true;
  }

  /** Takes application data arriving on a path's base; STUN is left to the owner (checks, gathering, TURN). */
  handleReceive(now: number, d: Datagram): boolean {
    const path = this.#byLocal.get(key(d.local));
    if (path === undefined || looksLikeStun(d.data)) return false;
    if (!this.#accept(now, path, d.remote)) {
      path.droppedOtherSource++;
      return true;
    }
    path.lastReceivedAt = now;
    path.packetsReceived++;
    path.bytesReceived += d.data.length;
    this.#events.push({ type: 'data', stream: path.stream, component: path.component, data: d.data, from: d.remote, local: d.local });
    this.#updateState(now);
    return true;
  }

  handleTimeout(now: number): void {
    if (this.#closed) return;
    for (const path of this.#paths.values()) {
      if (now < path.keepaliveAt) continue;
      path.keepaliveAt = now + this.#keepaliveMs;
      const data = this.#keepalive(now, path);
      if (data === undefined) continue;
      this.#transmits.push({ local: path.local, remote: path.remote, data });
      path.keepalivesSent++;
    }
    this.#updateState(now);
  }

  pollTransmit(): Datagram | undefined {
    return this.#transmits.shift();
  }

  pollEvent(): NoIceEvent | undefined {
    return this.#events.shift();
  }

  pollTimeout(): number | undefined {
    if (this.#closed || this.#paths.size === 0) return undefined;
    let min: number | undefined;
    const consider = (t: number) => {
      if (min === undefined || t < min) min = t;
    };
    for (const path of this.#paths.values()) if (path.keepalive !== 'none') consider(path.keepaliveAt);
    const stale = this.#nextStale();
    if (stale !== undefined) consider(stale);
    return min;
  }

  /**
   * The agent dropped the last component of `stream` (RTCP multiplexed on RTP after all): its path, if any, goes. The
   * state follows component 1 of each stream, so it does not change.
   */
  dropComponent(stream: number, component: number): void {
    const path = this.#paths.get(`${stream}:${component}`);
    if (path === undefined) return;
    this.#paths.delete(`${stream}:${component}`);
    if (this.#byLocal.get(key(path.local)) === path) this.#byLocal.delete(key(path.local));
  }

  /** Stops sending (data and keepalives) and state reports; received data is still reported, as before close. */
  close(): void {
    this.#closed = true;
  }

  /** The latching rules of the module notes; true when the datagram is to be taken. */
  #accept(now: number, path: Path, from: TransportAddress): boolean {
    const k = key(from);
    const current = key(path.remote);
    if (k === key(path.signalled)) {
      path.settled = true;
      path.candidate = undefined;
      path.currentAt = now;
      if (current !== k) this.#move(path, from, 'signalled');
      return true;
    }
    if (k === current) {
      path.candidate = undefined;
      path.currentAt = now;
      return true;
    }
    if (!path.settled) {
      path.settled = true;
      path.currentAt = now;
      this.#move(path, from, 'first-packet');
      return true;
    }
    // Another source: it takes over only after the current one fell silent, and with a run of its own.
    if (path.candidate === k) path.run++;
    else {
      path.candidate = k;
      path.run = 1;
    }
    if (path.run >= this.#relatchPackets && now - path.currentAt >= this.#relatchMs) {
      path.candidate = undefined;
      path.currentAt = now;
      this.#move(path, from, 'source-silent');
      return true;
    }
    return false;
  }

  #move(path: Path, to: TransportAddress, reason: LatchReason): void {
    const previous = path.remote;
    path.remote = to;
    this.#events.push({ type: 'latched', stream: path.stream, component: path.component, remote: to, previous, reason });
  }

  #keepalive(now: number, path: Path): Uint8Array | undefined {
    switch (path.keepalive) {
      case 'none':
        return undefined;
      case 'stun':
        return encodeKeepalive(this.#options.random.bytes(12));
      case 'rtcp':
        return this.#rtcp(now, path.stream);
      case 'rtp':
        return path.component === 1 ? this.#rtp(now, path.stream, path.payloadType) : this.#rtcp(now, path.stream);
    }
  }

  #source(now: number, stream: number): Source {
    let s = this.#sources.get(stream);
    if (s) return s;
    const r = this.#options.random.bytes(14);
    // RFC 3550 §5.1: random initial sequence number and timestamp. RFC 7022: a random CNAME (96 bits, base64).
    s = {
      ssrc: this.#options.ssrc ?? u32(r, 0),
      seq: u16(r.subarray(4, 6)),
      tsBase: u32(r, 6),
      cname: Buffer.from(this.#options.random.bytes(12)).toString('base64'),
      startAt: now,
      media: undefined,
    };
    this.#sources.set(stream, s);
    return s;
  }

  /** RFC 6263 §4.6: RTP header only (V=2, no marker), unknown payload type. */
  #rtp(now: number, stream: number, payloadType: number): Uint8Array {
    const s = this.#source(now, stream);
    let seq: number;
    let ts: number;
    if (s.media) {
      ({ seq, ts } = s.media);
    } else {
      seq = s.seq;
      s.seq = (s.seq + 1) & 0xffff;
      // An unnegotiated type has no clock rate; 8 kHz is that of the usual SIP audio codecs.
      ts = (s.tsBase + Math.round((now - s.startAt) * 8)) >>> 0;
    }
    const b = new Uint8Array(12);
    const v = new DataView(b.buffer);
    b[0] = 0x80;
    b[1] = payloadType & 0x7f;
    v.setUint16(2, seq);
    v.setUint32(4, ts);
    v.setUint32(8, s.ssrc);
    return b;
  }

  /** RFC 3550 §6.1: a compound packet starts with a report (here an empty RR, §6.4.2) and carries an SDES CNAME. */
  #rtcp(now: number, stream: number): Uint8Array {
    const s = this.#source(now, stream);
    const cname = new TextEncoder().encode(s.cname);
    // SDES chunk: SSRC, CNAME item (type 1, length, text), then at least one null octet up to a 32-bit boundary.
    const chunk = 4 + 2 + cname.length;
    const padded = (chunk + 4) & ~3;
    const b = new Uint8Array(8 + 4 + padded);
    const v = new DataView(b.buffer);
    b[0] = 0x80; // V=2, P=0, RC=0
    b[1] = 201; // RR
    v.setUint16(2, 1);
    v.setUint32(4, s.ssrc);
    b[8] = 0x81; // V=2, SC=1
    b[9] = 202; // SDES
    v.setUint16(10, (4 + padded) / 4 - 1);
    v.setUint32(12, s.ssrc);
    b[16] = 1;
    b[17] = cname.length;
    b.set(cname, 18);
    return b;
  }

  /** Remembers the last RTP packet the application sent with the configured SSRC (see `ssrc`). */
  #noteMedia(now: number, stream: number, data: Uint8Array): void {
    if (data.length < 12 || data[0]! >> 6 !== 2) return;
    const pt = data[1]! & 0x7f;
    if (pt >= 64 && pt <= 95) return; // RTCP under rtcp-mux (RFC 5761 §4)
    if (u32(data, 8) !== this.#options.ssrc) return;
    this.#source(now, stream).media = { seq: u16(data.subarray(2, 4)), ts: u32(data, 4) };
  }

  /** True when every stream runs (component 1 at least) without ICE: then this machine owns the agent state. */
  #tracking(): boolean {
    const streams = this.#options.streams;
    for (let s = 0; s < streams.length; s++) if (!this.#paths.has(`${s}:1`)) return false;
    return streams.length > 0;
  }

  /** Per stream: when it last heard anything (or, never having heard, when it was set up) and whether it ever did. */
  #streamHeard(): { since: number; heard: boolean }[] {
    const out: { since: number; heard: boolean }[] = [];
    for (const p of this.#paths.values()) {
      const e = (out[p.stream] ??= { since: -Infinity, heard: false });
      if (p.lastReceivedAt !== undefined) {
        e.since = Math.max(e.heard ? e.since : -Infinity, p.lastReceivedAt);
        e.heard = true;
      } else if (!e.heard) e.since = Math.max(e.since, p.setupAt);
    }
    return out;
  }

  /** When a stream falls silent long enough to make the agent `disconnected` (nothing to wait for once it is). */
  #nextStale(): number | undefined {
    if (this.#closed || this.#state === 'disconnected' || !this.#tracking()) return undefined;
    let min: number | undefined;
    for (const s of this.#streamHeard()) {
      if (s === undefined) continue;
      const at = s.since + this.#silenceMs;
      if (min === undefined || at < min) min = at;
    }
    return min;
  }

  #updateState(now: number): void {
    if (this.#closed || !this.#tracking()) return;
    let stale = false;
    let all = true;
    for (const s of this.#streamHeard()) {
      if (s === undefined) continue;
      if (now - s.since >= this.#silenceMs) stale = true;
      if (!s.heard) all = false;
    }
    const state = stale ? 'disconnected' : all ? 'connected' : 'checking';
    if (state === this.#state) return;
    this.#state = state;
    this.#events.push({ type: 'state', state });
  }
}
