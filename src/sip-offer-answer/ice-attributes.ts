/**
 * The SDP attributes of RFC 8839 §5 (`candidate`, `remote-candidates`, `ice-lite`, `ice-mismatch`, `ice-ufrag`,
 * `ice-pwd`, `ice-pacing`, `ice-options`) and RFC 8840 §8 `end-of-candidates`, read from and written into an SDP
 * body.
 *
 * Reading scans the text line by line (`sdp-lines.ts`) so that every error names its 1-based line number and the
 * line's text (`SdpError`); each attribute has its handler in one table; candidate lines go through the shared
 * grammar of `src/candidates/grammar.ts`. Writing lives in `ice-writer.ts`.
 * @module
 */
import type { Candidate } from '../candidates/candidate.js';
import { candidateAddressKind, parseCandidate } from '../candidates/grammar.js';
import { credentialProblem, isValidIceOption } from '../arguments.js';
import { CandidateParseError, SdpError } from '../errors.js';
import { DEFAULT_TA_MS, isPacingValue } from '../stun/pacing.js';
import type { TransportAddress } from '../types.js';
import { bundleGroupMids, connectionAddress, splitAttribute, splitSdpLines, type SdpLine } from './sdp-lines.js';

/** The `ice-options` tag of RFC 8445 / RFC 8839 §4.2.1.5. */
export const ICE2_OPTION = 'ice2';
/** The `ice-options` tag of Trickle ICE (RFC 8838 §3). */
export const TRICKLE_OPTION = 'trickle';
/** RFC 8839 §5.5: the pacing that applies when `a=ice-pacing` is absent (an alias of `DEFAULT_TA_MS`, one default). */
export const DEFAULT_ICE_PACING_MS = DEFAULT_TA_MS;

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
  /** `a=rtcp-mux` (RFC 5761); also true under `a=rtcp-mux-only`. */
  readonly rtcpMux: boolean;
  /** `a=rtcp-mux-only` (RFC 8858): RTCP only multiplexed, so no RTCP component is offered. */
  readonly rtcpMuxOnly?: boolean;
  /** `a=bundle-only` (RFC 8843 §6). */
  readonly bundleOnly: boolean;
  /**
   * Written only: the default candidate is a TCP one (RFC 6544 §4.5), so the writer adds RFC 4145 `a=setup` with this
   * role and `a=connection:new` when the application's section has no `a=setup` of its own.
   */
  readonly tcpSetup?: 'active' | 'passive' | 'actpass';
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

// The RFC 8839 value rules are defined once, in src/arguments.ts, and shared with the API's argument checks.
export { isValidIceOption, isValidPwd, isValidUfrag } from '../arguments.js';

