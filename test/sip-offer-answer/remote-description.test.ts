/** remote-description.ts through OfferAnswer: stream modes, mismatch, peers without ICE, transport plans. */
import { describe, expect, it } from 'vitest';
import { cand } from './arbitraries.js';
import { OfferAnswer, readIceDescription } from '../../src/sip-offer-answer/index.js';
import { fixture, APP_AUDIO, APP_WEBRTC_ANSWER, A, B, hostA, hostB, exchange } from './samples.js';

describe('peers without ICE (shared SIP fixtures)', () => {
  it('behind-nat INVITE: iceMode none, remote 10.0.0.180:56014, answer without any ICE attribute', () => {
    const s = new OfferAnswer({ local: B });
    s.setLocalCandidates(0, [hostB, cand({ foundation: 's1', type: 'srflx', address: '203.0.113.2', port: 6000, priority: 1694498815, relatedAddress: '10.0.0.2', relatedPort: 6000 })]);
    const r = s.setRemoteDescription(fixture('sip-invite-behind-nat.sdp'), 'offer');
    expect(r.iceMode).toBe('none');
    expect(s.iceMode).toBe('none');
    expect(r.streams[0]).toMatchObject({ mode: 'none', defaultRtp: { address: '10.0.0.180', port: 56014 }, defaultRtcp: { address: '10.0.0.180', port: 56015 }, candidates: [] });
    const answer = s.createAnswer(APP_AUDIO);
    expect(answer).not.toMatch(/^a=(ice-|candidate|end-of-candidates|remote-candidates)/m);
    // The most reachable candidate (srflx over host) is the destination a non-ICE peer sends to.
    const d = readIceDescription(answer);
    expect(d.media[0]).toMatchObject({ connection: '203.0.113.2', port: 6000 });
  });

  it('after-rtpproxy INVITE: the remote destination is the relay 90.0.0.1:51164', () => {
    const s = new OfferAnswer({ local: B });
    const r = s.setRemoteDescription(fixture('sip-invite-after-rtpproxy.sdp'), 'offer');
    expect(r.iceMode).toBe('none');
    expect(r.streams[0]!.defaultRtp).toEqual({ address: '90.0.0.1', port: 51164 });
  });

  it('an offerer whose answer comes back without ICE falls back to the c=/m= address', () => {
    const a = new OfferAnswer({ local: A });
    a.setLocalCandidates(0, [hostA]);
    a.createOffer(APP_AUDIO);
    const r = a.setRemoteDescription(fixture('sip-invite-after-rtpproxy.sdp'), 'answer');
    expect(r.iceMode).toBe('none');
    expect(r.streams[0]).toMatchObject({ mode: 'none', defaultRtp: { address: '90.0.0.1', port: 51164 } });
  });
});

describe('ICE mismatch', () => {
  it('answers an ICE offer rewritten by a relay with a=ice-mismatch and no candidates; the stream runs without ICE', () => {
    const s = new OfferAnswer({ local: B });
    s.setLocalCandidates(0, [hostB]);
    const r = s.setRemoteDescription(fixture('sip-ice-offer-after-rtpproxy.sdp'), 'offer');
    expect(r.streams[0]).toMatchObject({ mode: 'mismatch', defaultRtp: { address: '90.0.0.1', port: 51164 }, candidates: [] });
    expect(r.iceMode).toBe('none');
    const answer = s.createAnswer(fixture('sip-invite-behind-nat.sdp'));
    const d = readIceDescription(answer);
    expect(d.media[0]).toMatchObject({ iceMismatch: true, candidates: [], ufrag: 'BBBB', connection: '10.0.0.2', port: 6000 });
    expect(answer).toContain('a=ice-mismatch');
    expect(answer).not.toContain('a=candidate');
  });

  it('the same offer without the rewrite runs ICE', () => {
    const s = new OfferAnswer({ local: B });
    const r = s.setRemoteDescription(fixture('sip-ice-offer.sdp'), 'offer');
    expect(r.iceMode).toBe('ice');
    expect(r.streams[0]!.mode).toBe('ice');
    expect(r.streams[0]!.candidates).toHaveLength(4);
    expect(r.role).toBe('controlled');
    expect(r.remotePacingMs).toBe(50);
  });

  it('an offerer receiving a=ice-mismatch runs that stream without ICE', () => {
    const a = new OfferAnswer({ local: A });
    const b = new OfferAnswer({ local: B });
    a.setLocalCandidates(0, [hostA]);
    const offer = a.createOffer(APP_AUDIO);
    // A relay rewrites the offer's c=/m= on the way.
    const rewritten = offer.replace(/^c=IN IP4 10\.0\.0\.1$/m, 'c=IN IP4 90.0.0.1').replace(/^m=audio 5000 /m, 'm=audio 51164 ');
    expect(b.setRemoteDescription(rewritten, 'offer').streams[0]!.mode).toBe('mismatch');
    const r = a.setRemoteDescription(b.createAnswer(APP_AUDIO), 'answer');
    expect(r.streams[0]!.mode).toBe('mismatch');
    expect(r.iceMode).toBe('none');
  });

  it('an offerer detecting a mismatch in the answer stops ICE for the whole session (RFC 8839 §4.3.3)', () => {
    const a = new OfferAnswer({ local: A });
    const b = new OfferAnswer({ local: B });
    b.setLocalCandidates(0, [hostB]);
    b.setRemoteDescription(a.createOffer(APP_AUDIO), 'offer');
    const answer = b.createAnswer(APP_AUDIO).replace(/^m=audio 6000 /m, 'm=audio 40000 ');
    const r = a.setRemoteDescription(answer, 'answer');
    expect(r.iceMode).toBe('none');
    expect(r.streams[0]!.mode).toBe('mismatch');
  });
});

