/**
 * `icewire/core`: the sans-IO machines and codecs, for users who bring their own IO (the rice-proto / quinn-proto
 * role). Every machine follows the drain contract of {@link SansIoMachine}: inputs take `now` in ms, outputs are
 * polled; none reads a clock, opens a socket or starts a timer.
 * @module
 */
export type { SansIoMachine } from './machine.js';
export { AgentMachine, type AgentMachineEvent, type AgentMachineOptions, type AgentMachineStats, type StreamBase, type TurnStreamEvent } from './agent-machine.js';
export {
  NoIcePaths,
  unusedPayloadType,
  type LatchReason,
  type NoIceEvent,
  type NoIceKeepalive,
  type NoIcePathOptions,
  type NoIcePathStats,
  type NoIcePathsOptions,
  type WithoutIceOptions,
} from './without-ice.js';
export { AgentCore } from './checklist/agent-core.js';
export type * from './checklist/types.js';
export { traceAddress, traceCandidate, type CheckOutcome, type TraceCandidate, type TraceEvent, type TraceSink } from './checklist/trace.js';
export { parseTraceLines, renderTimelineHtml, renderTimelineSvg, timelineModel, type TimelineCheck, type TimelineMarker, type TimelineModel, type TimelineOptions, type TimelineRow } from './trace/timeline.js';
export { GlobalPacer, type GlobalPacerOptions } from './stun/pacing.js';
export { RemoteAddressBudget, DEFAULT_REMOTE_ADDRESS_PAIR_LIMIT } from './checklist/address-budget.js';
export * from './candidates/index.js';
export * from './candidates/gatherer.js';
export * from './candidates/mdns.js';
export * from './stun/index.js';
export * from './stun/demux.js';
export * from './stun/mux-router.js';
export * from './stun/binding-server.js';
export * from './turnclient/index.js';
export * from './errors.js';
export * from './types.js';
export { formatIp, parseIp, ipFamily, canonicalIp } from './ip.js';
