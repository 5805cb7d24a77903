/**
 * icewire: a full ICE agent (RFC 8445) for Node.js, with SIP and WebRTC offer/answer bindings.
 *
 * - {@link IceAgent}: one ICE transport on real UDP sockets, shaped like the W3C RTCIceTransport.
 * - {@link IceSdpSession}: ICE driven by SDP offer/answer (SIP, RFC 8839) and trickle bodies (RFC 8840).
 * - {@link OfferAnswer} and the SDP helpers: the same binding as pure values, for other IO layers.
 * - {@link parseCandidate} / {@link formatCandidate} and the `RTCIceCandidateInit` converters.
 * - {@link IceUdpMux}: one UDP port for many agents (an SFU, a SIP gateway); {@link IceTcpMux}: the same for ICE-TCP.
 * - {@link startStunServer}: the built-in STUN server (tests and demos use it on loopback).
 *
 * Sans-IO machines (the agent core, STUN and TURN clients, codecs) are in `icewire/core`; the virtual network for
 * deterministic tests is in `icewire/testing`. There are no default STUN or TURN servers.
 * @module
 */
export { IceAgent, type IceAgentEvents, type IceAgentOptions, type IceCandidatePair, type IceCandidatePairState, type IceGatheringState } from './node/ice-agent.js';
export { IceSdpSession, type IceSdpSessionEvents, type IceSdpSessionOptions } from './node/sdp-session.js';
export { startStunServer } from './node/stun-server.js';
export { IceUdpMux, UdpMuxError, type IceUdpMuxOptions, type IceUdpMuxStats, type MuxDropReason, type UdpMuxLimits, type UdpMuxPort } from './node/udp-mux.js';
export { IceTcpMux, TCP_MUX_DROP_REASONS, type IceTcpMuxOptions, type TcpMuxDropReason, type TcpMuxLimits, type TcpMuxPort, type TcpMuxReceiver, type TcpMuxRouterStats } from './node/tcp-mux.js';
export { traceToFile, traceToStream, traceLine, type TraceFile } from './node/trace-file.js';
export type { CheckOutcome, TraceCandidate, TraceEvent, TraceSink } from './checklist/trace.js';
export { parseTraceLines, renderTimelineHtml, renderTimelineSvg, type TimelineOptions } from './trace/timeline.js';
export type { TurnTlsOptions } from './node/turn-transport.js';
export { GlobalPacer } from './stun/pacing.js';
export { RemoteAddressBudget } from './checklist/address-budget.js';
export type { AgentState, AgentStats, IceParameters, LocalIceParameters, NominationMode, PairInfo, PairStats } from './checklist/types.js';
export type { Candidate, CandidateType, LocalCandidate, TcpType } from './candidates/candidate.js';
export { formatCandidate, parseCandidate, tryParseCandidate } from './candidates/grammar.js';
export { signalledCandidate } from './candidates/signal.js';
export * from './sip-offer-answer/index.js';
export type { IceServerConfig } from './turnclient/uri.js';
export * from './errors.js';
export type { Datagram, IceRole, RandomSource, TransportAddress, TransportProtocol } from './types.js';
