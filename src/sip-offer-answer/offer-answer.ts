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
import { arg, args, is } from '../arguments.js';
import type { Candidate, LocalCandidate } from '../candidates/candidate.js';
import { validateCandidate } from '../candidates/grammar.js';
import { InvalidStateError, SdpError } from '../errors.js';
import { negotiateTa } from '../stun/pacing.js';
import type { IceRole, RandomSource } from '../types.js';
import { toSignalledCandidate } from './default-candidate.js';
import { mediaHasIce, readIceDescription, transportIndexOf, type IceDescription } from './ice-attributes.js';
import { writeIceDescription } from './ice-writer.js';
import {
  buildLocalDescription,
  generateIceCredentials,
  localPacingProposal,
  localSdpfrag,
  validateLocalParameters,
  type BundleCandidatePolicy,
  type IceCredentials,
  type LocalContext,
  type LocalIceParameters,
  type SelectedPairInfo,
} from './local-description.js';
import {
  RemoteCandidateStore,
  analyseRemoteDescription,
  bookRemoteStreams,
  streamKey,
  transportPlans,
  type IceMode,
  type IceTransportPlan,
  type RemoteDescriptionResult,
} from './remote-description.js';
import { buildSdpfrag, parseSdpfrag, sameTrickledCandidate, type Sdpfrag, type TrickleMode } from './sdpfrag.js';

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

/** Argument rules shared by several methods (see src/arguments.ts). */
const TRANSPORT = is.int(0, 65535);
const CANDIDATE = (v: unknown): void => validateCandidate(v as Candidate);
const SDPFRAG_OPTIONS = is.record({ endOfAllCandidates: is.optional(is.boolean) });

/** RFC 8445 §6.1.1. */
function decideRole(localLite: boolean, remoteLite: boolean, localIsInitiator: boolean): IceRole {
  if (localLite !== remoteLite) return localLite ? 'controlled' : 'controlling';
  return localIsInitiator ? 'controlling' : 'controlled';
}

