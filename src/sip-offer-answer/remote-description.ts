/**
 * The pure part of applying the peer's offer or answer (RFC 8839 §4): how each stream runs (ICE, mismatch, no ICE,
 * rejected), which streams restart, the changes tolerated without a restart (turned into warnings), the remote
 * candidates known per transport, and the plan an ICE agent needs per transport. `OfferAnswer` keeps the state
 * machine (signaling state, roles) and calls in here.
 *
 * The remote `IceParameters` of a transport (ufrag, pwd, lite, pacing, ice-options) are built in one place,
 * `remoteParameters`, so that an agent fed from SDP sees every value the peer signalled (RFC 8445 §10 needs
 * `ice-options` to decide the nomination).
 * @module
 */
import type { Candidate } from '../candidates/candidate.js';
import type { IceParameters } from '../checklist/types.js';
import { SdpError } from '../errors.js';
import type { IceRole, TransportAddress } from '../types.js';
import {
  ICE2_OPTION,
  TRICKLE_OPTION,
  descriptionHasIce,
  endOfCandidatesFor,
  mediaHasIce,
  readIceDescription,
  transportIndexOf,
  type IceDescription,
  type IceMediaDescription,
  type RemoteCandidateRef,
} from './ice-attributes.js';
import { detectIceMismatch, signalledDestination } from './ice-mismatch.js';

/** Whether the session uses ICE at all. */
export type IceMode = 'ice' | 'none';

/**
 * How one stream runs: `'ice'`; `'mismatch'` (both sides speak ICE but the default destination was rewritten, RFC
 * 8839 §4.2.5, or the answer said `a=ice-mismatch`: plain RFC 3264 towards the signalled address); `'none'` (the
 * peer does not speak ICE for it: send to the signalled address and latch, symmetric RTP / COMEDIA); `'rejected'`
 * (port 0).
 */
export type StreamIceMode = 'ice' | 'mismatch' | 'none' | 'rejected';

/** What the peer said about one `m=` section. */
export interface RemoteStream {
  /** `m=` index. */
  readonly index: number;
  readonly mid?: string;
  /** Index of the `m=` section owning the transport (BUNDLE); equals `index` without BUNDLE. */
  readonly transportIndex: number;
  readonly mode: StreamIceMode;
  readonly ufrag?: string;
  readonly pwd?: string;
  /** The peer's candidates (empty unless `mode` is `'ice'`). */
  readonly candidates: readonly Candidate[];
  /** Candidates not known from earlier descriptions or trickle bodies of the same ICE generation. */
  readonly newCandidates: readonly Candidate[];
  /** The peer signalled end-of-candidates (media or session level). */
  readonly endOfCandidates: boolean;
  /** `c=`/`m=`: where to send RTP without ICE (or the peer's default destination). */
  readonly defaultRtp?: TransportAddress;
  /** `a=rtcp` (or RTP port + 1 when implied); undefined with rtcp-mux. */
  readonly defaultRtcp?: TransportAddress;
  readonly rtcpMux: boolean;
  /** The peer changed this stream's credentials: an ICE restart (RFC 8839 §4.4.1.1.1). */
  readonly restart: boolean;
  /** `a=remote-candidates` from a controlling peer that completed (RFC 8839 §4.4.1.2.2). */
  readonly remoteCandidates?: readonly RemoteCandidateRef[];
  /** Effective `ice-options` include `ice2`. */
  readonly ice2: boolean;
  /** Effective `ice-options` include `trickle`. */
  readonly trickle: boolean;
}

/** Result of `setRemoteDescription`. */
export interface RemoteDescriptionResult {
  readonly type: 'offer' | 'answer';
  readonly iceMode: IceMode;
  /** The peer is a lite implementation. */
  readonly remoteLite: boolean;
  /** The local role after this description (RFC 8445 §6.1.1). */
  readonly role: IceRole;
  /** The local role changed because of this description (RFC 8839 §4.4.2.2). */
  readonly roleChanged: boolean;
  /** At least one stream restarted. */
  readonly restart: boolean;
  /** The peer's `a=ice-pacing` (undefined when absent). */
  readonly remotePacingMs?: number;
  /** Ta to use: the larger of both proposals, 50 ms standing for an absent one (RFC 8839 §5.5). */
  readonly pacingMs: number;
  readonly streams: readonly RemoteStream[];
  /**
   * The ICE view of the description as applied. When an offer changed `ice-options` or `ice-pacing` without a
   * restart, it carries the values kept from the running ICE session (see `warnings`).
   */
  readonly description: IceDescription;
  /** Tolerated deviations of the peer, in words (e.g. ice-options changed without a restart); empty normally. */
  readonly warnings: readonly string[];
}

