/**
 * `icewire/sdp-transform`: ICE values to and from `sdp-transform`'s parsed objects, for applications that hold SDP
 * as those objects (the mediasoup family of Node media servers).
 *
 * icewire reads and writes SDP text itself (`readIceDescription`, `OfferAnswer`); this module is the bridge:
 *
 * - {@link iceFromSdpTransform}: the ICE view (`IceDescription`) of a parsed `SessionDescription`, by the very
 *   reader and rules `OfferAnswer` applies to text, so both ways in accept and refuse the same descriptions.
 * - {@link iceIntoSdpTransform}: a copy of a `SessionDescription` carrying icewire's ICE values (e.g.
 *   `OfferAnswer.localDescription` after `createOffer`): credentials, options, pacing, lite, candidates,
 *   end-of-candidates, `remote-candidates`, `ice-mismatch`, and the default candidate in `c=`/`m=`/`a=rtcp`.
 * - {@link parseSdpTransform} / {@link writeSdpTransform}: `sdp-transform`'s `parse` and `write`, with what its
 *   parser loses of ICE put back, and without its writer's side effects on the object.
 *
 * What `sdp-transform` cannot carry, and how it is handled:
 * - `a=ice-options:trickle ice2`: its parser keeps the first tag only (`iceOptions: 'trickle'`), so the `ice2` of
 *   RFC 8445 would vanish. `parseSdpTransform` puts the whole tag list back (`iceOptions: 'trickle ice2'`), which its
 *   writer writes out whole. An object from its plain `parse` has lost the tags for good.
 * - `a=ice-pacing`, `a=ice-mismatch`: it has no field for them; they are kept as `invalid` entries
 *   (`{ value: 'ice-pacing:50' }`), which its parser produces and its writer writes, and read from there.
 * - Several `a=remote-candidates` lines: its parser keeps the last; `parseSdpTransform` joins them.
 * - Candidate extensions: its grammar has `generation`, `network-id` and `network-cost`, written in that order.
 *   Other extensions (e.g. `ufrag`) are dropped by its parser and cannot be written into its candidate records.
 * - Line numbers: errors of `iceFromSdpTransform` name lines of `writeSdpTransform(session)`, the text the object
 *   stands for (its own order, not the order of the text it was parsed from).
 *
 * `sdp-transform` is a dependency of this entry point only: `import('icewire')` never loads it.
 * @module
 */
import { parse as sdpParse, write as sdpWrite, type MediaDescription, type SessionDescription } from 'sdp-transform';
import type { Candidate } from '../candidates/candidate.js';
import { formatCandidate } from '../candidates/grammar.js';
import { arg, is } from '../arguments.js';
import { ipFamily } from '../ip.js';
import { readIceDescription, type IceDescription, type IceMediaDescription } from './ice-attributes.js';
import { splitSdpLines } from './sdp-lines.js';

export type { MediaDescription, SessionDescription } from 'sdp-transform';

/** A `SessionDescription` is a record with a `media` list (what `sdp-transform`'s `parse` returns). */
const SESSION = is.record({ media: is.array(is.record()) });

/** An sdp-transform candidate record. */
type SdpTransformCandidate = NonNullable<MediaDescription['candidates']>[number];

/** Copies the session and each media record one level deep: every field this module or the writer sets is a copy. */
function copy(session: SessionDescription): SessionDescription {
  return { ...session, media: session.media.map((m) => ({ ...m })) };
}

/**
 * Parses SDP text with `sdp-transform`, then restores the ICE values its grammar loses: the full `ice-options` tag
 * list (it keeps only the first tag, losing `ice2`) and every `a=remote-candidates` line (it keeps the last).
 * Throws `SdpError` for text that is not `<type>=<value>` lines.
 */
