import { describe, expect, it } from 'vitest';
import { cand } from './arbitraries.js';
import { InvalidStateError, SdpError } from '../../src/errors.js';
import { OfferAnswer, readIceDescription } from '../../src/sip-offer-answer/index.js';
import { fixture, APP_AUDIO, APP_WEBRTC_ANSWER, A, B, hostA, hostA2, relayA, relayA2, hostB, counterRandom, lines, exchange } from './samples.js';

describe('offer and answer between two sessions', () => {
  it('exchanges credentials and candidates, offerer controlling, defaults in c=/m=/a=rtcp', () => {
    const a = new OfferAnswer({ local: A });
    const b = new OfferAnswer({ local: B });
    a.setLocalCandidates(0, [hostA, hostA2, relayA, relayA2]);
    b.setLocalCandidates(0, [hostB]);
    const { offer, ro, ra } = exchange(a, b);
    expect(lines(offer)).toEqual(expect.arrayContaining(['c=IN IP4 198.51.100.1', 'a=rtcp:60002', 'a=ice-options:ice2', 'a=ice-pacing:50', 'a=ice-ufrag:AAAA']));
    expect(offer).toMatch(/^m=audio 60000 RTP\/AVP 0 8$/m);
    expect(ro.streams[0]!.candidates).toEqual([hostA, hostA2, relayA, relayA2]);
    expect(ro.streams[0]).toMatchObject({ ufrag: 'AAAA', pwd: A.pwd, mode: 'ice', ice2: true, restart: false });
    expect(ra.streams[0]!.candidates).toEqual([hostB]);
    expect(a.role).toBe('controlling');
    expect(b.role).toBe('controlled');
    expect(a.signalingState).toBe('stable');
    expect(b.signalingState).toBe('stable');
  });

  it.each([
    [false, false, 'controlling', 'controlled'],
    [false, true, 'controlling', 'controlled'],
    [true, false, 'controlled', 'controlling'],
    [true, true, 'controlling', 'controlled'],
  ] as const)('roles (RFC 8445 §6.1.1): offerer lite=%s answerer lite=%s → %s / %s', (liteA, liteB, roleA, roleB) => {
    const a = new OfferAnswer({ local: { ...A, lite: liteA } });
    const b = new OfferAnswer({ local: { ...B, lite: liteB } });
    const { offer, answer, ro, ra } = exchange(a, b);
    expect(a.role).toBe(roleA);
    expect(b.role).toBe(roleB);
    expect(ro.remoteLite).toBe(liteA);
    expect(ra.remoteLite).toBe(liteB);
    // A lite agent writes a=ice-lite and never a=ice-pacing (RFC 8839 §4.3.1).
    expect(offer.includes('a=ice-lite')).toBe(liteA);
    expect(offer.includes('a=ice-pacing')).toBe(!liteA);
    expect(answer.includes('a=ice-lite')).toBe(liteB);
  });

  it('a trickle offer without candidates uses 0.0.0.0/9, no a=rtcp, a=mid and ice-options trickle', () => {
    const a = new OfferAnswer({ local: A, trickle: 'full' });
    const offer = a.createOffer(APP_AUDIO);
    expect(offer).toMatch(/^m=audio 9 RTP\/AVP 0 8$/m);
    expect(lines(offer)).toEqual(expect.arrayContaining(['c=IN IP4 0.0.0.0', 'a=mid:0', 'a=ice-options:ice2 trickle']));
    expect(offer).not.toContain('a=rtcp');
    expect(offer).not.toContain('a=candidate');
  });

  it('mDNS-only candidates: listed, but c=/m= carry 0.0.0.0/9', () => {
    const a = new OfferAnswer({ local: A, trickle: 'full' });
    a.setLocalCandidates(0, [
      {
        ...cand({ address: '10.0.0.1', port: 5000 }),
        base: { address: '10.0.0.1', port: 5000 },
        socket: { address: '10.0.0.1', port: 5000 },
        mdnsName: '1f2e3d4c-5b6a-4798-8a7b-6c5d4e3f2a1b.local',
      },
    ]);
    const offer = a.createOffer(APP_AUDIO);
    expect(offer).toContain('a=candidate:h1 1 udp 2130706431 1f2e3d4c-5b6a-4798-8a7b-6c5d4e3f2a1b.local 5000 typ host');
    expect(offer).not.toContain('10.0.0.1');
    expect(lines(offer)).toContain('c=IN IP4 0.0.0.0');
    expect(offer).toMatch(/^m=audio 9 /m);
  });

  it('writes end-of-candidates once gathering is over', () => {
    const a = new OfferAnswer({ local: A, trickle: 'half' });
    a.setLocalCandidates(0, [hostA]);
    a.setLocalEndOfCandidates(0);
    expect(readIceDescription(a.createOffer(APP_AUDIO)).media[0]!.endOfCandidates).toBe(true);
  });

  it('media-level credentials when asked', () => {
    const a = new OfferAnswer({ local: A, credentialsLevel: 'media' });
    const d = readIceDescription(a.createOffer(APP_AUDIO));
    expect(d.ufrag).toBeUndefined();
    expect(d.media[0]!.mediaLevel).toEqual({ ufrag: 'AAAA', pwd: A.pwd, options: ['ice2'] });
  });

  it('rejects a local ufrag longer than 32 characters (RFC 8839 §5.4 sending limit)', () => {
    expect(() => new OfferAnswer({ local: { ...A, ufrag: 'a'.repeat(33) } })).toThrow(InvalidStateError);
    expect(() => new OfferAnswer({ local: { ...A, pwd: 'short' } })).toThrow(InvalidStateError);
  });

  it('keeps the application attributes (a=setup is the application’s DTLS choice)', () => {
    const b = new OfferAnswer({ local: B });
    b.setRemoteDescription(fixture('chrome-offer-bundle.sdp'), 'offer');
    const answer = b.createAnswer(APP_WEBRTC_ANSWER);
    expect(answer.match(/^a=setup:active$/gm)).toHaveLength(2);
    expect(answer).toContain('a=fingerprint:sha-256 AA:BB');
  });
});

