/**
 * `OfferAnswer`: the ICE side of SDP offer/answer (RFC 8839 §4, with Trickle ICE for SIP, RFC 8840). Pure: it works
 * on plain values (local ICE parameters and candidates, the selected pairs) and on the application's SDP text; it
 * never touches a socket or an agent. The application (or the Node convenience layer) feeds it what the agent
 * gathered and selected, and reads back what the agent needs: the role, the remote credentials and candidates per
 * transport, restarts, the pacing, and which streams run without ICE and towards which address.
 *
 * Transports and BUNDLE: a transport is identified by the index of the `m=` section that owns it. Without BUNDLE
 * each `m=` section owns its transport. With BUNDLE (RFC 8843) every bundled `m=` section uses the transport of its
 * group's first mid that is not rejected (the BUNDLE-tag section). Local candidates are given per transport index.
 * With `bundleCandidates: 'bundle-tag'` (default, what browsers do with max-bundle) candidates are written only in
 * the BUNDLE-tag section and the other bundled sections carry the same `c=`/`m=` default and credentials; with
 * `'all'` every bundled section repeats the candidates.
 * @module
 */
import type { Candidate, LocalCandidate } from '../candidates/candidate.js';
import { candidateAddressKind } from '../candidates/grammar.js';
import { InvalidStateError, SdpError } from '../errors.js';
import type { IceRole, RandomSource, TransportAddress } from '../types.js';
import { defaultDestination, toSignalledCandidate, transportOfProto, type DefaultDestination } from './default-candidate.js';
import {
  DEFAULT_ICE_PACING_MS,
  ICE2_OPTION,
  TRICKLE_OPTION,
  descriptionHasIce,
  endOfCandidatesFor,
  isValidIceOption,
  isValidPwd,
  isValidUfrag,
  mediaHasIce,
  readIceDescription,
  transportIndexOf,
  type IceDescription,
  type IceMediaDescription,
  type RemoteCandidateRef,
} from './ice-attributes.js';
import { detectIceMismatch, signalledDestination } from './ice-mismatch.js';
import { writeIceDescription } from './ice-writer.js';
import {
  DEFAULT_PSEUDO_MEDIA_LINE,
  buildSdpfrag,
  parseSdpfrag,
  sameTrickledCandidate,
  type Sdpfrag,
  type SdpfragMedia,
  type TrickleMode,
} from './sdpfrag.js';

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

/** How bundled `m=` sections get candidates (see the module documentation). */
export type BundleCandidatePolicy = 'bundle-tag' | 'all';

/** Options of an `OfferAnswer` session. */
export interface OfferAnswerOptions {
  readonly local: LocalIceParameters;
  /** Trickle mode. `'none'` (default) omits `ice-options:trickle`. */
  readonly trickle?: TrickleMode;
  /** Default `'bundle-tag'`. */
  readonly bundleCandidates?: BundleCandidatePolicy;
  /** Where the local credentials are written. Default `'session'`. */
  readonly credentialsLevel?: 'session' | 'media';
  /**
   * Family of the default candidate (RFC 8445 §5.2). Default: in an answer, the family of the offer's `c=` for that
   * stream (an IPv6-only SIP peer without ICE cannot use an IPv4 default); otherwise 4.
   */
  readonly preferFamily?: 4 | 6;
  /** Source of new credentials for ICE restarts that the session starts by itself (answering a restart). */
  readonly random?: RandomSource;
}

/** Offer/answer state (RFC 3264; names as in JSEP). */
export type SignalingState = 'stable' | 'have-local-offer' | 'have-remote-offer';

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

