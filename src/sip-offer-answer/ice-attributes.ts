/**
 * The SDP attributes of RFC 8839 §5 (`candidate`, `remote-candidates`, `ice-lite`, `ice-mismatch`, `ice-ufrag`,
 * `ice-pwd`, `ice-pacing`, `ice-options`) and RFC 8840 §8 `end-of-candidates`, read from and written into an SDP
 * body.
 *
 * Reading scans the text line by line so that every error names its 1-based line number and the line's text
 * (`SdpError`); candidate lines go through the shared grammar of `src/candidates/grammar.ts`. Writing edits the
 * application's SDP line by line: its own lines stay verbatim and in place; the ICE attributes are replaced (and
 * written after the application's attributes of their level), and the `c=` address, the `m=` port and `a=rtcp` are
 * set from the description.
 * @module
 */
import type { Candidate } from '../candidates/candidate.js';
import { candidateAddressKind, formatCandidate, parseCandidate } from '../candidates/grammar.js';
import { CandidateParseError, SdpError } from '../errors.js';
import type { TransportAddress } from '../types.js';

/** The `ice-options` tag of RFC 8445 / RFC 8839 §4.2.1.5. */
export const ICE2_OPTION = 'ice2';
/** The `ice-options` tag of Trickle ICE (RFC 8838 §3). */
export const TRICKLE_OPTION = 'trickle';
/** RFC 8839 §5.5: the pacing that applies when `a=ice-pacing` is absent. */
export const DEFAULT_ICE_PACING_MS = 50;

/** One entry of `a=remote-candidates` (RFC 8839 §5.2). */
export interface RemoteCandidateRef {
  readonly component: number;
  readonly address: string;
  readonly port: number;
}

/** A candidate line the reader skipped on purpose (RFC 8839 §5.1: unknown transports, types and FQDNs are ignored). */
export interface IgnoredCandidate {
  /** 1-based line number in the SDP text. */
  readonly line: number;
  readonly text: string;
  readonly reason: string;
}

/** ICE view of one `m=` section. ICE values are the effective ones (media level, else session level). */
export interface IceMediaDescription {
  /** 0-based position of the `m=` line (the WebRTC `sdpMLineIndex`). */
  readonly index: number;
  /** `m=` media, e.g. `'audio'`. */
  readonly kind: string;
  /** `m=` port; 0 means the stream is disabled or rejected (RFC 3264 §8.2). */
  readonly port: number;
  /** `m=` proto, e.g. `'RTP/AVP'` or `'UDP/TLS/RTP/SAVPF'`. */
  readonly protocol: string;
  /** `m=` format list, verbatim. */
  readonly formats: string;
  /** `a=mid` (RFC 5888). */
  readonly mid?: string;
  /** Effective `ice-ufrag` (media level, else session level). */
  readonly ufrag?: string;
  /** Effective `ice-pwd` (media level, else session level). */
  readonly pwd?: string;
  /** Effective `ice-options` (media level, else session level). */
  readonly options: readonly string[];
  /** What the `m=` section itself carried, so that writing keeps the level (RFC 8840 §4.4 needs it). */
  readonly mediaLevel: {
    readonly ufrag?: string;
    readonly pwd?: string;
    readonly options?: readonly string[];
  };
  readonly candidates: readonly Candidate[];
  readonly ignoredCandidates: readonly IgnoredCandidate[];
  /** Media-level `a=end-of-candidates` (RFC 8840 §8). See also the session-level flag. */
  readonly endOfCandidates: boolean;
  /** `a=ice-mismatch` (RFC 8839 §5.3). */
  readonly iceMismatch: boolean;
  /** `a=remote-candidates` entries, in order (several lines are concatenated). */
  readonly remoteCandidates?: readonly RemoteCandidateRef[];
  /** Effective `c=` address (media level, else session level); undefined when there is none. */
  readonly connection?: string;
  /** Explicit `a=rtcp` (RFC 3605); the address defaults to the `c=` address. */
  readonly rtcp?: TransportAddress;
  /** `a=rtcp-mux` (RFC 5761). */
  readonly rtcpMux: boolean;
  /** `a=bundle-only` (RFC 8843 §6). */
  readonly bundleOnly: boolean;
}

