/**
 * The local side of offer/answer: the local ICE parameters and their rules, fresh credentials, and the local ICE
 * description built on top of the application's SDP (RFC 8839 §4.2 offers, §4.3 answers, §4.4 subsequent ones):
 * credentials and options at the chosen level, default candidates in `c=`/`m=`/`a=rtcp`, candidate lists per
 * BUNDLE policy, `a=ice-mismatch`, and the selected pairs once nominated.
 * @module
 */
import type { Candidate, LocalCandidate } from '../candidates/candidate.js';
import { candidateAddressKind } from '../candidates/grammar.js';
import { InvalidStateError } from '../errors.js';
import { DEFAULT_TA_MS, isPacingValue } from '../stun/pacing.js';
import type { IceRole, RandomSource, TransportAddress } from '../types.js';
import { defaultDestination, transportOfProto, type DefaultDestination } from './default-candidate.js';
import {
  ICE2_OPTION,
  TRICKLE_OPTION,
  isValidIceOption,
  isValidPwd,
  isValidUfrag,
  mediaHasIce,
  transportIndexOf,
  type IceDescription,
  type IceMediaDescription,
  type RemoteCandidateRef,
} from './ice-attributes.js';
import type { RemoteDescriptionResult } from './remote-description.js';
import { DEFAULT_PSEUDO_MEDIA_LINE, type Sdpfrag, type SdpfragMedia, type TrickleMode } from './sdpfrag.js';

/** The local agent's ICE parameters. */
export interface LocalIceParameters {
  /** RFC 8839 §5.4: 4 ice-chars at least and, when sending, 32 at most. */
  readonly ufrag: string;
  /** RFC 8839 §5.4: 22 to 256 ice-chars. */
  readonly pwd: string;
  /** A lite implementation (RFC 8445 §2.5); writes `a=ice-lite` and never `a=ice-pacing`. Default false. */
  readonly lite?: boolean;
  /** Extra `ice-options` tags; `ice2` is written unless `ice2` is false, `trickle` when trickling is on. */
  readonly options?: readonly string[];
  /**
   * Claim RFC 8445 compliance with `ice-options:ice2` (default true). False for an agent that nominates
   * aggressively (RFC 5245 behaviour), which RFC 8445 §10 says an ice2 agent never does.
   */
  readonly ice2?: boolean;
  /** Proposed Ta in ms for `a=ice-pacing` (full agents only). Default 50 (RFC 8839 §5.5). */
  readonly pacingMs?: number;
}

/** ICE credentials (RFC 8445 §5.3). */
export interface IceCredentials {
  readonly ufrag: string;
  readonly pwd: string;
}

/** How bundled `m=` sections get candidates (see the `offer-answer` module documentation). */
export type BundleCandidatePolicy = 'bundle-tag' | 'all';

/** A selected (nominated) pair as the offer/answer layer needs it. */
export interface SelectedPairInfo {
  /** The local candidate of the pair (signalled form, or a `LocalCandidate`). */
  readonly local: Candidate | LocalCandidate;
  /** The remote candidate's transport address. */
  readonly remote: TransportAddress;
}

const MAX_SENT_UFRAG = 32;
const ICE_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/**
 * New random ICE credentials: an 8-character ufrag (48 bits) and a 24-character password (144 bits), above the
 * 24 and 128 bits RFC 8445 §5.3 requires.
 */
export function generateIceCredentials(random: RandomSource): IceCredentials {
  const pick = (n: number) => Array.from(random.bytes(n), (b) => ICE_CHARS[b & 63]!).join('');
  return { ufrag: pick(8), pwd: pick(24) };
}

