/**
 * `IceAgent`: the Node edge of icewire, shaped like the W3C RTCIceTransport. It binds UDP sockets on the selected
 * host addresses, resolves the configured ICE servers, and drives one sans-IO {@link AgentMachine} with real
 * timers. Application data and STUN share each socket; the first byte tells them apart (RFC 7983, `stun/demux.ts`).
 * @module
 */
import { EventEmitter } from 'eventemitter3';
import { AgentMachine, checkPathOptions, type AgentMachineEvent, type AgentMachineStats, type LatchReason, type NoIcePathOptions, type StreamBase } from '../agent-machine.js';
import { arg, args, is } from '../arguments.js';
import type { Candidate, LocalCandidate } from '../candidates/candidate.js';
import { DEFAULT_GATHER_TIMEOUT_MS } from '../candidates/gatherer.js';
import { formatCandidate, parseCandidate, validateCandidate } from '../candidates/grammar.js';
import { signalledCandidate } from '../candidates/signal.js';
import type { DataEvent } from '../checklist/data-path.js';
import type { PairState } from '../checklist/pair.js';
import type { TcpReceived } from '../checklist/tcp.js';
import type { AgentState, IceParameters, LocalIceParameters, PairInfo } from '../checklist/types.js';
import { processWidePacer } from './pacer.js';
import { IceArgumentError, InvalidStateError } from '../errors.js';
import { isDataByte } from '../stun/demux.js';
import type { Datagram, IceRole, RandomSource, TransportAddress } from '../types.js';
import { MachineDriver, warnCallbackError } from './driver.js';
import { agentMachineOptions, type IceAgentOptions } from './ice-agent-options.js';
import { listHostAddresses } from './interfaces.js';
import type { MdnsSocket, MdnsSocketOptions } from './mdns-socket.js';
import { cryptoRandom } from './random.js';
import { nodeTurnResolver, resolveIceServers } from './turn-resolve.js';
import { UdpEndpoint } from './udp-endpoint.js';
import type { UdpMuxPort } from './udp-mux.js';
// Loaded on first use (TURN over TCP/TLS, mDNS): a fresh process that needs neither does not pay for them.
import type { TurnStreams } from './turn-streams.js';
import type { TcpEndpoint } from './tcp-endpoint.js';
import type { TcpMuxPort } from './tcp-mux.js';

/** Bound on an ICE-TCP connection attempt at the socket (the core gives up on its own after 10 s too). */
const DEFAULT_TCP_CONNECT_TIMEOUT_MS = 10_000;

// Declared beside their mapping to the machine's options; this module stays the place to import them from.
export type { IceAgentOptions };

/** Gathering state, as in RTCIceGatheringState. */
export type IceGatheringState = 'new' | 'gathering' | 'complete';

/** The selected pair as RTCIceCandidatePair-like values. */
export interface IceCandidatePair {
  readonly local: LocalCandidate;
  readonly remote: Candidate;
}

/** A checklist entry as `pairstatechange` reports it: the checklist's progress, pair by pair. */
export interface IceCandidatePairState extends IceCandidatePair {
  readonly id: string;
  readonly state: PairState;
  readonly nominated: boolean;
}

/** Typed events (eventemitter3). */
export interface IceAgentEvents {
  /** A local candidate to signal (already in its signalled form: mDNS name instead of address when hidden). */
  candidate: [candidate: Candidate];
  /** Gathering finished for all components (end-of-candidates). */
  gatheringstatechange: [state: IceGatheringState];
  statechange: [state: AgentState];
  selectedcandidatepairchange: [pair: IceCandidatePair, component: number];
  /** A candidate pair of the checklist changed state (frozen, waiting, in-progress, succeeded, failed). */
  pairstatechange: [pair: IceCandidatePairState, component: number];
  /** Application data received on a valid pair. */
  data: [data: Buffer, component: number, from: TransportAddress];
  /**
   * A component running without ICE sends to a new address: the source of what came back (`first-packet`), the
   * signalled address again (`signalled`), or another source after the latched one fell silent (`source-silent`).
   */
  latched: [info: { readonly component: number; readonly remote: TransportAddress; readonly previous: TransportAddress; readonly reason: LatchReason }];
  /** A STUN/TURN server did not yield a candidate, or a remote candidate was dropped. Informational. */
  warning: [message: string];
  /** An exception thrown by a listener; it never corrupts the agent. */
  error: [error: unknown];
}

/** Argument rule of a component id (RFC 8839 §5.1: 1..256). */
const COMPONENT = is.int(1, 256);

/** Default of `IceAgentOptions.closeTimeoutMs`. */
const DEFAULT_CLOSE_TIMEOUT_MS = 2000;

/**
 * A full (or lite) ICE agent on real UDP sockets.
 *
 * ```ts
 * const agent = new IceAgent({ includeLoopback: true, addressFilter: (a) => a === '127.0.0.1' });
 * await agent.gather();
 * // signal agent.getLocalParameters() and agent.getLocalCandidates() to the peer, then:
 * agent.setRemoteParameters(remoteParams);
 * for (const c of remoteCandidates) agent.addRemoteCandidate(c);
 * ```
 *
 * Every method checks its arguments at the call: a value of the wrong type or out of range (from plain JavaScript,
 * JSON or `as any`) throws `IceArgumentError`, a bad candidate record `CandidateParseError`; never a raw `TypeError`.
 */