/** ICE view of a whole SDP body. */
export interface IceDescription {
  /** Session-level `ice-ufrag`. */
  readonly ufrag?: string;
  /** Session-level `ice-pwd`. */
  readonly pwd?: string;
  /** Session-level `ice-options`. */
  readonly options: readonly string[];
  /** `a=ice-lite` (session level only, RFC 8839 §5.3). */
  readonly lite: boolean;
  /** `a=ice-pacing` in ms (session level only, RFC 8839 §5.5); undefined means the default of 50 ms. */
  readonly pacingMs?: number;
  /** Session-level `a=end-of-candidates`: applies to every stream. */
  readonly endOfCandidates: boolean;
  /** Session-level `c=` address. */
  readonly connection?: string;
  /** `a=group:BUNDLE` groups, each a list of mids, the first being the BUNDLE tag's m-section candidate. */
  readonly bundleGroups: readonly (readonly string[])[];
  readonly media: readonly IceMediaDescription[];
}

/** RFC 8839 §5.1 `ice-char`. */
const ICE_CHAR = /^[A-Za-z0-9+/]+$/;

/** True when `s` is a valid `ice-ufrag` value (RFC 8839 §5.4: 4..256 ice-chars). */
export function isValidUfrag(s: string): boolean {
  return s.length >= 4 && s.length <= 256 && ICE_CHAR.test(s);
}

/** True when `s` is a valid `ice-pwd` value (RFC 8839 §5.4: 22..256 ice-chars). */
export function isValidPwd(s: string): boolean {
  return s.length >= 22 && s.length <= 256 && ICE_CHAR.test(s);
}

/** True when `s` is a valid `ice-option-tag` (RFC 8839 §5.6: 1*ice-char). */
export function isValidIceOption(s: string): boolean {
  return s.length >= 1 && ICE_CHAR.test(s);
}

/** One SDP line with its position. */
export interface SdpLine {
  /** 1-based line number. */
  readonly number: number;
  readonly text: string;
  /** The type letter (`v`, `o`, `m`, `a`, ...). */
  readonly type: string;
  /** Everything after `x=`. */
  readonly value: string;
}

/** Splits SDP text into lines (CRLF, LF or CR), skipping empty ones; throws `SdpError` for a line that is not `x=...`. */
export function splitSdpLines(sdp: string): SdpLine[] {
  const out: SdpLine[] = [];
  const raw = sdp.split(/\r\n|\r|\n/);
  for (let i = 0; i < raw.length; i++) {
    const text = raw[i]!;
    if (text.trim() === '') continue;
    if (!/^[a-z]=/.test(text)) throw new SdpError(i + 1, text, 'not an SDP "<type>=<value>" line');
    out.push({ number: i + 1, text, type: text[0]!, value: text.slice(2) });
  }
  return out;
}

/** Splits an `a=` value into the attribute name and its value (undefined for property attributes). */
function splitAttribute(value: string): [name: string, arg: string | undefined] {
  const colon = value.indexOf(':');
  return colon < 0 ? [value.trim(), undefined] : [value.slice(0, colon), value.slice(colon + 1)];
}

