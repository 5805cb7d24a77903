/**
 * The options of `IceAgent` and how they become the options of its sans-IO `AgentMachine`: the public
 * settings (with their TSDoc) beside the mapping, so that a new option is declared and passed on in one place.
 * @module
 */
import type { AgentMachineOptions, StreamBase, WithoutIceOptions } from '../agent-machine.js';
import type { HostSelectionOptions } from '../candidates/host.js';
import type { RemoteAddressBudget } from '../checklist/address-budget.js';
import type { TraceSink } from '../checklist/trace.js';
import type { NominationMode } from '../checklist/types.js';
import type { GlobalPacer } from '../stun/pacing.js';
import type { IceServerConfig } from '../turnclient/uri.js';
import type { IceRole, RandomSource } from '../types.js';
import type { MdnsSocket, MdnsSocketOptions } from './mdns-socket.js';
import type { TurnDnsResolver } from './turn-resolve.js';
import type { TurnTlsOptions } from './turn-streams.js';
import type { PortRange } from './udp-endpoint.js';
import type { IceTcpMux } from './tcp-mux.js';
import type { IceUdpMux } from './udp-mux.js';

/** Options of `IceAgent`. There are no default servers: icewire contacts only servers you configure. */
export interface IceAgentOptions extends HostSelectionOptions {
  /** Components (1 = RTP only, 2 = RTP + RTCP). Default 1. */
  readonly components?: number;
  /** Initial role. Default `'controlling'` (the offerer's role); a lite agent is always controlled. */
  readonly role?: IceRole;
  /**
   * STUN and TURN servers in RTCIceServer shape (`stun:`, `turn:`, `turns:` URLs). TURN is reached over UDP, TCP
   * (`turn:host?transport=tcp`) or TLS over TCP (`turns:host`); the relayed address is UDP in every case.
   */
  readonly iceServers?: readonly IceServerConfig[];
  /**
   * Transports to gather host candidates for (default `['udp']`). With `'tcp'` the agent also gathers ICE-TCP host
   * candidates (RFC 6544) of the kinds in `tcpTypes`, and checks them beside the UDP ones; `['tcp']` alone gathers
   * TCP candidates only (no UDP socket is bound; STUN and TURN servers are then not used).
   */
  readonly transports?: readonly ('udp' | 'tcp')[];
  /**
   * ICE-TCP candidate kinds to gather when `transports` includes `'tcp'` (default `['active', 'passive']`): a
   * listening socket per address and component for `passive`, connections opened on demand for `active` (signalled
   * with port 9). Simultaneous-open (`so`) is not gathered. A lite agent gathers passive ones only (RFC 6544 §4.4).
   */
  readonly tcpTypes?: readonly ('active' | 'passive')[];
  /** ICE-TCP: how long a connection attempt may take before its pairs fail (ms, default 10000). */
  readonly tcpConnectTimeoutMs?: number;
  /** ICE-TCP: an accepted connection must carry an authenticated check within this, or it is closed (ms, default 10000). */
  readonly tcpFirstCheckTimeoutMs?: number;
  /** ICE-TCP: accepted connections still waiting for their first check, at most (default 32); more are refused. */
  readonly tcpPendingInboundLimit?: number;
  /** Bind host sockets in this port range. */
  readonly portRange?: PortRange;
  /**
   * Share one UDP port with other agents (`IceUdpMux`): the host candidates are the mux's addresses, no socket of
   * its own is bound for them, and a restart keeps them. One component only (RTCP multiplexed on RTP). With TURN
   * servers the agent binds its own sockets for TURN alone (an allocation belongs to one client 5-tuple).
   * The interface filters are not used; `portRange` applies to those TURN sockets.
   */
  readonly udpMux?: IceUdpMux;
  /**
   * Share one listening TCP port with other agents (`IceTcpMux`): the passive ICE-TCP candidate is the mux's
   * address, and a connection whose first check names this agent's ufrag is handed to it. Implies `'tcp'` in
   * `transports` (default then `['udp', 'tcp']`); active candidates are gathered as without a mux. One component only.
   */
  readonly tcpMux?: IceTcpMux;
  /**
   * Keep the host sockets over an ICE restart (default false). By default a restart binds new host sockets, as
   * libwebrtc gathers new ports: a peer then never mistakes our unchanged address for a path of its new session
   * (issue 17). The old sockets carry the previous pair until the new session selects one, then close.
   */
  readonly restartKeepsPorts?: boolean;
  /**
   * SO_RCVBUF / SO_SNDBUF of the host sockets, bytes (default: the OS's). Raise the receive buffer on a server
   * taking many small datagrams a second, or bursts are dropped by the kernel; Linux doubles the value and caps it
   * at `net.core.rmem_max` / `wmem_max`.
   */
  readonly recvBufferSize?: number;
  readonly sendBufferSize?: number;
  /**
   * How long `close()` waits for TURN allocations to be deleted on their servers (default 2000 ms), an Allocate
   * still in flight included. What is not released by then is reported in a `warning` and left to expire on the
   * server (600 s by default).
   */
  readonly closeTimeoutMs?: number;
  /** Hide host addresses behind mDNS `.local` names and resolve remote ones. Default false. */
  readonly mdns?: boolean | MdnsSocketOptions;
  /**
   * W3C `RTCIceTransportPolicy`: `'relay'` signals and uses relayed candidates only (needs a TURN server in
   * `iceServers`; host sockets are still bound, to reach it). Default `'all'`.
   */
  readonly iceTransportPolicy?: 'all' | 'relay';
  /**
   * TLS settings for `turns:` servers: `ca` to trust (e.g. a self-signed certificate), `rejectUnauthorized`
   * (default true), `servername` to verify instead of the host name of the URL (an IP literal is checked against the
   * certificate's IP addresses). TCP and TLS connections to TURN servers give up after `gatherTimeoutMs`.
   */
  readonly turnTls?: TurnTlsOptions;
  /** Act as an ICE-lite agent (answers checks, sends none). */
  readonly lite?: boolean;
  /** Nomination when controlling. Default `'regular'`; `'aggressive'` for RFC 5245 peers. */
  readonly nomination?: NominationMode;
  /** Local Ta proposal in ms (RFC 8445 §14.2, signalled as `a=ice-pacing`). Default: none (50 ms). */
  readonly pacingMs?: number;
  /** Process-wide pacer (RFC 8445 §14.2): default the one every agent of this process shares; `false`: none. */
  readonly pacer?: GlobalPacer | false;
  /** Bound on gathering (ms, default 5000). */
  readonly gatherTimeoutMs?: number;
  /** Consent check period (RFC 7675; default 5000 ms). */
  readonly consentIntervalMs?: number;
  /** Consent expiry (RFC 7675; default 30000 ms). */
  readonly consentTimeoutMs?: number;
  /**
   * Time without a consent answer on the selected pair after which the state is `disconnected` (default 10000 ms).
   * Keep it above the consent period (6 s at most with the default interval), or a healthy pair flaps.
   */
  readonly disconnectedTimeoutMs?: number;
  /** Keepalive period Tr on the selected pair (RFC 8445 §11; default and minimum 15000 ms). */
  readonly keepaliveIntervalMs?: number;
  /**
   * Maximum candidate pairs in the checklist set (RFC 8445 §6.1.2.5; default 100), split evenly over its checklists;
   * an `IceSdpSession` splits it over its transports' agents.
   */
  readonly checklistLimit?: number;
  /** Maximum remote candidates, peer-reflexive ones included (default 100): a bound on hostile signalling. */
  readonly remoteCandidateLimit?: number;
  /**
   * Most candidate pairs aimed at one remote IP address (default 32; RFC 8445 §19.5.1): hostile signalling naming
   * one third party many times gets at most this many pairs checked there. An `IceSdpSession` applies it across all
   * its transports' agents. See docs/deviations.md.
   */
  readonly remoteAddressPairLimit?: number;
  /** A budget shared with other agents (its limit replaces `remoteAddressPairLimit`); `IceSdpSession` passes its own. */
  readonly remoteAddressBudget?: RemoteAddressBudget;
  /**
   * RFC 8863 PAC timer (default 39500 ms): no failure before it runs out. It is also the fallback for a peer that
   * never signals end-of-candidates (RFC 8863 §5): the agent then fails when it runs out, if nothing works.
   */
  readonly failureGraceMs?: number;
  /**
   * Controlling with regular nomination: the longest wait for a better pair before nominating the best valid one
   * (default 1000 ms). Usually the agent nominates much sooner, once no better pair may still succeed: better pairs
   * not checked yet are waited for, checked ones only until their answer is overdue (4 x the valid pair's round
   * trip, at least 2 x Ta). See docs/deviations.md.
   */
  readonly nominationTimeoutMs?: number;
  /** Injected randomness (default `crypto.randomBytes`). */
  readonly random?: RandomSource;
  /** DNS resolver for server host names (default node:dns). */
  readonly resolver?: TurnDnsResolver;
  /** SOFTWARE attribute for server requests. */
  readonly software?: string;
  /** Local ICE ufrag (generated when absent; the SDP layer may choose it). */
  readonly ufrag?: string;
  /** Local ICE password (generated when absent). */
  readonly pwd?: string;
  /**
   * Components running without ICE (`useWithoutIce`; `IceSdpSession` uses it for a peer without ICE or an ICE
   * mismatch): `keepalive` (`'rtp'` default: an RTP packet with an unused payload type, RFC 6263 §4.6; `'rtcp'`,
   * `'stun'`, `'none'`), `keepaliveIntervalMs` (idle time before one, 15000), `payloadType`, `ssrc` (random unless
   * given), `silenceTimeoutMs` (10000: `disconnected` after that long without the peer's data), and the re-latch rule
   * `relatchSilenceMs` (2000) / `relatchPackets` (5). See `WithoutIceOptions`.
   */
  readonly withoutIce?: WithoutIceOptions;
  /**
   * Receives the structured check trace (`TraceEvent`), off by default and free when off. `traceToFile` and
   * `traceToStream` write it as JSON lines, which `icewire timeline` draws.
   */
  readonly trace?: TraceSink;
}

