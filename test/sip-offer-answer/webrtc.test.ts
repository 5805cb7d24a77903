import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CandidateParseError } from '../../src/errors.js';
import {
  OfferAnswer,
  applyRTCIceCandidateInit,
  endOfCandidatesInit,
  fromRTCIceCandidateInit,
  localCandidateInits,
  toRTCIceCandidateInit,
  type RTCIceCandidateInit,
} from '../../src/sip-offer-answer/index.js';
import { candidate } from './arbitraries.js';

const fixture = (name: string) => readFileSync(new URL(`../fixtures/sdp/${name}`, import.meta.url), 'utf8');

describe('RTCIceCandidateInit', () => {
  it('decodes what Chrome trickles (mDNS host, srflx raddr 0.0.0.0 rport 0)', () => {
    const init: RTCIceCandidateInit = {
      candidate: 'candidate:3121233123 1 udp 1686052607 203.0.113.7 54321 typ srflx raddr 0.0.0.0 rport 0 generation 0 ufrag Kd1x network-id 1',
      sdpMid: '0',
      sdpMLineIndex: 0,
      usernameFragment: 'Kd1x',
    };
    const t = fromRTCIceCandidateInit(init);
    expect(t).toMatchObject({ kind: 'candidate', sdpMid: '0', sdpMLineIndex: 0, usernameFragment: 'Kd1x' });
    if (t.kind !== 'candidate') throw new Error('unreachable');
    expect(t.candidate).toMatchObject({ type: 'srflx', address: '203.0.113.7', relatedAddress: '0.0.0.0', relatedPort: 0 });
    expect(toRTCIceCandidateInit(t.candidate, t)).toEqual(init);
  });

  it('an empty candidate string is end-of-candidates', () => {
    expect(fromRTCIceCandidateInit({ candidate: '', sdpMid: '0', sdpMLineIndex: 0 })).toEqual({ kind: 'end-of-candidates', sdpMid: '0', sdpMLineIndex: 0 });
    expect(endOfCandidatesInit({ sdpMid: '1', usernameFragment: 'abcd' })).toEqual({ candidate: '', sdpMid: '1', sdpMLineIndex: null, usernameFragment: 'abcd' });
  });

  it('rejects a candidate without sdpMid and sdpMLineIndex, and bad candidate strings', () => {
    expect(() => fromRTCIceCandidateInit({ candidate: 'candidate:1 1 udp 1 192.0.2.1 5000 typ host', sdpMid: null, sdpMLineIndex: null })).toThrow(CandidateParseError);
    expect(() => fromRTCIceCandidateInit({ candidate: 'candidate:1 1 udp 1 192.0.2.1', sdpMid: '0' })).toThrow(CandidateParseError);
    expect(() => fromRTCIceCandidateInit({ candidate: 'candidate:1 1 udp 1 192.0.2.1 5000 typ host', sdpMLineIndex: -1 })).toThrow(CandidateParseError);
  });

  it('round trip: from(to(c)) gives c back with its location', () => {
    fc.assert(
      fc.property(candidate, fc.option(fc.constantFrom('0', '1', 'audio'), { nil: undefined }), fc.nat(10), (c, mid, idx) => {
        const where = { ...(mid !== undefined ? { sdpMid: mid } : {}), sdpMLineIndex: idx, usernameFragment: 'abcd' };
        const back = fromRTCIceCandidateInit(JSON.parse(JSON.stringify(toRTCIceCandidateInit(c, where))) as RTCIceCandidateInit);
        expect(back).toEqual({ kind: 'candidate', candidate: c, ...where });
      }),
      { numRuns: 300 },
    );
  });
});

describe('browser sessions', () => {
  const APP_ANSWER = [
    'v=0',
    'o=- 2 1 IN IP4 127.0.0.1',
    's=-',
    't=0 0',
    'a=group:BUNDLE 0',
    'm=audio 9 UDP/TLS/RTP/SAVPF 111',
    'c=IN IP4 0.0.0.0',
    'a=mid:0',
    'a=setup:passive',
    'a=rtcp-mux',
    'a=rtpmap:111 opus/48000/2',
    '',
  ].join('\r\n');

  it('answers the trickle-initial Chrome offer and takes trickled candidates with their ufrag', () => {
    const b = new OfferAnswer({ local: { ufrag: 'BBBB', pwd: 'bbbbbbbbbbbbbbbbbbbbbb' }, trickle: 'full' });
    const r = b.setRemoteDescription(fixture('chrome-offer-trickle-initial.sdp'), 'offer');
    expect(r.streams[0]).toMatchObject({ mode: 'ice', candidates: [], trickle: true, defaultRtp: { address: '0.0.0.0', port: 9 } });
    const answer = b.createAnswer(APP_ANSWER);
    expect(answer).toContain('a=setup:passive');
    expect(answer).toContain('a=ice-options:ice2 trickle');

    const host = { candidate: 'candidate:1467250027 1 udp 2122260223 4a7b9e3c-5d2f-4c1a-9b8e-0f1e2d3c4b5a.local 54400 typ host generation 0', sdpMid: '0', sdpMLineIndex: 0, usernameFragment: 'Kd1x' };
    expect(applyRTCIceCandidateInit(b, host).newCandidates).toHaveLength(1);
    expect(applyRTCIceCandidateInit(b, host).newCandidates).toHaveLength(0); // a repeat
    expect(applyRTCIceCandidateInit(b, { ...host, usernameFragment: 'OLD1' }).accepted).toBe(false);
    expect(applyRTCIceCandidateInit(b, { candidate: '', sdpMid: '0', usernameFragment: 'Kd1x' }).endOfCandidates).toEqual([0]);
    expect(b.remoteCandidates(0).map((c) => c.address)).toEqual(['4a7b9e3c-5d2f-4c1a-9b8e-0f1e2d3c4b5a.local']);
  });

  it('lists local candidates as RTCIceCandidateInit on the BUNDLE-tag section', () => {
    const b = new OfferAnswer({ local: { ufrag: 'BBBB', pwd: 'bbbbbbbbbbbbbbbbbbbbbb' }, trickle: 'full' });
    b.setRemoteDescription(fixture('chrome-offer-bundle.sdp'), 'offer');
    b.setLocalCandidates(0, [{ foundation: '1', component: 1, transport: 'udp', priority: 2122260223, address: '10.0.0.2', port: 6000, type: 'host' }]);
    b.createAnswer(
      APP_ANSWER.replace('a=group:BUNDLE 0', 'a=group:BUNDLE 0 1') +
        'm=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=setup:passive\r\na=rtcp-mux\r\na=rtpmap:96 VP8/90000\r\n',
    );
    expect(localCandidateInits(b)).toEqual([
      { candidate: 'candidate:1 1 udp 2122260223 10.0.0.2 6000 typ host', sdpMid: '0', sdpMLineIndex: 0, usernameFragment: 'BBBB' },
    ]);
  });
});
