/**
 * Interop: SDP as real SIP phones, PBXes, SBCs, media servers and browsers lay it out (fixtures
 * `test/fixtures/sdp/interop-*.sdp`, see that folder's README), offered to and answered by `OfferAnswer`.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { cand } from './arbitraries.js';
import type { Candidate } from '../../src/candidates/candidate.js';
import { SdpError } from '../../src/errors.js';
import {
  OfferAnswer,
  detectIceMismatch,
  readIceDescription,
  splitSdpLines,
  writeIceDescription,
  type LocalIceParameters,
} from '../../src/sip-offer-answer/index.js';

const fixture = (name: string) => readFileSync(new URL(`../fixtures/sdp/${name}`, import.meta.url), 'utf8');
const B: LocalIceParameters = { ufrag: 'BBBB', pwd: 'bbbbbbbbbbbbbbbbbbbbbb' };

const host1 = cand({ address: '10.0.0.2', port: 6000 });
const host2 = cand({ address: '10.0.0.2', port: 6001, component: 2, priority: 2130706430 });
const srflx1 = cand({ foundation: 's1', type: 'srflx', address: '203.0.113.2', port: 7000, priority: 1694498815, relatedAddress: '10.0.0.2', relatedPort: 6000 });
const srflx2 = cand({ foundation: 's1', type: 'srflx', address: '203.0.113.2', port: 7001, component: 2, priority: 1694498814, relatedAddress: '10.0.0.2', relatedPort: 6001 });
const v6host1 = cand({ foundation: 'h6', address: '2001:db8:0:2::20', port: 6100, priority: 2130706175 });
const v6host2 = cand({ foundation: 'h6', address: '2001:db8:0:2::20', port: 6101, component: 2, priority: 2130706174 });

/** What a SIP stack hands over for its answer: codecs and direction, no ICE, placeholder c=. */
const APP_SIP_ANSWER = [
  'v=0',
  'o=pbx 99 7 IN IP4 192.0.2.99',
  's=call',
  'c=IN IP4 0.0.0.0',
  't=0 0',
  'm=audio 9 RTP/AVP 0 101',
  'a=rtpmap:0 PCMU/8000',
  'a=rtpmap:101 telephone-event/8000',
  'a=fmtp:101 0-16',
  'a=ptime:20',
  'a=sendrecv',
  '',
].join('\r\n');

/** What a WebRTC gateway hands over to answer a two-section BUNDLE offer: DTLS active, msid, extmap, ssrc. */
const APP_WEBRTC_ANSWER = [
  'v=0',
  'o=- 4242 2 IN IP4 127.0.0.1',
  's=-',
  't=0 0',
  'a=group:BUNDLE 0 1',
  'a=extmap-allow-mixed',
  'a=msid-semantic: WMS',
  'm=audio 9 UDP/TLS/RTP/SAVPF 111',
  'c=IN IP4 0.0.0.0',
  'a=rtcp:9 IN IP4 0.0.0.0',
  'a=fingerprint:sha-256 AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99',
  'a=setup:active',
  'a=mid:0',
  'a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level',
  'a=sendrecv',
  'a=msid:- a0',
  'a=rtcp-mux',
  'a=rtpmap:111 opus/48000/2',
  'a=ssrc:11 cname:gw',
  'm=video 9 UDP/TLS/RTP/SAVPF 96',
  'c=IN IP4 0.0.0.0',
  'a=rtcp:9 IN IP4 0.0.0.0',
  'a=fingerprint:sha-256 AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99',
  'a=setup:active',
  'a=mid:1',
  'a=recvonly',
  'a=rtcp-mux',
  'a=rtpmap:96 VP8/90000',
  '',
].join('\r\n');

