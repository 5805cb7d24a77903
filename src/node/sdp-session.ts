/**
 * `IceSdpSession`: the convenience that ties the pure {@link OfferAnswer} binding to real {@link IceAgent}s, so a
 * SIP softphone or a WebRTC-style app exchanges nothing but SDP strings (and, with trickle, RFC 8840 sdpfrag
 * bodies). One `IceAgent` runs per transport (per `m=` section, or per BUNDLE group).
 *
 * Roles follow RFC 8445 §6.1.1 as `OfferAnswer` decides them: the offerer controls unless it is lite and the
 * answerer is full. Agents are created when the role is known: at `createOffer`, or at the first remote offer.
 * @module
 */
import { RemoteAddressBudget } from '../checklist/address-budget.js';
import { arg, args, is } from '../arguments.js';
import { DEFAULT_CHECKLIST_LIMIT } from '../checklist/checklist.js';
import { EventEmitter } from 'eventemitter3';
import type { TraceEvent } from '../checklist/trace.js';
import type { AgentState } from '../checklist/types.js';
import { InvalidStateError, SdpError } from '../errors.js';
import { readIceDescription } from '../sip-offer-answer/ice-attributes.js';
import { generateIceCredentials } from '../sip-offer-answer/local-description.js';
import { OfferAnswer } from '../sip-offer-answer/offer-answer.js';
import type { IceTransportPlan, RemoteDescriptionResult } from '../sip-offer-answer/remote-description.js';
import type { TrickleMode } from '../sip-offer-answer/sdpfrag.js';
import type { IceRole } from '../types.js';
import type { Candidate } from '../candidates/candidate.js';
import { unusedPayloadType, type NoIcePathOptions } from '../agent-machine.js';
import { IceAgent, type IceAgentEvents, type IceAgentOptions, type IceCandidatePair, type IceCandidatePairState } from './ice-agent.js';
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
   * Components of the RTP transports this session offers (default 2: RTP and RTCP). A section with `a=rtcp-mux`
   * gets the RTCP component too, with `a=rtcp`, as a fallback for a peer that declines mux (RFC 5761 §5.1.3); it is
   * dropped when the answer accepts mux. Sections with `a=rtcp-mux-only` (RFC 8858) and non-RTP sections (e.g.
   * `UDP/DTLS/SCTP`) always have 1. In answers the count follows the offer and the application's answer.
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
  /** A component of a transport running without ICE latched on to a new address (see `IceAgentEvents.latched`). */
  latched: [info: IceAgentEvents['latched'][0], transportIndex: number];
  warning: [message: string];
}

/**
 * SDP-driven ICE: create/apply offers and answers, restart, trickle. Arguments of the wrong type throw (or reject
 * with) `IceArgumentError`; a body that is not SDP, `SdpError`.
 */
export class IceSdpSession extends EventEmitter<IceSdpSessionEvents> {
  /** Each transport agent's share of the session's pair limit (RFC 8445 §6.1.2.5). */
  #checklistShare = DEFAULT_CHECKLIST_LIMIT;
  /** Pairs per remote IP address across every transport's agent (RFC 8445 §19.5.1): one budget for the session. */
  readonly #addressBudget: RemoteAddressBudget;
  readonly #options: IceSdpSessionOptions;
  readonly #oa: OfferAnswer;
  readonly #agents = new Map<number, IceAgent>();
  /** Remote candidates already handed to each agent. */
  readonly #fed = new Map<number, number>();
  readonly #eocFed = new Set<number>();
  /** Transports already warned about an RTCP component they lack. */
  readonly #componentWarned = new Set<number>();
  #role: IceRole | undefined;
  #closed = false;
  /** `restart()` was called: the agents restart when our next offer is created. */
  #restartRequested = false;

  constructor(options: IceSdpSessionOptions = {}) {
    super();
    arg(options, 'options', is.record({ trickle: is.optional(is.oneOf('none', 'half', 'full')), lite: is.optional(is.boolean), maxMediaSections: is.optional(is.int(1, 65535)) }));
    this.#options = options;
    this.#addressBudget = options.remoteAddressBudget ?? new RemoteAddressBudget(options.remoteAddressPairLimit);
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
    arg(transportIndex, 'transportIndex', is.optional(is.int(0, 65535)));
    if (transportIndex !== undefined) return this.#agents.get(transportIndex);
    return this.#agents.values().next().value;
  }