/** Throws `InvalidStateError` for local parameters the grammar cannot carry (RFC 8839 §5.4, §5.5, §5.6). */
export function validateLocalParameters(p: LocalIceParameters): void {
  if (!isValidUfrag(p.ufrag) || p.ufrag.length > MAX_SENT_UFRAG) {
    throw new InvalidStateError(`local ufrag must be 4 to ${MAX_SENT_UFRAG} ice-chars (RFC 8839 §5.4)`);
  }
  if (!isValidPwd(p.pwd)) throw new InvalidStateError('local pwd must be 22 to 256 ice-chars (RFC 8839 §5.4)');
  for (const o of p.options ?? []) if (!isValidIceOption(o)) throw new InvalidStateError(`bad ice-option "${o}"`);
  if (p.pacingMs !== undefined && !isPacingValue(p.pacingMs)) {
    throw new InvalidStateError('pacingMs must be an integer of 1 to 10 digits (RFC 8839 §5.5)');
  }
}

/** The local Ta proposal written in `a=ice-pacing`: none for a lite agent (RFC 8839 §4.3.1), else 50 by default. */
export function localPacingProposal(p: LocalIceParameters): number | undefined {
  return p.lite ? undefined : (p.pacingMs ?? DEFAULT_TA_MS);
}

/** What the local description is built from: the session's settings and what the agent gathered and selected. */
export interface LocalContext {
  readonly local: LocalIceParameters;
  readonly trickle: TrickleMode;
  readonly bundlePolicy: BundleCandidatePolicy;
  readonly credentialsLevel: 'session' | 'media';
  readonly preferFamily: 4 | 6 | undefined;
  readonly role: IceRole | undefined;
  /** The signalled local candidates of a transport, in order. */
  readonly candidates: (transportIndex: number) => readonly Candidate[];
  /** Selected pairs per transport, then per component. */
  readonly selected: ReadonlyMap<number, ReadonlyMap<number, SelectedPairInfo>>;
  /** Transports whose gathering is complete (`a=end-of-candidates`). */
  readonly endOfCandidates: ReadonlySet<number>;
}

/** A transport's default destination and the candidates its owning section lists. */
interface TransportDefault {
  readonly dest: DefaultDestination;
  readonly candidates: readonly Candidate[];
  readonly remoteCands?: RemoteCandidateRef[];
}

function transportDefault(ctx: LocalContext, ti: number, m: IceMediaDescription, remote: RemoteDescriptionResult | undefined, restart: boolean): TransportDefault {
  const all = ctx.candidates(ti);
  const sel = ctx.selected.get(ti);
  const remoteStream = remote?.streams[ti];
  const remoteKind = remoteStream?.defaultRtp !== undefined ? candidateAddressKind(remoteStream.defaultRtp.address) : undefined;
  const preferFamily = ctx.preferFamily ?? (remoteKind === 'ipv6' ? 6 : 4);
  // RFC 5761 §5.1.3 / RFC 3605: under a=rtcp-mux an RTCP component still gets a=rtcp while it has candidates (an
  // offer's fallback for a peer that declines mux); once mux is in force the component is gone and so is a=rtcp.
  const rtcpMux = m.rtcpMux && !all.some((c) => c.component === 2);
  const placement = { preferFamily, transport: transportOfProto(m.protocol), rtcpMux };
  const rc = remote?.type === 'offer' ? remoteStream?.remoteCandidates : undefined;
  const rcLocals = rc?.map((r) => all.find((c) => c.component === r.component && c.address === r.address && c.port === r.port));
  if (!restart && rc && rcLocals && rcLocals.every((c) => c !== undefined)) {
    // RFC 8839 §4.4.2: answering a remote-candidates offer: the default destination is those candidates.
    const cands = rcLocals as Candidate[];
    return { dest: defaultDestination(cands, placement), candidates: cands };
  }
  if (!restart && sel && sel.has(1) && !(ctx.local.lite ?? false)) {
    // RFC 8839 §4.4.1.2.2: after nomination only the nominated local candidates, and they are the default.
    const comps = [...sel.entries()].sort((a, b) => a[0] - b[0]);
    const rtp = sel.get(1)!.local as Candidate;
    const rtcpSel = sel.get(2)?.local as Candidate | undefined;
    const dest: DefaultDestination = {
      rtp: { address: rtp.address, port: rtp.port },
      rtpCandidate: rtp,
      ...(rtcpSel ? { rtcp: { address: rtcpSel.address, port: rtcpSel.port }, rtcpCandidate: rtcpSel } : {}),
      placeholder: false,
    };
    const controllingOffer = remote === undefined && ctx.role === 'controlling';
    return {
      dest,
      candidates: comps.map(([, p]) => p.local as Candidate),
      ...(controllingOffer ? { remoteCands: comps.map(([component, p]) => ({ component, address: p.remote.address, port: p.remote.port })) } : {}),
    };
  }
  return { dest: defaultDestination(all, placement), candidates: all };
}