export function parseSdpTransform(text: string): SessionDescription {
  arg(text, 'text', is.string);
  const lines = splitSdpLines(text);
  const session = sdpParse(text);
  let level: { iceOptions?: string; remoteCandidates?: string } = session;
  let mIndex = -1;
  const remote = new Map<object, string[]>();
  for (const l of lines) {
    if (l.type === 'm') level = session.media[++mIndex] ?? level;
    if (l.type !== 'a') continue;
    if (l.value.startsWith('ice-options:')) level.iceOptions = l.value.slice('ice-options:'.length).trim();
    else if (l.value.startsWith('remote-candidates:')) {
      const list = remote.get(level) ?? [];
      list.push(l.value.slice('remote-candidates:'.length).trim());
      remote.set(level, list);
    }
  }
  for (const [where, list] of remote) (where as { remoteCandidates?: string }).remoteCandidates = list.join(' ');
  return session;
}

/** `sdp-transform`'s `write`, on a copy: its writer fills in `version`, `name` and `payloads` on the object it gets. */
export function writeSdpTransform(session: SessionDescription): string {
  arg(session, 'session', SESSION);
  return sdpWrite(copy(session));
}

/**
 * The ICE view of a parsed description, as `readIceDescription` gives it for text: the same attributes, the same
 * checks (RFC 8839 §5, RFC 8866 §5), the same `SdpError`s. It reads the text `writeSdpTransform(session)` gives, so
 * the rules stay in one reader; line numbers in errors and in `ignoredCandidates` are of that text.
 */
export function iceFromSdpTransform(session: SessionDescription): IceDescription {
  arg(session, 'session', SESSION);
  return readIceDescription(sdpWrite(copy(session)));
}

/** `invalid` entries (attributes sdp-transform has no field for) without those named `names`. */
function otherInvalid(invalid: readonly { value: string }[] | undefined, names: readonly string[]): { value: string }[] {
  return (invalid ?? []).filter((x) => !names.some((n) => x.value === n || x.value.startsWith(`${n}:`)));
}

/** Sets `key` to `value` on `o`, or removes it for undefined (sdp-transform writes every present field). */
function put<T extends object, K extends keyof T>(o: T, key: K, value: T[K] | undefined): void {
  if (value === undefined) delete o[key];
  else o[key] = value;
}

/** An icewire candidate as an sdp-transform record: the fields its grammar has (see the module notes). */
function toRecord(c: Candidate): SdpTransformCandidate {
  formatCandidate(c); // validates the record (CandidateParseError) before anything is written
  const rec: SdpTransformCandidate = {
    foundation: c.foundation,
    component: c.component,
    transport: c.transportText ?? c.transport,
    priority: c.priority,
    ip: c.address,
    port: c.port,
    type: c.type,
  };
  if (c.relatedAddress !== undefined && c.relatedPort !== undefined) {
    rec.raddr = c.relatedAddress;
    rec.rport = c.relatedPort;
  }
  if (c.tcpType !== undefined) rec.tcptype = c.tcpType;
  for (const [name, value] of c.extensions ?? []) {
    if (!/^\d{1,15}$/.test(value)) continue;
    if (name === 'generation') rec.generation = Number(value);
    else if (name === 'network-id') rec['network-id'] = Number(value);
    else if (name === 'network-cost') rec['network-cost'] = Number(value);
  }
  return rec;
}

function connection(address: string): { version: number; ip: string } {
  return { version: ipFamily(address) === 6 ? 6 : 4, ip: address };
}

/**
 * A copy of `session` carrying the ICE values of `ice` (for instance `OfferAnswer.localDescription` after
 * `createOffer`/`createAnswer`), at the level `ice` has them: session-level credentials, options, `ice-lite`,
 * `ice-pacing` and end-of-candidates; per `m=` section the media-level credentials and options, candidates,
 * end-of-candidates, `remote-candidates`, `ice-mismatch`, the default candidate (`m=` port, `c=`, `a=rtcp`), `a=mid`,
 * `a=rtcp-mux`, `a=bundle-only`, and the BUNDLE groups. Everything else of `session` is kept as it is. The
 * `m=` sections must match one to one (`SdpError` otherwise would come later from the peer: it throws
 * `IceArgumentError` now).
 */