/** Lines OfferAnswer owns and may rewrite; everything else belongs to the application. */
const OWNED = /^(c=|m=|a=(ice-|candidate:|remote-candidates|end-of-candidates|rtcp:|mid:|rtcp-mux$|bundle-only$|group:BUNDLE))/;
const appLines = (sdp: string) => sdp.split('\r\n').filter((l) => l !== '' && !OWNED.test(l));
/** The lines of each section (session first), to look for duplicates per level. */
const sections = (sdp: string) => sdp.split(/\r\n(?=m=)/).map((s) => s.split('\r\n').filter((l) => l !== ''));

function answerTo(offer: string, app: string, candidates: readonly Candidate[] = [host1, host2, srflx1, srflx2], options: { preferFamily?: 4 | 6 } = {}) {
  const b = new OfferAnswer({ local: B, ...options });
  const r = b.setRemoteDescription(offer, 'offer');
  for (const t of b.transports()) b.setLocalCandidates(t.transportIndex, candidates.filter((c) => c.component <= t.components));
  const answer = b.createAnswer(app);
  return { b, r, answer, d: readIceDescription(answer) };
}

/** Checks that the application's own lines come out verbatim, in order, once per section, with CRLF line ends. */
function expectAppLinesKept(app: string, out: string): void {
  expect(appLines(out)).toEqual(appLines(app));
  expect(out.endsWith('\r\n')).toBe(true);
  expect(out.replace(/\r\n/g, '')).not.toMatch(/[\r\n]/);
  for (const s of sections(out)) expect(new Set(s).size).toBe(s.length);
}

describe('Asterisk/FreeSWITCH-style ICE offer (session-level credentials, a=rtcp, components 1 and 2, no ice2)', () => {
  const offer = fixture('interop-asterisk-ice-offer.sdp');

  it('runs ICE with two components and treats the peer as RFC 5245 (no ice2)', () => {
    const { r, b } = answerTo(offer, APP_SIP_ANSWER);
    expect(r.iceMode).toBe('ice');
    expect(r.role).toBe('controlled');
    expect(r.warnings).toEqual([]);
    const [s] = r.streams;
    expect(s).toMatchObject({ mode: 'ice', ufrag: '5c1d7f0b2a3e4d6c0f1a2b3c', ice2: false, trickle: false, rtcpMux: false });
    expect(s!.defaultRtp).toEqual({ address: '198.51.100.10', port: 17422 });
    expect(s!.defaultRtcp).toEqual({ address: '198.51.100.10', port: 17423 });
    expect(s!.candidates.map((c) => `${c.component}/${c.type}`)).toEqual(['1/host', '2/host', '1/srflx', '2/srflx']);
    expect(b.transports()).toMatchObject([{ transportIndex: 0, components: 2, mode: 'ice', remoteUfrag: '5c1d7f0b2a3e4d6c0f1a2b3c' }]);
  });

  it('answers with ice2, pacing, both components, the srflx default in c=/m= and a=rtcp, and the app lines intact', () => {
    const { answer, d } = answerTo(offer, APP_SIP_ANSWER);
    expectAppLinesKept(APP_SIP_ANSWER, answer);
    expect(answer).toContain('\r\no=pbx 99 7 IN IP4 192.0.2.99\r\n'); // o= is the application's (RFC 3264 §8 version)
    expect(d).toMatchObject({ ufrag: 'BBBB', pwd: B.pwd, options: ['ice2'], pacingMs: 50, lite: false });
    expect(d.media[0]).toMatchObject({ connection: '203.0.113.2', port: 7000, rtcp: { address: '203.0.113.2', port: 7001 }, iceMismatch: false });
    expect(d.media[0]!.candidates).toHaveLength(4);
    // The app wrote c= at session level only (as 0.0.0.0): that is the c= line of the stream (RFC 8839 §4.2.1.2).
    expect(answer).toMatch(/\r\ns=call\r\nc=IN IP4 203\.0\.113\.2\r\nt=0 0\r\n/);
    expect(answer).toMatch(/\r\nm=audio 7000 RTP\/AVP 0 101\r\na=rtpmap:0 PCMU\/8000\r\n/);
    expect(answer).not.toContain('0.0.0.0');
    expect(answer).toContain('\r\na=rtcp:7001\r\n');
    expect(answer).not.toContain('ice-mismatch');
    // Our own answer passes the peer's RFC 8839 §4.2.5 check.
    expect(detectIceMismatch(d, 0)).toEqual({ mismatch: false, reason: 'match' });
  });
});