/** RFC 8840 §4.1.1: with trickle every m= section carries a=mid; one is added where the application wrote none. */
function withMids(app: IceDescription, trickle: TrickleMode): IceDescription {
  const used = new Set(app.media.flatMap((m) => (m.mid !== undefined ? [m.mid] : [])));
  const media = app.media.map((m) => {
    if (m.mid !== undefined || trickle === 'none') return m;
    let id = String(m.index);
    while (used.has(id)) id = `m${id}`;
    used.add(id);
    return { ...m, mid: id };
  });
  return { ...app, media };
}

/**
 * Builds the local ICE description on top of the application's SDP `app`; `remote` is set when answering, `restart`
 * when this description starts or answers an ICE restart (no selected pairs or remote-candidates carry over).
 */
export function buildLocalDescription(ctx: LocalContext, app: IceDescription, remote: RemoteDescriptionResult | undefined, restart: boolean): IceDescription {
  const { local } = ctx;
  const lite = local.lite ?? false;
  const ice2 = local.ice2 === false ? [] : [ICE2_OPTION];
  const options = [...ice2, ...(ctx.trickle !== 'none' ? [TRICKLE_OPTION] : []), ...(local.options ?? [])].filter((o, i, a) => a.indexOf(o) === i);
  // RFC 8839 §4.3.2: an answer to an offer without ICE carries no ICE attribute at all.
  const noIce = remote !== undefined && remote.iceMode === 'none' && !remote.streams.some((s) => s.mode === 'mismatch');
  const sessionCreds = !noIce && ctx.credentialsLevel === 'session';
  const described = withMids(app, ctx.trickle);

  const defaults = new Map<number, TransportDefault>();
  const media: IceMediaDescription[] = described.media.map((m, i) => {
    const ti = transportIndexOf(described, i);
    const base = {
      index: i,
      kind: m.kind,
      port: m.port,
      protocol: m.protocol,
      formats: m.formats,
      ...(m.mid !== undefined ? { mid: m.mid } : {}),
      options: [] as string[],
      mediaLevel: {},
      candidates: [] as Candidate[],
      ignoredCandidates: [],
      endOfCandidates: false,
      iceMismatch: false,
      ...(m.connection !== undefined ? { connection: m.connection } : {}),
      rtcpMux: m.rtcpMux,
      ...(m.rtcpMuxOnly ? { rtcpMuxOnly: true } : {}),
      bundleOnly: m.bundleOnly,
    } satisfies IceMediaDescription;
    const rs = remote?.streams[i];
    if (m.port === 0 || rs?.mode === 'rejected') return base; // RFC 8839 §4.4.1.1.2: no ICE attributes for a removed stream.
    let own = defaults.get(ti);
    if (own === undefined) {
      own = transportDefault(ctx, ti, m, remote, restart);
      defaults.set(ti, own);
    }
    const { dest } = own;
    const tcpSetup = tcpSetupOf(dest.rtpCandidate);
    const placed = { ...base, connection: dest.rtp.address, port: dest.rtp.port, ...(dest.rtcp !== undefined ? { rtcp: dest.rtcp } : {}), ...(tcpSetup ? { tcpSetup } : {}) };
    if (noIce || rs?.mode === 'none') return placed;
    const creds = {
      ufrag: local.ufrag,
      pwd: local.pwd,
      options,
      mediaLevel: ctx.credentialsLevel === 'media' ? { ufrag: local.ufrag, pwd: local.pwd, options } : {},
    };
    // RFC 8839 §4.2.5 item 1: a=ice-mismatch, and no candidate attributes.
    if (rs?.mode === 'mismatch') return { ...placed, ...creds, iceMismatch: true };
    const listCandidates = ti === i || ctx.bundlePolicy === 'all';
    return {
      ...placed,
      ...creds,
      candidates: listCandidates ? [...own.candidates] : [],
      ...(own.remoteCands !== undefined && listCandidates ? { remoteCandidates: own.remoteCands } : {}),
      endOfCandidates: ctx.endOfCandidates.has(ti),
    };
  });
  const ice = media.some((m) => m.ufrag !== undefined);
  // RFC 8839 §4.2.1.2: the c= line associated with an m= section carries its default. When the application wrote
  // c= at session level only (SIP stacks do, often as 0.0.0.0), that line is the associated one: it takes the first
  // live section's default, and only sections with another default get a c= of their own. (A 0.0.0.0 left at
  // session level reads as the RFC 2543 hold to some peers.)
  const live = media.find((m) => m.port !== 0 && m.connection !== undefined);
  const inherited = app.connection !== undefined && app.media.every((m) => m.connection === app.connection);
  const connection = inherited && live ? live.connection : app.connection;
  const pacingMs = ice ? localPacingProposal(local) : undefined;
  return {
    ...(ice && sessionCreds ? { ufrag: local.ufrag, pwd: local.pwd } : {}),
    options: ice && sessionCreds ? options : [],
    lite: ice && lite,
    // RFC 8839 §4.3.1/§4.3.2: a full agent SHOULD send ice-pacing, a lite one MUST NOT.
    ...(pacingMs !== undefined ? { pacingMs } : {}),
    endOfCandidates: false,
    ...(connection !== undefined ? { connection } : {}),
    bundleGroups: app.bundleGroups,
    media,
  };
}

