/**
 * Trickle ICE for SIP (RFC 8840): `application/trickle-ice-sdpfrag` bodies carried in INFO requests of the
 * `trickle-ice` Info Package, and the SIP header values an application needs.
 *
 * A body has session-level lines (ICE credentials, `ice-options`, `ice-pacing`, `ice-lite`, `group:BUNDLE`, a
 * session-level `end-of-candidates` meaning "no more candidates at all") followed by pseudo `m=` lines, each with an
 * `a=mid` that names the real `m=` section the following candidates belong to (RFC 8840 §4.4, grammar §9.2).
 * @module
 */
import type { Candidate } from '../candidates/candidate.js';
import { SdpError } from '../errors.js';
import { readIceFragment, type IgnoredCandidate, type RemoteCandidateRef } from './ice-attributes.js';
import { candidateLine, credentialLines, pacingLine, remoteCandidatesLines, type WriteCheck } from './ice-writer.js';
import { splitSdpLines } from './sdp-lines.js';

/** RFC 8840 §9 / §12.2: the media type of INFO bodies. */
export const TRICKLE_ICE_SDPFRAG_CONTENT_TYPE = 'application/trickle-ice-sdpfrag';
/** RFC 8840 §10.4: the Info Package name (`Info-Package:` and `Recv-Info:` header value). */
export const TRICKLE_ICE_INFO_PACKAGE = 'trickle-ice';
/** RFC 8840 §10.6: the SIP option tag (`Supported:` or `Require:` header value). */
export const TRICKLE_ICE_OPTION_TAG = 'trickle-ice';

/**
 * SIP header fields for Trickle ICE, as name/value pairs the application adds to its messages.
 * - `invite`: every INVITE request and response (RFC 8840 §4 item 1, §10.6: `Supported: trickle-ice`; RFC 6086
 *   §5.2.2 for `Recv-Info`, which announces willingness to receive the package's INFO requests). Also for OPTIONS
 *   requests and responses (§10.6).
 * - `inviteAssumingSupport`: an offerer that assumes provisioned support uses `Require: trickle-ice` (§5.1).
 * - `info`: the INFO request carrying a body (§4.4, §10.7, RFC 6086 §4.2.1 for `Content-Disposition`).
 */
export const TRICKLE_ICE_SIP_HEADERS = {
  invite: [
    ['Supported', TRICKLE_ICE_OPTION_TAG],
    ['Recv-Info', TRICKLE_ICE_INFO_PACKAGE],
  ],
  inviteAssumingSupport: [
    ['Require', TRICKLE_ICE_OPTION_TAG],
    ['Recv-Info', TRICKLE_ICE_INFO_PACKAGE],
  ],
  info: [
    ['Info-Package', TRICKLE_ICE_INFO_PACKAGE],
    ['Content-Type', TRICKLE_ICE_SDPFRAG_CONTENT_TYPE],
    ['Content-Disposition', 'Info-Package'],
  ],
} as const satisfies Record<string, readonly (readonly [string, string])[]>;

/**
 * Trickle modes (RFC 8838 §2): `'full'` sends an initial description with any number of candidates (even none) and
 * trickles the rest; `'half'` gathers a full generation before the initial offer (usable by peers without trickle
 * support) and trickles only afterwards (RFC 8838 §16, RFC 8840 §5.3); `'none'` does not trickle.
 */
export type TrickleMode = 'none' | 'half' | 'full';

/** RFC 8840 §4.4 defaults of a pseudo `m=` line when the real one is unknown. */
export const DEFAULT_PSEUDO_MEDIA_LINE = 'audio 9 RTP/AVP 0';

/** One pseudo `m=` section of a sdpfrag body. */
export interface SdpfragMedia {
  /** `a=mid` of the real `m=` section the lines belong to. */
  readonly mid: string;
  /** The value of the pseudo `m=` line (after `m=`); receivers ignore it (RFC 8840 §4.4). */
  readonly mediaLine: string;
  /** Media-level credentials (present when the offer/answer had them at media level). */
  readonly ufrag?: string;
  readonly pwd?: string;
  readonly candidates: readonly Candidate[];
  /** Candidates skipped on receipt (unknown transport or type, FQDN). */
  readonly ignoredCandidates?: readonly IgnoredCandidate[];
  /** Media-level `end-of-candidates`: no more candidates for this `m=` section. */
  readonly endOfCandidates: boolean;
  readonly remoteCandidates?: readonly RemoteCandidateRef[];
  readonly rtcpMux: boolean;
}

/** A parsed or to-be-written `application/trickle-ice-sdpfrag` body. */
export interface Sdpfrag {
  readonly ufrag?: string;
  readonly pwd?: string;
  readonly options?: readonly string[];
  readonly lite: boolean;
  readonly pacingMs?: number;
  /** Session-level `end-of-candidates`: the end of all trickling from this agent (RFC 8840 §4.4). */
  readonly endOfCandidates: boolean;
  /** `a=group:BUNDLE` (RFC 8840 §7). */
  readonly bundleGroups: readonly (readonly string[])[];
  readonly media: readonly SdpfragMedia[];
}