describe('legacy RFC 5245 peer (no ice2, no ice-pacing, no ice-options at all)', () => {
  const offer = fixture('interop-legacy-rfc5245-offer.sdp');

  it('reads a=rtcp with an explicit address and uses the default Ta of 50 ms', () => {
    const { r, d } = answerTo(offer, APP_SIP_ANSWER);
    expect(r.iceMode).toBe('ice');
    expect(r.remotePacingMs).toBeUndefined();
    expect(r.pacingMs).toBe(50);
    expect(r.streams[0]).toMatchObject({ ice2: false, trickle: false, defaultRtcp: { address: '192.0.2.20', port: 45665 } });
    // ice-options:ice2 is only a hint for the peer: it ignores the unknown attribute lines (ice-pacing too).
    expect(d.options).toEqual(['ice2']);
  });

  it('an offerer facing a legacy answer must re-offer when the selected pair is not the default (RFC 8839 §4.3.4)', () => {
    const a = new OfferAnswer({ local: B });
    a.setLocalCandidates(0, [host1, host2, srflx1, srflx2]);
    a.createOffer(APP_SIP_ANSWER);
    const answer = offer.replace('s=\r\n', 's=-\r\n');
    expect(a.setRemoteDescription(answer, 'answer').streams[0]!.ice2).toBe(false);
    a.setSelectedPair(0, 1, { local: host1, remote: { address: '10.1.1.20', port: 8998 } });
    expect(a.updatedOfferNeeded).toBe(true);
    // The same answer with ice2 lets the alignment wait for the next offer.
    const b = new OfferAnswer({ local: B });
    b.setLocalCandidates(0, [host1, host2, srflx1, srflx2]);
    b.createOffer(APP_SIP_ANSWER);
    b.setRemoteDescription(answer.replace('t=0 0\r\n', 't=0 0\r\na=ice-options:ice2\r\n'), 'answer');
    b.setSelectedPair(0, 1, { local: host1, remote: { address: '10.1.1.20', port: 8998 } });
    expect(b.updatedOfferNeeded).toBe(false);
  });
});

describe('Chrome unified-plan offer (BUNDLE, msid, extmap, ssrc, trickle, mDNS host candidates, no end-of-candidates)', () => {
  const offer = fixture('interop-chrome-unified-plan-offer.sdp');

  it('maps both sections to one transport with one component and keeps the mDNS candidates', () => {
    const { r, b } = answerTo(offer, APP_WEBRTC_ANSWER);
    expect(r.iceMode).toBe('ice');
    expect(r.streams.map((s) => [s.mode, s.transportIndex, s.trickle, s.endOfCandidates])).toEqual([
      ['ice', 0, true, false],
      ['ice', 0, true, false],
    ]);
    // 0.0.0.0:9 with a=rtcp:9 IN IP4 0.0.0.0 is the placeholder, not a mismatch (RFC 8839 §4.2.5 item 2).
    expect(detectIceMismatch(r.description, 0)).toEqual({ mismatch: false, reason: 'placeholder' });
    const [t] = b.transports();
    expect(t).toMatchObject({ transportIndex: 0, mids: ['0', '1'], components: 1, remoteEndOfCandidates: false });
    expect(t!.remoteCandidates.map((c) => c.address)).toEqual([
      '7d3e9a41-52b6-4c8f-a0e1-3b2c4d5e6f70.local',
      '5b6c7d8e-9f0a-4b1c-8d2e-3f4a5b6c7d8e.local',
    ]);
    expect(t!.remoteCandidates[0]!.extensions).toEqual([
      ['generation', '0'],
      ['network-cost', '999'],
    ]);
  });

  it('answers with the BUNDLE group, candidates in the tag section only, and every app line verbatim and in order', () => {
    const { answer, d } = answerTo(offer, APP_WEBRTC_ANSWER);
    expectAppLinesKept(APP_WEBRTC_ANSWER, answer);
    expect(answer).toContain('\r\na=msid-semantic: WMS\r\n'); // sdp-transform used to write "msid-semantic:  WMS"
    expect(answer).toContain('\r\na=group:BUNDLE 0 1\r\n');
    expect(d.media.map((m) => [m.mid, m.port, m.connection, m.candidates.length, m.rtcpMux])).toEqual([
      ['0', 7000, '203.0.113.2', 2, true],
      ['1', 7000, '203.0.113.2', 0, true],
    ]);
    expect(answer).not.toMatch(/a=rtcp:/); // rtcp-mux: no separate RTCP default
    expect(d.options).toEqual(['ice2']);
  });
});