describe('BUNDLE (browser offers)', () => {
  it('maps the Chrome offer to one transport and answers with candidates only in the BUNDLE-tag section', () => {
    const b = new OfferAnswer({ local: B, trickle: 'full' });
    b.setLocalCandidates(0, [hostB]);
    const r = b.setRemoteDescription(fixture('chrome-offer-bundle.sdp'), 'offer');
    expect(r.streams.map((s) => [s.mode, s.transportIndex, s.trickle])).toEqual([
      ['ice', 0, true],
      ['ice', 0, true],
    ]);
    expect(b.remoteCandidates(0)).toHaveLength(2);
    const d = readIceDescription(b.createAnswer(APP_WEBRTC_ANSWER));
    expect(d.media[0]!.candidates).toEqual([hostB]);
    expect(d.media[1]!.candidates).toEqual([]);
    expect(d.media[1]).toMatchObject({ connection: '10.0.0.2', port: 6000, ufrag: 'BBBB' });
  });

  it("repeats candidates in every bundled section with bundleCandidates 'all'", () => {
    const b = new OfferAnswer({ local: B, bundleCandidates: 'all' });
    b.setLocalCandidates(0, [hostB]);
    b.setRemoteDescription(fixture('chrome-offer-bundle.sdp'), 'offer');
    const d = readIceDescription(b.createAnswer(APP_WEBRTC_ANSWER));
    expect(d.media[1]!.candidates).toEqual([hostB]);
  });

  it('reads the Firefox offer: session-level credentials, end-of-candidates, bundle-only section on the tag transport', () => {
    const b = new OfferAnswer({ local: B });
    const r = b.setRemoteDescription(fixture('firefox-offer.sdp'), 'offer');
    expect(r.streams[0]).toMatchObject({ mode: 'ice', ufrag: '3f9c2b1a', endOfCandidates: true, defaultRtp: { address: '192.0.2.50', port: 61000 } });
    expect(r.streams[1]).toMatchObject({ mode: 'ice', transportIndex: 0 });
  });
});

