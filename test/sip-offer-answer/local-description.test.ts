/** local-description.ts through OfferAnswer: the local parameters, and the defaults after nomination. */
import { describe, expect, it } from 'vitest';
import { cand } from './arbitraries.js';
import { InvalidStateError } from '../../src/errors.js';
import { OfferAnswer, readIceDescription } from '../../src/sip-offer-answer/index.js';
import { APP_AUDIO, A, B, hostA, relayA, hostB, exchange } from './samples.js';

describe('after nomination', () => {
  it('the controlling offerer aligns c=/m= with the selected pair, lists only its candidates, adds remote-candidates', () => {
    const a = new OfferAnswer({ local: A });
    const b = new OfferAnswer({ local: B });
    a.setLocalCandidates(0, [hostA, relayA]);
    b.setLocalCandidates(0, [hostB, cand({ foundation: 'h2', address: '10.0.0.3', port: 6002, priority: 2130706000 })]);
    exchange(a, b);
    a.setSelectedPair(0, 1, { local: hostA, remote: { address: '10.0.0.3', port: 6002 } });
    const offer = a.createOffer(APP_AUDIO);
    const d = readIceDescription(offer).media[0]!;
    expect(d).toMatchObject({ connection: '10.0.0.1', port: 5000, candidates: [hostA], remoteCandidates: [{ component: 1, address: '10.0.0.3', port: 6002 }] });
    // The controlled answerer puts the remote-candidates in its default destination (RFC 8839 §4.4.2).
    const ro = b.setRemoteDescription(offer, 'offer');
    expect(ro.streams[0]!.remoteCandidates).toEqual([{ component: 1, address: '10.0.0.3', port: 6002 }]);
    expect(ro.restart).toBe(false);
    const ans = readIceDescription(b.createAnswer(APP_AUDIO)).media[0]!;
    expect(ans).toMatchObject({ connection: '10.0.0.3', port: 6002 });
    expect(ans.candidates.map((c) => c.port)).toEqual([6002]);
    expect(ans.remoteCandidates).toBeUndefined();
  });

  it('a controlled offerer aligns the default but sends no remote-candidates', () => {
    const a = new OfferAnswer({ local: A });
    const b = new OfferAnswer({ local: B });
    a.setLocalCandidates(0, [hostA]);
    b.setLocalCandidates(0, [hostB, relayA]);
    exchange(a, b);
    b.setSelectedPair(0, 1, { local: hostB, remote: { address: '10.0.0.1', port: 5000 } });
    const d = readIceDescription(b.createOffer(APP_AUDIO)).media[0]!;
    expect(d).toMatchObject({ connection: '10.0.0.2', port: 6000, candidates: [hostB] });
    expect(d.remoteCandidates).toBeUndefined();
  });

  it('updatedOfferNeeded when the selected pair is not the default and the peer lacks ice2 (RFC 8839 §4.3.4)', () => {
    const a = new OfferAnswer({ local: A });
    const b = new OfferAnswer({ local: B });
    a.setLocalCandidates(0, [hostA, relayA]);
    b.setLocalCandidates(0, [hostB]);
    const offer = a.createOffer(APP_AUDIO);
    b.setRemoteDescription(offer, 'offer');
    const rfc5245Answer = b.createAnswer(APP_AUDIO).replace('a=ice-options:ice2\r\n', '');
    a.setRemoteDescription(rfc5245Answer, 'answer');
    expect(a.updatedOfferNeeded).toBe(false);
    a.setSelectedPair(0, 1, { local: relayA, remote: { address: '10.0.0.2', port: 6000 } });
    expect(a.updatedOfferNeeded).toBe(false); // relay is the signalled default
    a.setSelectedPair(0, 1, { local: hostA, remote: { address: '10.0.0.2', port: 6000 } });
    expect(a.updatedOfferNeeded).toBe(true);
  });
});

describe('ice2 (RFC 8445 §10)', () => {
  const local = { ufrag: 'abcd1234', pwd: 'abcdefghijklmnopqrstuvwx' } as const;
  it('is written by default', () => {
    expect(new OfferAnswer({ local }).createOffer(APP_AUDIO)).toMatch(/a=ice-options:ice2\r\n/);
  });
  it('is not claimed by an agent that nominates aggressively (ice2: false)', () => {
    const offer = new OfferAnswer({ local: { ...local, ice2: false } }).createOffer(APP_AUDIO);
    expect(offer).not.toMatch(/ice2/);
    expect(offer).toMatch(/a=ice-ufrag:abcd1234/);
  });
});

describe('local pacing (RFC 8839 §5.5, one rule: stun/pacing isPacingValue)', () => {
  it('accepts any value of the grammar, 0 included, and negotiates the higher proposal', () => {
    for (const v of [0, 1, 9_999_999_999]) expect(new OfferAnswer({ local: { ...A, pacingMs: v } }).localPacingMs).toBe(v);
    const a = new OfferAnswer({ local: { ...A, pacingMs: 0 } });
    const b = new OfferAnswer({ local: B });
    exchange(a, b);
    expect(a.pacingMs).toBe(50);
  });

  it('rejects what the grammar cannot carry with InvalidStateError, in the options and at a restart', () => {
    for (const v of [-1, 1.5, 10_000_000_000, Number.NaN]) {
      expect(() => new OfferAnswer({ local: { ...A, pacingMs: v } })).toThrow(InvalidStateError);
      expect(() => new OfferAnswer({ local: A }).restartIce({ ufrag: 'CCCC', pwd: 'cccccccccccccccccccccc', pacingMs: v })).toThrow(InvalidStateError);
    }
  });
});