const M_LINE = /^([A-Za-z0-9\-_.!%*+`'~]+) (\d{1,5})(?:\/\d+)? (\S+)(?: (.*))?$/;
const C_LINE = /^IN (IP4|IP6) (\S+)$/;
const RTCP_ATTR = /^(\d{1,5})(?: IN (IP4|IP6) (\S+))?$/;

function parseOptions(arg: string | undefined, line: SdpLine): string[] {
  const tags = (arg ?? '').trim().split(/ +/).filter((t) => t !== '');
  if (tags.length === 0) throw new SdpError(line.number, line.text, 'ice-options needs at least one ice-option-tag');
  for (const t of tags) {
    if (!isValidIceOption(t)) throw new SdpError(line.number, line.text, `"${t}" is not an ice-option-tag (1*ice-char)`);
  }
  return tags;
}

function parseRemoteCandidates(arg: string | undefined, line: SdpLine): RemoteCandidateRef[] {
  const parts = (arg ?? '').trim().split(/ +/).filter((t) => t !== '');
  if (parts.length === 0 || parts.length % 3 !== 0) {
    throw new SdpError(line.number, line.text, 'remote-candidates must be groups of "component address port"');
  }
  const out: RemoteCandidateRef[] = [];
  for (let i = 0; i < parts.length; i += 3) {
    const comp = parts[i]!;
    const address = parts[i + 1]!;
    const port = parts[i + 2]!;
    if (!/^\d{1,3}$/.test(comp) || Number(comp) < 1 || Number(comp) > 256) {
      throw new SdpError(line.number, line.text, `bad component-id "${comp}"`);
    }
    if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) throw new SdpError(line.number, line.text, `bad port "${port}"`);
    out.push({ component: Number(comp), address, port: Number(port) });
  }
  return out;
}

interface MutableMedia {
  index: number;
  kind: string;
  port: number;
  protocol: string;
  formats: string;
  mid?: string;
  ufrag?: string;
  pwd?: string;
  options?: string[];
  ufragLine?: SdpLine;
  pwdLine?: SdpLine;
  mLine: SdpLine;
  candidates: Candidate[];
  ignored: IgnoredCandidate[];
  endOfCandidates: boolean;
  iceMismatch: boolean;
  remoteCandidates?: RemoteCandidateRef[];
  connection?: string;
  rtcpPort?: number;
  rtcpAddress?: string;
  rtcpMux: boolean;
  bundleOnly: boolean;
}

function once<T>(current: T | undefined, line: SdpLine, name: string): void {
  if (current !== undefined) throw new SdpError(line.number, line.text, `${name} given twice at the same level`);
}

/**
 * Reads the ICE view of an SDP offer or answer. Throws only `SdpError` (a bad candidate line becomes an `SdpError`
 * for that line, with the `CandidateParseError` as `cause`). Candidates with an unknown transport or type, or with a
 * FQDN address other than an mDNS `.local` name, are skipped and listed in `ignoredCandidates` (RFC 8839 §5.1).
 */
export function readIceDescription(sdp: string): IceDescription {
  if (typeof sdp !== 'string') throw new SdpError(0, '', 'SDP must be a string');
  const lines = splitSdpLines(sdp);
  let ufrag: string | undefined;
  let pwd: string | undefined;
  let ufragLine: SdpLine | undefined;
  let pwdLine: SdpLine | undefined;
  let options: string[] | undefined;
  let lite = false;
  let pacingMs: number | undefined;
  let endOfCandidates = false;
  let connection: string | undefined;
  const bundleGroups: string[][] = [];
  const media: MutableMedia[] = [];
  let cur: MutableMedia | undefined;

  for (const line of lines) {
    if (line.type === 'm') {
      const m = M_LINE.exec(line.value);
      if (!m) throw new SdpError(line.number, line.text, 'bad m= line (expected "<media> <port> <proto> <fmt ...>")');
      const port = Number(m[2]);
      if (port > 65535) throw new SdpError(line.number, line.text, `port ${port} is out of range`);
      cur = {
        index: media.length,
        kind: m[1]!,
        port,
        protocol: m[3]!,
        formats: m[4] ?? '',
        mLine: line,
        candidates: [],
        ignored: [],
        endOfCandidates: false,
        iceMismatch: false,
        rtcpMux: false,
        bundleOnly: false,
      };
      media.push(cur);
      continue;
    }
    if (line.type === 'c') {
      const c = C_LINE.exec(line.value);
      if (!c) throw new SdpError(line.number, line.text, 'bad c= line (expected "IN IP4|IP6 <address>")');
      // Multicast c= lines may carry /ttl or /count: the address is what precedes the first slash.
      const address = c[2]!.split('/')[0]!;
      if (address === '') throw new SdpError(line.number, line.text, 'c= line without an address');
      if (cur) {
        once(cur.connection, line, 'c=');
        cur.connection = address;
      } else {
        once(connection, line, 'c=');
        connection = address;
      }
      continue;
    }
    if (line.type !== 'a') continue;
    const [name, arg] = splitAttribute(line.value);
    switch (name) {
      case 'ice-ufrag': {
        const v = (arg ?? '').trim();
        if (!isValidUfrag(v)) throw new SdpError(line.number, line.text, 'ice-ufrag must be 4 to 256 ice-chars');
        if (cur) {
          once(cur.ufrag, line, 'ice-ufrag');
          cur.ufrag = v;
          cur.ufragLine = line;
        } else {
          once(ufrag, line, 'ice-ufrag');
          ufrag = v;
          ufragLine = line;
        }
        break;
      }
      case 'ice-pwd': {
        const v = (arg ?? '').trim();
        if (!isValidPwd(v)) throw new SdpError(line.number, line.text, 'ice-pwd must be 22 to 256 ice-chars');
        if (cur) {
          once(cur.pwd, line, 'ice-pwd');
          cur.pwd = v;
          cur.pwdLine = line;
        } else {
          once(pwd, line, 'ice-pwd');
          pwd = v;
          pwdLine = line;
        }
        break;
      }
      case 'ice-options': {
        const tags = parseOptions(arg, line);
        if (cur) {
          once(cur.options, line, 'ice-options');
          cur.options = tags;
        } else {
          once(options, line, 'ice-options');
          options = tags;
        }
        break;
      }
      case 'ice-lite':
        if (arg !== undefined) throw new SdpError(line.number, line.text, 'ice-lite takes no value');
        // RFC 8839 §5.3: session level only.
        if (cur) throw new SdpError(line.number, line.text, 'ice-lite is a session-level attribute');
        lite = true;
        break;
      case 'ice-mismatch':
        if (arg !== undefined) throw new SdpError(line.number, line.text, 'ice-mismatch takes no value');
        // RFC 8839 §5.3: media level only.
        if (!cur) throw new SdpError(line.number, line.text, 'ice-mismatch is a media-level attribute');
        cur.iceMismatch = true;
        break;
      case 'ice-pacing': {
        // RFC 8839 §5.5: session level, pacing-value = 1*10DIGIT.
        if (cur) throw new SdpError(line.number, line.text, 'ice-pacing is a session-level attribute');
        const v = (arg ?? '').trim();
        if (!/^\d{1,10}$/.test(v)) throw new SdpError(line.number, line.text, 'ice-pacing must be 1 to 10 digits');
        once(pacingMs, line, 'ice-pacing');
        pacingMs = Number(v);
        break;
      }
      case 'end-of-candidates':
        if (arg !== undefined) throw new SdpError(line.number, line.text, 'end-of-candidates takes no value');
        if (cur) cur.endOfCandidates = true;
        else endOfCandidates = true;
        break;
      case 'candidate': {
        // RFC 8839 §5.1: media level only.
        if (!cur) throw new SdpError(line.number, line.text, 'candidate is a media-level attribute');
        let cand: Candidate;
        try {
          cand = parseCandidate(line.value);
        } catch (e) {
          if (e instanceof CandidateParseError) {
            // RFC 8839 §5.1: unsupported transports and candidate types are ignored, not fatal.
            if (e.field === 'transport' || (e.field === 'type' && /^typ [A-Za-z0-9\-.!%*_+`'~]+(\s|$)/.test(afterAddress(line.value)))) {
              cur.ignored.push({ line: line.number, text: line.text, reason: e.message });
              break;
            }
            const err = new SdpError(line.number, line.text, e.message);
            err.cause = e;
            throw err;
          }
          throw e;
        }
        // RFC 8839 §5.1: candidates with FQDNs (other than the mDNS extension's .local names) MUST be ignored.
        if (candidateAddressKind(cand.address) === 'fqdn') {
          cur.ignored.push({ line: line.number, text: line.text, reason: 'FQDN candidate address' });
          break;
        }
        cur.candidates.push(cand);
        break;
      }
      case 'remote-candidates': {
        if (!cur) throw new SdpError(line.number, line.text, 'remote-candidates is a media-level attribute');
        const refs = parseRemoteCandidates(arg, line);
        // Appended in place: copying the list per line made thousands of lines quadratic.
        const list = (cur.remoteCandidates ??= []);
        for (const r of refs) list.push(r);
        break;
      }
      case 'mid':
        if (cur) {
          const v = (arg ?? '').trim();
          if (v === '' || /\s/.test(v)) throw new SdpError(line.number, line.text, 'mid needs one identification-tag');
          once(cur.mid, line, 'mid');
          cur.mid = v;
        }
        break;
      case 'group': {
        if (cur) break;
        // Mids never contain whitespace (the a=mid check below): split on any, so a stray tab cannot join a mid.
        const parts = (arg ?? '').trim().split(/\s+/).filter((t) => t !== '');
        if (parts[0]?.toUpperCase() === 'BUNDLE') bundleGroups.push(parts.slice(1));
        break;
      }
      case 'rtcp': {
        if (!cur) break;
        const r = RTCP_ATTR.exec((arg ?? '').trim());
        if (!r || Number(r[1]) > 65535) throw new SdpError(line.number, line.text, 'bad rtcp attribute (RFC 3605)');
        cur.rtcpPort = Number(r[1]);
        if (r[3] !== undefined) cur.rtcpAddress = r[3];
        break;
      }
      case 'rtcp-mux':
      case 'rtcp-mux-only': // RFC 8858: exclusive multiplexing implies multiplexing
        if (cur) cur.rtcpMux = true;
        break;
      case 'bundle-only':
        if (cur) cur.bundleOnly = true;
        break;
      default:
        break;
    }
  }

  const mids = new Set<string>();
  for (const m of media) {
    if (m.mid !== undefined) {
      if (mids.has(m.mid)) throw new SdpError(m.mLine.number, m.mLine.text, `duplicate mid "${m.mid}"`);
      mids.add(m.mid);
    }
  }
  const outMedia: IceMediaDescription[] = media.map((m) => {
    const effUfrag = m.ufrag ?? ufrag;
    const effPwd = m.pwd ?? pwd;
    // RFC 8839 §5.4: there MUST be an ice-pwd and an ice-ufrag for each data stream (when ICE is used at all).
    if ((effUfrag === undefined) !== (effPwd === undefined)) {
      const l = m.ufragLine ?? m.pwdLine ?? ufragLine ?? pwdLine ?? m.mLine;
      throw new SdpError(l.number, l.text, `m-section ${m.index} has ${effUfrag === undefined ? 'ice-pwd without ice-ufrag' : 'ice-ufrag without ice-pwd'}`);
    }
    const conn = m.connection ?? connection;
    const rtcp: TransportAddress | undefined =
      m.rtcpPort === undefined
        ? undefined
        : m.rtcpAddress !== undefined
          ? { address: m.rtcpAddress, port: m.rtcpPort }
          : conn !== undefined
            ? { address: conn, port: m.rtcpPort }
            : undefined;
    return {
      index: m.index,
      kind: m.kind,
      port: m.port,
      protocol: m.protocol,
      formats: m.formats,
      ...(m.mid !== undefined ? { mid: m.mid } : {}),
      ...(effUfrag !== undefined ? { ufrag: effUfrag } : {}),
      ...(effPwd !== undefined ? { pwd: effPwd } : {}),
      options: m.options ?? options ?? [],
      mediaLevel: {
        ...(m.ufrag !== undefined ? { ufrag: m.ufrag } : {}),
        ...(m.pwd !== undefined ? { pwd: m.pwd } : {}),
        ...(m.options !== undefined ? { options: m.options } : {}),
      },
      candidates: m.candidates,
      ignoredCandidates: m.ignored,
      endOfCandidates: m.endOfCandidates,
      iceMismatch: m.iceMismatch,
      ...(m.remoteCandidates !== undefined ? { remoteCandidates: m.remoteCandidates } : {}),
      ...(conn !== undefined ? { connection: conn } : {}),
      ...(rtcp !== undefined ? { rtcp } : {}),
      rtcpMux: m.rtcpMux,
      bundleOnly: m.bundleOnly,
    };
  });
  // RFC 8839 §5.4: identical ufrags in two streams MUST come with identical passwords.
  const pwdOf = new Map<string, string>();
  for (const [i, m] of outMedia.entries()) {
    if (m.ufrag === undefined || m.pwd === undefined) continue;
    const seen = pwdOf.get(m.ufrag);
    if (seen !== undefined && seen !== m.pwd) {
      const l = media[i]!.pwdLine ?? media[i]!.mLine;
      throw new SdpError(l.number, l.text, `ice-ufrag "${m.ufrag}" is used with two different ice-pwd values`);
    }
    pwdOf.set(m.ufrag, m.pwd);
  }
  return {
    ...(ufrag !== undefined ? { ufrag } : {}),
    ...(pwd !== undefined ? { pwd } : {}),
    options: options ?? [],
    lite,
    ...(pacingMs !== undefined ? { pacingMs } : {}),
    endOfCandidates,
    ...(connection !== undefined ? { connection } : {}),
    bundleGroups,
    media: outMedia,
  };
}