describe('Firefox offer (session-level credentials, upper-case UDP, TCP active, end-of-candidates)', () => {
  const offer = fixture('interop-firefox-offer.sdp');

  it('reads the session-level credentials and options, keeps UDP as written, and sees the end of candidates', () => {
    const { r, b } = answerTo(offer, APP_SIP_ANSWER.replace('RTP/AVP 0 101', 'UDP/TLS/RTP/SAVPF 0 101').replace('a=sendrecv', 'a=sendrecv\r\na=mid:0\r\na=rtcp-mux'));
    expect(r.streams[0]).toMatchObject({ mode: 'ice', ufrag: '5e2f9a1c', pwd: 'c4b8e2f6a0d4b8e2f6a0d4b8e2f6a0d4', trickle: true, endOfCandidates: true });
    expect(r.streams[0]!.candidates.map((c) => [c.transportText ?? c.transport, c.tcpType])).toEqual([
      ['UDP', undefined],
      ['TCP', 'active'],
      ['UDP', undefined],
    ]);
    expect(b.transports()[0]).toMatchObject({ components: 1, remoteEndOfCandidates: true });
  });

  it('writes Firefox’s offer back with the same lines: the app lines in place, the ICE lines after them', () => {
    const d = readIceDescription(offer);
    const out = writeIceDescription(d, offer);
    expectAppLinesKept(offer, out);
    expect(out.split('\r\n').sort()).toEqual(offer.split('\r\n').sort());
    expect(readIceDescription(out)).toEqual(d);
  });
});

describe('a Chrome answer to our offer', () => {
  const chromeAnswer = fixture('interop-chrome-answer.sdp');
  const APP_OFFER = APP_WEBRTC_ANSWER.replace(/a=setup:active/g, 'a=setup:actpass').replace('a=recvonly', 'a=sendrecv');

  function offerThenAnswer(answer: string) {
    const a = new OfferAnswer({ local: B, trickle: 'full' });
    a.setLocalCandidates(0, [host1, srflx1]);
    const offer = a.createOffer(APP_OFFER);
    return { a, offer, r: a.setRemoteDescription(answer, 'answer') };
  }

  it('is applied: ICE runs on one bundled transport with Chrome’s credentials and candidates, trickle negotiated', () => {
    const { a, offer, r } = offerThenAnswer(chromeAnswer);
    expect(offer).toContain('a=ice-options:ice2 trickle');
    expect(r).toMatchObject({ type: 'answer', iceMode: 'ice', role: 'controlling', remoteLite: false, restart: false, warnings: [] });
    expect(r.streams.map((s) => s.mode)).toEqual(['ice', 'ice']);
    expect(a.trickleNegotiated).toBe(true);
    expect(a.transports()).toHaveLength(1);
    expect(a.transports()[0]).toMatchObject({ mids: ['0', '1'], components: 1, remoteUfrag: 'Cr0m', remotePwd: 'Q3wE5rT7yU9iO1pA3sD5fG7h' });
    expect(a.remoteCandidates(0).map((c) => c.type)).toEqual(['host', 'srflx']);
  });

  it('an a=rtcp naming the RTP address under rtcp-mux (older Chrome, SIP.js) is no ICE mismatch', () => {
    const older = chromeAnswer.replace(/a=rtcp:9 IN IP4 0\.0\.0\.0/g, 'a=rtcp:58012 IN IP4 203.0.113.9');
    const { r } = offerThenAnswer(older);
    expect(r.streams.map((s) => s.mode)).toEqual(['ice', 'ice']);
    // Under rtcp-mux without component 2 candidates, any a=rtcp is no destination of its own.
    const other = chromeAnswer.replace(/a=rtcp:9 IN IP4 0\.0\.0\.0/g, 'a=rtcp:58013 IN IP4 203.0.113.9');
    expect(offerThenAnswer(other).r.iceMode).toBe('ice');
    // Without rtcp-mux an a=rtcp that no candidate matches is still a mismatch (component 2).
    const noMux = other.replace(/a=rtcp-mux\r\n/g, '').replace(/(a=candidate:842163049 1 .*\r\n)/, '$1a=candidate:842163049 2 udp 1677729534 203.0.113.9 58099 typ srflx raddr 0.0.0.0 rport 0\r\n');
    expect(detectIceMismatch(readIceDescription(noMux), 0)).toMatchObject({ mismatch: true, component: 2 });
  });
});

