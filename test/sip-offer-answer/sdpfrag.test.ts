import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Candidate } from '../../src/candidates/candidate.js';
import { SdpError } from '../../src/errors.js';
import {
  OfferAnswer,
  TRICKLE_ICE_INFO_PACKAGE,
  TRICKLE_ICE_OPTION_TAG,
  TRICKLE_ICE_SDPFRAG_CONTENT_TYPE,
  TRICKLE_ICE_SIP_HEADERS,
  buildSdpfrag,
  parseSdpfrag,
  type Sdpfrag,
} from '../../src/sip-offer-answer/index.js';
import { candidate, iceChars } from './arbitraries.js';

// RFC 8840 §4.4 Figure 7 body, folded candidate lines joined.
const FIGURE_7 = [
  'a=ice-pwd:asd88fgpdd777uzjYhagZg',
  'a=ice-ufrag:8hhY',
  'm=audio 9 RTP/AVP 0',
  'a=mid:1',
  'a=candidate:1 1 UDP 2130706432 2001:db8:a0b:12f0::1 5000 typ host',
  'a=candidate:1 2 UDP 2130706432 2001:db8:a0b:12f0::1 5001 typ host',
  'a=candidate:1 1 UDP 2130706431 192.0.2.1 5010 typ host',
  'a=candidate:1 2 UDP 2130706431 192.0.2.1 5011 typ host',
  'a=candidate:2 1 UDP 1694498815 192.0.2.3 5010 typ srflx raddr 192.0.2.1 rport 8998',
  'a=candidate:2 2 UDP 1694498815 192.0.2.3 5011 typ srflx raddr 192.0.2.1 rport 8998',
  'a=end-of-candidates',
  'm=audio 9 RTP/AVP 0',
  'a=mid:2',
  'a=candidate:1 1 UDP 2130706432 2001:db8:a0b:12f0::1 6000 typ host',
  'a=candidate:1 2 UDP 2130706432 2001:db8:a0b:12f0::1 6001 typ host',
  'a=candidate:1 1 UDP 2130706431 192.0.2.1 6010 typ host',
  'a=candidate:1 2 UDP 2130706431 192.0.2.1 6011 typ host',
  'a=candidate:2 1 UDP 1694498815 192.0.2.3 6010 typ srflx raddr 192.0.2.1 rport 9998',
  'a=candidate:2 2 UDP 1694498815 192.0.2.3 6011 typ srflx raddr 192.0.2.1 rport 9998',
  'a=end-of-candidates',
  '',
].join('\r\n');