/** A selected (nominated) pair as the offer/answer layer needs it. */
export interface SelectedPairInfo {
  /** The local candidate of the pair (signalled form, or a `LocalCandidate`). */
  readonly local: Candidate | LocalCandidate;
  /** The remote candidate's transport address. */
  readonly remote: TransportAddress;
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

/** Result of `applyRemoteSdpfrag` / `addRemoteCandidate`. */
export interface TrickleResult {
  /** False when the body's credentials are not those of the current generation: it was discarded (RFC 8840 §4.4). */
  readonly accepted: boolean;
  /** Candidates not seen before, in received order, with the transport they belong to. */
  readonly newCandidates: readonly { readonly transportIndex: number; readonly mid?: string; readonly candidate: Candidate }[];
  /** Transports for which the peer signalled end-of-candidates in this body. */
  readonly endOfCandidates: readonly number[];
  /** Session-level end-of-candidates: the peer trickles nothing more at all. */
  readonly endOfAllCandidates: boolean;
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

/** RFC 8445 §6.1.1. */
function decideRole(localLite: boolean, remoteLite: boolean, localIsInitiator: boolean): IceRole {
  if (localLite !== remoteLite) return localLite ? 'controlled' : 'controlling';
  return localIsInitiator ? 'controlling' : 'controlled';
}

function validateLocal(p: LocalIceParameters): void {
  if (!isValidUfrag(p.ufrag) || p.ufrag.length > MAX_SENT_UFRAG) {
    throw new InvalidStateError(`local ufrag must be 4 to ${MAX_SENT_UFRAG} ice-chars (RFC 8839 §5.4)`);
  }
  if (!isValidPwd(p.pwd)) throw new InvalidStateError('local pwd must be 22 to 256 ice-chars (RFC 8839 §5.4)');
  for (const o of p.options ?? []) if (!isValidIceOption(o)) throw new InvalidStateError(`bad ice-option "${o}"`);
  if (p.pacingMs !== undefined && (!Number.isInteger(p.pacingMs) || p.pacingMs < 1 || p.pacingMs > 9_999_999_999)) {
    throw new InvalidStateError('pacingMs must be a positive integer');
  }
}

/** Identity of a trickled candidate as `sameTrickledCandidate` defines it (RFC 8840 §4.4); the address goes last. */
function trickleKey(c: Candidate): string {
  return `${c.component}|${c.transport}|${c.port}|${c.address}`;
}

function streamKey(m: { readonly mid?: string; readonly index: number }): string {
  return m.mid !== undefined ? `mid:${m.mid}` : `idx:${m.index}`;
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  const x = [...a].sort();
  const y = [...b].sort();
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

/**
 * One ICE offer/answer session. Call order follows RFC 3264: `createOffer` then `setRemoteDescription(answer,
 * 'answer')`, or `setRemoteDescription(offer, 'offer')` then `createAnswer`. Between exchanges, feed it local
 * candidates (`setLocalCandidates`/`addLocalCandidate`), the selected pairs (`setSelectedPair`), and trickled remote
 * candidates (`applyRemoteSdpfrag`, or `addRemoteCandidate` for WebRTC JSON).
 */
export class OfferAnswer {
  readonly #trickle: TrickleMode;
  readonly #bundlePolicy: BundleCandidatePolicy;
  readonly #credLevel: 'session' | 'media';
  readonly #preferFamily: 4 | 6 | undefined;
  readonly #random: RandomSource | undefined;
  #local: LocalIceParameters;
  #state: SignalingState = 'stable';
  #role: IceRole | undefined;
  #roleFinal = false;
  #localLiteAtRole = false;
  #iceMode: IceMode | undefined;
  #localRestartPending = false;
  #remoteRestartPending = false;
  #mustRestartOnNextOffer = false;
  #pendingOffer: { readonly desc: IceDescription; readonly restart: boolean } | undefined;
  #localDesc: IceDescription | undefined;
  #remoteDesc: IceDescription | undefined;
  #remoteOffer: IceDescription | undefined;
  #remoteResult: RemoteDescriptionResult | undefined;
  #remoteLite = false;
  readonly #localCandidates = new Map<number, Candidate[]>();
  readonly #localEoc = new Set<number>();
  readonly #selected = new Map<number, Map<number, SelectedPairInfo>>();
  /** Remote credentials per stream key (mid or index), for restart detection. */
  readonly #remoteCreds = new Map<string, { ufrag: string; pwd: string }>();
  /** Known remote candidates per remote transport index (O/A and trickle), for RFC 8840 §4.4 de-duplication. */
  readonly #knownRemote = new Map<number, Candidate[]>();
  /** Remote transports whose candidates are complete (end-of-candidates seen in this generation). */
  readonly #remoteEoc = new Set<number>();

  /** Throws `InvalidStateError` for local parameters the grammar cannot carry (ufrag 4..32, pwd 22..256 ice-chars). */
  constructor(options: OfferAnswerOptions) {
    validateLocal(options.local);
    this.#local = options.local;
    this.#trickle = options.trickle ?? 'none';
    this.#bundlePolicy = options.bundleCandidates ?? 'bundle-tag';
    this.#credLevel = options.credentialsLevel ?? 'session';
    this.#preferFamily = options.preferFamily;
    this.#random = options.random;
  }

  /** Offer/answer state. */
  get signalingState(): SignalingState {
    return this.#state;
  }

  /** Local role: tentative after `createOffer`, final once both descriptions are known; undefined before. */
  get role(): IceRole | undefined {
    return this.#role;
  }

  /** `'ice'` or `'none'` once a remote description was applied; undefined before. */
  get iceMode(): IceMode | undefined {
    return this.#iceMode;
  }

  /** Current local ICE parameters. */
  get localParameters(): LocalIceParameters {
    return this.#local;
  }

  /** The local Ta proposal (undefined for a lite agent, which sends none). */
  get localPacingMs(): number | undefined {
    return this.#local.lite ? undefined : (this.#local.pacingMs ?? DEFAULT_ICE_PACING_MS);
  }

  /** The peer's Ta proposal (undefined when absent or before any remote description). */
  get remotePacingMs(): number | undefined {
    return this.#remoteDesc?.pacingMs;
  }

  /** RFC 8839 §5.5 / RFC 8445 §14.2: both agents use the larger of the two proposals (50 ms for a missing one). */
  get pacingMs(): number {
    return Math.max(this.#local.pacingMs ?? DEFAULT_ICE_PACING_MS, this.#remoteDesc?.pacingMs ?? DEFAULT_ICE_PACING_MS);
  }

  /** The peer announced `a=ice-lite`. */
  get remoteLite(): boolean {
    return this.#remoteLite;
  }

  /** The last local description sent (offer or answer), as ICE values. */
  get localDescription(): IceDescription | undefined {
    return this.#pendingOffer?.desc ?? this.#localDesc;
  }

  /** The last remote description applied. */
  get remoteDescription(): IceDescription | undefined {
    return this.#remoteDesc;
  }

  /** The last `setRemoteDescription` result. */
  get remote(): RemoteDescriptionResult | undefined {
    return this.#remoteResult;
  }

  /** Trickle mode of this session. */
  get trickle(): TrickleMode {
    return this.#trickle;
  }

  /**
   * Trickling is on for this session: the local mode is not `'none'` and the peer's description carried
   * `ice-options:trickle` (RFC 8838 §3, RFC 8840 §4 item 2). Whether the SIP dialog exists yet (RFC 8840 §4.3) is
   * the SIP layer's business.
   */
  get trickleNegotiated(): boolean {
    return this.#trickle !== 'none' && (this.#remoteResult?.streams.some((st) => st.mode === 'ice' && st.trickle) ?? false);
  }

  /**
   * One entry per transport of the last remote description: what an ICE agent needs to run its checklist. Remote
   * candidates include those trickled since (`applyRemoteSdpfrag`, `addRemoteCandidate`). `components` is 1 when
   * both sides multiplex RTCP (or the stream is not RTP), else 2 (RFC 8839 §4.2.2).
   */
  transports(): IceTransportPlan[] {
    const r = this.#remoteResult;
    const local = this.localDescription;
    if (!r) return [];
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
      const rtp = /RTP/i.test(r.description.media[st.index]?.protocol ?? '');
      out.push({
        transportIndex: st.index,
        mids: members.flatMap((x) => (x.mid !== undefined ? [x.mid] : [])),
        mode: st.mode,
        components: !rtp || (st.rtcpMux && (l?.rtcpMux ?? true)) ? 1 : 2,
        ...(st.ufrag !== undefined ? { remoteUfrag: st.ufrag } : {}),
        ...(st.pwd !== undefined ? { remotePwd: st.pwd } : {}),
        remoteCandidates: st.mode === 'ice' ? this.remoteCandidates(st.index) : [],
        remoteEndOfCandidates: this.#remoteEoc.has(st.index),
        ...(st.defaultRtp !== undefined ? { defaultRtp: st.defaultRtp } : {}),
        ...(st.defaultRtcp !== undefined ? { defaultRtcp: st.defaultRtcp } : {}),
        restart: st.restart,
      });
    }
    return out;
  }

  /** True while a local restart is pending (started by `restartIce`, done when its answer is applied/created). */
  get restartPending(): boolean {
    return this.#localRestartPending;
  }

  /** Replaces the local candidates of a transport (given by the index of the `m=` section owning it). */
  setLocalCandidates(transportIndex: number, candidates: readonly (Candidate | LocalCandidate)[]): void {
    this.#localCandidates.set(transportIndex, candidates.map(toSignalledCandidate));
  }

  /**
   * Adds one local candidate to a transport; returns false when the same candidate (address, port, transport,
   * component) is already there. The order of addition is kept (RFC 8840 §4.4: trickled lists only grow at the end).
   */
  addLocalCandidate(transportIndex: number, candidate: Candidate | LocalCandidate): boolean {
    const c = toSignalledCandidate(candidate);
    const list = this.#localCandidates.get(transportIndex) ?? [];
    if (list.some((x) => sameTrickledCandidate(x, c))) return false;
    this.#localCandidates.set(transportIndex, [...list, c]);
    return true;
  }

  /** The signalled local candidates of a transport, in order. */
  localCandidates(transportIndex: number): readonly Candidate[] {
    return this.#localCandidates.get(transportIndex) ?? [];
  }

  /** Marks local gathering of a transport (or of all known transports) as finished: writes `a=end-of-candidates`. */
  setLocalEndOfCandidates(transportIndex?: number): void {
    if (transportIndex !== undefined) this.#localEoc.add(transportIndex);
    else for (const k of this.#transportIndices()) this.#localEoc.add(k);
  }

  /** Known remote candidates of a (remote) transport: from descriptions and trickle bodies. */
  remoteCandidates(transportIndex: number): readonly Candidate[] {
    return this.#knownRemote.get(transportIndex) ?? [];
  }

  /**
   * Records the selected (nominated) pair of one component of a transport. Subsequent offers then put the pair's
   * local candidate in `c=`/`m=` (`a=rtcp` for component 2) and list only those candidates; a controlling agent
   * adds `a=remote-candidates` (RFC 8839 §4.4.1.2.2).
   */
  setSelectedPair(transportIndex: number, component: number, pair: SelectedPairInfo): void {
    const m = this.#selected.get(transportIndex) ?? new Map<number, SelectedPairInfo>();
    m.set(component, { local: toSignalledCandidate(pair.local), remote: pair.remote });
    this.#selected.set(transportIndex, m);
  }

  /** Forgets the selected pairs of a transport (or of all). */
  clearSelectedPairs(transportIndex?: number): void {
    if (transportIndex === undefined) this.#selected.clear();
    else this.#selected.delete(transportIndex);
  }

  /**
   * RFC 8839 §4.3.4: the controlling agent must send an updated offer when a selected pair differs from the default
   * candidate it signalled and the peer did not announce `ice2`. (With `ice2` the alignment waits for the next offer.)
   */
  get updatedOfferNeeded(): boolean {
    if (this.#role !== 'controlling' || this.#iceMode !== 'ice' || !this.#localDesc || !this.#remoteResult) return false;
    for (const [ti, pairs] of this.#selected) {
      const stream = this.#remoteResult.streams[ti];
      const local = this.#localDesc.media[ti];
      const p1 = pairs.get(1);
      if (!stream || !local || !p1 || stream.mode !== 'ice' || stream.ice2) continue;
      if (local.connection !== p1.local.address || local.port !== p1.local.port) return true;
    }
    return false;
  }

  /**
   * Starts an ICE restart (RFC 8839 §4.4.1.1.1): new credentials (given, or drawn from the session's
   * `RandomSource`), and optionally new `lite`/`options`/`pacingMs`, which may only change with a restart. The
   * next `createOffer` (or `createAnswer`) carries them. Selected pairs and end-of-candidates marks are cleared; the
   * local candidates are kept (replace them with `setLocalCandidates` when gathering again).
   */
  restartIce(params?: Partial<LocalIceParameters>): IceCredentials {
    let creds: IceCredentials;
    if (params?.ufrag !== undefined && params.pwd !== undefined) creds = { ufrag: params.ufrag, pwd: params.pwd };
    else if (this.#random) creds = generateIceCredentials(this.#random);
    else throw new InvalidStateError('restartIce needs ufrag and pwd, or a RandomSource in the options');
    if (creds.ufrag === this.#local.ufrag || creds.pwd === this.#local.pwd) {
      throw new InvalidStateError('an ICE restart must change both ufrag and pwd (RFC 8839 §4.4.1.1.1)');
    }
    const next: LocalIceParameters = { ...this.#local, ...params, ...creds };
    validateLocal(next);
    this.#local = next;
    this.#localRestartPending = true;
    this.#mustRestartOnNextOffer = false;
    this.#selected.clear();
    this.#localEoc.clear();
    return creds;
  }

  /**
   * Creates an offer from the application's SDP (its `m=` sections, codecs, DTLS attributes...): ICE attributes,
   * default candidates in `c=`/`m=`/`a=rtcp`, and (with trickle) `a=mid` on every section that lacks one.
   */
  createOffer(appSdp: string): string {
    if (this.#state === 'have-remote-offer') throw new InvalidStateError('cannot create an offer while a remote offer is pending');
    if (this.#mustRestartOnNextOffer && !this.#localRestartPending) {
      // RFC 8839 §4.4.3.1: after an answer that dropped ICE, the next offer restarts ICE.
      if (!this.#random) throw new InvalidStateError('the next offer must restart ICE: call restartIce(credentials) first');
      this.restartIce();
    }
    const app = readIceDescription(appSdp);
    const desc = this.#buildLocal(app, undefined, this.#localRestartPending);
    this.#pendingOffer = { desc, restart: this.#localRestartPending };
    this.#state = 'have-local-offer';
    if (!this.#roleFinal) this.#role = this.#local.lite ? 'controlled' : 'controlling';
    return writeIceDescription(desc, appSdp);
  }

  /** Creates the answer to the pending remote offer from the application's SDP (same number of `m=` sections). */
  createAnswer(appSdp: string): string {
    if (this.#state !== 'have-remote-offer' || !this.#remoteOffer || !this.#remoteResult) {
      throw new InvalidStateError('createAnswer needs a pending remote offer');
    }
    if (this.#remoteRestartPending && !this.#localRestartPending) {
      // RFC 8839 §4.4.2.1: the answer to a restart MUST change ice-ufrag and ice-pwd.
      if (!this.#random) throw new InvalidStateError('the remote offer restarts ICE: call restartIce(credentials) first');
      this.restartIce();
    }
    const app = readIceDescription(appSdp);
    if (app.media.length !== this.#remoteOffer.media.length) {
      throw new SdpError(0, '', `the answer has ${app.media.length} m= sections, the offer ${this.#remoteOffer.media.length}`);
    }
    const desc = this.#buildLocal(app, this.#remoteResult, this.#localRestartPending);
    this.#localDesc = desc;
    this.#state = 'stable';
    this.#localRestartPending = false;
    this.#remoteRestartPending = false;
    return writeIceDescription(desc, appSdp);
  }

  /**
   * Applies the peer's offer or answer. Throws `SdpError` for bad SDP (with the line) and for an offer that changes
   * `ice-lite` without restarting (RFC 8839 §4.4.2.1), and `InvalidStateError` when the type does not fit the state.
   * An offer that changes `ice-options` or `ice-pacing` without restarting is accepted: the running session keeps
   * its values and the result lists a warning (a deviation from §4.4.2.1, see docs/deviations.md).
   */
  setRemoteDescription(sdp: string, type: 'offer' | 'answer'): RemoteDescriptionResult {
    if (type === 'offer' && this.#state !== 'stable') throw new InvalidStateError(`cannot apply a remote offer in state ${this.#state}`);
    if (type === 'answer' && this.#state !== 'have-local-offer') throw new InvalidStateError(`cannot apply a remote answer in state ${this.#state}`);
    let d = readIceDescription(sdp);
    const offer = type === 'answer' ? this.#pendingOffer!.desc : undefined;
    if (offer && offer.media.length !== d.media.length) {
      throw new SdpError(0, '', `the answer has ${d.media.length} m= sections, the offer ${offer.media.length}`);
    }
    const hadIce = this.#remoteDesc !== undefined && descriptionHasIce(this.#remoteDesc);

    // Streams, modes and restarts.
    let restart = false;
    let offererSawMismatch = false;
    const drafts = d.media.map((m, i) => {
      const prev = this.#remoteCreds.get(streamKey(m));
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

    // RFC 8839 §4.4.2.1: without a restart, ice-options, ice-pacing and ice-lite must not change, and the answerer
    // MUST reject an offer that changes them. Deviation (docs/deviations.md): real SIP stacks change ice-options in
    // re-offers that keep ufrag/pwd (pjproject writes `ice-options:trickle` in its initial offer only), so a changed
    // ice-options or ice-pacing is accepted with a warning and the values of the running ICE session are kept. A
    // changed ice-lite would change the roles and is still rejected.
    const warnings: string[] = [];
    if (type === 'offer' && this.#remoteDesc && !restart && descriptionHasIce(d) && hadIce) {
      const p = this.#remoteDesc;
      if (p.lite !== d.lite) throw new SdpError(0, '', 'ice-lite changed in an offer that does not restart ICE (RFC 8839 §4.4.2.1)');
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
      if (warnings.length > 0) {
        const { pacingMs: _dropped, ...rest } = d;
        d = { ...rest, ...(p.pacingMs !== undefined ? { pacingMs: p.pacingMs } : {}), options: sameSet(p.options, d.options) ? d.options : p.options, media };
        for (const x of drafts) x.m = d.media[x.m.index]!;
      }
    }

    const iceMode: IceMode = drafts.some((x) => x.mode === 'ice') ? 'ice' : 'none';
    const remoteTransportsReset = new Set<number>();
    const streams: RemoteStream[] = drafts.map(({ m, mode, restart: r }, i) => {
      const ti = transportIndexOf(d, i);
      const dest = signalledDestination(m);
      const ice = mode === 'ice';
      if ((r || !ice) && !remoteTransportsReset.has(ti)) {
        this.#knownRemote.delete(ti);
        this.#remoteEoc.delete(ti);
        remoteTransportsReset.add(ti);
      }
      const known = this.#knownRemote.get(ti) ?? [];
      const fresh: Candidate[] = [];
      if (ice && endOfCandidatesFor(d, m)) this.#remoteEoc.add(ti);
      if (ice) {
        // A key set, not pairwise `sameTrickledCandidate` scans: quadratic in a hostile description's candidate count.
        const seen = new Set(known.map(trickleKey));
        for (const c of m.candidates) {
          const k = trickleKey(c);
          if (seen.has(k)) continue;
          seen.add(k);
          fresh.push(c);
        }
        this.#knownRemote.set(ti, known.concat(fresh));
      }
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
        restart: r,
        ...(m.remoteCandidates !== undefined ? { remoteCandidates: m.remoteCandidates } : {}),
        ice2: m.options.includes(ICE2_OPTION),
        trickle: m.options.includes(TRICKLE_OPTION),
      };
    });
    for (const m of d.media) {
      if (mediaHasIce(m)) this.#remoteCreds.set(streamKey(m), { ufrag: m.ufrag!, pwd: m.pwd! });
    }

    // Roles (RFC 8445 §6.1.1), decided once per ICE session; a restart may change lite-ness and so the roles.
    const before = this.#role;
    const localLite = this.#local.lite ?? false;
    // RFC 8445 §9: a restart keeps the roles unless one side switched between full and lite.
    const liteChanged = this.#remoteLite !== d.lite || this.#localLiteAtRole !== localLite;
    if (!this.#roleFinal || (restart && liteChanged)) {
      this.#role = decideRole(localLite, d.lite, type === 'answer');
      this.#roleFinal = true;
      this.#localLiteAtRole = localLite;
    }
    // RFC 8839 §4.4.2.2: a remote-candidates offer means the peer is controlling; glare was resolved in its favour.
    if (type === 'offer' && this.#role === 'controlling' && d.media.some((m) => m.remoteCandidates !== undefined)) {
      this.#role = 'controlled';
    }
    this.#remoteLite = d.lite;
    this.#iceMode = iceMode;
    this.#remoteDesc = d;

    if (type === 'offer') {
      this.#remoteOffer = d;
      this.#state = 'have-remote-offer';
      this.#remoteRestartPending = restart;
      if (restart) {
        this.#selected.clear();
        this.#localEoc.clear();
      }
    } else {
      this.#localDesc = this.#pendingOffer!.desc;
      this.#pendingOffer = undefined;
      this.#state = 'stable';
      this.#localRestartPending = false;
      // RFC 8839 §4.4.3.1: ICE support vanished from an answer: fall back now, restart with the next offer.
      if (hadIce && iceMode === 'none') this.#mustRestartOnNextOffer = true;
    }
    const result: RemoteDescriptionResult = {
      type,
      iceMode,
      remoteLite: d.lite,
      role: this.#role!,
      roleChanged: before !== undefined && before !== this.#role,
      restart,
      ...(d.pacingMs !== undefined ? { remotePacingMs: d.pacingMs } : {}),
      pacingMs: this.pacingMs,
      streams,
      description: d,
      warnings,
    };
    this.#remoteResult = result;
    return result;
  }

  /**
   * Adds one trickled remote candidate (or, with `candidate` undefined, an end-of-candidates indication) for the
   * `m=` section named by `mid` or `index`. `ufrag`, when given, must be the current remote ufrag of that stream
   * (RFC 8838 §17: candidates of another generation are discarded).
   */
  addRemoteCandidate(where: { readonly mid?: string; readonly index?: number; readonly ufrag?: string }, candidate?: Candidate): TrickleResult {
    const found = this.#findStream(where.mid, where.index);
    const none: TrickleResult = { accepted: false, newCandidates: [], endOfCandidates: [], endOfAllCandidates: false };
    if (!found) return none;
    if (where.ufrag !== undefined && found.ufrag !== undefined && where.ufrag !== found.ufrag) return none;
    if (candidate === undefined) {
      this.#remoteEoc.add(found.transportIndex);
      return { accepted: true, newCandidates: [], endOfCandidates: [found.transportIndex], endOfAllCandidates: false };
    }
    const known = this.#knownRemote.get(found.transportIndex) ?? [];
    if (known.some((k) => sameTrickledCandidate(k, candidate))) return { ...none, accepted: true };
    this.#knownRemote.set(found.transportIndex, [...known, candidate]);
    return {
      accepted: true,
      newCandidates: [{ transportIndex: found.transportIndex, ...(found.mid !== undefined ? { mid: found.mid } : {}), candidate }],
      endOfCandidates: [],
      endOfAllCandidates: false,
    };
  }

  /**
   * Applies a received `application/trickle-ice-sdpfrag` body (RFC 8840 §4.4): checks the credentials against the
   * current remote generation (a mismatch discards the body), drops candidates already known, and returns the new
   * ones in order. Throws `SdpError` for a malformed body.
   */
  applyRemoteSdpfrag(body: string | Sdpfrag): TrickleResult {
    const frag = typeof body === 'string' ? parseSdpfrag(body) : body;
    const discarded: TrickleResult = { accepted: false, newCandidates: [], endOfCandidates: [], endOfAllCandidates: false };
    // Check every section's credentials before taking anything.
    for (const fm of frag.media) {
      const s = this.#findStream(fm.mid, undefined);
      if (!s) continue;
      const ufrag = fm.ufrag ?? frag.ufrag;
      const pwd = fm.pwd ?? frag.pwd;
      if (s.ufrag !== undefined && (ufrag !== s.ufrag || pwd !== s.pwd)) return discarded;
    }
    if (frag.media.length === 0 && this.#remoteDesc) {
      const cur = this.#remoteDesc.media.find(mediaHasIce);
      if (cur && (frag.ufrag !== cur.ufrag || frag.pwd !== cur.pwd)) return discarded;
    }
    const newCandidates: { transportIndex: number; mid?: string; candidate: Candidate }[] = [];
    const eoc = new Set<number>();
    for (const fm of frag.media) {
      const s = this.#findStream(fm.mid, undefined);
      if (!s) continue; // an unknown mid: nothing to attach the candidates to
      const known = this.#knownRemote.get(s.transportIndex) ?? [];
      const added: Candidate[] = [];
      const seen = new Set(known.map(trickleKey));
      for (const c of fm.candidates) {
        const k = trickleKey(c);
        if (seen.has(k)) continue;
        seen.add(k);
        added.push(c);
        newCandidates.push({ transportIndex: s.transportIndex, mid: fm.mid, candidate: c });
      }
      this.#knownRemote.set(s.transportIndex, known.concat(added));
      if (fm.endOfCandidates || frag.endOfCandidates) {
        eoc.add(s.transportIndex);
        this.#remoteEoc.add(s.transportIndex);
      }
    }
    return { accepted: true, newCandidates, endOfCandidates: [...eoc], endOfAllCandidates: frag.endOfCandidates };
  }

  /**
   * Builds the `application/trickle-ice-sdpfrag` body of the next INFO request: all local candidates of the
   * current generation, in the order they were added (RFC 8840 §4.4 requires repeating every earlier one), with the
   * credentials at the same level as in the offer/answer and the pseudo `m=` lines copied from the local
   * description. `endOfAllCandidates` adds the session-level `a=end-of-candidates`.
   */
  createSdpfrag(options: { readonly endOfAllCandidates?: boolean } = {}): string {
    return buildSdpfrag(this.sdpfrag(options));
  }

  /** The structured form of `createSdpfrag`. */
  sdpfrag(options: { readonly endOfAllCandidates?: boolean } = {}): Sdpfrag {
    const local = this.localDescription;
    if (!local) throw new InvalidStateError('no local description yet: create an offer or an answer first');
    const media: SdpfragMedia[] = [];
    for (const m of local.media) {
      const ti = transportIndexOf(local, m.index);
      // One pseudo section per transport: the BUNDLE-tag section (or every section under the 'all' policy).
      if (m.mid === undefined || !mediaHasIce(m) || m.iceMismatch) continue;
      if (ti !== m.index && this.#bundlePolicy === 'bundle-tag') continue;
      media.push({
        mid: m.mid,
        mediaLine: m.port !== 0 ? `${m.kind} ${m.port} ${m.protocol}${m.formats ? ` ${m.formats}` : ''}` : DEFAULT_PSEUDO_MEDIA_LINE,
        ...(this.#credLevel === 'media' ? { ufrag: this.#local.ufrag, pwd: this.#local.pwd } : {}),
        candidates: this.localCandidates(ti),
        endOfCandidates: this.#localEoc.has(ti),
        rtcpMux: m.rtcpMux,
      });
    }
    return {
      ...(this.#credLevel === 'session' ? { ufrag: this.#local.ufrag, pwd: this.#local.pwd } : {}),
      lite: false,
      endOfCandidates: options.endOfAllCandidates ?? false,
      bundleGroups: [],
      media,
    };
  }

  // -------------------------------------------------------------------------------------------------------------

  #findStream(mid: string | undefined, index: number | undefined): { transportIndex: number; mid?: string; ufrag?: string; pwd?: string } | undefined {
    // Before the answer arrives, trickled candidates can only be placed through the local offer's mids.
    const d = this.#remoteDesc ?? this.localDescription;
    if (!d) return undefined;
    const m = mid !== undefined ? d.media.find((x) => x.mid === mid) : index !== undefined ? d.media[index] : undefined;
    if (!m) return undefined;
    const remote = this.#remoteDesc ? m : undefined;
    return {
      transportIndex: transportIndexOf(d, m.index),
      ...(m.mid !== undefined ? { mid: m.mid } : {}),
      ...(remote?.ufrag !== undefined ? { ufrag: remote.ufrag } : {}),
      ...(remote?.pwd !== undefined ? { pwd: remote.pwd } : {}),
    };
  }

  #transportIndices(): number[] {
    const d = this.localDescription;
    if (!d) return [...this.#localCandidates.keys()];
    return [...new Set(d.media.map((m) => transportIndexOf(d, m.index)))];
  }

  /** Builds the local ICE description on top of the application's SDP; `remote` is set when answering. */
  #buildLocal(app: IceDescription, remote: RemoteDescriptionResult | undefined, restart: boolean): IceDescription {
    const lite = this.#local.lite ?? false;
    const ice2 = this.#local.ice2 === false ? [] : [ICE2_OPTION];
    const options = [...ice2, ...(this.#trickle !== 'none' ? [TRICKLE_OPTION] : []), ...(this.#local.options ?? [])].filter(
      (o, i, a) => a.indexOf(o) === i,
    );
    // RFC 8839 §4.3.2: an answer to an offer without ICE carries no ICE attribute at all.
    const noIce = remote !== undefined && remote.iceMode === 'none' && !remote.streams.some((s) => s.mode === 'mismatch');
    const sessionCreds = !noIce && this.#credLevel === 'session';
    // RFC 8840 §4.1.1: with trickle every m= section carries a=mid; add one where the application did not.
    const used = new Set(app.media.flatMap((m) => (m.mid !== undefined ? [m.mid] : [])));
    const mids = app.media.map((m) => {
      if (m.mid !== undefined || this.#trickle === 'none') return m.mid;
      let id = String(m.index);
      while (used.has(id)) id = `m${id}`;
      used.add(id);
      return id;
    });
    const withMids: IceDescription = { ...app, media: app.media.map((m, i) => ({ ...m, ...(mids[i] !== undefined ? { mid: mids[i] } : {}) })) };

    const defaults = new Map<number, { dest: DefaultDestination; candidates: readonly Candidate[]; remoteCands?: RemoteCandidateRef[] }>();
    const transportDefault = (ti: number, m: IceMediaDescription) => {
      const cached = defaults.get(ti);
      if (cached) return cached;
      const all = this.localCandidates(ti);
      const sel = this.#selected.get(ti);
      const remoteStream = remote?.streams[ti];
      const remoteKind = remoteStream?.defaultRtp !== undefined ? candidateAddressKind(remoteStream.defaultRtp.address) : undefined;
      const preferFamily = this.#preferFamily ?? (remoteKind === 'ipv6' ? 6 : 4);
      let out: { dest: DefaultDestination; candidates: readonly Candidate[]; remoteCands?: RemoteCandidateRef[] };
      const rc = remote?.type === 'offer' ? remoteStream?.remoteCandidates : undefined;
      const rcLocals = rc?.map((r) => all.find((c) => c.component === r.component && c.address === r.address && c.port === r.port));
      if (!restart && rc && rcLocals && rcLocals.every((c) => c !== undefined)) {
        // RFC 8839 §4.4.2: answering a remote-candidates offer: the default destination is those candidates.
        const cands = rcLocals as Candidate[];
        out = { dest: defaultDestination(cands, { preferFamily, transport: transportOfProto(m.protocol), rtcpMux: m.rtcpMux }), candidates: cands };
      } else if (!restart && sel && sel.has(1) && !lite) {
        // RFC 8839 §4.4.1.2.2: after nomination only the nominated local candidates, and they are the default.
        const comps = [...sel.entries()].sort((a, b) => a[0] - b[0]);
        const cands = comps.map(([, p]) => p.local as Candidate);
        const rtp = sel.get(1)!.local as Candidate;
        const rtcpSel = m.rtcpMux ? undefined : (sel.get(2)?.local as Candidate | undefined);
        const dest: DefaultDestination = {
          rtp: { address: rtp.address, port: rtp.port },
          rtpCandidate: rtp,
          ...(rtcpSel ? { rtcp: { address: rtcpSel.address, port: rtcpSel.port }, rtcpCandidate: rtcpSel } : {}),
          placeholder: false,
        };
        const controllingOffer = remote === undefined && this.#role === 'controlling';
        out = {
          dest,
          candidates: cands,
          ...(controllingOffer ? { remoteCands: comps.map(([component, p]) => ({ component, address: p.remote.address, port: p.remote.port })) } : {}),
        };
      } else {
        out = { dest: defaultDestination(all, { preferFamily, transport: transportOfProto(m.protocol), rtcpMux: m.rtcpMux }), candidates: all };
      }
      defaults.set(ti, out);
      return out;
    };

    const media: IceMediaDescription[] = withMids.media.map((m, i) => {
      const ti = transportIndexOf(withMids, i);
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
        bundleOnly: m.bundleOnly,
      } satisfies IceMediaDescription;
      const rs = remote?.streams[i];
      const rejected = m.port === 0 || rs?.mode === 'rejected';
      if (rejected) return base; // RFC 8839 §4.4.1.1.2: no ICE attributes for a removed stream.
      const own = transportDefault(ti, m);
      const { dest } = own;
      const placed = {
        ...base,
        connection: dest.rtp.address,
        port: dest.rtp.port,
        ...(dest.rtcp !== undefined ? { rtcp: dest.rtcp } : {}),
      };
      if (noIce || rs?.mode === 'none') return placed;
      const creds = {
        ufrag: this.#local.ufrag,
        pwd: this.#local.pwd,
        options,
        mediaLevel: this.#credLevel === 'media' ? { ufrag: this.#local.ufrag, pwd: this.#local.pwd, options } : {},
      };
      if (rs?.mode === 'mismatch') {
        // RFC 8839 §4.2.5 item 1: a=ice-mismatch, and no candidate attributes.
        return { ...placed, ...creds, iceMismatch: true };
      }
      const bundledNonTag = ti !== i;
      const listCandidates = !bundledNonTag || this.#bundlePolicy === 'all';
      return {
        ...placed,
        ...creds,
        candidates: listCandidates ? [...own.candidates] : [],
        ...(own.remoteCands !== undefined && listCandidates ? { remoteCandidates: own.remoteCands } : {}),
        endOfCandidates: this.#localEoc.has(ti),
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
    return {
      ...(ice && sessionCreds ? { ufrag: this.#local.ufrag, pwd: this.#local.pwd } : {}),
      options: ice && sessionCreds ? options : [],
      lite: ice && lite,
      // RFC 8839 §4.3.1/§4.3.2: a full agent SHOULD send ice-pacing, a lite one MUST NOT.
      ...(ice && !lite ? { pacingMs: this.#local.pacingMs ?? DEFAULT_ICE_PACING_MS } : {}),
      endOfCandidates: false,
      ...(connection !== undefined ? { connection } : {}),
      bundleGroups: app.bundleGroups,
      media,
    };
  }
}