describe('ICE restart', () => {
  it('detects a restart in a remote offer and answers with new credentials', () => {
    const a = new OfferAnswer({ local: A });
    const b = new OfferAnswer({ local: B, random: counterRandom() });
    exchange(a, b);
    a.restartIce({ ufrag: 'A2A2', pwd: 'cccccccccccccccccccccc' });
    expect(a.restartPending).toBe(true);
    const offer = a.createOffer(APP_AUDIO);
    expect(offer).toContain('a=ice-ufrag:A2A2');
    const ro = b.setRemoteDescription(offer, 'offer');
    expect(ro.restart).toBe(true);
    expect(ro.streams[0]!.restart).toBe(true);
    const answer = b.createAnswer(APP_AUDIO);
    const bUfrag = readIceDescription(answer).ufrag!;
    expect(bUfrag).not.toBe('BBBB');
    expect(bUfrag).toHaveLength(8);
    const ra = a.setRemoteDescription(answer, 'answer');
    expect(ra.restart).toBe(true);
    expect(a.restartPending).toBe(false);
    // Roles survive a restart (RFC 8445 §9).
    expect(a.role).toBe('controlling');
    expect(b.role).toBe('controlled');
  });

  it('without a RandomSource the answerer must be given new credentials', () => {
    const a = new OfferAnswer({ local: A });
    const b = new OfferAnswer({ local: B });
    exchange(a, b);
    a.restartIce({ ufrag: 'A2A2', pwd: 'cccccccccccccccccccccc' });
    b.setRemoteDescription(a.createOffer(APP_AUDIO), 'offer');
    expect(() => b.createAnswer(APP_AUDIO)).toThrow(InvalidStateError);
    b.restartIce({ ufrag: 'B2B2', pwd: 'dddddddddddddddddddddd' });
    expect(b.createAnswer(APP_AUDIO)).toContain('a=ice-ufrag:B2B2');
  });

  it('a restart must change both ufrag and pwd', () => {
    const a = new OfferAnswer({ local: A });
    expect(() => a.restartIce({ ufrag: 'AAAA', pwd: 'cccccccccccccccccccccc' })).toThrow(InvalidStateError);
    expect(() => a.restartIce()).toThrow(InvalidStateError);
  });

  it('moving the same credentials from session to media level is not a restart (RFC 8839 §4.4.1.1.1)', () => {
    const b = new OfferAnswer({ local: B });
    const first = fixture('sip-ice-offer.sdp');
    b.setRemoteDescription(first, 'offer');
    b.createAnswer(APP_AUDIO);
    const moved = first
      .replace('a=ice-ufrag:pH0n\r\na=ice-pwd:q8Rk2mVx7LpB4nZt9WcY3d\r\n', '')
      .replace('a=sendrecv\r\n', 'a=sendrecv\r\na=ice-ufrag:pH0n\r\na=ice-pwd:q8Rk2mVx7LpB4nZt9WcY3d\r\n');
    expect(readIceDescription(moved).media[0]!.mediaLevel.ufrag).toBe('pH0n');
    expect(b.setRemoteDescription(moved, 'offer').restart).toBe(false);
  });

  it('rejects an offer that changes ice-lite without a restart, tolerates ice-options/ice-pacing changes (RFC 8839 §4.4.2.1, docs/deviations.md)', () => {
    const b = new OfferAnswer({ local: B });
    const first = fixture('sip-ice-offer.sdp');
    b.setRemoteDescription(first, 'offer');
    b.createAnswer(APP_AUDIO);
    expect(() => b.setRemoteDescription(first.replace('a=ice-pacing:50', 'a=ice-lite\r\na=ice-pacing:50'), 'offer')).toThrow(SdpError);
    const paced = b.setRemoteDescription(first.replace('a=ice-pacing:50', 'a=ice-pacing:20'), 'offer');
    expect(paced.warnings).toHaveLength(1);
    expect(paced.remotePacingMs).toBe(50); // the running session keeps its pacing
    b.createAnswer(APP_AUDIO);
    const opts = b.setRemoteDescription(first.replace('a=ice-options:ice2', 'a=ice-options:ice2 trickle'), 'offer');
    expect(opts.warnings).toHaveLength(1);
    expect(opts.streams[0]!.trickle).toBe(false);
    b.createAnswer(APP_AUDIO);
    // With new credentials the same changes are a legal restart.
    const restarted = first.replace('a=ice-pacing:50', 'a=ice-pacing:20').replace('pH0n', 'pH0m').replace('q8Rk2mVx7LpB4nZt9WcY3d', 'q8Rk2mVx7LpB4nZt9WcY3e');
    expect(b.setRemoteDescription(restarted, 'offer').restart).toBe(true);
  });

  it('after an answer that dropped ICE, the next offer restarts ICE (RFC 8839 §4.4.3.1)', () => {
    const a = new OfferAnswer({ local: A, random: counterRandom() });
    const b = new OfferAnswer({ local: B });
    exchange(a, b);
    a.createOffer(APP_AUDIO);
    expect(a.setRemoteDescription(fixture('sip-invite-behind-nat.sdp'), 'answer').iceMode).toBe('none');
    const offer = a.createOffer(APP_AUDIO);
    expect(readIceDescription(offer).ufrag).not.toBe('AAAA');
  });
});

