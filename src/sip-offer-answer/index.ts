/**
 * ICE in SDP offer/answer for SIP (RFC 8839), Trickle ICE for SIP (RFC 8840) and WebRTC signalling. Pure values
 * and state machines: no IO.
 *
 * - `readIceDescription` / `writeIceDescription`: the RFC 8839 §5 attributes, read with line-numbered `SdpError`s
 *   and written into the application's SDP.
 * - `defaultDestination`: the default candidate in `c=`/`m=`/`a=rtcp`, with the trickle and mDNS placeholder.
 * - `detectIceMismatch`: a default destination rewritten by an ALG, SBC or media relay.
 * - `OfferAnswer`: the session (roles, restarts, pacing, BUNDLE, selected pairs, peers without ICE).
 * - `parseSdpfrag` / `buildSdpfrag` and the `trickle-ice` SIP constants.
 * - `fromRTCIceCandidateInit` / `toRTCIceCandidateInit` for browsers.
 * @module
 */
export {
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
  supportsIce2,
  transportIndexOf,
  type IceDescription,
  type IceMediaDescription,
  type IgnoredCandidate,
  type RemoteCandidateRef,
} from './ice-attributes.js';
export { splitSdpLines, type SdpLine } from './sdp-lines.js';
export { writeIceDescription } from './ice-writer.js';
export {
  PLACEHOLDER_PORT,
  chooseDefaultCandidate,
  defaultDestination,
  isPlaceholderDestination,
  placeholderAddress,
  toSignalledCandidate,
  transportOfProto,
  type DefaultCandidateOptions,
  type DefaultDestination,
  type DefaultDestinationOptions,
} from './default-candidate.js';
export { detectIceMismatch, signalledDestination, type MismatchVerdict, type SignalledDestination } from './ice-mismatch.js';
export { OfferAnswer, type OfferAnswerOptions, type SignalingState, type TrickleResult } from './offer-answer.js';
export {
  generateIceCredentials,
  type BundleCandidatePolicy,
  type IceCredentials,
  type LocalIceParameters,
  type SelectedPairInfo,
} from './local-description.js';
export { type IceMode, type IceTransportPlan, type RemoteDescriptionResult, type RemoteStream, type StreamIceMode } from './remote-description.js';
export {
  DEFAULT_PSEUDO_MEDIA_LINE,
  TRICKLE_ICE_INFO_PACKAGE,
  TRICKLE_ICE_OPTION_TAG,
  TRICKLE_ICE_SDPFRAG_CONTENT_TYPE,
  TRICKLE_ICE_SIP_HEADERS,
  buildSdpfrag,
  parseSdpfrag,
  sameTrickledCandidate,
  type Sdpfrag,
  type SdpfragMedia,
  type TrickleMode,
} from './sdpfrag.js';
export {
  applyRTCIceCandidateInit,
  endOfCandidatesInit,
  fromRTCIceCandidateInit,
  localCandidateInits,
  toRTCIceCandidateInit,
  type CandidateLocation,
  type RTCIceCandidateInit,
  type TrickledCandidate,
} from './webrtc.js';