export function iceIntoSdpTransform(session: SessionDescription, ice: IceDescription): SessionDescription {
  arg(session, 'session', SESSION);
  arg(ice, 'ice', is.record({ options: is.array(is.string), media: is.array(is.record()) }));
  if (session.media.length !== ice.media.length) {
    arg(session.media.length, 'session.media.length', is.int(ice.media.length, ice.media.length));
  }
  const out = copy(session);
  put(out, 'iceUfrag', ice.ufrag);
  put(out, 'icePwd', ice.pwd);
  put(out, 'iceOptions', ice.options.length > 0 ? ice.options.join(' ') : undefined);
  put(out, 'icelite', ice.lite ? 'ice-lite' : undefined);
  const sessionInvalid = otherInvalid(out.invalid, ['ice-pacing']);
  if (ice.pacingMs !== undefined) sessionInvalid.push({ value: `ice-pacing:${ice.pacingMs}` });
  put(out, 'invalid', sessionInvalid.length > 0 ? sessionInvalid : undefined);
  // sdp-transform's session type has no end-of-candidates, but its parser and writer treat a= alike at both levels.
  put(out as { endOfCandidates?: 'end-of-candidates' }, 'endOfCandidates', ice.endOfCandidates ? 'end-of-candidates' : undefined);
  put(out, 'connection', ice.connection !== undefined ? connection(ice.connection) : out.connection);
  const otherGroups = (out.groups ?? []).filter((g) => g.type.toUpperCase() !== 'BUNDLE');
  const groups = [...otherGroups, ...ice.bundleGroups.map((mids) => ({ type: 'BUNDLE', mids: mids.join(' ') }))];
  put(out, 'groups', groups.length > 0 ? groups : undefined);
  out.media = out.media.map((m, i) => writeMedia(m, ice.media[i]!, ice));
  return out;
}

function writeMedia(m: MediaDescription, im: IceMediaDescription, ice: IceDescription): MediaDescription {
  put(m, 'iceUfrag', im.mediaLevel.ufrag);
  put(m, 'icePwd', im.mediaLevel.pwd);
  put(m, 'iceOptions', im.mediaLevel.options !== undefined ? im.mediaLevel.options.join(' ') : undefined);
  put(m, 'candidates', im.candidates.length > 0 ? im.candidates.map(toRecord) : undefined);
  put(m, 'endOfCandidates', im.endOfCandidates ? 'end-of-candidates' : undefined);
  put(m, 'remoteCandidates', im.remoteCandidates !== undefined && im.remoteCandidates.length > 0 ? im.remoteCandidates.map((r) => `${r.component} ${r.address} ${r.port}`).join(' ') : undefined);
  const invalid = otherInvalid(m.invalid, ['ice-mismatch']);
  if (im.iceMismatch) invalid.push({ value: 'ice-mismatch' });
  put(m, 'invalid', invalid.length > 0 ? invalid : undefined);
  m.port = im.port;
  // A media-level c= equal to the session-level one is redundant (as icewire's own writer drops it).
  if (im.connection !== undefined && im.connection !== ice.connection) m.connection = connection(im.connection);
  else if (ice.connection !== undefined) delete m.connection;
  if (im.rtcp !== undefined) m.rtcp = { port: im.rtcp.port, netType: 'IN', ipVer: ipFamily(im.rtcp.address) === 6 ? 6 : 4, address: im.rtcp.address };
  else delete m.rtcp;
  put(m, 'mid', im.mid);
  const muxOnly = (m.invalid ?? []).some((x) => x.value === 'rtcp-mux-only');
  if (im.rtcpMux && m.rtcpMux === undefined && !muxOnly) m.rtcpMux = 'rtcp-mux';
  if (im.bundleOnly) m.bundleOnly = 'bundle-only';
  return m;
}