/** The text after a candidate's first six fields (used to tell an unknown `typ` token from a malformed line). */
function afterAddress(value: string): string {
  const body = value.replace(/^candidate:/i, '').trim();
  return body.split(/[ \t]+/).slice(6).join(' ');
}

/** True when the description indicates ICE support for `m` (RFC 8839 §4.2.5: at least ice-ufrag and ice-pwd). */
export function mediaHasIce(m: IceMediaDescription): boolean {
  return m.ufrag !== undefined && m.pwd !== undefined;
}

/** True when any `m=` section indicates ICE support. */
export function descriptionHasIce(d: IceDescription): boolean {
  return d.media.some(mediaHasIce);
}

/** The effective `ice-options` of a stream include `ice2` (RFC 8839 §4.2.1.5). */
export function supportsIce2(m: IceMediaDescription): boolean {
  return m.options.includes(ICE2_OPTION);
}

/** Whether end-of-candidates applies to `m`: a media-level or a session-level `a=end-of-candidates`. */
export function endOfCandidatesFor(d: IceDescription, m: IceMediaDescription): boolean {
  return m.endOfCandidates || d.endOfCandidates;
}

/**
 * The m-line index whose transport `m` uses: with BUNDLE (RFC 8843), every m-section of a group that is not
 * rejected shares the transport of the group's first mid that is present and not rejected (the BUNDLE-tag
 * m-section); otherwise the m-section is its own transport.
 */
