import { describe, expect, it } from 'vitest';
import { OfferAnswer, readIceDescription } from '../../src/sip-offer-answer/index.js';
import { APP_AUDIO, A, B, exchange } from './samples.js';

/**
 * RFC 8839 §4.4.1.1.1 and §4.4.2.1, RFC 8445 §9: a restart is carried by an offer. The answer to an offer that did
 * not restart keeps the credentials in force, even when a local restart was begun; that restart waits for our offer.
 */
describe('an answer never restarts ICE by itself', () => {
  it('restartIce() while a plain re-offer is pending: the answer keeps the old credentials, our next offer restarts', () => {
    const a = new OfferAnswer({ local: A });
    const b = new OfferAnswer({ local: B });
    exchange(a, b);
    b.setRemoteDescription(a.createOffer(APP_AUDIO), 'offer'); // a plain re-offer (same credentials)
    b.restartIce({ ufrag: 'B2B2', pwd: 'dddddddddddddddddddddd' });
    const text = b.createAnswer(APP_AUDIO);
    const answer = readIceDescription(text);
    expect([answer.ufrag, answer.pwd]).toEqual([B.ufrag, B.pwd]);
    expect(a.setRemoteDescription(text, 'answer').restart).toBe(false);
    expect(b.restartPending).toBe(true);
    const offer = b.createOffer(APP_AUDIO);
    expect(offer).toContain('a=ice-ufrag:B2B2');
    const ro = a.setRemoteDescription(offer, 'offer');
    expect(ro.restart).toBe(true);
  });

  it('restartIce() in stable, then the peer re-offers without restarting: the answer keeps the old credentials', () => {
    const a = new OfferAnswer({ local: A });
    const b = new OfferAnswer({ local: B });
    exchange(a, b);
    b.restartIce({ ufrag: 'B2B2', pwd: 'dddddddddddddddddddddd' });
    b.setRemoteDescription(a.createOffer(APP_AUDIO), 'offer');
    const answer = b.createAnswer(APP_AUDIO);
    expect(answer).toContain(`a=ice-ufrag:${B.ufrag}`);
    expect(answer).not.toContain('B2B2');
    expect(a.setRemoteDescription(answer, 'answer').restart).toBe(false);
    expect(b.createOffer(APP_AUDIO)).toContain('a=ice-ufrag:B2B2');
  });

  it('a restarting offer still gets new credentials when a local restart was begun (the restart serves both)', () => {
    const a = new OfferAnswer({ local: A });
    const b = new OfferAnswer({ local: B });
    exchange(a, b);
    b.restartIce({ ufrag: 'B2B2', pwd: 'dddddddddddddddddddddd' });
    a.restartIce({ ufrag: 'A2A2', pwd: 'cccccccccccccccccccccc' });
    b.setRemoteDescription(a.createOffer(APP_AUDIO), 'offer');
    expect(b.createAnswer(APP_AUDIO)).toContain('a=ice-ufrag:B2B2');
    expect(b.restartPending).toBe(false);
  });
});