describe('pacing (RFC 8839 §5.5)', () => {
  it.each([
    [undefined, undefined, 50],
    [20, undefined, 50],
    [100, undefined, 100],
    [20, 200, 200],
    [300, 200, 300],
  ] as const)('offerer %s ms, answerer %s ms → both use %i ms', (pa, pb, expected) => {
    const a = new OfferAnswer({ local: { ...A, ...(pa !== undefined ? { pacingMs: pa } : {}) } });
    const b = new OfferAnswer({ local: { ...B, ...(pb !== undefined ? { pacingMs: pb } : {}) } });
    const { ro, ra } = exchange(a, b);
    expect(ro.pacingMs).toBe(expected);
    expect(ra.pacingMs).toBe(expected);
    expect(a.pacingMs).toBe(expected);
    expect(b.pacingMs).toBe(expected);
    expect(ro.remotePacingMs).toBe(pa ?? 50);
  });

  it('a lite answerer sends no ice-pacing: the offerer uses its own value or 50', () => {
    const a = new OfferAnswer({ local: { ...A, pacingMs: 30 } });
    const b = new OfferAnswer({ local: { ...B, lite: true } });
    const { ra } = exchange(a, b);
    expect(ra.remotePacingMs).toBeUndefined();
    expect(a.pacingMs).toBe(50);
    expect(b.localPacingMs).toBeUndefined();
  });
});

describe('state and input errors', () => {
  it('throws InvalidStateError out of order and SdpError for a wrong m= count', () => {
    const a = new OfferAnswer({ local: A });
    expect(() => a.createAnswer(APP_AUDIO)).toThrow(InvalidStateError);
    expect(() => a.setRemoteDescription(fixture('sip-ice-offer.sdp'), 'answer')).toThrow(InvalidStateError);
    a.createOffer(APP_AUDIO);
    expect(() => a.setRemoteDescription(fixture('sip-ice-offer.sdp'), 'offer')).toThrow(InvalidStateError);
    expect(() => a.setRemoteDescription(fixture('chrome-offer-bundle.sdp'), 'answer')).toThrow(SdpError);
    const b = new OfferAnswer({ local: B });
    b.setRemoteDescription(fixture('chrome-offer-bundle.sdp'), 'offer');
    expect(() => b.createAnswer(APP_AUDIO)).toThrow(SdpError);
  });

  it('a bad remote SDP leaves the state unchanged and names the line', () => {
    const b = new OfferAnswer({ local: B });
    const bad = fixture('sip-ice-offer.sdp').replace('a=ice-pwd:q8Rk2mVx7LpB4nZt9WcY3d', 'a=ice-pwd:short');
    try {
      b.setRemoteDescription(bad, 'offer');
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(SdpError);
      expect((e as SdpError).line).toBe(9);
      expect((e as SdpError).text).toBe('a=ice-pwd:short');
    }
    expect(b.signalingState).toBe('stable');
    expect(b.setRemoteDescription(fixture('sip-ice-offer.sdp'), 'offer').iceMode).toBe('ice');
  });

  it('reports only candidates that are new in a subsequent description', () => {
    const a = new OfferAnswer({ local: A });
    const b = new OfferAnswer({ local: B });
    a.setLocalCandidates(0, [hostA]);
    exchange(a, b);
    a.addLocalCandidate(0, relayA);
    expect(a.addLocalCandidate(0, relayA)).toBe(false);
    const ro = b.setRemoteDescription(a.createOffer(APP_AUDIO), 'offer');
    expect(ro.streams[0]!.candidates).toEqual([hostA, relayA]);
    expect(ro.streams[0]!.newCandidates).toEqual([relayA]);
  });
});

describe('robustness', () => {
  it('a mutated remote offer throws only SdpError, and an accepted one can be answered', async () => {
    const fc = (await import('fast-check')).default;
    const { mutate, mutation } = await import('./mutate.js');
    const fixtures = ['chrome-offer-bundle.sdp', 'firefox-offer.sdp', 'sip-ice-offer-after-rtpproxy.sdp', 'sip-ice-offer.sdp', 'sip-invite-behind-nat.sdp'].map(fixture);
    const app = (n: number) => ['v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=-', 't=0 0', ...Array.from({ length: n }, () => ['m=audio 9 RTP/AVP 0', 'c=IN IP4 127.0.0.1']).flat(), ''].join('\r\n');
    fc.assert(
      fc.property(fc.nat(fixtures.length - 1), fc.array(mutation, { minLength: 1, maxLength: 4 }), (f, ms) => {
        const b = new OfferAnswer({ local: B, trickle: 'full' });
        b.setLocalCandidates(0, [hostB]);
        let r;
        try {
          r = b.setRemoteDescription(mutate(fixtures[f]!, ms), 'offer');
        } catch (e) {
          expect(e).toBeInstanceOf(SdpError);
          expect(b.signalingState).toBe('stable');
          return;
        }
        const answer = b.createAnswer(app(r.streams.length));
        expect(readIceDescription(answer).media).toHaveLength(r.streams.length);
      }),
      { numRuns: 1000 },
    );
  });
});

