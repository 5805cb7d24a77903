/**
 * `IceSdpSession`: the convenience that ties the pure {@link OfferAnswer} binding to real {@link IceAgent}s, so a
 * SIP softphone or a WebRTC-style app exchanges nothing but SDP strings (and, with trickle, RFC 8840 sdpfrag
 * bodies). One `IceAgent` runs per transport (per `m=` section, or per BUNDLE group).
 *
 * Roles follow RFC 8445 §6.1.1 as `OfferAnswer` decides them: the offerer controls unless it is lite and the
 * answerer is full. Agents are created when the role is known: at `createOffer`, or at the first remote offer.
 * @module
 */
import { DEFAULT_CHECKLIST_LIMIT } from '../checklist/checklist.js';
import { EventEmitter } from 'eventemitter3';
import type { AgentState } from '../checklist/types.js';
import { InvalidStateError, SdpError } from '../errors.js';
import { readIceDescription } from '../sip-offer-answer/ice-attributes.js';
import { generateIceCredentials } from '../sip-offer-answer/local-description.js';
import { OfferAnswer } from '../sip-offer-answer/offer-answer.js';
import type { IceTransportPlan, RemoteDescriptionResult } from '../sip-offer-answer/remote-description.js';
import type { TrickleMode } from '../sip-offer-answer/sdpfrag.js';
import type { IceRole } from '../types.js';
import type { Candidate } from '../candidates/candidate.js';
import { IceAgent, type IceAgentOptions, type IceCandidatePair, type IceCandidatePairState } from './ice-agent.js';
import { cryptoRandom } from './random.js';

/** Default of `IceSdpSessionOptions.maxMediaSections`. */
const DEFAULT_MAX_MEDIA_SECTIONS = 64;

/** Options: everything an {@link IceAgent} takes (role excepted: offer/answer decides it), plus trickle. */
export interface IceSdpSessionOptions extends Omit<IceAgentOptions, 'role' | 'ufrag' | 'pwd' | 'components'> {
  /**
   * `'none'` (default): offers and answers carry every candidate (gathering completes first). `'half'`: the
   * offer carries every candidate, the answer may trickle. `'full'`: both trickle; candidates leave in `sdpfrag`
   * events to send in SIP INFO requests (RFC 8840).
   */
  readonly trickle?: TrickleMode;
  /**
   * Components of the RTP transports this session offers without rtcp-mux (default 2: RTP and RTCP). Sections with
   * rtcp-mux, and non-RTP sections (e.g. `UDP/DTLS/SCTP`), always have 1.
   */
  readonly rtcpComponents?: 1 | 2;
  /**
   * Most `m=` sections a description may have (default 64): each one without BUNDLE costs an agent and its sockets,
   * so an offer with thousands of them would open thousands of sockets. Beyond it the description is refused with an
   * `SdpError` naming the first section too many.
   */
  readonly maxMediaSections?: number;
}

/** Events of an {@link IceSdpSession}. */
export interface IceSdpSessionEvents {
  /** An RFC 8840 `application/trickle-ice-sdpfrag` body to send in a SIP INFO (full trickle). */
  sdpfrag: [body: string];
  /** A transport's agent changed state. */
  statechange: [state: AgentState, transportIndex: number];
  selectedcandidatepairchange: [pair: IceCandidatePair, component: number, transportIndex: number];
  /** A local candidate was gathered (it also goes into the next description or sdpfrag body). */
  candidate: [candidate: Candidate, transportIndex: number];
  /** Checklist progress of a transport's agent. */
  pairstatechange: [pair: IceCandidatePairState, component: number, transportIndex: number];
  /** The controlling side selected pairs on every transport: a re-offer would carry them (RFC 8839 §4.4.1.2.2). */
  updatedofferneeded: [];
  warning: [message: string];
}

/** SDP-driven ICE: create/apply offers and answers, restart, trickle. */
export class IceSdpSession extends EventEmitter<IceSdpSessionEvents> {
  /** Each transport agent's share of the session's pair limit (RFC 8445 §6.1.2.5). */
  #checklistShare = DEFAULT_CHECKLIST_LIMIT;
  readonly #options: IceSdpSessionOptions;
  readonly #oa: OfferAnswer;
  readonly #agents = new Map<number, IceAgent>();
  /** Remote candidates already handed to each agent. */
  readonly #fed = new Map<number, number>();
  readonly #eocFed = new Set<number>();
  #role: IceRole | undefined;
  #closed = false;
  /** `restart()` was called: the agents restart when our next offer is created. */
  #restartRequested = false;

