/** ice-writer.ts: writing an ICE description into the application's SDP without disturbing its own lines. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SdpError } from '../../src/errors.js';
import { readIceDescription, writeIceDescription, type IceDescription } from '../../src/sip-offer-answer/index.js';
import { iceDescription } from './arbitraries.js';
import { mutate, mutation } from './mutate.js';
import { RFC8839_EXAMPLE, fixture } from './samples.js';

describe('writeIceDescription', () => {
  it('write then read of generated ICE descriptions is the identity', () => {
    fc.assert(
      fc.property(iceDescription, (d) => {
        const text = writeIceDescription(d);
        expect(readIceDescription(text)).toEqual(d);
      }),
      { numRuns: 300 },
    );
  });

  it('writing into an application SDP replaces its ICE attributes and keeps the rest (a=setup, fingerprint, codecs)', () => {
    const app = fixture('chrome-offer-bundle.sdp');
    const d = readIceDescription(app);
    const changed: IceDescription = {
      ...d,
      ufrag: 'NEWu',
      pwd: 'NEWpNEWpNEWpNEWpNEWpNEWp',
      options: ['ice2'],
      media: d.media.map((m) => ({ ...m, mediaLevel: {}, ufrag: 'NEWu', pwd: 'NEWpNEWpNEWpNEWpNEWpNEWp', options: ['ice2'], candidates: m.index === 0 ? m.candidates.slice(1) : [] })),
    };
    const out = writeIceDescription(changed, app);
    expect(readIceDescription(out)).toEqual(changed);
    expect(out).not.toContain('Kd1x');
    expect(out.match(/^a=setup:actpass$/gm)).toHaveLength(2);
    expect(out).toContain('a=fingerprint:sha-256 6B:8B:5D:EA');
    expect(out).toContain('a=rtpmap:111 opus/48000/2');
    expect(out).toContain('a=group:BUNDLE 0 1');
    expect(out.match(/^a=candidate:/gm)).toHaveLength(1);
  });

  it('keeps every line of the SIP and Chrome fixtures when the description is written back unchanged', () => {
    for (const name of ['sip-invite-behind-nat.sdp', 'sip-invite-after-rtpproxy.sdp', 'sip-ice-offer-after-rtpproxy.sdp', 'chrome-offer-bundle.sdp']) {
      const text = fixture(name);
      const out = writeIceDescription(readIceDescription(text), text);
      const sorted = (t: string) => t.split('\r\n').filter((l) => l !== '').sort();
      expect(sorted(out)).toEqual(sorted(text));
    }
  });

  it('keeps a=rtcp-mux-only (RFC 8858), which sdp-transform alone would turn into a=rtcp-mux', () => {
    const text = 'v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\nc=IN IP4 192.0.2.1\r\na=rtcp-mux\r\na=rtcp-mux-only\r\n';
    const d = readIceDescription(text);
    expect(d.media[0]!.rtcpMux).toBe(true);
    const out = writeIceDescription(d, text);
    expect(out).toMatch(/^a=rtcp-mux$/m);
    expect(out).toMatch(/^a=rtcp-mux-only$/m);
  });

  it('rejects a base SDP whose m= count differs, and values the grammar cannot carry', () => {
    const d = readIceDescription(RFC8839_EXAMPLE);
    expect(() => writeIceDescription({ ...d, media: [] }, RFC8839_EXAMPLE)).toThrow(SdpError);
    expect(() => writeIceDescription({ ...d, ufrag: 'no' })).toThrow(SdpError);
    expect(() => writeIceDescription({ ...d, options: ['bad tag'] })).toThrow(SdpError);
  });

  it('writes a pacing value only when the RFC 8839 §5.5 grammar can carry it (stun/pacing isPacingValue)', () => {
    const d = readIceDescription(RFC8839_EXAMPLE);
    for (const v of [0, 9_999_999_999]) expect(writeIceDescription({ ...d, pacingMs: v })).toContain(`a=ice-pacing:${v}\r\n`);
    for (const v of [-1, 1.5, 10_000_000_000, Number.NaN]) expect(() => writeIceDescription({ ...d, pacingMs: v })).toThrow(SdpError);
  });

  it('writing a readable mutated SDP back keeps its ICE view', () => {
    const fixtures = ['chrome-offer-bundle.sdp', 'firefox-offer.sdp', 'sip-ice-offer-after-rtpproxy.sdp', 'sip-invite-behind-nat.sdp'].map(fixture);
    // Lines the reader skipped (ignored candidates) are ICE attributes the writer replaces: compare without them.
    const view = (d: IceDescription) => ({ ...d, media: d.media.map((m) => ({ ...m, ignoredCandidates: [] })) });
    fc.assert(
      fc.property(fc.nat(fixtures.length - 1), fc.array(mutation, { minLength: 1, maxLength: 3 }), (f, ms) => {
        const text = mutate(fixtures[f]!, ms);
        let d: IceDescription;
        try {
          d = readIceDescription(text);
        } catch (e) {
          if (e instanceof SdpError) return;
          throw e;
        }
        expect(view(readIceDescription(writeIceDescription(d, text)))).toEqual(view(d));
      }),
      { numRuns: 2000 },
    );
  });
});