const M_LINE = /^([A-Za-z0-9\-_.!%*+`'~]+) (\d{1,5})(?:\/\d+)? (\S+)(?: (.*))?$/;
const RTCP_ATTR = /^(\d{1,5})(?: IN (IP4|IP6) (\S+))?$/;
/** RFC 8839 §5.5 `pacing-value = 1*10DIGIT`, as text; the value rule itself is `isPacingValue`. */
const PACING_TEXT = /^\d{1,10}$/;

function fail(line: SdpLine, reason: string): never {
  throw new SdpError(line.number, line.text, reason);
}

function parseOptions(arg: string | undefined, line: SdpLine): string[] {
  const tags = (arg ?? '').trim().split(/ +/).filter((t) => t !== '');
  if (tags.length === 0) fail(line, 'ice-options needs at least one ice-option-tag');
  for (const t of tags) if (!isValidIceOption(t)) fail(line, `"${t}" is not an ice-option-tag (1*ice-char)`);
  return tags;
}

function parseRemoteCandidates(arg: string | undefined, line: SdpLine): RemoteCandidateRef[] {
  const parts = (arg ?? '').trim().split(/ +/).filter((t) => t !== '');
  if (parts.length === 0 || parts.length % 3 !== 0) fail(line, 'remote-candidates must be groups of "component address port"');
  const out: RemoteCandidateRef[] = [];
  for (let i = 0; i < parts.length; i += 3) {
    const comp = parts[i]!;
    const address = parts[i + 1]!;
    const port = parts[i + 2]!;
    if (!/^\d{1,3}$/.test(comp) || Number(comp) < 1 || Number(comp) > 256) fail(line, `bad component-id "${comp}"`);
    if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) fail(line, `bad port "${port}"`);
    out.push({ component: Number(comp), address, port: Number(port) });
  }
  return out;
}

/** What one level (the session, or one `m=` section) has carried so far. */
interface Level {
  ufrag?: string;
  pwd?: string;
  options?: string[];
  ufragLine?: SdpLine;
  pwdLine?: SdpLine;
  connection?: string;
  endOfCandidates: boolean;
}

interface MutableMedia extends Level {
  index: number;
  kind: string;
  port: number;
  protocol: string;
  formats: string;
  mid?: string;
  mLine: SdpLine;
  candidates: Candidate[];
  ignored: IgnoredCandidate[];
  iceMismatch: boolean;
  remoteCandidates?: RemoteCandidateRef[];
  rtcpPort?: number;
  rtcpAddress?: string;
  rtcpMux: boolean;
  rtcpMuxOnly?: boolean;
  bundleOnly: boolean;
}

/** The reader's state: the session level, the `m=` sections read so far, and the current one (undefined before). */
interface ReadState {
  readonly session: Level;
  lite: boolean;
  pacingMs?: number;
  readonly bundleGroups: string[][];
  readonly media: MutableMedia[];
  cur?: MutableMedia;
}

function once<T>(current: T | undefined, line: SdpLine, name: string): void {
  if (current !== undefined) fail(line, `${name} given twice at the same level`);
}

/** A property attribute (no value); a value is an error naming the line. */
function noValue(arg: string | undefined, line: SdpLine, name: string): void {
  if (arg !== undefined) fail(line, `${name} takes no value`);
}

/** Handles one `a=` line; `arg` is the text after the colon (undefined for a property attribute). */
type AttributeHandler = (st: ReadState, arg: string | undefined, line: SdpLine) => void;

function credential(name: 'ufrag' | 'pwd'): AttributeHandler {
  return (st, arg, line) => {
    const v = (arg ?? '').trim();
    // The same rule as IceAgent.setRemoteParameters (src/arguments.ts).
    const problem = credentialProblem(name, v);
    if (problem !== undefined) fail(line, problem);
    const level = st.cur ?? st.session;
    once(level[name], line, `ice-${name}`);
    level[name] = v;
    level[`${name}Line`] = line;
  };
}

/** The attributes the reader understands, by name. Anything else is the application's business and is skipped. */
const ATTRIBUTES = new Map<string, AttributeHandler>([
  ['ice-ufrag', credential('ufrag')],
  ['ice-pwd', credential('pwd')],
  [
    'ice-options',
    (st, arg, line) => {
      const tags = parseOptions(arg, line);
      const level = st.cur ?? st.session;
      once(level.options, line, 'ice-options');
      level.options = tags;
    },
  ],
  [
    'ice-lite',
    (st, arg, line) => {
      noValue(arg, line, 'ice-lite');
      // RFC 8839 §5.3: session level only.
      if (st.cur) fail(line, 'ice-lite is a session-level attribute');
      st.lite = true;
    },
  ],
  [
    'ice-mismatch',
    (st, arg, line) => {
      noValue(arg, line, 'ice-mismatch');
      // RFC 8839 §5.3: media level only.
      if (!st.cur) fail(line, 'ice-mismatch is a media-level attribute');
      st.cur.iceMismatch = true;
    },
  ],
  [
    'ice-pacing',
    (st, arg, line) => {
      // RFC 8839 §5.5: session level, pacing-value = 1*10DIGIT.
      if (st.cur) fail(line, 'ice-pacing is a session-level attribute');
      const v = (arg ?? '').trim();
      if (!PACING_TEXT.test(v) || !isPacingValue(Number(v))) fail(line, 'ice-pacing must be 1 to 10 digits');
      once(st.pacingMs, line, 'ice-pacing');
      st.pacingMs = Number(v);
    },
  ],
  [
    'end-of-candidates',
    (st, arg, line) => {
      noValue(arg, line, 'end-of-candidates');
      (st.cur ?? st.session).endOfCandidates = true;
    },
  ],
  [
    'candidate',
    (st, _arg, line) => {
      // RFC 8839 §5.1: media level only.
      if (!st.cur) fail(line, 'candidate is a media-level attribute');
      readCandidate(st.cur, line);
    },
  ],
  [
    'remote-candidates',
    (st, arg, line) => {
      if (!st.cur) fail(line, 'remote-candidates is a media-level attribute');
      // Appended in place: copying the list per line made thousands of lines quadratic.
      const list = (st.cur.remoteCandidates ??= []);
      for (const r of parseRemoteCandidates(arg, line)) list.push(r);
    },
  ],
  [
    'mid',
    (st, arg, line) => {
      if (!st.cur) return;
      const v = (arg ?? '').trim();
      if (v === '' || /\s/.test(v)) fail(line, 'mid needs one identification-tag');
      once(st.cur.mid, line, 'mid');
      st.cur.mid = v;
    },
  ],
  [
    'group',
    (st, _arg, line) => {
      const mids = st.cur ? undefined : bundleGroupMids(line);
      if (mids) st.bundleGroups.push(mids);
    },
  ],
  [
    'rtcp',
    (st, arg, line) => {
      if (!st.cur) return;
      const r = RTCP_ATTR.exec((arg ?? '').trim());
      if (!r || Number(r[1]) > 65535) fail(line, 'bad rtcp attribute (RFC 3605)');
      st.cur.rtcpPort = Number(r[1]);
      if (r[3] !== undefined) st.cur.rtcpAddress = r[3];
    },
  ],
  [
    'rtcp-mux',
    (st) => {
      if (st.cur) st.cur.rtcpMux = true;
    },
  ],
  [
    'rtcp-mux-only', // RFC 8858: exclusive multiplexing implies multiplexing
    (st) => {
      if (!st.cur) return;
      st.cur.rtcpMux = true;
      st.cur.rtcpMuxOnly = true;
    },
  ],
  [
    'bundle-only',
    (st) => {
      if (st.cur) st.cur.bundleOnly = true;
    },
  ],
]);

function readCandidate(cur: MutableMedia, line: SdpLine): void {
  let cand: Candidate;
  try {
    cand = parseCandidate(line.value);
  } catch (e) {
    if (!(e instanceof CandidateParseError)) throw e;
    // RFC 8839 §5.1: unsupported transports and candidate types are ignored, not fatal.
    if (e.field === 'transport' || (e.field === 'type' && /^typ [A-Za-z0-9\-.!%*_+`'~]+(\s|$)/.test(afterAddress(line.value)))) {
      cur.ignored.push({ line: line.number, text: line.text, reason: e.message });
      return;
    }
    const err = new SdpError(line.number, line.text, e.message);
    err.cause = e;
    throw err;
  }
  // RFC 8839 §5.1: candidates with FQDNs (other than the mDNS extension's .local names) MUST be ignored.
  if (candidateAddressKind(cand.address) === 'fqdn') {
    cur.ignored.push({ line: line.number, text: line.text, reason: 'FQDN candidate address' });
    return;
  }
  cur.candidates.push(cand);
}

