/**
 * WebRTC interop: the W3C `RTCIceCandidateInit` dictionary that browsers trickle over an application's signalling
 * channel, to and from icewire candidates. Browser offers and answers themselves (BUNDLE, `a=mid`, `a=setup`,
 * `ice-options:trickle`, mDNS `.local` host candidates) go through `OfferAnswer` unchanged: `a=setup` and the other
 * DTLS attributes belong to the application's SDP and are kept as the application wrote them.
 * @module
 */
import { arg, is } from '../arguments.js';
import type { Candidate, LocalCandidate } from '../candidates/candidate.js';
import { formatCandidate, parseCandidate } from '../candidates/grammar.js';
import { CandidateParseError } from '../errors.js';
import { toSignalledCandidate } from './default-candidate.js';
import { OfferAnswer, type TrickleResult } from './offer-answer.js';

/** The W3C `RTCIceCandidateInit` dictionary (WebRTC 1.0 §4.8.1), as JSON. */
export interface RTCIceCandidateInit {
  /** `candidate:...` (no `a=`); the empty string signals end-of-candidates. */
  candidate?: string;
  sdpMid?: string | null;
  sdpMLineIndex?: number | null;
  usernameFragment?: string | null;
}

/** Where a trickled candidate belongs. */
export interface CandidateLocation {
  readonly sdpMid?: string;
  readonly sdpMLineIndex?: number;
  readonly usernameFragment?: string;
}

/** An `RTCIceCandidateInit` decoded: a candidate, or the end-of-candidates marker. */
export type TrickledCandidate =
  | ({ readonly kind: 'candidate'; readonly candidate: Candidate } & CandidateLocation)
  | ({ readonly kind: 'end-of-candidates' } & CandidateLocation);

/** Argument rule of a `CandidateLocation` (src/arguments.ts). */
const LOCATION = is.record({ sdpMid: is.optional(is.string), sdpMLineIndex: is.optional(is.int(0, 65535)), usernameFragment: is.optional(is.string) });

function location(init: RTCIceCandidateInit): CandidateLocation {
  return {
    ...(init.sdpMid !== undefined && init.sdpMid !== null ? { sdpMid: init.sdpMid } : {}),
    ...(init.sdpMLineIndex !== undefined && init.sdpMLineIndex !== null ? { sdpMLineIndex: init.sdpMLineIndex } : {}),
    ...(init.usernameFragment !== undefined && init.usernameFragment !== null ? { usernameFragment: init.usernameFragment } : {}),
  };
}

/**
 * Decodes an `RTCIceCandidateInit`. An empty or missing `candidate` is end-of-candidates (what browsers send last).
 * Throws `CandidateParseError` for a bad candidate string, and (field `sdpMid`) when both `sdpMid` and
 * `sdpMLineIndex` are missing for a candidate, which browsers reject with a TypeError.
 */
export function fromRTCIceCandidateInit(init: RTCIceCandidateInit): TrickledCandidate {
  // From JSON signalling anything may arrive: a typed error, not a TypeError, for what is not an object.
  if (typeof init !== 'object' || init === null || Array.isArray(init)) throw new CandidateParseError('candidate', 'not an RTCIceCandidateInit object');
  for (const field of ['sdpMid', 'usernameFragment'] as const) {
    const v: unknown = init[field];
    if (v !== undefined && v !== null && typeof v !== 'string') throw new CandidateParseError(field, 'not a string');
  }
  const loc = location(init);
  if (init.sdpMLineIndex !== undefined && init.sdpMLineIndex !== null && (!Number.isInteger(init.sdpMLineIndex) || init.sdpMLineIndex < 0 || init.sdpMLineIndex > 65535)) {
    throw new CandidateParseError('sdpMLineIndex', `${init.sdpMLineIndex} is not an unsigned short`);
  }
  if (init.candidate === undefined || init.candidate === '') return { kind: 'end-of-candidates', ...loc };
  if (typeof init.candidate !== 'string') throw new CandidateParseError('candidate', 'not a string');
  if (loc.sdpMid === undefined && loc.sdpMLineIndex === undefined) {
    throw new CandidateParseError('sdpMid', 'sdpMid and sdpMLineIndex are both missing');
  }
  return { kind: 'candidate', candidate: parseCandidate(init.candidate), ...loc };
}

/**
 * Encodes a candidate as `RTCIceCandidateInit` (`candidate:...` as browsers write it). A `LocalCandidate` with an
 * mDNS name is written with the name.
 */
export function toRTCIceCandidateInit(candidate: Candidate | LocalCandidate, where: CandidateLocation): RTCIceCandidateInit {
  arg(where, 'where', LOCATION);
  return {
    candidate: formatCandidate(toSignalledCandidate(candidate)),
    sdpMid: where.sdpMid ?? null,
    sdpMLineIndex: where.sdpMLineIndex ?? null,
    ...(where.usernameFragment !== undefined ? { usernameFragment: where.usernameFragment } : {}),
  };
}

/** The end-of-candidates `RTCIceCandidateInit` (empty `candidate` string). */
export function endOfCandidatesInit(where: CandidateLocation): RTCIceCandidateInit {
  arg(where, 'where', LOCATION);
  return {
    candidate: '',
    sdpMid: where.sdpMid ?? null,
    sdpMLineIndex: where.sdpMLineIndex ?? null,
    ...(where.usernameFragment !== undefined ? { usernameFragment: where.usernameFragment } : {}),
  };
}

/**
 * Feeds a browser's trickled `RTCIceCandidateInit` into an `OfferAnswer` session. The ufrag, when present, must
 * match the current remote generation, otherwise the candidate is not accepted.
 */
export function applyRTCIceCandidateInit(session: OfferAnswer, init: RTCIceCandidateInit): TrickleResult {
  arg(session, 'session', is.instance(OfferAnswer));
  const t = fromRTCIceCandidateInit(init);
  const where = {
    ...(t.sdpMid !== undefined ? { mid: t.sdpMid } : {}),
    ...(t.sdpMLineIndex !== undefined ? { index: t.sdpMLineIndex } : {}),
    ...(t.usernameFragment !== undefined ? { ufrag: t.usernameFragment } : {}),
  };
  return t.kind === 'candidate' ? session.addRemoteCandidate(where, t.candidate) : session.addRemoteCandidate(where);
}

/**
 * The local candidates of a session as `RTCIceCandidateInit`s for a browser peer: one per candidate of every
 * transport, placed on the `m=` section that owns the transport, with the local ufrag.
 */
export function localCandidateInits(session: OfferAnswer): RTCIceCandidateInit[] {
  arg(session, 'session', is.instance(OfferAnswer));
  const d = session.localDescription;
  if (!d) return [];
  const out: RTCIceCandidateInit[] = [];
  const seen = new Set<number>();
  for (const m of d.media) {
    if (m.ufrag === undefined || m.port === 0 || m.iceMismatch) continue;
    // Only transport owners: a bundled section's candidates are those of its BUNDLE-tag section.
    const owner = d.bundleGroups.find((g) => m.mid !== undefined && g.includes(m.mid));
    const ownerMid = owner?.find((mid) => d.media.some((x) => x.mid === mid && x.port !== 0));
    if (ownerMid !== undefined && ownerMid !== m.mid) continue;
    if (seen.has(m.index)) continue;
    seen.add(m.index);
    for (const c of session.localCandidates(m.index)) {
      out.push(toRTCIceCandidateInit(c, { ...(m.mid !== undefined ? { sdpMid: m.mid } : {}), sdpMLineIndex: m.index, usernameFragment: m.ufrag }));
    }
  }
  return out;
}