describe('transports() for the ICE agent', () => {
  it('one transport for a BUNDLE group, RTCP multiplexed, remote credentials and candidates, trickle', () => {
    const b = new OfferAnswer({ local: B, trickle: 'full' });
    b.setRemoteDescription(fixture('chrome-offer-bundle.sdp'), 'offer');
    b.createAnswer(APP_WEBRTC_ANSWER);
    expect(b.trickleNegotiated).toBe(true);
    const [t, ...rest] = b.transports();
    expect(rest).toEqual([]);
    expect(t).toMatchObject({ transportIndex: 0, mids: ['0', '1'], mode: 'ice', components: 1, remoteUfrag: 'Kd1x', remotePwd: 'Zm9vYmFyYmF6cXV4cXV1eDEy', remoteEndOfCandidates: false, restart: false });
    expect(t!.remoteCandidates.map((c) => c.type)).toEqual(['host', 'srflx']);
    b.addRemoteCandidate({ mid: '0' });
    expect(b.transports()[0]!.remoteEndOfCandidates).toBe(true);
  });

  it('a SIP peer without ICE: mode none, two components, the address to send to and latch', () => {
    const b = new OfferAnswer({ local: B, trickle: 'full' });
    b.setRemoteDescription(fixture('sip-invite-behind-nat.sdp'), 'offer');
    b.createAnswer(APP_AUDIO);
    expect(b.trickleNegotiated).toBe(false);
    expect(b.transports()).toEqual([
      {
        transportIndex: 0,
        mids: [],
        mode: 'none',
        components: 2,
        remoteCandidates: [],
        remoteEndOfCandidates: false,
        defaultRtp: { address: '10.0.0.180', port: 56014 },
        defaultRtcp: { address: '10.0.0.180', port: 56015 },
        restart: false,
      },
    ]);
  });

  it('the Firefox offer carries end-of-candidates for its transport', () => {
    const b = new OfferAnswer({ local: B });
    b.setRemoteDescription(fixture('firefox-offer.sdp'), 'offer');
    expect(b.transports().map((t) => [t.transportIndex, t.mids, t.remoteEndOfCandidates, t.remoteCandidates.length])).toEqual([[0, ['0', '1'], true, 3]]);
  });
});

describe('IceTransportPlan.remote: the peer parameters an agent needs, built in one place', () => {
  it('carries credentials, lite, the ice-pacing proposal and the ice-options (ice2 reaches the agent, RFC 8445 §10)', () => {
    const a = new OfferAnswer({ local: A });
    const b = new OfferAnswer({ local: { ...B, pacingMs: 80 }, trickle: 'full' });
    a.setLocalCandidates(0, [hostA]);
    b.setLocalCandidates(0, [hostB]);
    exchange(a, b);
    expect(a.transports()[0]!.remote).toEqual({ ufrag: 'BBBB', pwd: B.pwd, lite: false, pacingMs: 80, options: ['ice2', 'trickle'] });
    expect(b.transports()[0]!.remote).toEqual({ ufrag: 'AAAA', pwd: A.pwd, lite: false, pacingMs: 50, options: ['ice2'] });
    // The old fields stay in step with it.
    expect(a.transports()[0]).toMatchObject({ remoteUfrag: 'BBBB', remotePwd: B.pwd });
  });

  it('an RFC 5245 peer: no ice-options, no pacing proposal; a lite peer: lite', () => {
    const a = new OfferAnswer({ local: A });
    const b = new OfferAnswer({ local: { ...B, lite: true, ice2: false } });
    exchange(a, b);
    expect(a.transports()[0]!.remote).toEqual({ ufrag: 'BBBB', pwd: B.pwd, lite: true, options: [] });
  });

  it('keeps the running ice-options and pacing when a re-offer changes them without a restart', () => {
    const a = new OfferAnswer({ local: A });
    const b = new OfferAnswer({ local: B });
    const { offer } = exchange(a, b);
    const changed = offer.replace('a=ice-options:ice2', 'a=ice-options:ice2 trickle').replace('a=ice-pacing:50', 'a=ice-pacing:90');
    expect(b.setRemoteDescription(changed, 'offer').warnings).toHaveLength(2);
    expect(b.transports()[0]!.remote).toMatchObject({ pacingMs: 50, options: ['ice2'] });
  });

  it('none for a stream without ICE', () => {
    const b = new OfferAnswer({ local: B });
    b.setRemoteDescription(fixture('sip-invite-behind-nat.sdp'), 'offer');
    expect(b.transports()[0]!.remote).toBeUndefined();
  });
});