describe('parseSdpfrag', () => {
  it('reads the RFC 8840 Figure 7 body', () => {
    const f = parseSdpfrag(FIGURE_7);
    expect(f).toMatchObject({ ufrag: '8hhY', pwd: 'asd88fgpdd777uzjYhagZg', endOfCandidates: false });
    expect(f.media.map((m) => [m.mid, m.candidates.length, m.endOfCandidates, m.mediaLine])).toEqual([
      ['1', 6, true, 'audio 9 RTP/AVP 0'],
      ['2', 6, true, 'audio 9 RTP/AVP 0'],
    ]);
    expect(f.media[0]!.candidates[0]).toMatchObject({ address: '2001:db8:a0b:12f0::1', port: 5000, component: 1 });
  });

  it('reads the §7 BUNDLE and §6 rtcp-mux example lines, session-level end-of-candidates', () => {
    const f = parseSdpfrag(
      'a=group:BUNDLE foo bar\r\na=ice-pwd:asd88fgpdd777uzjYhagZg\r\na=ice-ufrag:8hhY\r\na=end-of-candidates\r\nm=audio 9 RTP/AVP 0\r\na=mid:foo\r\na=rtcp-mux\r\na=candidate:1 1 UDP 1658497328 2001:db8:a0b:12f0::3 5000 typ host\r\n',
    );
    expect(f.bundleGroups).toEqual([['foo', 'bar']]);
    expect(f.endOfCandidates).toBe(true);
    expect(f.media[0]).toMatchObject({ mid: 'foo', rtcpMux: true, endOfCandidates: false });
  });

  it('treats attribute names case-insensitively (RFC 8840 §9.2) and ignores the pseudo m= content', () => {
    const f = parseSdpfrag('a=ICE-UFRAG:8hhY\r\na=Ice-Pwd:asd88fgpdd777uzjYhagZg\r\nm=whatever\r\na=MID:0\r\na=Candidate:1 1 UDP 1 192.0.2.1 5000 typ host\r\n');
    expect(f.ufrag).toBe('8hhY');
    expect(f.media[0]).toMatchObject({ mid: '0', mediaLine: 'whatever' });
    expect(f.media[0]!.candidates).toHaveLength(1);
  });

  it('requires a=mid in every pseudo m= section, naming the m= line', () => {
    try {
      parseSdpfrag('a=ice-ufrag:8hhY\r\na=ice-pwd:asd88fgpdd777uzjYhagZg\r\nm=audio 9 RTP/AVP 0\r\na=candidate:1 1 UDP 1 192.0.2.1 5000 typ host\r\n');
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(SdpError);
      expect((e as SdpError).line).toBe(3);
      expect((e as SdpError).text).toBe('m=audio 9 RTP/AVP 0');
    }
  });

  it('names the line of a bad candidate', () => {
    try {
      parseSdpfrag('a=ice-ufrag:8hhY\r\na=ice-pwd:asd88fgpdd777uzjYhagZg\r\nm=audio 9 RTP/AVP 0\r\na=mid:0\r\na=candidate:1 1 UDP x 192.0.2.1 5000 typ host\r\n');
      expect.unreachable();
    } catch (e) {
      expect((e as SdpError).line).toBe(5);
    }
  });

  it('only throws SdpError on random input', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.string({ maxLength: 30 }), fc.constantFrom('m=audio 9 RTP/AVP 0', 'a=mid:0', 'a=end-of-candidates', 'a=ice-ufrag:8hhY')), { maxLength: 10 }), (ls) => {
        try {
          parseSdpfrag(ls.join('\r\n'));
        } catch (e) {
          expect(e).toBeInstanceOf(SdpError);
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('buildSdpfrag', () => {
  it('round trip: parse(build(f)) is f', () => {
    const frag: fc.Arbitrary<Sdpfrag> = fc
      .record({
        creds: fc.option(fc.tuple(iceChars(4, 12), iceChars(22, 30)), { nil: undefined }),
        eoc: fc.boolean(),
        media: fc.array(
          fc.record({
            mediaCreds: fc.option(fc.tuple(iceChars(4, 12), iceChars(22, 30)), { nil: undefined }),
            candidates: fc.array(candidate, { maxLength: 4 }),
            eoc: fc.boolean(),
            rtcpMux: fc.boolean(),
          }),
          { maxLength: 3 },
        ),
      })
      .map((r) => ({
        ...(r.creds ? { ufrag: r.creds[0], pwd: r.creds[1] } : {}),
        lite: false,
        endOfCandidates: r.eoc,
        bundleGroups: [],
        media: r.media.map((m, i) => ({
          // Unique ufrags per section keep RFC 8839 §5.4 (same ufrag, same pwd) satisfied.
          mid: `m${i}`,
          mediaLine: 'audio 9 RTP/AVP 0',
          ...(m.mediaCreds ? { ufrag: `x${i}${m.mediaCreds[0]}`, pwd: m.mediaCreds[1] } : {}),
          candidates: m.candidates,
          endOfCandidates: m.eoc,
          rtcpMux: m.rtcpMux,
        })),
      }));
    fc.assert(fc.property(frag, (f) => {
        expect(parseSdpfrag(buildSdpfrag(f))).toEqual(f);
      }), { numRuns: 300 });
  });

  it('puts a=mid immediately before the candidates (RFC 8840 §4.4)', () => {
    const c: Candidate = { foundation: '1', component: 1, transport: 'udp', priority: 1, address: '192.0.2.1', port: 5000, type: 'host' };
    const body = buildSdpfrag({ ufrag: '8hhY', pwd: 'asd88fgpdd777uzjYhagZg', lite: false, endOfCandidates: false, bundleGroups: [], media: [{ mid: '0', mediaLine: 'audio 9 RTP/AVP 0', candidates: [c], endOfCandidates: true, rtcpMux: true }] });
    expect(body).toBe(
      'a=ice-ufrag:8hhY\r\na=ice-pwd:asd88fgpdd777uzjYhagZg\r\nm=audio 9 RTP/AVP 0\r\na=rtcp-mux\r\na=mid:0\r\na=candidate:1 1 udp 1 192.0.2.1 5000 typ host\r\na=end-of-candidates\r\n',
    );
  });
  it('writes ice-pacing under the one RFC 8839 §5.5 rule (stun/pacing isPacingValue)', () => {
    const frag: Sdpfrag = { lite: false, endOfCandidates: false, bundleGroups: [], media: [], ufrag: '8hhY', pwd: 'asd88fgpdd777uzjYhagZg' };
    expect(buildSdpfrag({ ...frag, pacingMs: 0 })).toContain('a=ice-pacing:0\r\n');
    expect(parseSdpfrag(buildSdpfrag({ ...frag, pacingMs: 9_999_999_999 })).pacingMs).toBe(9_999_999_999);
    for (const v of [-1, 1.5, 10_000_000_000]) expect(() => buildSdpfrag({ ...frag, pacingMs: v })).toThrow(SdpError);
  });
});

describe('SIP constants (RFC 8840 §10)', () => {
  it('names the package, option tag, media type and header values', () => {
    expect(TRICKLE_ICE_INFO_PACKAGE).toBe('trickle-ice');
    expect(TRICKLE_ICE_OPTION_TAG).toBe('trickle-ice');
    expect(TRICKLE_ICE_SDPFRAG_CONTENT_TYPE).toBe('application/trickle-ice-sdpfrag');
    expect(Object.fromEntries(TRICKLE_ICE_SIP_HEADERS.info)).toEqual({
      'Info-Package': 'trickle-ice',
      'Content-Type': 'application/trickle-ice-sdpfrag',
      'Content-Disposition': 'Info-Package',
    });
    expect(Object.fromEntries(TRICKLE_ICE_SIP_HEADERS.invite)).toEqual({ Supported: 'trickle-ice', 'Recv-Info': 'trickle-ice' });
    expect(Object.fromEntries(TRICKLE_ICE_SIP_HEADERS.inviteAssumingSupport)).toMatchObject({ Require: 'trickle-ice' });
  });
});

describe('OfferAnswer with INFO bodies', () => {
  const APP = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n';
  const h = (port: number): Candidate => ({ foundation: 'h', component: 1, transport: 'udp', priority: 2130706431, address: '10.0.0.1', port, type: 'host' });

  it('the sender repeats all candidates in order; the receiver forwards only new ones; end-of-candidates', () => {
    const a = new OfferAnswer({ local: { ufrag: 'AAAA', pwd: 'aaaaaaaaaaaaaaaaaaaaaa' }, trickle: 'full' });
    const b = new OfferAnswer({ local: { ufrag: 'BBBB', pwd: 'bbbbbbbbbbbbbbbbbbbbbb' }, trickle: 'full' });
    b.setRemoteDescription(a.createOffer(APP), 'offer');
    a.setRemoteDescription(b.createAnswer(APP), 'answer');

    a.addLocalCandidate(0, h(5000));
    const first = a.createSdpfrag();
    expect(first).toContain('a=ice-ufrag:AAAA');
    expect(first).toContain('a=mid:0');
    const r1 = b.applyRemoteSdpfrag(first);
    expect(r1.accepted).toBe(true);
    expect(r1.newCandidates.map((x) => x.candidate.port)).toEqual([5000]);

    a.addLocalCandidate(0, h(5002));
    a.setLocalEndOfCandidates(0);
    const second = parseSdpfrag(a.createSdpfrag());
    expect(second.media[0]!.candidates.map((c) => c.port)).toEqual([5000, 5002]);
    const r2 = b.applyRemoteSdpfrag(second);
    expect(r2.newCandidates.map((x) => [x.transportIndex, x.mid, x.candidate.port])).toEqual([[0, '0', 5002]]);
    expect(r2.endOfCandidates).toEqual([0]);
    expect(b.remoteCandidates(0).map((c) => c.port)).toEqual([5000, 5002]);
    expect(b.applyRemoteSdpfrag(a.createSdpfrag({ endOfAllCandidates: true })).endOfAllCandidates).toBe(true);
  });

  it('discards a body of another ICE generation (RFC 8840 §4.4)', () => {
    const a = new OfferAnswer({ local: { ufrag: 'AAAA', pwd: 'aaaaaaaaaaaaaaaaaaaaaa' }, trickle: 'full' });
    const b = new OfferAnswer({ local: { ufrag: 'BBBB', pwd: 'bbbbbbbbbbbbbbbbbbbbbb' }, trickle: 'full' });
    b.setRemoteDescription(a.createOffer(APP), 'offer');
    b.createAnswer(APP);
    const stale = 'a=ice-ufrag:OLD1\r\na=ice-pwd:oooooooooooooooooooooo\r\nm=audio 9 RTP/AVP 0\r\na=mid:0\r\na=candidate:1 1 UDP 1 192.0.2.1 5000 typ host\r\n';
    const r = b.applyRemoteSdpfrag(stale);
    expect(r.accepted).toBe(false);
    expect(r.newCandidates).toEqual([]);
    expect(b.remoteCandidates(0)).toEqual([]);
  });

  it('an offerer can take candidates trickled before the answer, placed by its own mids', () => {
    const a = new OfferAnswer({ local: { ufrag: 'AAAA', pwd: 'aaaaaaaaaaaaaaaaaaaaaa' }, trickle: 'full' });
    a.createOffer(APP);
    const early = 'a=ice-ufrag:BBBB\r\na=ice-pwd:bbbbbbbbbbbbbbbbbbbbbb\r\nm=audio 9 RTP/AVP 0\r\na=mid:0\r\na=candidate:1 1 UDP 1 192.0.2.9 7000 typ host\r\n';
    const r = a.applyRemoteSdpfrag(early);
    expect(r.accepted).toBe(true);
    expect(r.newCandidates).toHaveLength(1);
  });
});