export function transportIndexOf(d: IceDescription, index: number): number {
  const m = d.media[index];
  if (!m || m.mid === undefined) return index;
  return bundleOwners(d).get(m.mid) ?? index;
}

// Per description: mid -> index of the m-section whose transport it shares, for mids in a BUNDLE group with an owner.
// Computed once in linear time: a scan per call (groups x mids x m-sections) let a 150 kB hostile SDP take minutes.
const ownersCache = new WeakMap<IceDescription, ReadonlyMap<string, number>>();

function bundleOwners(d: IceDescription): ReadonlyMap<string, number> {
  let owners = ownersCache.get(d);
  if (owners !== undefined) return owners;
  const byMid = new Map<string, IceMediaDescription>();
  for (const x of d.media) if (x.mid !== undefined && !byMid.has(x.mid)) byMid.set(x.mid, x);
  const out = new Map<string, number>();
  // A mid takes the owner of the first group that lists it and has one: the first listed mid present, not rejected.
  for (const group of d.bundleGroups) {
    let owner: number | undefined;
    for (const mid of group) {
      const x = byMid.get(mid);
      if (x && x.port !== 0) {
        owner = x.index;
        break;
      }
    }
    if (owner === undefined) continue;
    for (const mid of group) if (!out.has(mid)) out.set(mid, owner);
  }
  owners = out;
  ownersCache.set(d, owners);
  return owners;
}