  constructor(options: IceSdpSessionOptions = {}) {
    super();
    this.#options = options;
    const random = options.random ?? cryptoRandom;
    this.#oa = new OfferAnswer({
      local: {
        ...generateIceCredentials(random),
        ...(options.lite ? { lite: true } : {}),
        ...(options.pacingMs !== undefined ? { pacingMs: options.pacingMs } : {}),
        // RFC 8445 §10: an agent that nominates aggressively must not claim ice2.
        ...(options.nomination === 'aggressive' ? { ice2: false } : {}),
      },
      trickle: options.trickle ?? 'none',
      random,
    });
  }

  /** The pure offer/answer state (descriptions, transports, pacing, role). */
  get offerAnswer(): OfferAnswer {
    return this.#oa;
  }

  /** The agent of a transport (default: the first one). */
  agent(transportIndex?: number): IceAgent | undefined {
    if (transportIndex !== undefined) return this.#agents.get(transportIndex);
    return this.#agents.values().next().value;
  }

  /** Creates an offer around the application's SDP (its `m=` sections, codecs, DTLS attributes...). */
  async createOffer(appSdp: string): Promise<string> {
    this.#assertOpen();
    this.#checkMediaSections(appSdp);
    this.#role ??= this.#oa.localParameters.lite ? 'controlled' : 'controlling';
    if (this.#restartRequested && this.#oa.signalingState !== 'have-remote-offer') this.#restartAgents();
    await this.#prepareLocal(appSdp, false);
    const offer = this.#oa.createOffer(appSdp);
    return offer;
  }

  /** Creates the answer to the remote offer last applied. */
  async createAnswer(appSdp: string): Promise<string> {
    this.#assertOpen();
    if (this.#oa.signalingState !== 'have-remote-offer') throw new InvalidStateError('createAnswer() needs a remote offer');
    if (this.#oa.remote?.restart && !this.#oa.restartPending) {
      // RFC 8839 §4.4.2.1: answering a restart, our agents restart too, with new credentials (which also serves a
      // restart() asked for meanwhile).
      this.#restartAgents();
    }
    await this.#prepareLocal(appSdp, true);
    const answer = this.#oa.createAnswer(appSdp);
    this.#feedRemote();
    return answer;
  }

  /** Applies the peer's offer or answer: remote credentials, candidates, roles, pacing, restarts, non-ICE peers. */
  async setRemoteDescription(sdp: string, type: 'offer' | 'answer'): Promise<RemoteDescriptionResult> {
    this.#assertOpen();
    this.#checkMediaSections(sdp);
    const result = this.#oa.setRemoteDescription(sdp, type);
    for (const w of result.warnings) this.#warn(w);
    this.#role ??= result.role;
    if (type === 'answer') this.#feedRemote();
    return result;
  }

  /**
   * Asks for an ICE restart (RFC 8445 §9); then call `createOffer`, which carries it: the agents take new credentials
   * (and, unless `restartKeepsPorts`, new host ports) when that offer is created. A restart belongs in an offer
   * (RFC 8839 §4.4.1.1.1): the answer to a remote offer that did not restart keeps the credentials in force, so a
   * restart asked for while such an offer is pending, or before one arrives, waits for our next offer. A remote
   * offer that restarts serves it.
   */
  restart(): void {
    this.#assertOpen();
    if (!this.agent()) throw new InvalidStateError('restart() before any offer or answer');
    this.#restartRequested = true;
  }

  /** Restarts every agent and gives the offer/answer state the first agent's new credentials. */
  #restartAgents(): void {
    this.#restartRequested = false;
    for (const a of this.#agents.values()) a.restart();
    const first = this.agent();
    if (!first) return;
    const p = first.getLocalParameters();
    this.#oa.restartIce({ ufrag: p.ufrag, pwd: p.pwd });
  }

  /** Applies a trickled RFC 8840 sdpfrag body from the peer (SIP INFO). */
  applySdpfrag(body: string): void {
    this.#assertOpen();
    const r = this.#oa.applyRemoteSdpfrag(body);
    if (!r.accepted) {
      this.#warn('sdpfrag of a previous ICE generation discarded (RFC 8840 §4.4)');
      return;
    }
    this.#feedRemote();
  }

  /** Closes every agent (sockets, timers, TURN allocations). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([...this.#agents.values()].map((a) => a.close()));
  }

  /** Refuses a description with more `m=` sections than `maxMediaSections`, before any of it is applied. */
  #checkMediaSections(sdp: string): void {
    const max = this.#options.maxMediaSections ?? DEFAULT_MAX_MEDIA_SECTIONS;
    let sections = 0;
    const lines = sdp.split(/\r?\n/);
    for (let i = 0; i < lines.length; i++) {
      if (!lines[i]!.startsWith('m=')) continue;
      if (++sections > max) throw new SdpError(i + 1, lines[i]!, `more than ${max} m= sections (maxMediaSections)`);
    }
  }

  async #prepareLocal(appSdp: string, answering: boolean): Promise<void> {
    const indexes = this.#transportIndexes(appSdp, answering);
    // RFC 8445 §6.1.2.5: the pair limit holds for the session's whole checklist set, and each transport's agent
    // holds one checklist of it: an even share each (a new agent gets its share of this description).
    this.#checklistShare = Math.max(1, Math.floor((this.#options.checklistLimit ?? DEFAULT_CHECKLIST_LIMIT) / Math.max(1, indexes.length)));
    const trickle = this.#options.trickle ?? 'none';
    const waitAll = trickle === 'none' || (trickle === 'half' && !answering);
    await Promise.all(
      indexes.map(async ({ index, components }) => {
        const agent = this.#ensureAgent(index, components);
        if (waitAll) {
          await agent.gather();
          this.#oa.setLocalCandidates(index, agent.getLocalCandidates());
          this.#oa.setLocalEndOfCandidates(index);
        } else {
          // Trickle: whatever is known now goes into the description; the rest follows as sdpfrag bodies.
          void agent.gather().catch((e: unknown) => this.#warn(`gathering failed: ${String(e)}`));
          this.#oa.setLocalCandidates(index, agent.getLocalCandidates());
        }
      }),
    );
  }

  #transportIndexes(appSdp: string, answering: boolean): { index: number; components: number }[] {
    if (answering) {
      return this.#oa.transports().filter((t) => t.mode !== 'rejected').map((t) => ({ index: t.transportIndex, components: this.#componentsFor(t) }));
    }
    // Offer: one transport per m= section of the application's SDP (BUNDLE groups are the app's choice; without
    // BUNDLE each section needs its own agent). Sections with rtcp-mux (or rtcp-mux-only), and sections that do not
    // carry RTP (a data channel's UDP/DTLS/SCTP), need one component, as OfferAnswer.transports() counts them.
    return readIceDescription(appSdp).media.map((m) => ({
      index: m.index,
      components: m.rtcpMux || !/RTP/i.test(m.protocol) ? 1 : (this.#options.rtcpComponents ?? 2),
    }));
  }

  #componentsFor(t: IceTransportPlan): number {
    return t.components;
  }

  #ensureAgent(index: number, components: number): IceAgent {
    let agent = this.#agents.get(index);
    if (agent) return agent;
    const { trickle: _t, rtcpComponents: _r, maxMediaSections: _m, ...agentOptions } = this.#options;
    const creds = this.#oa.localParameters;
    agent = new IceAgent({ ...agentOptions, checklistLimit: this.#checklistShare, role: this.#role ?? 'controlling', components, ufrag: creds.ufrag, pwd: creds.pwd });
    this.#agents.set(index, agent);
    this.#fed.set(index, 0);
    agent.on('statechange', (s) => this.emit('statechange', s, index));
    agent.on('warning', (m) => this.#warn(m));
    agent.on('pairstatechange', (p, component) => this.emit('pairstatechange', p, component, index));
    agent.on('candidate', (c) => {
      this.emit('candidate', c, index);
      // Trickle: a candidate found after our description went out leaves in an sdpfrag body (RFC 8840 §4.4).
      if (this.#oa.addLocalCandidate(index, c) && this.#trickling && this.#oa.localDescription) {
        this.emit('sdpfrag', this.#oa.createSdpfrag());
      }
    });
    agent.on('gatheringstatechange', (s) => {
      if (s !== 'complete' || !this.#trickling) return;
      this.#oa.setLocalEndOfCandidates(index);
      this.emit('sdpfrag', this.#oa.createSdpfrag({ endOfAllCandidates: [...this.#agents.values()].every((a) => a.gatheringState === 'complete') }));
    });
    agent.on('selectedcandidatepairchange', (pair, component) => {
      this.#oa.setSelectedPair(index, component, { local: pair.local, remote: { address: pair.remote.address, port: pair.remote.port } });
      this.emit('selectedcandidatepairchange', pair, component, index);
      if (this.#oa.updatedOfferNeeded) this.emit('updatedofferneeded');
    });
    return agent;
  }

  /** Hands the remote side of every transport to its agent: credentials, new candidates, end-of-candidates. */
  #feedRemote(): void {
    for (const plan of this.#oa.transports()) {
      const agent = this.#agents.get(plan.transportIndex);
      if (!agent) continue;
      if (plan.mode === 'none' || plan.mode === 'mismatch') {
        if (plan.defaultRtp) agent.useWithoutIce(plan.defaultRtp, 1);
        if (plan.defaultRtcp && plan.components > 1) agent.useWithoutIce(plan.defaultRtcp, 2);
        continue;
      }
      if (plan.mode !== 'ice' || plan.remote === undefined) continue;
      if (plan.restart) {
        this.#fed.set(plan.transportIndex, 0);
        this.#eocFed.delete(plan.transportIndex);
      }
      // Every value the peer signalled, ice-options included: RFC 8445 §10 (no aggressive nomination facing ice2).
      agent.setRemoteParameters(plan.remote);
      const fed = this.#fed.get(plan.transportIndex) ?? 0;
      for (const c of plan.remoteCandidates.slice(fed)) agent.addRemoteCandidate(c);
      this.#fed.set(plan.transportIndex, plan.remoteCandidates.length);
      if (plan.remoteEndOfCandidates && !this.#eocFed.has(plan.transportIndex)) {
        this.#eocFed.add(plan.transportIndex);
        agent.endOfRemoteCandidates();
      }
    }
  }

  get #trickling(): boolean {
    return (this.#options.trickle ?? 'none') !== 'none';
  }

  #assertOpen(): void {
    if (this.#closed) throw new InvalidStateError('IceSdpSession is closed');
  }

  #warn(message: string): void {
    if (this.listenerCount('warning') > 0) this.emit('warning', message);
  }
}