describe('SBC-rewritten offer (c=/m=/a=rtcp changed, candidates passed through)', () => {
  const offer = fixture('interop-sbc-rewritten-offer.sdp');

  it('answers a=ice-mismatch without candidates and sends to the SBC address without ICE (RFC 8839 §4.2.5 item 1)', () => {
    const { r, b, answer, d } = answerTo(offer, APP_SIP_ANSWER);
    expect(detectIceMismatch(r.description, 0)).toEqual({ mismatch: true, component: 1, destination: { address: '203.0.113.200', port: 30012 } });
    expect(r.iceMode).toBe('none');
    expect(b.transports()).toMatchObject([
      { mode: 'mismatch', components: 2, remoteCandidates: [], defaultRtp: { address: '203.0.113.200', port: 30012 }, defaultRtcp: { address: '203.0.113.200', port: 30013 } },
    ]);
    expect(d.media[0]).toMatchObject({ iceMismatch: true, candidates: [], connection: '203.0.113.2', port: 7000 });
    expect(answer).toMatch(/^a=ice-mismatch$/m);
    expect(answer).not.toMatch(/^a=candidate/m);
    expectAppLinesKept(APP_SIP_ANSWER, answer);
  });

  it('the same offer as the phone sent it runs ICE', () => {
    expect(answerTo(fixture('interop-asterisk-ice-offer.sdp'), APP_SIP_ANSWER).r.streams[0]!.mode).toBe('ice');
  });
});

describe('ice-lite media server offer (Janus/mediasoup style)', () => {
  const offer = fixture('interop-ice-lite-server-offer.sdp');

  it('makes us the controlling full agent and reads candidates placed after the ssrc lines', () => {
    const { r, answer, d } = answerTo(offer, APP_WEBRTC_ANSWER.replace(/a=group:BUNDLE 0 1[\s\S]*/, 'a=group:BUNDLE 0\r\n') + APP_WEBRTC_ANSWER.split('\r\nm=')[1]!.replace(/^/, 'm=') + '\r\n');
    expect(r).toMatchObject({ remoteLite: true, role: 'controlling', iceMode: 'ice' });
    expect(r.streams[0]!.candidates.map((c) => c.address)).toEqual(['198.51.100.40', '2001:db8:40::40']);
    expect(r.streams[0]!.endOfCandidates).toBe(true);
    // A full agent answers without a=ice-lite and with its pacing (RFC 8839 §4.2.1.4, §4.3.2).
    expect(d.lite).toBe(false);
    expect(answer).not.toMatch(/^a=ice-lite/m);
    expect(d.pacingMs).toBe(50);
  });
});