// ---------------------------------------------------------------------------------------------------------------
// Writing

const ICE_ATTRIBUTE_NAMES = new Set([
  'ice-ufrag',
  'ice-pwd',
  'ice-options',
  'ice-lite',
  'ice-mismatch',
  'ice-pacing',
  'candidate',
  'remote-candidates',
  'end-of-candidates',
]);

function ipVer(address: string): number {
  return address.includes(':') ? 6 : 4;
}

function checkToken(ok: boolean, what: string): void {
  if (!ok) throw new SdpError(0, '', `cannot write ${what}`);
}

/** A value that goes on one line: no CR or LF may slip in (it would inject lines). */
function oneLine(v: string, what: string): string {
  checkToken(!/[\r\n]/.test(v), what);
  return v;
}

function isIceLine(l: SdpLine): boolean {
  return l.type === 'a' && ICE_ATTRIBUTE_NAMES.has(splitAttribute(l.value)[0]);
}

/** The reader's test for a BUNDLE group line (`a=group:` then `BUNDLE` as the first token, any spacing). */
function isBundleGroup(l: SdpLine): boolean {
  if (l.type !== 'a') return false;
  const [name, arg] = splitAttribute(l.value);
  return name === 'group' && (arg ?? '').trim().split(/\s+/)[0]?.toUpperCase() === 'BUNDLE';
}

function attrName(l: SdpLine): string | undefined {
  return l.type === 'a' ? splitAttribute(l.value)[0] : undefined;
}

/** `c=` for `address`: the base's own line when it already names that address (keeps `/ttl`, case), else a new one. */
function connectionLine(address: string, original: SdpLine | undefined): string {
  if (original) {
    const c = C_LINE.exec(original.value);
    if (c && c[2]!.split('/')[0] === address) return original.text;
  }
  checkToken(/^\S+$/.test(address), `c= address "${address}"`);
  return `c=IN IP${ipVer(address)} ${address}`;
}