/** One remote transport as the ICE agent needs it (see `OfferAnswer.transports`). */
export interface IceTransportPlan {
  /** Index of the `m=` section owning the transport. */
  readonly transportIndex: number;
  /** Mids of the `m=` sections using it (several with BUNDLE). */
  readonly mids: readonly string[];
  readonly mode: StreamIceMode;
  /** 1 (RTP/RTCP multiplexed, or not RTP) or 2. */
  readonly components: number;
  readonly remoteUfrag?: string;
  readonly remotePwd?: string;
  /**
   * The peer's ICE parameters for this transport, as an agent's `setRemoteParameters` takes them: credentials,
   * lite, the `a=ice-pacing` proposal and the effective `ice-options`. Absent when the peer signalled no credentials.
   */
  readonly remote?: IceParameters;
  /** Remote candidates known so far (description and trickle), in order. */
  readonly remoteCandidates: readonly Candidate[];
  /** The peer signalled end-of-candidates for this transport in the current generation. */
  readonly remoteEndOfCandidates: boolean;
  /** Where to send without ICE (`mode` `'none'` or `'mismatch'`): `c=`/`m=`, and `a=rtcp` or port + 1. */
  readonly defaultRtp?: TransportAddress;
  readonly defaultRtcp?: TransportAddress;
  /** The last remote description restarted ICE on this transport. */
  readonly restart: boolean;
}

