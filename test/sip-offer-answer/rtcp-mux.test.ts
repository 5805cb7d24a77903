/**
 * RTCP beside rtcp-mux in the pure offer/answer layer (issue 13 item 1): the offer's RTCP fallback (RFC 5761 §5.1.3,
 * RFC 3605), rtcp-mux-only (RFC 8858), components of an answer counted from the application's answer, and where
 * RTCP goes for a peer that offered mux and was declined.
 */
import { describe, expect, it } from 'vitest';
import { OfferAnswer, readIceDescription } from '../../src/sip-offer-answer/index.js';
import { A, APP_AUDIO, B, fixture, hostA, hostA2 } from './samples.js';

const withLines = (sdp: string, extra: string[]) => `${sdp}${extra.map((l) => `${l}\r\n`).join('')}`;
const MUX = withLines(APP_AUDIO, ['a=rtcp-mux']);
const MUX_ONLY = withLines(APP_AUDIO, ['a=rtcp-mux', 'a=rtcp-mux-only']);

describe('RTCP beside rtcp-mux', () => {
  it('an offer with rtcp-mux and RTCP candidates writes a=rtcp for them (the fallback of RFC 5761 §5.1.3)', () => {
    const oa = new OfferAnswer({ local: A });
    oa.setLocalCandidates(0, [hostA, hostA2]);
    const m = readIceDescription(oa.createOffer(MUX)).media[0]!;
    expect(m.rtcpMux).toBe(true);
    expect(m.rtcp).toEqual({ address: '10.0.0.1', port: 5001 });
    expect(m.candidates.map((c) => c.component)).toEqual([1, 2]);
  });

  it('rtcp-mux-only is read as such, and with RTP candidates only the offer has no a=rtcp', () => {
    const oa = new OfferAnswer({ local: A });
    oa.setLocalCandidates(0, [hostA]);
    const m = readIceDescription(oa.createOffer(MUX_ONLY)).media[0]!;
    expect(m.rtcpMuxOnly).toBe(true);
    expect(m.rtcp).toBeUndefined();
  });

  it('answerTransports counts components from the application answer: 2 when it declines mux, 1 when it accepts', () => {
    const offerer = new OfferAnswer({ local: A });
    offerer.setLocalCandidates(0, [hostA, hostA2]);
    const offer = offerer.createOffer(MUX);
    const answerer = new OfferAnswer({ local: B });
    answerer.setRemoteDescription(offer, 'offer');
    expect(answerer.answerTransports(APP_AUDIO)[0]!.components).toBe(2);
    expect(answerer.answerTransports(MUX)[0]!.components).toBe(1);
    // Before: counted from a local description that did not exist yet, so always 1 under a mux offer.
  });

  it('a peer without ICE that offered mux and is declined gets RTCP at RTP port + 1 (RFC 3605, RFC 3550 §11)', () => {
    const noIce = withLines(fixture('sip-invite-behind-nat.sdp'), ['a=rtcp-mux']);
    const oa = new OfferAnswer({ local: B });
    oa.setRemoteDescription(noIce, 'offer');
    const plan = oa.answerTransports(APP_AUDIO)[0]!;
    expect(plan.mode).toBe('none');
    expect(plan.components).toBe(2);
    expect(plan.defaultRtcp).toEqual({ address: '10.0.0.180', port: 56015 });
    expect(oa.answerTransports(MUX)[0]!.components).toBe(1);
  });

  it('an answer ignoring our rtcp-mux-only keeps one component (RFC 8858 §4: the peer must accept or reject)', () => {
    const oa = new OfferAnswer({ local: A });
    oa.setLocalCandidates(0, [hostA]);
    oa.createOffer(MUX_ONLY);
    oa.setRemoteDescription(fixture('sip-invite-behind-nat.sdp'), 'answer');
    expect(oa.transports()[0]!.components).toBe(1);
  });
});