/** RFC 8840 §9.2: a receiver treats attribute names from pre-RFC 7405 grammars case-insensitively. */
function lowerAttributeNames(body: string): string {
  return body
    .split(/(\r\n|\r|\n)/)
    .map((l) => {
      if (!/^a=/i.test(l)) return l;
      const v = l.slice(2);
      const colon = v.indexOf(':');
      const name = colon < 0 ? v : v.slice(0, colon);
      return `a=${name.toLowerCase()}${colon < 0 ? '' : v.slice(colon)}`;
    })
    .join('');
}

/**
 * Parses an `application/trickle-ice-sdpfrag` body. Throws `SdpError` naming the line: bad ICE attributes, a bad
 * candidate line, or a pseudo `m=` section without `a=mid` (RFC 8840 §4.4 requires one).
 */
export function parseSdpfrag(body: string): Sdpfrag {
  if (typeof body !== 'string') throw new SdpError(0, '', 'sdpfrag body must be a string');
  const text = lowerAttributeNames(body);
  const lines = splitSdpLines(text);
  // Pseudo m= lines carry no meaning (RFC 8840 §4.4): normalise them for the reader, keep the original text.
  const pseudo: string[] = [];
  const normalised = text
    .split(/(\r\n|\r|\n)/)
    .map((l) => {
      if (!l.startsWith('m=')) return l;
      pseudo.push(l.slice(2));
      return `m=${DEFAULT_PSEUDO_MEDIA_LINE}`;
    })
    .join('');
  const d = readIceFragment(normalised);
  const mLines = lines.filter((l) => l.type === 'm');
  const media = d.media.map((m, i) => {
    if (m.mid === undefined) {
      const l = mLines[i]!;
      throw new SdpError(l.number, l.text, 'pseudo m= line without a=mid (RFC 8840 §4.4)');
    }
    return {
      mid: m.mid,
      mediaLine: pseudo[i] ?? DEFAULT_PSEUDO_MEDIA_LINE,
      ...(m.mediaLevel.ufrag !== undefined ? { ufrag: m.mediaLevel.ufrag } : {}),
      ...(m.mediaLevel.pwd !== undefined ? { pwd: m.mediaLevel.pwd } : {}),
      candidates: m.candidates,
      ...(m.ignoredCandidates.length > 0 ? { ignoredCandidates: m.ignoredCandidates } : {}),
      endOfCandidates: m.endOfCandidates,
      ...(m.remoteCandidates !== undefined ? { remoteCandidates: m.remoteCandidates } : {}),
      rtcpMux: m.rtcpMux,
    };
  });
  return {
    ...(d.ufrag !== undefined ? { ufrag: d.ufrag } : {}),
    ...(d.pwd !== undefined ? { pwd: d.pwd } : {}),
    ...(d.options.length > 0 ? { options: d.options } : {}),
    lite: d.lite,
    ...(d.pacingMs !== undefined ? { pacingMs: d.pacingMs } : {}),
    endOfCandidates: d.endOfCandidates,
    bundleGroups: d.bundleGroups,
    media,
  };
}

const need: WriteCheck = (ok, what) => {
  if (!ok) throw new SdpError(0, '', `cannot write sdpfrag: bad ${what}`);
};

/**
 * Writes an `application/trickle-ice-sdpfrag` body (CRLF line ends). Per RFC 8840 §4.4 the `a=mid` line immediately
 * precedes the candidates of its section; media-level credentials and `a=rtcp-mux` come before it.
 */
export function buildSdpfrag(frag: Sdpfrag): string {
  const out: string[] = [];
  if (frag.lite) out.push('a=ice-lite');
  out.push(...credentialLines(frag, need));
  if (frag.pacingMs !== undefined) out.push(pacingLine(frag.pacingMs, need));
  for (const g of frag.bundleGroups) out.push(`a=group:BUNDLE${g.map((t) => ` ${t}`).join('')}`);
  if (frag.endOfCandidates) out.push('a=end-of-candidates');
  for (const m of frag.media) {
    need(/^\S+$/.test(m.mid), `mid "${m.mid}"`);
    need(/^\S+ \d+(\/\d+)? \S+( .*)?$/.test(m.mediaLine), `pseudo m= line "${m.mediaLine}"`);
    out.push(`m=${m.mediaLine}`);
    out.push(...credentialLines({ ufrag: m.ufrag, pwd: m.pwd }, need)); // no media-level ice-options in a body
    if (m.rtcpMux) out.push('a=rtcp-mux');
    out.push(`a=mid:${m.mid}`);
    for (const c of m.candidates) out.push(candidateLine(c));
    out.push(...remoteCandidatesLines(m.remoteCandidates));
    if (m.endOfCandidates) out.push('a=end-of-candidates');
  }
  return out.length === 0 ? '' : `${out.join('\r\n')}\r\n`;
}

/**
 * RFC 8840 §4.4: two candidates are the same trickled candidate when their IP address, port, transport and
 * component ID are equal.
 */
export function sameTrickledCandidate(a: Candidate, b: Candidate): boolean {
  return a.address === b.address && a.port === b.port && a.transport === b.transport && a.component === b.component;
}