describe('IPv6 offer (c=IN IP6 in another case than the candidates, link-local and IPv4 candidates too)', () => {
  const offer = fixture('interop-ipv6-offer.sdp');

  it('matches the default destination in canonical form and negotiates the larger pacing', () => {
    const { r } = answerTo(offer, APP_SIP_ANSWER);
    expect(r.streams[0]).toMatchObject({ mode: 'ice', ice2: true, defaultRtp: { address: '2001:DB8:0:1::10', port: 49170 } });
    expect(r.remotePacingMs).toBe(40);
    expect(r.pacingMs).toBe(50);
    expect(r.streams[0]!.candidates.map((c) => c.address)).toEqual(['2001:db8:0:1::10', '2001:db8:0:1::10', 'fe80::1:2', '192.0.2.66']);
  });

  it('a dual-stack answerer puts an IPv6 default in c=/m=/a=rtcp for an IPv6 offer', () => {
    const all = [host1, host2, v6host1, v6host2];
    const { answer, d } = answerTo(offer, APP_SIP_ANSWER, all);
    expect(d.media[0]).toMatchObject({ connection: '2001:db8:0:2::20', port: 6100, rtcp: { address: '2001:db8:0:2::20', port: 6101 } });
    expect(answer).toMatch(/\r\nc=IN IP6 2001:db8:0:2::20\r\n/);
    expect(d.media[0]!.candidates).toHaveLength(4);
    // An explicit preference wins; an IPv4 offer keeps the IPv4 default.
    expect(answerTo(offer, APP_SIP_ANSWER, all, { preferFamily: 4 }).d.media[0]!.connection).toBe('10.0.0.2');
    expect(answerTo(fixture('interop-asterisk-ice-offer.sdp'), APP_SIP_ANSWER, all).d.media[0]!.connection).toBe('10.0.0.2');
  });

  it('answers an IPv6 offer with the :: placeholder when no candidate is known yet (trickle)', () => {
    const { d } = answerTo(offer, APP_SIP_ANSWER, []);
    expect(d.media[0]).toMatchObject({ connection: '::', port: 9 });
    expect(d.media[0]!.rtcp).toBeUndefined();
  });
});

describe('what the written SDP keeps', () => {
  const interop = readdirSync(new URL('../fixtures/sdp/', import.meta.url)).filter((n) => n.endsWith('.sdp'));

  it.each(interop)('%s as the application SDP of an offer: its own lines stay verbatim, in order, not duplicated', (name) => {
    const app = fixture(name);
    const a = new OfferAnswer({ local: B });
    for (let i = 0; i < 3; i++) a.setLocalCandidates(i, [host1, host2, srflx1, srflx2]);
    const out = a.createOffer(app);
    expectAppLinesKept(app, out);
    expect(splitSdpLines(out).find((l) => l.type === 'o')!.text).toBe(splitSdpLines(app).find((l) => l.type === 'o')!.text);
  });

  it('writes CRLF line ends for an application SDP given with bare LF', () => {
    const a = new OfferAnswer({ local: B });
    a.setLocalCandidates(0, [host1]);
    const out = a.createOffer(APP_SIP_ANSWER.replace(/\r\n/g, '\n'));
    expect(out.split('\r\n').slice(0, 3)).toEqual(['v=0', 'o=pbx 99 7 IN IP4 192.0.2.99', 's=call']);
    expect(out.replace(/\r\n/g, '')).not.toMatch(/\n/);
  });

  it('keeps the application’s attribute positions around the lines it owns (a=mid, a=rtcp-mux stay in place)', () => {
    const { answer } = answerTo(fixture('interop-chrome-unified-plan-offer.sdp'), APP_WEBRTC_ANSWER);
    const audio = answer.split('\r\nm=')[1]!.split('\r\n');
    expect(audio.indexOf('a=mid:0')).toBe(audio.indexOf('a=setup:active') + 1);
    expect(audio.indexOf('a=rtcp-mux')).toBe(audio.indexOf('a=msid:- a0') + 1);
    // ICE attributes follow the application's attributes of their level.
    expect(audio.findIndex((l) => l.startsWith('a=candidate:'))).toBeGreaterThan(audio.indexOf('a=ssrc:11 cname:gw'));
  });

  it('moves a session-level c= to the first stream’s default; a stream with another default gets its own c=', () => {
    const app = APP_SIP_ANSWER.replace('a=sendrecv\r\n', 'a=sendrecv\r\nm=video 9 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n');
    const a = new OfferAnswer({ local: B });
    a.setLocalCandidates(0, [host1, host2]);
    a.setLocalCandidates(1, [srflx1, srflx2]);
    const out = a.createOffer(app);
    const d = readIceDescription(out);
    expect(d.connection).toBe('10.0.0.2');
    expect(d.media.map((m) => [m.connection, m.port])).toEqual([
      ['10.0.0.2', 6000],
      ['203.0.113.2', 7000],
    ]);
    expect(out.match(/^c=/gm)).toHaveLength(2);
    // With no candidate yet (trickle) the placeholder stays where the application put it.
    const t = new OfferAnswer({ local: B, trickle: 'full' });
    expect(readIceDescription(t.createOffer(APP_SIP_ANSWER)).connection).toBe('0.0.0.0');
  });

  it('refuses values that would inject lines', () => {
    const d = readIceDescription(APP_SIP_ANSWER);
    expect(() => writeIceDescription({ ...d, media: d.media.map((m) => ({ ...m, formats: '0\r\na=evil' })) }, APP_SIP_ANSWER)).toThrow(SdpError);
    expect(() => writeIceDescription({ ...d, media: d.media.map((m) => ({ ...m, mid: 'a b' })) }, APP_SIP_ANSWER)).toThrow(SdpError);
  });
});