/** What `IceAgent.gather()` adds to the options: its sockets, resolved servers, mDNS socket and pacer. */
export interface AgentWiring {
  readonly random: RandomSource;
  readonly role: IceRole;
  readonly components: number;
  readonly bases: readonly StreamBase[];
  readonly stunServers: NonNullable<AgentMachineOptions['stunServers']>;
  readonly turnServers: NonNullable<AgentMachineOptions['turnServers']>;
  readonly mdns: MdnsSocket | undefined;
  readonly pacer: GlobalPacer | undefined;
}

/** The machine's options for an agent configured with `o` and wired as `w`; unset options keep the core's defaults. */
export function agentMachineOptions(o: IceAgentOptions, w: AgentWiring): AgentMachineOptions {
  const mdns = w.mdns;
  return {
    random: w.random,
    role: w.role,
    streams: [w.components],
    bases: w.bases,
    stunServers: w.stunServers,
    turnServers: w.turnServers,
    // The edge's socket names our host candidates and resolves the peer's `.local` names (`resolve-mdns`).
    ...(mdns ? { mdnsRegistrar: { register: (_now: number, address: string) => mdns.register(address) } } : {}),
    resolveMdns: mdns !== undefined,
    ...(w.pacer ? { pacer: w.pacer } : {}),
    ...withoutUndefined<AgentMachineOptions>({
      lite: o.lite,
      nomination: o.nomination,
      nominationTimeoutMs: o.nominationTimeoutMs,
      pacingMs: o.pacingMs,
      gatherTimeoutMs: o.gatherTimeoutMs,
      consentIntervalMs: o.consentIntervalMs,
      consentTimeoutMs: o.consentTimeoutMs,
      disconnectedTimeoutMs: o.disconnectedTimeoutMs,
      keepaliveIntervalMs: o.keepaliveIntervalMs,
      checklistLimit: o.checklistLimit,
      remoteCandidateLimit: o.remoteCandidateLimit,
      remoteAddressPairLimit: o.remoteAddressPairLimit,
      remoteAddressBudget: o.remoteAddressBudget,
      failureGraceMs: o.failureGraceMs,
      software: o.software,
      iceTransportPolicy: o.iceTransportPolicy,
      ufrag: o.ufrag,
      pwd: o.pwd,
      withoutIce: o.withoutIce,
      tcpConnectTimeoutMs: o.tcpConnectTimeoutMs,
      tcpFirstCheckTimeoutMs: o.tcpFirstCheckTimeoutMs,
      tcpPendingInboundLimit: o.tcpPendingInboundLimit,
      trace: o.trace,
    }),
  };
}

/** `T` with every property optional and allowed to be `undefined`, as options read from another options object are. */
type Loose<T> = { [K in keyof T]?: T[K] | undefined };

/**
 * Drops the properties whose value is `undefined`, so that the core's defaults apply (with
 * `exactOptionalPropertyTypes`, an absent option and an `undefined` one are different types). Typed by the target
 * options, so every key given is checked against them.
 */
function withoutUndefined<T extends object>(values: Loose<T>): Partial<T> {
  const out: Partial<T> = {};
  for (const k of Object.keys(values) as (keyof T)[]) if (values[k] !== undefined) out[k] = values[k] as T[keyof T];
  return out;
}
