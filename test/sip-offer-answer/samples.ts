/** Shared values for the SDP tests: fixtures, application SDPs, local parameters, candidates, a full exchange. */
import { readFileSync } from 'node:fs';
import { cand } from './arbitraries.js';
import type { LocalIceParameters, OfferAnswer } from '../../src/sip-offer-answer/index.js';
import type { RandomSource } from '../../src/types.js';

export const fixture = (name: string) => readFileSync(new URL(`../fixtures/sdp/${name}`, import.meta.url), 'utf8');

// RFC 8839 §4.2.6, with the folded candidate line joined.
export const RFC8839_EXAMPLE = [
  'v=0',
  'o=jdoe 2890844526 2890842807 IN IP4 203.0.113.141',
  's=',
  'c=IN IP4 192.0.2.3',
  't=0 0',
  'a=ice-options:ice2',
  'a=ice-pacing:50',
  'a=ice-pwd:asd88fgpdd777uzjYhagZg',
  'a=ice-ufrag:8hhY',
  'm=audio 45664 RTP/AVP 0',
  'b=RS:0',
  'b=RR:0',
  'a=rtpmap:0 PCMU/8000',
  'a=candidate:1 1 UDP 2130706431 203.0.113.141 8998 typ host',
  'a=candidate:2 1 UDP 1694498815 192.0.2.3 45664 typ srflx raddr 203.0.113.141 rport 8998',
].join('\r\n');

/** An application SDP with one audio stream and no ICE (what a SIP stack hands over). */
export const APP_AUDIO = ['v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=-', 'c=IN IP4 127.0.0.1', 't=0 0', 'm=audio 9 RTP/AVP 0 8', 'a=rtpmap:0 PCMU/8000', 'a=sendrecv', ''].join('\r\n');
/** An application SDP for answering the Chrome offer (BUNDLE 0 1, DTLS active). */
export const APP_WEBRTC_ANSWER = [
  'v=0',
  'o=- 2 1 IN IP4 127.0.0.1',
  's=-',
  't=0 0',
  'a=group:BUNDLE 0 1',
  'm=audio 9 UDP/TLS/RTP/SAVPF 111',
  'c=IN IP4 0.0.0.0',
  'a=mid:0',
  'a=setup:active',
  'a=fingerprint:sha-256 AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99',
  'a=rtcp-mux',
  'a=rtpmap:111 opus/48000/2',
  'm=video 9 UDP/TLS/RTP/SAVPF 96',
  'c=IN IP4 0.0.0.0',
  'a=mid:1',
  'a=setup:active',
  'a=rtcp-mux',
  'a=rtpmap:96 VP8/90000',
  '',
].join('\r\n');

export const A: LocalIceParameters = { ufrag: 'AAAA', pwd: 'aaaaaaaaaaaaaaaaaaaaaa' };
export const B: LocalIceParameters = { ufrag: 'BBBB', pwd: 'bbbbbbbbbbbbbbbbbbbbbb' };

export const hostA = cand({ address: '10.0.0.1', port: 5000 });
export const hostA2 = cand({ address: '10.0.0.1', port: 5001, component: 2, priority: 2130706430 });
export const relayA = cand({ foundation: 'r1', type: 'relay', address: '198.51.100.1', port: 60000, priority: 16777215, relatedAddress: '203.0.113.1', relatedPort: 5000 });
export const relayA2 = cand({ foundation: 'r1', type: 'relay', address: '198.51.100.1', port: 60002, component: 2, priority: 16777214, relatedAddress: '203.0.113.1', relatedPort: 5001 });
export const hostB = cand({ address: '10.0.0.2', port: 6000 });

/** A deterministic RandomSource for tests. */
export function counterRandom(): RandomSource {
  let n = 0;
  return { bytes: (k: number) => Uint8Array.from({ length: k }, () => (n++ * 37 + 11) & 0xff) };
}

export const lines = (sdp: string) => sdp.split('\r\n');

/** A full exchange between two sessions; returns both texts. */
export function exchange(a: OfferAnswer, b: OfferAnswer, appA = APP_AUDIO, appB = APP_AUDIO) {
  const offer = a.createOffer(appA);
  const ro = b.setRemoteDescription(offer, 'offer');
  const answer = b.createAnswer(appB);
  const ra = a.setRemoteDescription(answer, 'answer');
  return { offer, answer, ro, ra };
}