function candidateLines(m: IceMediaDescription): string[] {
  const out: string[] = [];
  if (m.mediaLevel.ufrag !== undefined) {
    checkToken(isValidUfrag(m.mediaLevel.ufrag), `ice-ufrag "${m.mediaLevel.ufrag}"`);
    out.push(`a=ice-ufrag:${m.mediaLevel.ufrag}`);
  }
  if (m.mediaLevel.pwd !== undefined) {
    checkToken(isValidPwd(m.mediaLevel.pwd), 'ice-pwd');
    out.push(`a=ice-pwd:${m.mediaLevel.pwd}`);
  }
  if (m.mediaLevel.options !== undefined && m.mediaLevel.options.length > 0) {
    m.mediaLevel.options.forEach((o) => checkToken(isValidIceOption(o), `ice-option "${o}"`));
    out.push(`a=ice-options:${m.mediaLevel.options.join(' ')}`);
  }
  if (m.iceMismatch) out.push('a=ice-mismatch');
  for (const c of m.candidates) out.push(`a=${oneLine(formatCandidate(c), 'candidate')}`);
  if (m.remoteCandidates !== undefined && m.remoteCandidates.length > 0) {
    const refs = m.remoteCandidates.map((r) => `${r.component} ${r.address} ${r.port}`).join(' ');
    out.push(`a=remote-candidates:${oneLine(refs, 'remote-candidates')}`);
  }
  if (m.endOfCandidates) out.push('a=end-of-candidates');
  return out;
}

/**
 * Writes `desc` into an SDP body (CRLF line ends). With `baseSdp` (the application's SDP: codecs, directions, DTLS
 * attributes...), every line of the base is kept verbatim and in place except those `desc` owns: the ICE attributes
 * (replaced by those of `desc`, written after the application's attributes of their level), `c=` (rewritten only
 * when the address changes), the `m=` line, `a=rtcp`, `a=mid`, `a=rtcp-mux`, `a=bundle-only` and `a=group:BUNDLE`
 * (set from `desc`, in place when the base had them). `desc.media` must match the base's `m=` lines one to one.
 * Without a base, a minimal SDP is built from `desc` alone. Throws `SdpError` (line 0) for a description the
 * grammar cannot carry, `SdpError` for a base line that is not `x=...`, and `CandidateParseError` from the
 * candidate formatter.
 */
