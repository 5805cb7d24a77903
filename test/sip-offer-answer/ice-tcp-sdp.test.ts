/** ICE-TCP candidates in SDP (RFC 6544 §4.5): a=candidate with tcptype both ways, defaults, a=setup/a=connection. */
import { describe, expect, it } from 'vitest';
import { formatCandidate, parseCandidate } from '../../src/candidates/grammar.js';
import { OfferAnswer, readIceDescription } from '../../src/sip-offer-answer/index.js';
import { fromRTCIceCandidateInit, toRTCIceCandidateInit } from '../../src/sip-offer-answer/webrtc.js';
import { cand } from './arbitraries.js';
import { A, APP_AUDIO } from './samples.js';

const passive = cand({ foundation: 't1', transport: 'tcp', tcpType: 'passive', address: '10.0.0.1', port: 7000, priority: 2105540351 });
const active = cand({ foundation: 't1', transport: 'tcp', tcpType: 'active', address: '10.0.0.1', port: 9, priority: 2122317567 });
const udp = cand({ address: '10.0.0.1', port: 5000 });
const APP_TCP = APP_AUDIO.replace('m=audio 9 RTP/AVP 0 8', 'm=audio 9 TCP/RTP/AVP 0 8');

describe('ICE-TCP in SDP', () => {
  it('reads and writes a=candidate ... tcp ... tcptype, both ways', () => {
    const line = 'candidate:t1 1 TCP 2105540351 10.0.0.1 7000 typ host tcptype passive';
    const c = parseCandidate(line);
    expect(c).toMatchObject({ transport: 'tcp', tcpType: 'passive', port: 7000 });
    expect(formatCandidate(c)).toBe(line);
    const a = new OfferAnswer({ local: A });
    a.setLocalCandidates(0, [udp, passive, active]);
    const d = readIceDescription(a.createOffer(APP_AUDIO)).media[0]!;
    expect(d.candidates.filter((x) => x.transport === 'tcp').map((x) => [x.tcpType, x.port])).toEqual([
      ['passive', 7000],
      ['active', 9],
    ]);
  });

  it('keeps UDP the default on an RTP/AVP section with mixed candidates (RFC 6544 §4.3)', () => {
    const a = new OfferAnswer({ local: A });
    a.setLocalCandidates(0, [passive, active, udp]);
    const offer = a.createOffer(APP_AUDIO);
    expect(readIceDescription(offer).media[0]).toMatchObject({ connection: '10.0.0.1', port: 5000 });
    expect(offer).not.toContain('a=setup');
  });

  it('on a TCP section: the passive candidate is the default, never the active one, with a=setup:passive and a=connection:new', () => {
    const a = new OfferAnswer({ local: A });
    a.setLocalCandidates(0, [active, passive]);
    const offer = a.createOffer(APP_TCP);
    expect(readIceDescription(offer).media[0]).toMatchObject({ connection: '10.0.0.1', port: 7000 });
    expect(offer).toContain('a=setup:passive\r\na=connection:new\r\n');
  });

  it("keeps the application's own a=setup", () => {
    const a = new OfferAnswer({ local: A });
    a.setLocalCandidates(0, [passive]);
    const offer = a.createOffer(APP_TCP.replace('a=sendrecv', 'a=sendrecv\r\na=setup:actpass'));
    expect(offer.match(/a=setup/g)).toHaveLength(1);
    expect(offer).toContain('a=setup:actpass');
    expect(offer).not.toContain('a=connection');
  });

  it('only active TCP candidates on a TCP section: placeholder default, no a=setup', () => {
    const a = new OfferAnswer({ local: A });
    a.setLocalCandidates(0, [active]);
    const offer = a.createOffer(APP_TCP);
    expect(readIceDescription(offer).media[0]).toMatchObject({ connection: '0.0.0.0', port: 9 });
    expect(offer).not.toContain('a=setup');
  });

  it('toRTCIceCandidateInit carries the tcptype, and back', () => {
    const init = toRTCIceCandidateInit(passive, { sdpMid: '0', sdpMLineIndex: 0 });
    expect(init.candidate).toMatch(/ tcp 2105540351 10\.0\.0\.1 7000 typ host tcptype passive$/);
    const back = fromRTCIceCandidateInit(init);
    expect(back.kind === 'candidate' ? back.candidate : undefined).toMatchObject({ transport: 'tcp', tcpType: 'passive' });
  });
});