/**
 * The trickle body (RFC 8840 §4.4) for the local description `local`: one pseudo section per transport (the
 * BUNDLE-tag section, or every section under the `'all'` policy) with every local candidate of the current
 * generation, and the credentials at the level the offer/answer used.
 */
export function localSdpfrag(ctx: LocalContext, local: IceDescription, endOfAllCandidates: boolean): Sdpfrag {
  const creds = { ufrag: ctx.local.ufrag, pwd: ctx.local.pwd };
  const media: SdpfragMedia[] = [];
  for (const m of local.media) {
    const ti = transportIndexOf(local, m.index);
    if (m.mid === undefined || !mediaHasIce(m) || m.iceMismatch) continue;
    if (ti !== m.index && ctx.bundlePolicy === 'bundle-tag') continue;
    media.push({
      mid: m.mid,
      mediaLine: m.port !== 0 ? `${m.kind} ${m.port} ${m.protocol}${m.formats ? ` ${m.formats}` : ''}` : DEFAULT_PSEUDO_MEDIA_LINE,
      ...(ctx.credentialsLevel === 'media' ? creds : {}),
      candidates: ctx.candidates(ti),
      endOfCandidates: ctx.endOfCandidates.has(ti),
      rtcpMux: m.rtcpMux,
    });
  }
  return { ...(ctx.credentialsLevel === 'session' ? creds : {}), lite: false, endOfCandidates: endOfAllCandidates, bundleGroups: [], media };
}

/**
 * RFC 6544 §4.5: a TCP default candidate needs RFC 4145 `a=setup` as if ICE were not in use: a peer without ICE
 * connects to a passive default (`passive`), an active default connects out (`active`), a simultaneous-open one
 * may do either (`actpass`).
 */
function tcpSetupOf(c: Candidate | undefined): 'active' | 'passive' | 'actpass' | undefined {
  if (c === undefined || c.transport !== 'tcp') return undefined;
  return c.tcpType === 'active' ? 'active' : c.tcpType === 'so' ? 'actpass' : 'passive';
}