describe('re-offers without a restart (the strictness decision, docs/deviations.md)', () => {
  /** A pjproject (pjsua) offer with trickle ICE on: session-level ice-options:trickle in the initial offer only. */
  const PJSIP_INITIAL = [
    'v=0',
    'o=- 3912345678 3912345678 IN IP4 192.0.2.30',
    's=pjmedia',
    'c=IN IP4 192.0.2.30',
    't=0 0',
    'a=ice-options:trickle',
    'm=audio 4000 RTP/AVP 0 101',
    'a=rtcp:4001 IN IP4 192.0.2.30',
    'a=sendrecv',
    'a=rtpmap:0 PCMU/8000',
    'a=rtpmap:101 telephone-event/8000',
    'a=fmtp:101 0-16',
    'a=ice-ufrag:6b1f4c2a',
    'a=ice-pwd:2c9e0d7a4b3f1e6c5d8a7b9c',
    'a=mid:1',
    'a=candidate:Ha0a0a1e 1 UDP 2130706431 192.0.2.30 4000 typ host',
    'a=candidate:Ha0a0a1e 2 UDP 2130706430 192.0.2.30 4001 typ host',
    'a=end-of-candidates',
    '',
  ].join('\r\n');
  /** Its re-INVITE (hold, or the post-ICE update of c=/m=): same ufrag/pwd, no ice-options line. */
  const PJSIP_REINVITE = PJSIP_INITIAL.replace('3912345678 IN', '3912345679 IN').replace('a=ice-options:trickle\r\n', '').replace('a=sendrecv', 'a=sendonly');

  it('a pjsip re-INVITE that drops ice-options:trickle is accepted with a warning; the session keeps trickle', () => {
    const b = new OfferAnswer({ local: B, trickle: 'full' });
    const r1 = b.setRemoteDescription(PJSIP_INITIAL, 'offer');
    b.setLocalCandidates(0, [host1, host2]);
    const a1 = b.createAnswer(APP_SIP_ANSWER);
    expect(r1.streams[0]!.trickle).toBe(true);
    expect(b.trickleNegotiated).toBe(true);
    const r2 = b.setRemoteDescription(PJSIP_REINVITE, 'offer');
    expect(r2.restart).toBe(false);
    expect(r2.warnings).toHaveLength(1);
    expect(r2.warnings[0]).toMatch(/ice-options .*"trickle" to ""/);
    expect(r2.streams[0]).toMatchObject({ mode: 'ice', trickle: true, newCandidates: [] });
    expect(r2.description.media[0]!.options).toEqual(['trickle']);
    expect(b.trickleNegotiated).toBe(true);
    // Our answer keeps our credentials and ice-options: the answerer must not change them either (§4.4.2.1).
    const a2 = b.createAnswer(APP_SIP_ANSWER);
    const ice = (t: string) => t.split('\r\n').filter((l) => /^a=(ice-|candidate)/.test(l));
    expect(ice(a2)).toEqual(ice(a1));
    // Putting the line back is no change against the kept options.
    expect(b.setRemoteDescription(PJSIP_INITIAL, 'offer').warnings).toEqual([]);
  });

  it('a changed ice-pacing is accepted and the running pacing kept; ice-lite appearing is still rejected', () => {
    const b = new OfferAnswer({ local: B });
    const first = fixture('interop-ipv6-offer.sdp');
    b.setRemoteDescription(first, 'offer');
    b.createAnswer(APP_SIP_ANSWER);
    const r = b.setRemoteDescription(first.replace('a=ice-pacing:40', 'a=ice-pacing:500'), 'offer');
    expect(r.warnings).toEqual([expect.stringMatching(/ice-pacing changed from 40 to 500/)]);
    expect(r.remotePacingMs).toBe(40);
    expect(b.pacingMs).toBe(50);
    b.createAnswer(APP_SIP_ANSWER);
    const withoutPacing = b.setRemoteDescription(first.replace('a=ice-pacing:40\r\n', ''), 'offer');
    expect(withoutPacing.remotePacingMs).toBe(40);
    b.createAnswer(APP_SIP_ANSWER);
    expect(() => b.setRemoteDescription(first.replace('t=0 0', 't=0 0\r\na=ice-lite'), 'offer')).toThrow(SdpError);
    // The rejected offer changed nothing: the next good offer is a plain re-offer.
    expect(b.signalingState).toBe('stable');
    expect(b.setRemoteDescription(first, 'offer')).toMatchObject({ restart: false, warnings: [] });
  });

  it('with new credentials the same changes are a restart and take effect without a warning', () => {
    const b = new OfferAnswer({ local: B, random: { bytes: (n) => Uint8Array.from({ length: n }, (_, i) => i * 7 + 3) } });
    b.setRemoteDescription(PJSIP_INITIAL, 'offer');
    b.createAnswer(APP_SIP_ANSWER);
    const restarted = PJSIP_REINVITE.replace('6b1f4c2a', '7c2f5d3b').replace('2c9e0d7a4b3f1e6c5d8a7b9c', '3d0f1e8b5c4a2f7d6e9b8c0d');
    const r = b.setRemoteDescription(restarted, 'offer');
    expect(r).toMatchObject({ restart: true, warnings: [] });
    expect(r.streams[0]!.trickle).toBe(false);
  });

  it('an identical re-INVITE (o= version bumped) is no restart, brings no new candidate and gets the same ICE answer', () => {
    const offer = fixture('interop-asterisk-ice-offer.sdp');
    const { b, answer } = answerTo(offer, APP_SIP_ANSWER);
    const r = b.setRemoteDescription(offer.replace('1848256412 IN', '1848256413 IN'), 'offer');
    expect(r).toMatchObject({ restart: false, warnings: [], iceMode: 'ice' });
    expect(r.streams[0]!.newCandidates).toEqual([]);
    expect(b.transports()[0]!.restart).toBe(false);
    const again = b.createAnswer(APP_SIP_ANSWER.replace('99 7 IN', '99 8 IN'));
    const ice = (t: string) => t.split('\r\n').filter((l) => /^(a=(ice-|candidate|rtcp:)|c=|m=)/.test(l));
    expect(ice(again)).toEqual(ice(answer));
  });
});
