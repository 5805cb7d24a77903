/**
 * Writing an `IceDescription` into the application's SDP. The application's own lines stay verbatim and in place;
 * the lines the description owns are replaced: the ICE attributes (written after the application's attributes of
 * their level), the `c=` address, the `m=` line, `a=rtcp`, `a=mid`, `a=rtcp-mux`, `a=bundle-only` and
 * `a=group:BUNDLE`. `sdp-transform` was tried for this and dropped: it reorders and rewrites lines.
 * @module
 */
import type { Candidate } from '../candidates/candidate.js';
import { formatCandidate } from '../candidates/grammar.js';
import { SdpError } from '../errors.js';
import { isPacingValue } from '../stun/pacing.js';
import { isValidIceOption, isValidPwd, isValidUfrag, type IceDescription, type IceMediaDescription, type RemoteCandidateRef } from './ice-attributes.js';
import { attributeName, bundleGroupMids, connectionAddress, splitSdpLines, type SdpLine } from './sdp-lines.js';

/** The attributes the description owns: every one of them in the base is dropped and rewritten from the description. */
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

/** Throws the writer's error for a value the grammar cannot carry (`what` says which). */
export type WriteCheck = (ok: boolean, what: string) => void;

const checkToken: WriteCheck = (ok, what) => {
  if (!ok) throw new SdpError(0, '', `cannot write ${what}`);
};

/** A value that goes on one line: no CR or LF may slip in (it would inject lines). */
function oneLine(v: string, what: string): string {
  checkToken(!/[\r\n]/.test(v), what);
  return v;
}

function ipVer(address: string): number {
  return address.includes(':') ? 6 : 4;
}

/** `a=ice-ufrag`, `a=ice-pwd` and `a=ice-options` of one level, each validated by `check` (shared with sdpfrag). */
export function credentialLines(
  level: { readonly ufrag?: string | undefined; readonly pwd?: string | undefined; readonly options?: readonly string[] | undefined },
  check: WriteCheck,
): string[] {
  const out: string[] = [];
  if (level.ufrag !== undefined) {
    check(isValidUfrag(level.ufrag), `ice-ufrag "${level.ufrag}"`);
    out.push(`a=ice-ufrag:${level.ufrag}`);
  }
  if (level.pwd !== undefined) {
    check(isValidPwd(level.pwd), 'ice-pwd');
    out.push(`a=ice-pwd:${level.pwd}`);
  }
  if (level.options !== undefined && level.options.length > 0) {
    level.options.forEach((o) => check(isValidIceOption(o), `ice-option "${o}"`));
    out.push(`a=ice-options:${level.options.join(' ')}`);
  }
  return out;
}

/** `a=ice-pacing` (RFC 8839 §5.5), validated by the one pacing rule of `stun/pacing.ts`. */
export function pacingLine(pacingMs: number, check: WriteCheck): string {
  check(isPacingValue(pacingMs), `ice-pacing ${pacingMs}`);
  return `a=ice-pacing:${pacingMs}`;
}

/** `a=remote-candidates` (RFC 8839 §5.2), or nothing for an absent or empty list. */
export function remoteCandidatesLines(refs: readonly RemoteCandidateRef[] | undefined): string[] {
  if (refs === undefined || refs.length === 0) return [];
  return [`a=remote-candidates:${oneLine(refs.map((r) => `${r.component} ${r.address} ${r.port}`).join(' '), 'remote-candidates')}`];
}

/** A candidate attribute line (RFC 8839 §5.1). */
export function candidateLine(c: Candidate): string {
  return `a=${oneLine(formatCandidate(c), 'candidate')}`;
}

function isIceLine(l: SdpLine): boolean {
  const name = attributeName(l);
  return name !== undefined && ICE_ATTRIBUTE_NAMES.has(name);
}

/** `c=` for `address`: the base's own line when it already names that address (keeps `/ttl`, case), else a new one. */
function connectionLine(address: string, original: SdpLine | undefined): string {
  if (original && connectionAddress(original.value) === address) return original.text;
  checkToken(/^\S+$/.test(address), `c= address "${address}"`);
  return `c=IN IP${ipVer(address)} ${address}`;
}