/** Identity of a stream across descriptions: its mid, else its index. */
export function streamKey(m: { readonly mid?: string; readonly index: number }): string {
  return m.mid !== undefined ? `mid:${m.mid}` : `idx:${m.index}`;
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  const x = [...a].sort();
  const y = [...b].sort();
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

/** Identity of a trickled candidate as `sameTrickledCandidate` defines it (RFC 8840 §4.4); the address goes last. */
function trickleKey(c: Candidate): string {
  return `${c.component}|${c.transport}|${c.port}|${c.address}`;
}

/**
 * The remote candidates known per remote transport (descriptions and trickle bodies of the current ICE generation),
 * de-duplicated as RFC 8840 §4.4 says, and which transports the peer declared complete.
 */
export class RemoteCandidateStore {
  readonly #known = new Map<number, Candidate[]>();
  readonly #complete = new Set<number>();

  /** Known candidates of a transport, in received order. */
  candidates(transportIndex: number): readonly Candidate[] {
    return this.#known.get(transportIndex) ?? [];
  }

  /** Adds candidates not known yet (nor repeated within `candidates`); returns those, in order. */
  add(transportIndex: number, candidates: readonly Candidate[]): Candidate[] {
    const known = this.#known.get(transportIndex) ?? [];
    // A key set, not pairwise `sameTrickledCandidate` scans: quadratic in a hostile description's candidate count.
    const seen = new Set(known.map(trickleKey));
    const fresh: Candidate[] = [];
    for (const c of candidates) {
      const k = trickleKey(c);
      if (seen.has(k)) continue;
      seen.add(k);
      fresh.push(c);
    }
    this.#known.set(transportIndex, known.concat(fresh));
    return fresh;
  }

  /** The peer signalled end-of-candidates for the transport. */
  isComplete(transportIndex: number): boolean {
    return this.#complete.has(transportIndex);
  }

  markComplete(transportIndex: number): void {
    this.#complete.add(transportIndex);
  }

  /** A new generation (restart) or no ICE any more: forget the transport's candidates and completeness. */
  reset(transportIndex: number): void {
    this.#known.delete(transportIndex);
    this.#complete.delete(transportIndex);
  }
}

/** One stream of a remote description before the candidates are booked. */
interface StreamDraft {
  m: IceMediaDescription;
  mode: StreamIceMode;
  readonly restart: boolean;
}

/** A remote description read and judged, before the session's state changes. */
export interface RemoteAnalysis {
  /** The description as applied (values kept from the running session where the peer changed them, see warnings). */
  readonly description: IceDescription;
  readonly drafts: readonly StreamDraft[];
  readonly restart: boolean;
  readonly iceMode: IceMode;
  /** The previous remote description used ICE (RFC 8839 §4.4.3.1 acts when an answer drops it). */
  readonly hadIce: boolean;
  readonly warnings: readonly string[];
}

/** What `analyseRemoteDescription` needs from the running session. */
export interface RemoteContext {
  /** The pending local offer, when the description is its answer. */
  readonly offer?: IceDescription;
  /** The last remote description applied. */
  readonly previous?: IceDescription;
  /** Remote credentials per `streamKey`, for restart detection. */
  readonly credentials: ReadonlyMap<string, { readonly ufrag: string; readonly pwd: string }>;
}

/**
 * Reads the peer's SDP and decides each stream's mode and restart. Throws `SdpError` for bad SDP, for an answer
 * whose `m=` count differs from the offer's, and for an offer that changes `ice-lite` without restarting.
 */
export function analyseRemoteDescription(sdp: string, type: 'offer' | 'answer', ctx: RemoteContext): RemoteAnalysis {
  const d = readIceDescription(sdp);
  if (ctx.offer && ctx.offer.media.length !== d.media.length) {
    throw new SdpError(0, '', `the answer has ${d.media.length} m= sections, the offer ${ctx.offer.media.length} (RFC 3264 §6 requires the same number)`);
  }
  // RFC 3264 §8: a new offer MUST NOT have fewer m= lines than the previous description (sections are disabled with
  // port 0, never removed), so a re-offer without m= sections is an error, not a session with nothing left.
  if (type === 'offer' && ctx.previous && d.media.length < ctx.previous.media.length) {
    throw new SdpError(0, '', `the offer has ${d.media.length} m= sections, fewer than the ${ctx.previous.media.length} of the previous description (RFC 3264 §8)`);
  }
  let restart = false;
  let offererSawMismatch = false;
  const drafts: StreamDraft[] = d.media.map((m, i) => {
    const prev = ctx.credentials.get(streamKey(m));
    const r = mediaHasIce(m) && prev !== undefined && (prev.ufrag !== m.ufrag || prev.pwd !== m.pwd);
    if (r) restart = true;
    let mode: StreamIceMode;
    if (m.port === 0 && !m.bundleOnly) mode = 'rejected';
    else if (!mediaHasIce(m)) mode = 'none';
    else if (type === 'answer' && m.iceMismatch) mode = 'mismatch';
    else if (detectIceMismatch(d, i).mismatch) {
      mode = 'mismatch';
      if (type === 'answer') offererSawMismatch = true;
    } else mode = 'ice';
    return { m, mode, restart: r };
  });
  // RFC 8839 §4.3.3: an offerer that detects a mismatch in the answer terminates ICE for the whole session.
  if (offererSawMismatch) for (const x of drafts) if (x.mode === 'ice') x.mode = 'none';

  const hadIce = ctx.previous !== undefined && descriptionHasIce(ctx.previous);
  const kept = type === 'offer' && ctx.previous && !restart && descriptionHasIce(d) && hadIce ? keepRunningValues(ctx.previous, d) : undefined;
  if (kept && kept.warnings.length > 0) for (const x of drafts) x.m = kept.description.media[x.m.index]!;
  return {
    description: kept?.description ?? d,
    drafts,
    restart,
    iceMode: drafts.some((x) => x.mode === 'ice') ? 'ice' : 'none',
    hadIce,
    warnings: kept?.warnings ?? [],
  };
}

/**
 * RFC 8839 §4.4.2.1: without a restart, ice-options, ice-pacing and ice-lite must not change, and the answerer MUST
 * reject an offer that changes them. Deviation (docs/deviations.md): real SIP stacks change ice-options in re-offers
 * that keep ufrag/pwd (pjproject writes `ice-options:trickle` in its initial offer only), so a changed ice-options
 * or ice-pacing is accepted with a warning and the values of the running ICE session are kept. A changed ice-lite
 * would change the roles and is still rejected.
 */
function keepRunningValues(p: IceDescription, d: IceDescription): { description: IceDescription; warnings: string[] } {
  if (p.lite !== d.lite) throw new SdpError(0, '', 'ice-lite changed in an offer that does not restart ICE (RFC 8839 §4.4.2.1)');
  const warnings: string[] = [];
  if (p.pacingMs !== d.pacingMs) {
    warnings.push(`ice-pacing changed from ${p.pacingMs ?? 'none'} to ${d.pacingMs ?? 'none'} without an ICE restart (RFC 8839 §4.4.2.1): keeping ${p.pacingMs ?? 'none'}`);
  }
  const previous = new Map<string, IceMediaDescription>();
  for (const x of p.media) if (!previous.has(streamKey(x))) previous.set(streamKey(x), x);
  const media = d.media.map((m) => {
    const old = previous.get(streamKey(m));
    if (old === undefined || !mediaHasIce(old) || !mediaHasIce(m) || sameSet(old.options, m.options)) return m;
    warnings.push(
      `ice-options of m-section ${m.index} changed from "${old.options.join(' ')}" to "${m.options.join(' ')}" without an ICE restart (RFC 8839 §4.4.2.1): keeping "${old.options.join(' ')}"`,
    );
    return { ...m, options: old.options };
  });
  if (warnings.length === 0) return { description: d, warnings };
  const { pacingMs: _dropped, ...rest } = d;
  const options = sameSet(p.options, d.options) ? d.options : p.options;
  return { description: { ...rest, ...(p.pacingMs !== undefined ? { pacingMs: p.pacingMs } : {}), options, media }, warnings };
}

/**
 * The streams of an analysed description, with their candidates booked in `store`: a restarted stream, or one that
 * no longer runs ICE, starts a new generation of its transport (once per transport, BUNDLE sharing one).
 */
export function bookRemoteStreams(a: RemoteAnalysis, store: RemoteCandidateStore): RemoteStream[] {
  const d = a.description;
  const reset = new Set<number>();
  return a.drafts.map(({ m, mode, restart }, i) => {
    const ti = transportIndexOf(d, i);
    const dest = signalledDestination(m);
    const ice = mode === 'ice';
    if ((restart || !ice) && !reset.has(ti)) {
      store.reset(ti);
      reset.add(ti);
    }
    if (ice && endOfCandidatesFor(d, m)) store.markComplete(ti);
    const fresh = ice ? store.add(ti, m.candidates) : [];
    return {
      index: i,
      ...(m.mid !== undefined ? { mid: m.mid } : {}),
      transportIndex: ti,
      mode,
      ...(m.ufrag !== undefined ? { ufrag: m.ufrag } : {}),
      ...(m.pwd !== undefined ? { pwd: m.pwd } : {}),
      candidates: ice ? m.candidates : [],
      newCandidates: fresh,
      endOfCandidates: endOfCandidatesFor(d, m),
      ...(dest.rtp !== undefined ? { defaultRtp: dest.rtp } : {}),
      ...(dest.rtcp !== undefined ? { defaultRtcp: dest.rtcp } : {}),
      rtcpMux: m.rtcpMux,
      restart,
      ...(m.remoteCandidates !== undefined ? { remoteCandidates: m.remoteCandidates } : {}),
      ice2: m.options.includes(ICE2_OPTION),
      trickle: m.options.includes(TRICKLE_OPTION),
    };
  });
}

/**
 * The peer's ICE parameters for `m`, the one place they are assembled: effective credentials and `ice-options` of
 * the section, session-level `ice-lite` and `ice-pacing` (RFC 8839 §5.3, §5.5). Undefined without credentials.
 */
export function remoteParameters(d: IceDescription, m: IceMediaDescription): IceParameters | undefined {
  if (m.ufrag === undefined || m.pwd === undefined) return undefined;
  return { ufrag: m.ufrag, pwd: m.pwd, lite: d.lite, ...(d.pacingMs !== undefined ? { pacingMs: d.pacingMs } : {}), options: m.options };
}

/**
 * One plan per remote transport of `r`. `components` is 1 when both sides multiplex RTCP (or the stream is not RTP),
 * else 2 (RFC 8839 §4.2.2).
 */
export function transportPlans(r: RemoteDescriptionResult, local: IceDescription | undefined, store: RemoteCandidateStore): IceTransportPlan[] {
  const out: IceTransportPlan[] = [];
  // Grouped once: a filter per stream was quadratic in the m-section count of the peer's description.
  const byTransport = new Map<number, RemoteStream[]>();
  for (const x of r.streams) {
    const list = byTransport.get(x.transportIndex);
    if (list) list.push(x);
    else byTransport.set(x.transportIndex, [x]);
  }
  for (const st of r.streams) {
    if (st.transportIndex !== st.index) continue;
    const members = byTransport.get(st.index) ?? [];
    const l = local?.media[st.index];
    const m = r.description.media[st.index]!;
    const rtp = /RTP/i.test(m.protocol);
    const remote = remoteParameters(r.description, m);
    // RFC 5761 §5.1.1: RTCP is multiplexed when both sides say rtcp-mux. RFC 8858 §4: after our rtcp-mux-only the
    // peer must accept or reject the stream; one that answers without mux gets RTCP on the RTP component still.
    const components = !rtp || (l?.rtcpMuxOnly ?? false) || (st.rtcpMux && (l?.rtcpMux ?? true)) ? 1 : 2;
    // RFC 3605 / RFC 3550 §11: a peer that offered mux but was declined has RTCP at its a=rtcp, else RTP port + 1.
    const defaultRtcp = components === 2 && st.defaultRtcp === undefined && st.defaultRtp !== undefined ? { address: st.defaultRtp.address, port: st.defaultRtp.port + 1 } : st.defaultRtcp;
    out.push({
      transportIndex: st.index,
      mids: members.flatMap((x) => (x.mid !== undefined ? [x.mid] : [])),
      mode: st.mode,
      components,
      ...(remote !== undefined ? { remoteUfrag: remote.ufrag, remotePwd: remote.pwd, remote } : {}),
      remoteCandidates: st.mode === 'ice' ? store.candidates(st.index) : [],
      remoteEndOfCandidates: store.isComplete(st.index),
      ...(st.defaultRtp !== undefined ? { defaultRtp: st.defaultRtp } : {}),
      ...(defaultRtcp !== undefined ? { defaultRtcp } : {}),
      restart: st.restart,
    });
  }
  return out;
}