function readMediaLine(st: ReadState, line: SdpLine): void {
  const m = M_LINE.exec(line.value);
  if (!m) fail(line, 'bad m= line (expected "<media> <port> <proto> <fmt ...>")');
  const port = Number(m[2]);
  if (port > 65535) fail(line, `port ${port} is out of range`);
  st.cur = {
    index: st.media.length,
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
  st.media.push(st.cur);
}

function readConnectionLine(st: ReadState, line: SdpLine): void {
  const address = connectionAddress(line.value);
  if (address === undefined) fail(line, 'bad c= line (expected "IN IP4|IP6 <address>")');
  if (address === '') fail(line, 'c= line without an address');
  const level = st.cur ?? st.session;
  once(level.connection, line, 'c=');
  level.connection = address;
}

/** The effective ICE view of one `m=` section (media level, else session level), checked against RFC 8839 §5.4. */
function finishMedia(st: ReadState, m: MutableMedia): IceMediaDescription {
  const s = st.session;
  const effUfrag = m.ufrag ?? s.ufrag;
  const effPwd = m.pwd ?? s.pwd;
  // RFC 8839 §5.4: there MUST be an ice-pwd and an ice-ufrag for each data stream (when ICE is used at all).
  if ((effUfrag === undefined) !== (effPwd === undefined)) {
    fail(m.ufragLine ?? m.pwdLine ?? s.ufragLine ?? s.pwdLine ?? m.mLine, `m-section ${m.index} has ${effUfrag === undefined ? 'ice-pwd without ice-ufrag' : 'ice-ufrag without ice-pwd'}`);
  }
  const conn = m.connection ?? s.connection;
  const rtcpAddress = m.rtcpAddress ?? conn;
  const rtcp: TransportAddress | undefined = m.rtcpPort !== undefined && rtcpAddress !== undefined ? { address: rtcpAddress, port: m.rtcpPort } : undefined;
  return {
    index: m.index,
    kind: m.kind,
    port: m.port,
    protocol: m.protocol,
    formats: m.formats,
    ...(m.mid !== undefined ? { mid: m.mid } : {}),
    ...(effUfrag !== undefined ? { ufrag: effUfrag } : {}),
    ...(effPwd !== undefined ? { pwd: effPwd } : {}),
    options: m.options ?? s.options ?? [],
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
    ...(m.rtcpMuxOnly ? { rtcpMuxOnly: true } : {}),
    bundleOnly: m.bundleOnly,
  };
}

/**
 * Reads the ICE view of an SDP offer or answer. Throws only `SdpError` (a bad candidate line becomes an `SdpError`
 * for that line, with the `CandidateParseError` as `cause`). Candidates with an unknown transport or type, or with a
 * FQDN address other than an mDNS `.local` name, are skipped and listed in `ignoredCandidates` (RFC 8839 §5.1).
 */
export function readIceDescription(sdp: string): IceDescription {
  if (typeof sdp !== 'string') throw new SdpError(0, '', 'SDP must be a string');
  const lines = splitSdpLines(sdp);
  checkSessionStructure(lines);
  return readIceLines(lines);
}

/**
 * The ICE view of an sdpfrag body (RFC 8840 §9): the same attributes and rules as `readIceDescription`, without the
 * session lines (`v=`, `o=`, `s=`, `t=`) that a fragment does not carry.
 */
export function readIceFragment(body: string): IceDescription {
  if (typeof body !== 'string') throw new SdpError(0, '', 'sdpfrag body must be a string');
  return readIceLines(splitSdpLines(body));
}

/**
 * RFC 8866 §5 (RFC 4566 §5): a session description starts with `v=0`, and its session part carries one `o=`, one
 * `s=` and at least one `t=` before the first `m=`. A body without them is not SDP (an empty string, `"v=0"`,
 * `"a=b"`, a JSON object): refusing it here names the problem, instead of a later "the answer has 1 m= sections,
 * the offer 0". The order of the other session lines is not enforced (deployed stacks vary).
 */
function checkSessionStructure(lines: readonly SdpLine[]): void {
  const first = lines[0];
  if (first === undefined) throw new SdpError(0, '', 'empty body: not an SDP session description (RFC 8866 §5 needs v=, o=, s= and t= lines)');
  if (first.type !== 'v') fail(first, 'not an SDP session description: the first line must be "v=0" (RFC 8866 §5)');
  if (first.value.trim() !== '0') fail(first, 'unsupported SDP version (only "v=0" exists, RFC 8866 §5.1)');
  const firstM = lines.findIndex((l) => l.type === 'm');
  const session = firstM < 0 ? lines : lines.slice(0, firstM);
  const last = session[session.length - 1]!;
  for (const [type, name] of [
    ['o', 'origin'],
    ['s', 'session name'],
  ] as const) {
    const found = session.filter((l) => l.type === type);
    if (found.length === 0) fail(firstM < 0 ? last : lines[firstM]!, `no "${type}=" (${name}) line before the media sections (RFC 8866 §5)`);
    if (found.length > 1) fail(found[1]!, `a second "${type}=" line (RFC 8866 §5 allows one)`);
  }
  const v2 = lines.slice(1).find((l) => l.type === 'v');
  if (v2 !== undefined) fail(v2, 'a second "v=" line: two descriptions in one body?');
  if (!session.some((l) => l.type === 't')) fail(firstM < 0 ? last : lines[firstM]!, 'no "t=" (timing) line before the media sections (RFC 8866 §5)');
}

function readIceLines(lines: readonly SdpLine[]): IceDescription {
  const st: ReadState = { session: { endOfCandidates: false }, lite: false, bundleGroups: [], media: [] };
  for (const line of lines) {
    if (line.type === 'm') readMediaLine(st, line);
    else if (line.type === 'c') readConnectionLine(st, line);
    else if (line.type === 'a') {
      const [name, arg] = splitAttribute(line.value);
      ATTRIBUTES.get(name)?.(st, arg, line);
    }
  }

  const mids = new Set<string>();
  for (const m of st.media) {
    if (m.mid === undefined) continue;
    if (mids.has(m.mid)) fail(m.mLine, `duplicate mid "${m.mid}"`);
    mids.add(m.mid);
  }
  const media = st.media.map((m) => finishMedia(st, m));
  // RFC 8839 §5.4: identical ufrags in two streams MUST come with identical passwords.
  const pwdOf = new Map<string, string>();
  for (const [i, m] of media.entries()) {
    if (m.ufrag === undefined || m.pwd === undefined) continue;
    const seen = pwdOf.get(m.ufrag);
    if (seen !== undefined && seen !== m.pwd) fail(st.media[i]!.pwdLine ?? st.media[i]!.mLine, `ice-ufrag "${m.ufrag}" is used with two different ice-pwd values`);
    pwdOf.set(m.ufrag, m.pwd);
  }
  const s = st.session;
  return {
    ...(s.ufrag !== undefined ? { ufrag: s.ufrag } : {}),
    ...(s.pwd !== undefined ? { pwd: s.pwd } : {}),
    options: s.options ?? [],
    lite: st.lite,
    ...(st.pacingMs !== undefined ? { pacingMs: st.pacingMs } : {}),
    endOfCandidates: s.endOfCandidates,
    ...(s.connection !== undefined ? { connection: s.connection } : {}),
    bundleGroups: st.bundleGroups,
    media,
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