function mediaIceLines(m: IceMediaDescription): string[] {
  const out = credentialLines(m.mediaLevel, checkToken);
  if (m.iceMismatch) out.push('a=ice-mismatch');
  for (const c of m.candidates) out.push(candidateLine(c));
  out.push(...remoteCandidatesLines(m.remoteCandidates));
  if (m.endOfCandidates) out.push('a=end-of-candidates');
  return out;
}

/** A minimal base for a description written without the application's SDP. */
function minimalBase(desc: IceDescription): string {
  const mLines = desc.media.map((m) => `m=${m.kind} ${m.port} ${m.protocol}${m.formats !== '' ? ` ${m.formats}` : ''}`);
  return ['v=0', 'o=- 0 0 IN IP4 127.0.0.1', 's=-', 't=0 0', ...mLines, ''].join('\r\n');
}

/** The session-level lines: the base's own, with `c=` and BUNDLE groups set from `desc`, then the ICE attributes. */
function writeSession(desc: IceDescription, sessionLines: readonly SdpLine[], out: string[]): void {
  const sIce: string[] = desc.lite ? ['a=ice-lite'] : [];
  sIce.push(...credentialLines(desc, checkToken));
  if (desc.pacingMs !== undefined) sIce.push(pacingLine(desc.pacingMs, checkToken));
  if (desc.endOfCandidates) sIce.push('a=end-of-candidates');
  const groups = desc.bundleGroups.map((g) => {
    g.forEach((mid) => checkToken(/^\S+$/.test(mid), `BUNDLE mid "${mid}"`));
    return `a=group:BUNDLE${g.map((t) => ` ${t}`).join('')}`;
  });
  let connectionDone = desc.connection === undefined;
  let groupsDone = groups.length === 0;
  for (const l of sessionLines) {
    if (l.type === 'c') {
      if (!connectionDone) out.push(connectionLine(desc.connection!, l));
      connectionDone = true;
      continue;
    }
    if (isIceLine(l)) continue;
    if (bundleGroupMids(l) !== undefined) {
      if (!groupsDone) out.push(...groups);
      groupsDone = true;
      continue;
    }
    // RFC 4566 §5 order: c= comes before b=, t=, ...; BUNDLE groups go with the first session attribute.
    if (!connectionDone && 'btrzka'.includes(l.type)) {
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
}

/** One `m=` section: the base's lines with the owned ones set from `m`, then its ICE attributes. */
function writeMedia(desc: IceDescription, m: IceMediaDescription, i: number, section: readonly SdpLine[], out: string[]): void {
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
    const name = attributeName(l);
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
  // RFC 6544 §4.5: a TCP default candidate brings RFC 4145 a=setup and a=connection, unless the application wrote its
  // own a=setup (its TLS/DTLS role or an answer's constraint comes first).
  if (m.tcpSetup !== undefined && !section.some((l) => attributeName(l) === 'setup')) {
    out.push(`a=setup:${m.tcpSetup}`);
    if (!section.some((l) => attributeName(l) === 'connection')) out.push('a=connection:new');
  }
  out.push(...mediaIceLines(m));
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
  const lines = splitSdpLines(baseSdp ?? minimalBase(desc));
  const firstM = lines.findIndex((l) => l.type === 'm');
  const sections: SdpLine[][] = [];
  for (const l of firstM < 0 ? [] : lines.slice(firstM)) {
    if (l.type === 'm') sections.push([l]);
    else sections[sections.length - 1]!.push(l);
  }
  if (sections.length !== desc.media.length) {
    throw new SdpError(0, '', `base SDP has ${sections.length} m= lines, the description ${desc.media.length}`);
  }
  const out: string[] = [];
  writeSession(desc, firstM < 0 ? lines : lines.slice(0, firstM), out);
  desc.media.forEach((m, i) => writeMedia(desc, m, i, sections[i]!, out));
  return `${out.join('\r\n')}\r\n`;
}