export class IceAgent extends EventEmitter<IceAgentEvents> {
  readonly #options: IceAgentOptions;
  readonly #random: RandomSource;
  #machine: AgentMachine | undefined;
  #driver: MachineDriver | undefined;
  #endpoint: UdpEndpoint | undefined;
  /** Sockets a restart replaced, still carrying the previous pairs until `bases-released` (see `restart`). */
  readonly #oldEndpoints: UdpEndpoint[] = [];
  /** The host addresses gathering binds on (one socket per component on each); a restart binds them anew. */
  #hostAddresses: readonly string[] = [];
  /** A restart's sockets are being bound: a second restart meanwhile takes new credentials and shares them. */
  #rebinding: Promise<void> | undefined;
  /** This agent's place on `options.udpMux`, and the mux bases it gathers on. */
  #mux: UdpMuxPort | undefined;
  #muxBases: readonly TransportAddress[] = [];
  /** ICE-TCP listening sockets and connections (RFC 6544), when `transports` has `'tcp'`. */
  #tcp: TcpEndpoint | undefined;
  /** This agent's place on `options.tcpMux` (its passive candidate's port). */
  #tcpMux: TcpMuxPort | undefined;
  /** The ICE-TCP bases handed to the machine (kept over restarts, RFC 6544 §9.2). */
  #tcpBases: StreamBase[] = [];
  /** Connections to TURN servers over TCP/TLS (only when one is configured). */
  #turnStreams: TurnStreams | undefined;
  #mdns: MdnsSocket | undefined;
  #state: AgentState = 'new';
  #gatheringState: IceGatheringState = 'new';
  #role: IceRole;
  #gathering: Promise<void> | undefined;
  #closing: Promise<void> | undefined;
  readonly #localCandidates: Candidate[] = [];
  /** The selected pair of each component, by component id (an array: no Map per idle agent). */
  readonly #selected: (IceCandidatePair | undefined)[] = [];
  /** Commands given before gather() finished binding, replayed once the machine exists. */
  readonly #early: ((m: AgentMachine) => void)[] = [];
  /** Ends `gather()`'s wait for completion (set while it waits). */
  #endGatherWait: (() => void) | undefined;
  /** A drain of the commands given in this synchronous run is queued (see #command). */
  #flushQueued = false;
  /** While the data fast path runs: the received bytes and the Buffer dgram delivered them in. */
  #received: Uint8Array | undefined;
  #receivedBuffer: Buffer | undefined;
  /** Components this agent runs: `options.components`, less those dropped (`dropComponent`). */
  #components: number;
  /** Components `send()` already warned about (one warning each, not one per RTCP report); made at the first. */
  #warnedSends: Set<number> | undefined;
  /** The data events of one ICE-TCP chunk on the direct route (reused; made at the first chunk). */
  #tcpOut: DataEvent[] | undefined;
  /** Sockets of dropped components being released (TURN first), awaited by close(); made at the first drop. */
  #releasing: Set<Promise<void>> | undefined;

  constructor(options: IceAgentOptions = {}) {
    super();
    args([
      options,
      'options',
      is.record({
        role: is.optional(is.oneOf('controlling', 'controlled')),
        lite: is.optional(is.boolean),
        components: is.optional(is.int(1, 256)),
        transports: is.optional(is.array(is.oneOf('udp', 'tcp'))),
        tcpTypes: is.optional(is.array(is.oneOf('active', 'passive'))),
      }),
    ]);
    if (options.transports !== undefined && options.transports.length === 0) throw new IceArgumentError('options.transports', 'expected at least one of udp, tcp');
    this.#options = options;
    this.#random = options.random ?? cryptoRandom;
    this.#role = options.lite ? 'controlled' : (options.role ?? 'controlling');
    this.#components = options.components ?? 1;
    if ((options.udpMux !== undefined || options.tcpMux !== undefined) && this.#components !== 1) {
      throw new IceArgumentError('options.components', 'an agent on a udpMux or tcpMux has one component (RTCP multiplexed on RTP)');
    }
    if (options.tcpMux !== undefined && options.transports !== undefined && !options.transports.includes('tcp')) {
      throw new IceArgumentError('options.transports', 'an agent on a tcpMux gathers ICE-TCP candidates: include "tcp"');
    }
  }

  /** Components this agent runs now (`options.components`, less those dropped by {@link dropComponent}). */
  get components(): number {
    return this.#components;
  }