export function writeIceDescription(desc: IceDescription, baseSdp?: string): string {
  const base =
    baseSdp ??
    ['v=0', 'o=- 0 0 IN IP4 127.0.0.1', 's=-', 't=0 0', ...desc.media.map((m) => `m=${m.kind} ${m.port} ${m.protocol}${m.formats !== '' ? ` ${m.formats}` : ''}`), ''].join('\r\n');
  const lines = splitSdpLines(base);
  const firstM = lines.findIndex((l) => l.type === 'm');
  const sessionLines = firstM < 0 ? lines : lines.slice(0, firstM);
  const sections: SdpLine[][] = [];
  for (const l of firstM < 0 ? [] : lines.slice(firstM)) {
    if (l.type === 'm') sections.push([l]);
    else sections[sections.length - 1]!.push(l);
  }
  if (sections.length !== desc.media.length) {
    throw new SdpError(0, '', `base SDP has ${sections.length} m= lines, the description ${desc.media.length}`);
  }

  // Session level.
  const sIce: string[] = [];
  if (desc.lite) sIce.push('a=ice-lite');
  if (desc.ufrag !== undefined) {
    checkToken(isValidUfrag(desc.ufrag), `ice-ufrag "${desc.ufrag}"`);
    sIce.push(`a=ice-ufrag:${desc.ufrag}`);
  }
  if (desc.pwd !== undefined) {
    checkToken(isValidPwd(desc.pwd), 'ice-pwd');
    sIce.push(`a=ice-pwd:${desc.pwd}`);
  }
  if (desc.options.length > 0) {
    desc.options.forEach((o) => checkToken(isValidIceOption(o), `ice-option "${o}"`));
    sIce.push(`a=ice-options:${desc.options.join(' ')}`);
  }
  if (desc.pacingMs !== undefined) {
    checkToken(Number.isInteger(desc.pacingMs) && desc.pacingMs >= 0 && desc.pacingMs <= 9_999_999_999, `ice-pacing ${desc.pacingMs}`);
    sIce.push(`a=ice-pacing:${desc.pacingMs}`);
  }
  if (desc.endOfCandidates) sIce.push('a=end-of-candidates');
  const groups = desc.bundleGroups.map((g) => {
    g.forEach((mid) => checkToken(/^\S+$/.test(mid), `BUNDLE mid "${mid}"`));
    return `a=group:BUNDLE${g.map((t) => ` ${t}`).join('')}`;
  });
  const out: string[] = [];
  let connectionDone = desc.connection === undefined;
  let groupsDone = groups.length === 0;
  for (const l of sessionLines) {
    if (l.type === 'c') {
      if (!connectionDone) out.push(connectionLine(desc.connection!, l));
      connectionDone = true;
      continue;
    }
    if (isIceLine(l)) continue;
    if (isBundleGroup(l)) {
      if (!groupsDone) out.push(...groups);
      groupsDone = true;
      continue;
    }
    // RFC 4566 §5 order: c= comes before b=, t=, ...; BUNDLE groups go with the first session attribute.
    if (!connectionDone && (l.type === 'b' || l.type === 't' || l.type === 'r' || l.type === 'z' || l.type === 'k' || l.type === 'a')) {
      out.push(connectionLine(desc.connection!, undefined));
      connectionDone = true;
    }
    if (!groupsDone && l.type === 'a') {
      out.push(...groups);
      groupsDone = true;
    }
    out.push(l.text);
  }
  if (!connectionDone) out.push(connectionLine(desc.connection!, undefined));
  if (!groupsDone) out.push(...groups);
  out.push(...sIce);

  // Media level.
  desc.media.forEach((m, i) => {
    const section = sections[i]!;
    const mLine = section[0]!;
    checkToken(Number.isInteger(m.port) && m.port >= 0 && m.port <= 65535, `port ${m.port}`);
    checkToken(/^\S+$/.test(m.kind) && /^\S+$/.test(m.protocol), `m= line for m-section ${i}`);
    // Keep a port count (RFC 4566 `<port>/<number of ports>`) the base had, unless the stream is disabled.
    const count = m.port !== 0 ? (/^\S+ \d+(\/\d+)/.exec(mLine.value)?.[1] ?? '') : '';
    out.push(`m=${m.kind} ${m.port}${count} ${m.protocol}${m.formats !== '' ? ` ${oneLine(m.formats, 'm= formats')}` : ''}`);
    const mediaConnection = m.connection !== undefined && m.connection !== desc.connection ? m.connection : undefined;
    let rtcpLine: string | undefined;
    if (m.rtcp !== undefined) {
      checkToken(Number.isInteger(m.rtcp.port) && m.rtcp.port >= 0 && m.rtcp.port <= 65535 && /^\S+$/.test(m.rtcp.address), 'a=rtcp');
      rtcpLine = m.rtcp.address === m.connection ? `a=rtcp:${m.rtcp.port}` : `a=rtcp:${m.rtcp.port} IN IP${ipVer(m.rtcp.address)} ${m.rtcp.address}`;
    }
    if (m.mid !== undefined) checkToken(/^\S+$/.test(m.mid), `mid "${m.mid}"`);
    // Lines `desc` owns: written where the base had them, the missing ones after the application's attributes.
    const owned = new Map<string, string | undefined>([
      ['rtcp', rtcpLine],
      ['mid', m.mid !== undefined ? `a=mid:${m.mid}` : undefined],
      ['rtcp-mux', m.rtcpMux ? 'a=rtcp-mux' : undefined],
      ['bundle-only', m.bundleOnly ? 'a=bundle-only' : undefined],
    ]);
    const done = new Set<string>();
    let connectionWritten = mediaConnection === undefined;
    for (const l of section.slice(1)) {
      if (l.type === 'c') {
        if (!connectionWritten) out.push(connectionLine(mediaConnection!, l));
        connectionWritten = true;
        continue;
      }
      // RFC 4566 §5 order: m=, i=, c=, b=, k=, a=.
      if (!connectionWritten && l.type !== 'i') {
        out.push(connectionLine(mediaConnection!, undefined));
        connectionWritten = true;
      }
      if (isIceLine(l)) continue;
      const name = attrName(l);
      if (name !== undefined && owned.has(name)) {
        const v = owned.get(name);
        if (v !== undefined && !done.has(name)) out.push(v);
        done.add(name);
        continue;
      }
      out.push(l.text);
    }
    if (!connectionWritten) out.push(connectionLine(mediaConnection!, undefined));
    for (const [name, v] of owned) if (v !== undefined && !done.has(name)) out.push(v);
    out.push(...candidateLines(m));
  });
  return `${out.join('\r\n')}\r\n`;
}