  /** Creates an offer around the application's SDP (its `m=` sections, codecs, DTLS attributes...). */
  async createOffer(appSdp: string): Promise<string> {
    arg(appSdp, 'appSdp', is.string);
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
    arg(appSdp, 'appSdp', is.string);
    readIceDescription(appSdp); // a body that is not SDP is refused before any agent gathers
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
    args([sdp, 'sdp', is.string], [type, 'type', is.oneOf('offer', 'answer')]);
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
    arg(body, 'body', is.string);
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
      // Counted from the application's answer (its rtcp-mux or not), not from a local description: none exists yet.
      return this.#oa.answerTransports(appSdp).filter((t) => t.mode !== 'rejected').map((t) => ({ index: t.transportIndex, components: t.components }));
    }
    // Offer: one transport per m= section of the application's SDP (BUNDLE groups are the app's choice; without
    // BUNDLE each section needs its own agent). RFC 5761 §5.1.3: a section offering rtcp-mux also gets an RTCP
    // component (and a=rtcp), dropped if the answer accepts mux, so a peer that declines it still finds RTCP.
    // rtcp-mux-only (RFC 8858) and sections that do not carry RTP (a data channel's UDP/DTLS/SCTP) need one.
    return readIceDescription(appSdp).media.map((m) => ({
      index: m.index,
      // On a udpMux or tcpMux RTCP rides on RTP: one port carries every component of every call.
      components: m.rtcpMuxOnly || !/RTP/i.test(m.protocol) || this.#options.udpMux || this.#options.tcpMux ? 1 : (this.#options.rtcpComponents ?? 2),
    }));
  }

  /**
   * Fits a transport's agent to the negotiated component count: the answer accepted rtcp-mux (RFC 5761 §5.1.3), so
   * the RTCP component the offer carried goes. An agent with fewer components than the plan (the peer ignored our
   * rtcp-mux-only, RFC 8858 §4) keeps them: RTCP stays on the RTP component, with a warning.
   */
  #fitComponents(agent: IceAgent, plan: IceTransportPlan): void {
    if (plan.mode === 'rejected') return;
    if (agent.components > plan.components) {
      while (agent.components > plan.components) agent.dropComponent(agent.components);
      this.#oa.setLocalCandidates(plan.transportIndex, agent.getLocalCandidates());
      return;
    }
    const muxOnly = this.#oa.localDescription?.media[plan.transportIndex]?.rtcpMuxOnly === true;
    const declined = this.#oa.remote?.streams[plan.transportIndex]?.rtcpMux === false;
    if ((agent.components < plan.components || (muxOnly && declined)) && !this.#componentWarned.has(plan.transportIndex)) {
      this.#componentWarned.add(plan.transportIndex);
      this.#warn(`m-section ${plan.transportIndex}: the peer does not multiplex RTCP, but this transport has no RTCP component (rtcp-mux-only offered, RFC 8858): RTCP stays on the RTP component`);
    }
  }

  #ensureAgent(index: number, components: number): IceAgent {
    let agent = this.#agents.get(index);
    if (agent) return agent;
    const { trickle: _t, rtcpComponents: _r, maxMediaSections: _m, trace, ...agentOptions } = this.#options;
    const creds = this.#oa.localParameters;
    // An agent on a udpMux or tcpMux has one component (an answer to an offer without rtcp-mux warns, see #fitComponents).
    const n = agentOptions.udpMux || agentOptions.tcpMux ? 1 : components;
    // One sink for every transport's agent: each event says which (its transport index).
    const agentTrace = trace ? { trace: (e: TraceEvent) => trace({ ...e, agent: index }) } : {};
    agent = new IceAgent({ ...agentOptions, ...agentTrace, checklistLimit: this.#checklistShare, remoteAddressBudget: this.#addressBudget, role: this.#role ?? 'controlling', components: n, ufrag: creds.ufrag, pwd: creds.pwd });
    this.#agents.set(index, agent);
    this.#fed.set(index, 0);
    agent.on('statechange', (s) => this.emit('statechange', s, index));
    agent.on('warning', (m) => this.#warn(m));
    agent.on('latched', (info) => this.emit('latched', info, index));
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
      this.#fitComponents(agent, plan);
      if (plan.mode === 'none' || plan.mode === 'mismatch') {
        const keepalive = this.#noIceKeepalive(plan.transportIndex);
        if (plan.defaultRtp) agent.useWithoutIce(plan.defaultRtp, 1, keepalive);
        // RTCP at the peer's a=rtcp, or at its RTP port + 1 (RFC 3605, RFC 3550 §11), when not multiplexed.
        if (plan.defaultRtcp && plan.components > 1 && agent.components > 1) agent.useWithoutIce(plan.defaultRtcp, 2, keepalive);
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
      for (const c of plan.remoteCandidates.slice(fed)) {
        // RFC 5761 §5.1.3: an offer with rtcp-mux may carry RTCP candidates as a fallback; once mux is agreed they
        // are expected and unused, so they are not handed to the agent (which would warn about each one).
        if (c.component > agent.components && plan.components < c.component) continue;
        agent.addRemoteCandidate(c);
      }
      this.#fed.set(plan.transportIndex, plan.remoteCandidates.length);
      if (plan.remoteEndOfCandidates && !this.#eocFed.has(plan.transportIndex)) {
        this.#eocFed.add(plan.transportIndex);
        agent.endOfRemoteCandidates();
      }
    }
  }

  /**
   * RFC 6263 §4.6: RTP keepalives carry a payload type neither description uses (unless the application chose one).
   * A transport that does not carry RTP (e.g. UDPTL) gets none, unless the application asked for STUN: the peer
   * would not know what to do with RTP or RTCP.
   */
  #noIceKeepalive(transportIndex: number): NoIcePathOptions {
    const remote = this.#oa.remoteDescription;
    if (!/RTP/i.test(remote?.media[transportIndex]?.protocol ?? 'RTP')) return this.#options.withoutIce?.keepalive === 'stun' ? {} : { keepalive: 'none' };
    if (this.#options.withoutIce?.payloadType !== undefined) return {};
    const formats = [...(remote?.media ?? []), ...(this.#oa.localDescription?.media ?? [])].map((m) => m.formats);
    const payloadType = unusedPayloadType(formats);
    // Every candidate type in use (there are 61): no RTP packet would surely be discarded.
    return payloadType !== undefined ? { payloadType } : { keepalive: 'none' };
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