  /** The transports gathered: `options.transports`, by default `['udp']`, or `['udp', 'tcp']` on a tcpMux. */
  get #transports(): readonly ('udp' | 'tcp')[] {
    return this.#options.transports ?? (this.#options.tcpMux ? ['udp', 'tcp'] : ['udp']);
  }

  /** Connection state (RTCIceTransportState values). */
  get state(): AgentState {
    return this.#state;
  }

  get gatheringState(): IceGatheringState {
    return this.#gatheringState;
  }

  get role(): IceRole {
    return this.#machine?.core.role ?? this.#role;
  }

  /**
   * Binds sockets and gathers candidates. Resolves when gathering is complete (every candidate has also been
   * emitted as a `candidate` event, so trickle users need not wait). Calling it again returns the same promise.
   */
  gather(): Promise<void> {
    this.#gathering ??= this.#gather();
    return this.#gathering;
  }

  async #gather(): Promise<void> {
    this.#assertOpen();
    const o = this.#options;
    const udpMux = o.udpMux;
    if (udpMux?.closed) throw new InvalidStateError('the udpMux is closed');
    if (o.tcpMux?.closed) throw new InvalidStateError('the tcpMux is closed');
    const hosts = udpMux ? [] : listHostAddresses(o);
    // A lite (or passive-only) TCP agent on a tcpMux without UDP needs no host address of its own.
    const tcpActive = !o.lite && (o.tcpTypes ?? ['active', 'passive']).includes('active');
    const needsHosts = this.#transports.includes('udp') || !o.tcpMux || tcpActive;
    if (!udpMux && needsHosts && hosts.length === 0) throw new InvalidStateError('no host address passed the interface/address filters');
    const { stunServers, turnServers, turnNames } = await resolveIceServers(o.iceServers ?? [], o.resolver ?? nodeTurnResolver, this.#random, (m) =>
      this.#warn(m),
    );
    if (turnServers.some((t) => t.transport !== 'udp')) this.#turnStreams = await this.#openTurnStreams(turnNames);
    if (o.iceTransportPolicy === 'relay' && turnServers.length === 0) {
      this.#warn('iceTransportPolicy "relay" without a usable TURN server: no candidate will be gathered');
    }
    this.#assertOpen();
    // Read after the awaits above: a component dropped meanwhile (the answer accepted rtcp-mux) gets no socket.
    const components = this.#components;
    // On a mux, own sockets only for TURN (on the mux's addresses): the mux socket cannot hold an allocation per agent.
    this.#hostAddresses = udpMux ? (turnServers.length > 0 ? udpMux.addresses.map((a) => a.address) : []) : hosts.map((h) => h.address);
    this.#endpoint = this.#hostAddresses.length > 0 ? await this.#bind() : undefined;
    if (this.#closing) {
      await this.#endpoint?.close();
      throw new InvalidStateError('IceAgent closed during gather()');
    }
    if (this.#transports.includes('tcp')) {
      try {
        // Active candidates (and passive ones without a tcpMux) on the host addresses, or the udpMux's.
        await this.#listenTcp(components, udpMux ? udpMux.addresses.map((a) => a.address) : hosts.map((h) => h.address));
      } catch (error) {
        await this.#endpoint?.close();
        throw error;
      }
    }
    this.#muxBases = udpMux ? udpMux.addresses : [];
    const bases: StreamBase[] = udpMux
      ? [
          ...this.#muxBases.map((address): StreamBase => ({ address, component: 1, serves: 'host' })),
          ...(this.#endpoint ? this.#basesOf(this.#endpoint).filter((b) => b.transport !== 'tcp').map((b): StreamBase => ({ ...b, serves: 'relay' })) : []),
          ...this.#tcpBases,
        ]
      : this.#endpoint
        ? this.#basesOf(this.#endpoint)
        : [...this.#tcpBases];
    if (o.mdns) {
      const mdnsOptions: MdnsSocketOptions = typeof o.mdns === 'object' ? o.mdns : {};
      try {
        const { MdnsSocket } = await import('./mdns-socket.js');
        this.#mdns = await MdnsSocket.open({ random: this.#random, ...mdnsOptions });
      } catch (error) {
        // gather() rejects: the host sockets bound above must not outlive it (a caller may never call close()).
        await this.#endpoint?.close();
        throw error;
      }
    }
    const mdns = this.#mdns;
    const pacer = o.pacer === false ? undefined : (o.pacer ?? processWidePacer());
    const machine = new AgentMachine(
      agentMachineOptions(o, { random: this.#random, role: this.#role, components, bases, stunServers, turnServers, mdns, pacer }),
    );
    if (udpMux || o.tcpMux) {
      const ufrag = machine.core.getLocalParameters(0).ufrag;
      try {
        if (udpMux) this.#mux = udpMux.open(ufrag, (d, buffer) => this.#receive(d, buffer));
        if (o.tcpMux) this.#tcpMux = o.tcpMux.open(ufrag, (socket, bytes) => void (this.#tcp?.adopt(socket, bytes) || socket.destroy()));
      } catch (error) {
        this.#mux?.close();
        await this.#tcp?.close();
        await this.#endpoint?.close();
        await this.#mdns?.close();
        throw error;
      }
    }
    this.#machine = machine;
    this.#driver = new MachineDriver({
      send: (d) => this.#sendOut(d),
      ...(pacer ? { pacer } : {}),
      onCallbackError: (error, source) => {
        if (source === 'event' && this.listenerCount('error') > 0) super.emit('error', error);
        else warnCallbackError(error, source);
      },
    });
    const done = this.#gatheringComplete();
    // Core commands before attach so that the first drain carries them.
    for (const f of this.#early.splice(0)) f(machine);
    // A component dropped while the sockets were being bound: dropped before gathering starts.
    for (let c = components; c > this.#components; c--) this.#dropInMachine(machine, c);
    this.#syncMux(machine); // an early restart() changed the ufrag
    machine.gather(this.#driver.now());
    this.#driver.attach(machine, (e) => this.#onEvent(e));
    if (this.#closing) this.#endGatherWait?.(); // close() came during the awaits above
    if (this.#gatheringState !== 'complete') await done;
    this.#endGatherWait = undefined;
  }

  /** Local ufrag/pwd, lite flag and ice-options. Available once `gather()` has bound the sockets. */
  getLocalParameters(): LocalIceParameters {
    const m = this.#machine;
    if (!m) throw new InvalidStateError('call gather() first');
    return m.core.getLocalParameters(0);
  }

  /** The local candidates gathered so far, in signalled form. */
  getLocalCandidates(): readonly Candidate[] {
    return this.#localCandidates;
  }

  /**
   * Sets the peer's ufrag/pwd (and lite flag, Ta proposal). A changed ufrag/pwd means the peer restarted ICE: unless
   * this agent restarted first, it restarts too (new local ufrag/pwd to signal back), and the peer's candidates must
   * be added again. The values are checked by the rule the SDP reader applies to `a=ice-ufrag`/`a=ice-pwd` (RFC 8839
   * §5.4: ufrag 4..256, pwd 22..256 ice-chars); `IceArgumentError` otherwise.
   */
  setRemoteParameters(params: IceParameters): void {
    arg(params, 'params', is.iceParameters);
    this.#command((m) => m.setRemoteParameters(0, params));
  }

  /**
   * Adds a remote candidate: a record or an `a=candidate` line. `.local` names are resolved through the mDNS socket
   * (dropped with a warning when `mdns` is off or the name does not resolve).
   */
  addRemoteCandidate(candidate: Candidate | string): void {
    const c = typeof candidate === 'string' ? parseCandidate(candidate) : candidate;
    // Checked now, not when the queued command runs: a bad record is the caller's typed error, at the call.
    validateCandidate(c);
    this.#command((m) => m.addRemoteCandidate(this.#driver!.now(), 0, c));
  }

  /** The peer has no more candidates (RFC 8838 end-of-candidates); held by the machine while names resolve. */
  endOfRemoteCandidates(): void {
    this.#command((m) => m.endOfRemoteCandidates(0));
  }

  /** The selected pair of a component (default 1), once nominated. */
  getSelectedCandidatePair(component = 1): IceCandidatePair | undefined {
    arg(component, 'component', COMPONENT);
    return this.#selected[component];
  }

  /**
   * Sends application data on the selected pair of `component` (or on a valid pair before selection, RFC 8445
   * §12.1). Returns false when there is no pair to send on or consent was lost.
   */
  send(data: Uint8Array, component = 1): boolean {
    arg(data, 'data', is.bytes); arg(component, 'component', COMPONENT); // no allocation on the data path
    const m = this.#machine;
    const d = this.#driver;
    if (!m || !d || this.#closing) return false;
    if (!(component >= 1 && component <= this.#components && Number.isInteger(component))) {
      // Silently false would hide RTCP going nowhere (e.g. sent on component 2 once rtcp-mux was accepted).
      this.#warnedSends ??= new Set();
      if (!this.#warnedSends.has(component)) {
        this.#warnedSends.add(component);
        this.#warn(`send() on component ${component}, which this agent does not have (it has ${this.#components}): dropped`);
      }
      return false;
    }
    const selected = this.#selected[component];
    if (selected !== undefined && m.directData) {
      // Direct path: the core hands back the datagram, which leaves at once (a relayed one goes through its TURN
      // client and the usual queue). Sending data never moves a deadline earlier: no drain, no timer re-arm.
      const t = m.takeSend(d.now(), 0, component, data);
      if (t === undefined) return false;
      if (t === null) this.#flush(m, d);
      else {
        try {
          this.#sendOut(t);
        } catch (error) {
          warnCallbackError(error, 'send');
        }
      }
      return true;
    }
    const ok = m.send(d.now(), 0, component, data);
    if (ok && selected !== undefined && selected.local.type !== 'relay') {
      // Data fast path: on a non-relayed selected pair the core only queued this datagram; sending data never moves
      // a deadline earlier, so the driver's full drain and timer re-arm can be skipped.
      this.#flush(m, d);
    } else {
      d.kick(m);
    }
    return ok;
  }

  /**
   * Runs `component` without ICE towards `remote` (a peer whose SDP has no ICE, or an ICE mismatch): data goes from
   * the component's first host socket, the destination latches on to what answers (symmetric RTP, `latched`
   * events), and RTP/RTCP keepalives hold the NAT binding open (`withoutIce` options; `options` overrides the
   * keepalive for this component). The state is `checking` until the peer's data arrives, then `connected`, and
   * `disconnected` while it is silent for `withoutIce.silenceTimeoutMs`.
   */
  useWithoutIce(remote: TransportAddress, component = 1, options?: NoIcePathOptions): void {
    args([remote, 'remote', is.address], [component, 'component', COMPONENT]);
    if (options) checkPathOptions(options);
    this.#command((m) => m.useWithoutIce(this.#driver!.now(), 0, component, remote, undefined, options));
  }

  /**
   * Drops the agent's last component (never component 1): the answer accepted `a=rtcp-mux` for an offer that also
   * carried RTCP candidates (RFC 5761 §5.1.3), so RTCP now rides on component 1. Its candidates, pairs, checks and
   * consent go at once; its TURN allocations are released, then its sockets closed. Throws `InvalidStateError` for
   * any other component.
   */
  dropComponent(component: number): void {
    arg(component, 'component', COMPONENT);
    this.#assertOpen();
    if (!Number.isInteger(component) || component < 2 || component !== this.#components) {
      throw new InvalidStateError(`only the last component (${this.#components}) can be dropped, and never component 1; got ${component}`);
    }
    this.#components = component - 1;
    this.#selected[component] = undefined;
    for (let i = this.#localCandidates.length - 1; i >= 0; i--) if (this.#localCandidates[i]!.component === component) this.#localCandidates.splice(i, 1);
    // Before the machine exists, #gather binds no socket for it, or drops it before gathering.
    if (this.#machine) this.#command((m) => this.#dropInMachine(m, component));
  }

  /**
   * ICE restart (RFC 8445 §9): new local ufrag/pwd at once; signal them, then set the peer's new parameters. Unless
   * `restartKeepsPorts`, new host sockets are bound and the new session gathers on them: `gather()` then returns
   * the promise of that gathering, `getLocalCandidates()` lists the new session's candidates, and `candidate`
   * events bring them. The old sockets carry the previous pair until the new session selects one, then close.
   */
  restart(): void {
    // On a mux the port is the mux's: the new ufrag is routed beside the old one (#syncMux).
    if (this.#options.restartKeepsPorts || this.#options.udpMux || !this.#machine || !this.#driver || this.#hostAddresses.length === 0) {
      this.#command((x) => x.restart(this.#driver!.now()));
      return;
    }
    this.#command((x) => x.restart(this.#driver!.now(), 'pending'));
    this.#localCandidates.length = 0;
    if (this.#rebinding) return;
    const rebinding = this.#gatherAgain().finally(() => {
      if (this.#rebinding === rebinding) this.#rebinding = undefined;
    });
    this.#rebinding = rebinding;
    this.#gathering = rebinding;
  }

  /** Binds the restart's sockets and gathers on them; on a bind failure the new session gathers on the old ones. */
  async #gatherAgain(): Promise<void> {
    const previous = this.#endpoint!;
    let bases: StreamBase[];
    try {
      const endpoint = await this.#bind();
      if (this.#closing) {
        await endpoint.close();
        return;
      }
      this.#oldEndpoints.push(previous);
      this.#endpoint = endpoint;
      bases = this.#basesOf(endpoint);
    } catch (error) {
      if (this.#closing) return;
      this.#warn(`restart: new host sockets could not be bound (${error instanceof Error ? error.message : String(error)}), keeping the old ones`);
      bases = this.#basesOf(previous);
    }
    const done = this.#gatheringComplete();
    this.#rebinding = undefined; // from here a new restart binds anew
    this.#command((x) => x.useBases(this.#driver!.now(), bases));
    await done;
    this.#endGatherWait = undefined;
  }

  /** Resolves when gathering completes, or when close() ends the wait (it does not wait for a slow or dead server). */
  #gatheringComplete(): Promise<void> {
    return new Promise<void>((resolve) => {
      const onState = (s: IceGatheringState) => {
        if (s !== 'complete') return;
        this.off('gatheringstatechange', onState);
        resolve();
      };
      this.on('gatheringstatechange', onState);
      this.#endGatherWait = () => {
        this.off('gatheringstatechange', onState);
        resolve();
      };
    });
  }

  /** Binds one UDP socket per component (as many as remain) and host address. */
  #bind(): Promise<UdpEndpoint> {
    const o = this.#options;
    const hosts = this.#hostAddresses;
    const addresses: string[] = [];
    if (this.#transports.includes('udp')) for (let c = 1; c <= this.#components; c++) addresses.push(...hosts);
    // RFC 3550 §11: RTP on an even port and RTCP on the next one where both are free (a=rtcp says where it is).
    const rtpRtcpPairs = this.#components >= 2 && addresses.length > 0 ? hosts.map((_h, i): [number, number] => [i, hosts.length + i]) : [];
    return UdpEndpoint.bind({
      addresses,
      rtpRtcpPairs,
      onDatagram: (d, buffer) => this.#receive(d, buffer),
      onError: (e) => this.#warn(`socket: ${e instanceof Error ? e.message : String(e)}`),
      random: this.#random,
      ...(o.portRange ? { portRange: o.portRange } : {}),
      ...(o.recvBufferSize !== undefined ? { recvBufferSize: o.recvBufferSize } : {}),
      ...(o.sendBufferSize !== undefined ? { sendBufferSize: o.sendBufferSize } : {}),
    });
  }

  #basesOf(endpoint: UdpEndpoint): StreamBase[] {
    const udp = endpoint.addresses.map((address, i): StreamBase => ({ address, component: Math.floor(i / this.#hostAddresses.length) + 1 }));
    return this.#tcpBases.length > 0 ? [...udp, ...this.#tcpBases] : udp;
  }

  /**
   * ICE-TCP (RFC 6544 §5.1): a listening socket per address and component for passive candidates, and active
   * candidates whose connections the machine asks for (`tcp-connect`).
   */
  async #listenTcp(components: number, hosts: readonly string[]): Promise<void> {
    const o = this.#options;
    const types = o.lite ? ['passive'] : (o.tcpTypes ?? ['active', 'passive']);
    const listen: string[] = [];
    // On a tcpMux the mux listens for every agent (one component): no listening socket of our own.
    if (types.includes('passive') && !o.tcpMux) for (let c = 1; c <= components; c++) listen.push(...hosts);
    const { TcpEndpoint } = await import('./tcp-endpoint.js');
    const run = (f: (m: AgentMachine, now: number) => void): void => this.#runOnMachine(f);
    this.#tcp = await TcpEndpoint.listen({
      listen,
      connectTimeoutMs: o.tcpConnectTimeoutMs ?? DEFAULT_TCP_CONNECT_TIMEOUT_MS,
      onData: (datagram) => this.#receiveTcp(datagram),
      onAccepted: (local, remote) => {
        let id: string | undefined;
        run((m, now) => (id = m.tcpAccepted(now, local, remote)));
        return id;
      },
      onConnected: (id, local) => {
        let wanted = false;
        run((m, now) => (wanted = m.tcpConnected(now, id, local)));
        return wanted;
      },
      onConnectFailed: (id) => run((m, now) => m.tcpConnectFailed(now, id)),
      onClosed: (id) => run((m, now) => m.tcpClosed(now, id)),
      onError: (e) => warnCallbackError(e, 'machine'),
    });
    const bases: StreamBase[] = [];
    this.#tcp.addresses.forEach((address, i) => bases.push({ address, component: Math.floor(i / hosts.length) + 1, transport: 'tcp', tcpType: 'passive' }));
    if (o.tcpMux && types.includes('passive')) for (const address of o.tcpMux.addresses) bases.push({ address, component: 1, transport: 'tcp', tcpType: 'passive' });
    if (types.includes('active')) {
      for (let c = 1; c <= components; c++) for (const h of hosts) bases.push({ address: { address: h, port: 9 }, component: c, transport: 'tcp', tcpType: 'active' });
    }
    this.#tcpBases = bases;
  }

  /** Closes the sockets a restart replaced once the machine released all their bases. */
  #closeReleased(bases: readonly StreamBase[]): void {
    const gone = new Set(bases.map((b) => `${b.address.address}|${b.address.port}`));
    for (let i = this.#oldEndpoints.length - 1; i >= 0; i--) {
      const e = this.#oldEndpoints[i]!;
      if (!e.addresses.every((a) => gone.has(`${a.address}|${a.port}`))) continue;
      this.#oldEndpoints.splice(i, 1);
      // After this drain's transmits (a TURN allocation's deletion leaves from it).
      setTimeout(() => void e.close(), 0);
    }
  }

  /** Per-pair statistics in the shape of RTCIceCandidatePairStats, and those of components running without ICE. */
  getStats(): AgentMachineStats | undefined {
    return this.#machine?.getStats();
  }

  /**
   * Closes the agent: checks stop, TURN allocations are released, sockets and timers are freed. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    // Off the mux at once: nothing more reaches this agent there, and its routes are free for others.
    this.#mux?.close();
    this.#tcpMux?.close();
    this.#endGatherWait?.();
    await this.#gathering?.catch(() => undefined);
    const m = this.#machine;
    const d = this.#driver;
    if (m && d) {
      m.close(d.now());
      d.kick(m);
      // TURN allocations are deleted on their servers (an Allocate in flight is awaited and its allocation deleted):
      // wait for the answers, bounded, and say what is left to expire on a server.
      const deadline = d.now() + (this.#options.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS);
      while (!m.released && d.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      if (!m.released) {
        const left = m.unreleasedServers().map((s) => `${s.address}:${s.port}`);
        this.#warn(`TURN allocation(s) not released within ${this.#options.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS} ms on ${left.join(', ')}: they expire on the server`);
      }
      d.close();
    }
    await Promise.all(this.#releasing ?? []);
    // After the deallocations had their chance: their Refresh and its answer travel on these connections.
    await this.#turnStreams?.close();
    await this.#tcp?.close();
    await this.#mdns?.close();
    await this.#endpoint?.close();
    await Promise.all(this.#oldEndpoints.splice(0).map((e) => e.close()));
    this.#setState('closed');
  }

  /** Drops `component` in the machine; its sockets close once the TURN allocations sharing them are released. */
  #dropInMachine(m: AgentMachine, component: number): void {
    const bases = m.dropComponent(this.#driver!.now(), 0, component);
    if (this.#tcp !== undefined) {
      // Its ICE-TCP listeners close at once (no TURN allocation shares them; the machine closed its connections),
      // and a restart gathers on them no more.
      this.#tcpBases = this.#tcpBases.filter((b) => b.component !== component);
      this.#trackRelease(this.#tcp.closeListeners(bases));
    }
    const endpoint = this.#endpoint;
    if (!endpoint || bases.length === 0) return;
    const d = this.#driver!;
    const deadline = d.now() + (this.#options.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS);
    const done = (async () => {
      while (!m.releasedOn(bases) && d.now() < deadline && !endpoint.closed) await new Promise((r) => setTimeout(r, 10));
      await endpoint.closeSockets(bases);
    })();
    this.#trackRelease(done);
  }

  /** Sockets being closed that close() awaits. */
  #trackRelease(done: Promise<void>): void {
    const releasing = (this.#releasing ??= new Set());
    releasing.add(done);
    void done.finally(() => releasing.delete(done));
  }

  /**
   * UDP datagrams leave by the host sockets (after a restart, the previous pair's by the old ones); TURN-over-TCP/TLS
   * transmits by their connection.
   */
  #sendOut(d: Datagram): void {
    if (d.transport !== undefined && d.transport !== 'udp') {
      if (d.transport === 'tcp' && this.#tcp?.owns(d)) this.#tcp.send(d);
      else this.#turnStreams?.send(d);
      return;
    }
    const mux = this.#mux;
    if (mux !== undefined && this.#isMuxBase(d.local)) {
      mux.send(d);
      return;
    }
    if (this.#oldEndpoints.length > 0) {
      for (const e of this.#oldEndpoints) {
        if (e.addresses.some((a) => a.port === d.local.port && a.address === d.local.address)) return e.send(d);
      }
    }
    this.#endpoint!.send(d);
  }

  /** Whether `local` is one of the mux's sockets (the machine sends from the very base objects it was given). */
  #isMuxBase(local: TransportAddress): boolean {
    const bases = this.#muxBases;
    for (let i = 0; i < bases.length; i++) if (bases[i] === local) return true;
    for (let i = 0; i < bases.length; i++) if (bases[i]!.port === local.port && bases[i]!.address === local.address) return true;
    return false;
  }

  /**
   * Keeps the mux's ufrags of this agent in step with the machine: a restart (ours, or the peer's seen in
   * `setRemoteParameters`) adds the new ufrag; the old ones stay routed while the previous session still carries
   * data (RFC 8445 §9: its consent checks use the old credentials) and go once it no longer does.
   */
  #syncMux(m: AgentMachine): void {
    if (this.#mux === undefined && this.#tcpMux === undefined) return;
    const current = m.core.getLocalParameters(0).ufrag;
    if (this.#mux) this.#syncPort(m, this.#mux, current, 'udpMux');
    if (this.#tcpMux) this.#syncPort(m, this.#tcpMux, current, 'tcpMux');
  }

  /** One mux's share of {@link IceAgent.#syncMux}. */
  #syncPort(m: AgentMachine, mux: UdpMuxPort | TcpMuxPort, current: string, name: string): void {
    if (mux.closed) return;
    const ufrags = mux.ufrags;
    if (ufrags.length === 1 && ufrags[0] === current) return;
    const holds = m.core.holdsPreviousSession;
    for (const u of [...ufrags]) if (u !== current && !holds) mux.removeUfrag(u);
    if (mux.ufrags.includes(current)) return;
    try {
      // At the ufrag limit, the oldest previous ufrag gives way (restarts faster than the peer answers).
      if (mux.ufrags.length >= 4) mux.removeUfrag(mux.ufrags[0]!);
      mux.addUfrag(current);
    } catch (error) {
      this.#warn(`${name}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  /** Feeds a stream edge's news (a connection opened, failed, closed) to the machine, then lets it act on it. */
  #runOnMachine(f: (m: AgentMachine, now: number) => void): void {
    const m = this.#machine;
    const d = this.#driver;
    if (!m || !d || d.closed) return;
    try {
      f(m, d.now());
    } catch (error) {
      warnCallbackError(error, 'machine');
    }
    d.kick(m);
  }

  /** The edge of TURN over TCP/TLS: connections opened on the machine's request, their outcomes fed back to it. */
  async #openTurnStreams(names: ReadonlyMap<string, string>): Promise<TurnStreams> {
    const { TurnStreams } = await import('./turn-streams.js');
    const o = this.#options;
    const run = (f: (m: AgentMachine, now: number) => void): void => this.#runOnMachine(f);
    return new TurnStreams({
      ...(o.turnTls ? { tls: o.turnTls } : {}),
      connectTimeoutMs: o.gatherTimeoutMs ?? DEFAULT_GATHER_TIMEOUT_MS,
      serverName: (server) => names.get(`${server.address}|${server.port}`),
      onDatagram: (datagram) => this.#receive(datagram),
      onConnected: (id, local) => {
        let wanted = false;
        run((m, now) => (wanted = m.turnConnected(now, id, local)));
        return wanted;
      },
      onConnectFailed: (id, reason) => run((m, now) => m.turnConnectionFailed(now, id, reason)),
      onClosed: (id) => run((m, now) => m.turnConnectionClosed(now, id)),
    });
  }

  #command(f: (m: AgentMachine) => void): void {
    this.#assertOpen();
    const m = this.#machine;
    const d = this.#driver;
    if (!m || !d) {
      this.#early.push(f);
      return;
    }
    f(m);
    // Commands given in one synchronous run (parameters, then every candidate, then end-of-candidates) are drained
    // once, in a microtask: one handleTimeout and one timer re-arm instead of one per command, and still before the
    // event loop moves on, so the first check leaves without waiting for a timer.
    if (!this.#flushQueued) {
      this.#flushQueued = true;
      queueMicrotask(() => this.#flushCommands()); // a closure per batch, not one held by every agent
    }
  }

  #flushCommands(): void {
    this.#flushQueued = false;
    const m = this.#machine;
    const d = this.#driver;
    if (!m || !d || d.closed) return;
    try {
      runDue(m, d);
      this.#syncMux(m);
    } catch (error) {
      warnCallbackError(error, 'machine');
    }
    d.kick(m);
  }

  #receive(datagram: Datagram, buffer?: Buffer): void {
    const d = this.#driver;
    const m = this.#machine;
    if (!d || !m || d.closed) return;
    if (isDataByte(datagram.data[0] ?? 0)) {
      // Data fast path (RFC 7983): neither STUN (0..3) nor TURN ChannelData (64..79), so no TURN client or check
      // state is involved; the core turns it into a `data` event without touching any deadline.
      if (m.directData) {
        // The event comes straight back: no routing, no queue, no pump (most of a datagram's cost while cold).
        let e: ReturnType<AgentMachine['takeData']>;
        try {
          e = m.takeData(d.now(), datagram);
        } catch (error) {
          warnCallbackError(error, 'machine');
          return;
        }
        if (e !== undefined) this.#safeEmit('data', buffer ?? Buffer.from(e.data.buffer, e.data.byteOffset, e.data.byteLength), e.component, e.from);
        return;
      }
      this.#received = datagram.data;
      this.#receivedBuffer = buffer;
      try {
        m.handleReceive(d.now(), datagram);
      } catch (error) {
        warnCallbackError(error, 'machine');
      }
      this.#flush(m, d);
      this.#received = this.#receivedBuffer = undefined;
      return;
    }
    // A STUN message may have queued a triggered check or a nomination: the driver's drain runs a deadline that is
    // already due inline (MachineDriver's MAX_INLINE_TIMEOUTS), so it leaves in this same turn, not a timer later.
    d.receive(datagram);
  }

  /**
   * Bytes of an ICE-TCP connection. Mostly data frames: the machine takes the chunk and its events are drained
   * directly (as the UDP data fast path does); only when a deadline moved (a check arrived, a connection closed) does
   * the driver's full drain and timer re-arm run.
   */
  #receiveTcp(datagram: Datagram): void {
    const d = this.#driver;
    const m = this.#machine;
    if (!d || !m || d.closed) return;
    if (m.directData) {
      // Direct route (as UDP's takeData): data frames come back as events, emitted once the machine returned (a
      // listener's commands never run inside it); only a chunk that carried STUN or closed a connection is drained
      // and re-arms the timer.
      const reused = (this.#tcpOut ??= []);
      const out = reused.length === 0 ? reused : []; // a listener's re-entrant receive gets its own
      let r: TcpReceived;
      try {
        r = m.takeTcp(d.now(), datagram, out);
      } catch (error) {
        warnCallbackError(error, 'machine');
        r = 'control';
      }
      for (let i = 0; i < out.length; i++) {
        const e = out[i]!;
        // A view of the socket's chunk, whose memory Node never reuses: the application may keep it, as with UDP.
        this.#safeEmit('data', Buffer.from(e.data.buffer, e.data.byteOffset, e.data.byteLength), e.component, e.from);
      }
      out.length = 0;
      if (r === 'control') d.kick(m);
      return;
    }
    const before = m.pollTimeout();
    try {
      m.handleReceive(d.now(), datagram);
    } catch (error) {
      warnCallbackError(error, 'machine');
    }
    if (m.pollTimeout() === before) this.#flush(m, d);
    else d.kick(m);
  }

  /**
   * Drains the machine's transmits and events directly (the data fast paths), with the driver's error isolation:
   * a throwing listener is reported, never unwound into the machine. No timer re-arm: callers only use it after
   * inputs that cannot move a deadline earlier; an event listener's own commands kick the driver as usual.
   */
  #flush(m: AgentMachine, d: MachineDriver): void {
    for (let t = m.pollTransmit(); t !== undefined; t = m.pollTransmit()) {
      try {
        this.#sendOut(t);
      } catch (error) {
        warnCallbackError(error, 'send');
      }
    }
    for (let e = m.pollEvent(); e !== undefined; e = m.pollEvent()) {
      try {
        this.#onEvent(e);
      } catch (error) {
        if (this.listenerCount('error') > 0) super.emit('error', error);
        else warnCallbackError(error, 'event');
      }
      if (d.closed) return;
    }
  }

  #assertOpen(): void {
    if (this.#closing) throw new InvalidStateError('IceAgent is closed');
  }

  /**
   * Emits without letting a throwing listener unwind into the agent (mediasoup's safeEmit): the exception goes to
   * `error` listeners, or becomes a process warning, and the agent's own state stays consistent.
   */
  #safeEmit<E extends keyof IceAgentEvents>(event: E, ...args: IceAgentEvents[E]): void {
    try {
      (super.emit as (e: E, ...a: IceAgentEvents[E]) => boolean)(event, ...args);
    } catch (error) {
      if (this.listenerCount('error') > 0) super.emit('error', error);
      else warnCallbackError(error, 'event');
    }
  }

  #warn(message: string): void {
    if (this.listenerCount('warning') > 0) this.#safeEmit('warning', message);
  }

  #setState(state: AgentState): void {
    if (this.#state === state) return;
    this.#state = state;
    this.#safeEmit('statechange', state);
  }

  #onEvent(e: AgentMachineEvent): void {
    switch (e.type) {
      case 'candidate': {
        const c = e.candidate;
        const signalled: Candidate = signalledCandidate(c);
        this.#localCandidates.push(signalled);
        this.#safeEmit('candidate', signalled);
        return;
      }
      case 'gathering-state':
        this.#gatheringState = e.state;
        this.#safeEmit('gatheringstatechange', e.state);
        return;
      case 'state':
        if (this.#machine) this.#syncMux(this.#machine);
        this.#setState(e.state);
        return;
      case 'selected-pair': {
        if (this.#machine) this.#syncMux(this.#machine);
        const pair = { local: e.pair.local, remote: e.pair.remote };
        this.#selected[e.component] = pair;
        this.#safeEmit('selectedcandidatepairchange', pair, e.component);
        return;
      }
      case 'pair-state': {
        if (this.listenerCount('pairstatechange') === 0) return;
        const p = this.#machine?.core.getChecklist(e.stream).pairs.find((x) => x.id === e.pairId);
        if (p) this.#safeEmit('pairstatechange', { id: p.id, local: p.local, remote: p.remote, state: e.state, nominated: p.nominated }, e.component);
        return;
      }
      case 'data': {
        // The socket's own Buffer when the core passed its bytes through (the usual case): no second wrapper.
        const data = e.data === this.#received && this.#receivedBuffer !== undefined ? this.#receivedBuffer : Buffer.from(e.data.buffer, e.data.byteOffset, e.data.byteLength);
        this.#safeEmit('data', data, e.component, e.from);
        return;
      }
      case 'server-failed':
        this.#warn(`${e.kind.toUpperCase()} server ${e.server.address}:${e.server.port} failed: ${e.reason}`);
        return;
      case 'turn-connect':
      case 'turn-disconnect':
        this.#turnStreams?.handleEvent(e);
        return;
      case 'tcp-connect':
      case 'tcp-close':
        this.#tcp?.handleEvent(e);
        return;
      case 'latched':
        this.#safeEmit('latched', { component: e.component, remote: e.remote, previous: e.previous, reason: e.reason });
        return;
      case 'remote-candidate-dropped':
        this.#warn(`remote candidate ${formatCandidate(e.candidate)} dropped: ${e.reason}`);
        return;
      case 'bases-released':
        this.#closeReleased(e.bases);
        return;
      case 'resolve-mdns':
        // The machine holds the candidate (and any end-of-candidates behind it) until this answer.
        void this.#mdns?.resolve(e.name, e.families).then((address) => {
          if (!this.#closing) this.#command((m) => m.mdnsResolved(this.#driver!.now(), e.name, address));
        });
        return;
      default:
        return;
    }
  }
}

/**
 * Runs a deadline that is already due (a command or a received check asked for immediate work) at once, instead of
 * through the driver's timer: Node stretches a 0 ms timer to at least 1 ms, which would put a full millisecond
 * before every first check and every triggered check. Pacing is unaffected: the core still asks its Ta and the
 * global pacer (RFC 8445 §14.2) before sending.
 */
function runDue(m: AgentMachine, d: MachineDriver): void {
  const now = d.now();
  const t = m.pollTimeout();
  if (t !== undefined && t <= now) m.handleTimeout(now);
}

export type { PairInfo };