/**
 * One ICE offer/answer session. Call order follows RFC 3264: `createOffer` then `setRemoteDescription(answer,
 * 'answer')`, or `setRemoteDescription(offer, 'offer')` then `createAnswer`. Between exchanges, feed it local
 * candidates (`setLocalCandidates`/`addLocalCandidate`), the selected pairs (`setSelectedPair`), and trickled remote
 * candidates (`applyRemoteSdpfrag`, or `addRemoteCandidate` for WebRTC JSON).
 *
 * Arguments of the wrong type or out of range (from plain JavaScript or JSON) throw `IceArgumentError` at the call,
 * candidate records `CandidateParseError`, bodies that are not SDP `SdpError`.
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
  /** The parameters before a local restart that no offer carried yet: an answer to a plain re-offer keeps them. */
  #beforeRestart: LocalIceParameters | undefined;
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
  readonly #remoteCreds = new Map<string, IceCredentials>();
  /** Remote candidates per remote transport (O/A and trickle), de-duplicated (RFC 8840 §4.4), and completeness. */
  readonly #remoteCands = new RemoteCandidateStore();

  /** Throws `InvalidStateError` for local parameters the grammar cannot carry (ufrag 4..32, pwd 22..256 ice-chars). */
  constructor(options: OfferAnswerOptions) {
    arg(options, 'options', is.record({ local: is.record(), trickle: is.optional(is.oneOf('none', 'half', 'full')), bundleCandidates: is.optional(is.oneOf('bundle-tag', 'all')), credentialsLevel: is.optional(is.oneOf('session', 'media')) }));
    validateLocalParameters(options.local);
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
    return localPacingProposal(this.#local);
  }

  /** The peer's Ta proposal (undefined when absent or before any remote description). */
  get remotePacingMs(): number | undefined {
    return this.#remoteDesc?.pacingMs;
  }

  /** RFC 8839 §5.5 / RFC 8445 §14.2: both agents use the larger of the two proposals (50 ms for a missing one). */
  get pacingMs(): number {
    return negotiateTa(this.#local.pacingMs, this.#remoteDesc?.pacingMs);
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
    return this.#remoteResult ? transportPlans(this.#remoteResult, this.localDescription, this.#remoteCands) : [];
  }

  /**
   * The transports of the answer `createAnswer(appSdp)` will make (call it between the remote offer and
   * `createAnswer`): as `transports()`, with components counted from the application's answer, since no local
   * description exists yet. An RTP stream has 2 unless both the offer and `appSdp` say `a=rtcp-mux` (RFC 5761
   * §5.1.1); RFC 8839 §4.2.2 then wants candidates for both in the answer.
   */
  answerTransports(appSdp: string): IceTransportPlan[] {
    arg(appSdp, 'appSdp', is.string);
    if (this.#state !== 'have-remote-offer' || !this.#remoteResult) throw new InvalidStateError('answerTransports needs a pending remote offer');
    return transportPlans(this.#remoteResult, readIceDescription(appSdp), this.#remoteCands);
  }

  /** True while a local restart is pending (started by `restartIce`, done when its answer is applied/created). */
  get restartPending(): boolean {
    return this.#localRestartPending;
  }

  /** Replaces the local candidates of a transport (given by the index of the `m=` section owning it). */
  setLocalCandidates(transportIndex: number, candidates: readonly (Candidate | LocalCandidate)[]): void {
    args([transportIndex, 'transportIndex', TRANSPORT], [candidates, 'candidates', is.array(CANDIDATE)]);
    this.#localCandidates.set(transportIndex, candidates.map(toSignalledCandidate));
  }

  /**
   * Adds one local candidate to a transport; returns false when the same candidate (address, port, transport,
   * component) is already there. The order of addition is kept (RFC 8840 §4.4: trickled lists only grow at the end).
   */
  addLocalCandidate(transportIndex: number, candidate: Candidate | LocalCandidate): boolean {
    args([transportIndex, 'transportIndex', TRANSPORT], [candidate, 'candidate', CANDIDATE]);
    const c = toSignalledCandidate(candidate);
    const list = this.#localCandidates.get(transportIndex) ?? [];
    if (list.some((x) => sameTrickledCandidate(x, c))) return false;
    this.#localCandidates.set(transportIndex, [...list, c]);
    return true;
  }

  /** The signalled local candidates of a transport, in order. */
  localCandidates(transportIndex: number): readonly Candidate[] {
    arg(transportIndex, 'transportIndex', TRANSPORT);
    return this.#localCandidates.get(transportIndex) ?? [];
  }

  /** Marks local gathering of a transport (or of all known transports) as finished: writes `a=end-of-candidates`. */
  setLocalEndOfCandidates(transportIndex?: number): void {
    arg(transportIndex, 'transportIndex', is.optional(TRANSPORT));
    if (transportIndex !== undefined) this.#localEoc.add(transportIndex);
    else for (const k of this.#transportIndices()) this.#localEoc.add(k);
  }

  /** Known remote candidates of a (remote) transport: from descriptions and trickle bodies. */
  remoteCandidates(transportIndex: number): readonly Candidate[] {
    arg(transportIndex, 'transportIndex', TRANSPORT);
    return this.#remoteCands.candidates(transportIndex);
  }

  /**
   * Records the selected (nominated) pair of one component of a transport. Subsequent offers then put the pair's
   * local candidate in `c=`/`m=` (`a=rtcp` for component 2) and list only those candidates; a controlling agent
   * adds `a=remote-candidates` (RFC 8839 §4.4.1.2.2).
   */
  setSelectedPair(transportIndex: number, component: number, pair: SelectedPairInfo): void {
    args([transportIndex, 'transportIndex', TRANSPORT], [component, 'component', is.int(1, 256)], [pair, 'pair', is.record({ local: CANDIDATE, remote: is.address })]);
    const m = this.#selected.get(transportIndex) ?? new Map<number, SelectedPairInfo>();
    m.set(component, { local: toSignalledCandidate(pair.local), remote: pair.remote });
    this.#selected.set(transportIndex, m);
  }

  /** Forgets the selected pairs of a transport (or of all). */
  clearSelectedPairs(transportIndex?: number): void {
    arg(transportIndex, 'transportIndex', is.optional(TRANSPORT));
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
    arg(params, 'params', is.optional(is.record({ ufrag: is.optional(is.string), pwd: is.optional(is.string), lite: is.optional(is.boolean), options: is.optional(is.array(is.string)) })));
    let creds: IceCredentials;
    if (params?.ufrag !== undefined && params.pwd !== undefined) creds = { ufrag: params.ufrag, pwd: params.pwd };
    else if (this.#random) creds = generateIceCredentials(this.#random);
    else throw new InvalidStateError('restartIce needs ufrag and pwd, or a RandomSource in the options');
    if (creds.ufrag === this.#local.ufrag || creds.pwd === this.#local.pwd) {
      throw new InvalidStateError('an ICE restart must change both ufrag and pwd (RFC 8839 §4.4.1.1.1)');
    }
    const next: LocalIceParameters = { ...this.#local, ...params, ...creds };
    validateLocalParameters(next);
    if (!this.#localRestartPending) this.#beforeRestart = this.#local;
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
    arg(appSdp, 'appSdp', is.string);
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
    arg(appSdp, 'appSdp', is.string);
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
    // RFC 8839 §4.4.1.1.1, §4.4.2.1, RFC 8445 §9: a restart is an offer's; the answer to an offer that did not
    // restart keeps the credentials in force, and a local restart begun meanwhile waits for our next offer.
    const deferred = this.#localRestartPending && !this.#remoteRestartPending ? this.#beforeRestart : undefined;
    const desc = deferred
      ? buildLocalDescription(this.#localContext(deferred), app, this.#remoteResult, false)
      : this.#buildLocal(app, this.#remoteResult, this.#localRestartPending);
    this.#localDesc = desc;
    this.#state = 'stable';
    if (!deferred) {
      this.#localRestartPending = false;
      this.#beforeRestart = undefined;
    }
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
    args([sdp, 'sdp', is.string], [type, 'type', is.oneOf('offer', 'answer')]);
    if (type === 'offer' && this.#state !== 'stable') throw new InvalidStateError(`cannot apply a remote offer in state ${this.#state}`);
    if (type === 'answer' && this.#state !== 'have-local-offer') throw new InvalidStateError(`cannot apply a remote answer in state ${this.#state}`);
    const analysis = analyseRemoteDescription(sdp, type, {
      ...(type === 'answer' ? { offer: this.#pendingOffer!.desc } : {}),
      ...(this.#remoteDesc !== undefined ? { previous: this.#remoteDesc } : {}),
      credentials: this.#remoteCreds,
    });
    const { description: d, restart, iceMode, warnings } = analysis;
    const streams = bookRemoteStreams(analysis, this.#remoteCands);
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
      this.#beforeRestart = undefined;
      // RFC 8839 §4.4.3.1: ICE support vanished from an answer: fall back now, restart with the next offer.
      if (analysis.hadIce && iceMode === 'none') this.#mustRestartOnNextOffer = true;
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
    args([where, 'where', is.record({ mid: is.optional(is.string), index: is.optional(TRANSPORT), ufrag: is.optional(is.string) })], [candidate, 'candidate', is.optional(CANDIDATE)]);
    const found = this.#findStream(where.mid, where.index);
    const none: TrickleResult = { accepted: false, newCandidates: [], endOfCandidates: [], endOfAllCandidates: false };
    if (!found) return none;
    if (where.ufrag !== undefined && found.ufrag !== undefined && where.ufrag !== found.ufrag) return none;
    if (candidate === undefined) {
      this.#remoteCands.markComplete(found.transportIndex);
      return { accepted: true, newCandidates: [], endOfCandidates: [found.transportIndex], endOfAllCandidates: false };
    }
    if (this.#remoteCands.add(found.transportIndex, [candidate]).length === 0) return { ...none, accepted: true };
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
    arg(body, 'body', is.either(is.string, is.record({ media: is.array(is.record()) })));
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
      for (const c of this.#remoteCands.add(s.transportIndex, fm.candidates)) {
        newCandidates.push({ transportIndex: s.transportIndex, mid: fm.mid, candidate: c });
      }
      if (fm.endOfCandidates || frag.endOfCandidates) {
        eoc.add(s.transportIndex);
        this.#remoteCands.markComplete(s.transportIndex);
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
    arg(options, 'options', SDPFRAG_OPTIONS);
    return buildSdpfrag(this.sdpfrag(options));
  }

  /** The structured form of `createSdpfrag`. */
  sdpfrag(options: { readonly endOfAllCandidates?: boolean } = {}): Sdpfrag {
    arg(options, 'options', SDPFRAG_OPTIONS);
    const local = this.localDescription;
    if (!local) throw new InvalidStateError('no local description yet: create an offer or an answer first');
    return localSdpfrag(this.#localContext(), local, options.endOfAllCandidates ?? false);
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
    return buildLocalDescription(this.#localContext(), app, remote, restart);
  }

  /** What the local description and trickle bodies are built from, as of now. */
  #localContext(local: LocalIceParameters = this.#local): LocalContext {
    return {
      local,
      trickle: this.#trickle,
      bundlePolicy: this.#bundlePolicy,
      credentialsLevel: this.#credLevel,
      preferFamily: this.#preferFamily,
      role: this.#role,
      candidates: (ti: number) => this.localCandidates(ti),
      selected: this.#selected,
      endOfCandidates: this.#localEoc,
    };
  }
}
