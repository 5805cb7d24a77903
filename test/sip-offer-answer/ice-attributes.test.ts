import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CandidateParseError, SdpError } from '../../src/errors.js';
import { mutate, mutation } from './mutate.js';
import { descriptionHasIce, readIceDescription, transportIndexOf } from '../../src/sip-offer-answer/index.js';
import { RFC8839_EXAMPLE, fixture } from './samples.js';

/** Expects `fn` to throw an SdpError for `line` whose text is `text`. */
function expectSdpError(fn: () => unknown, line: number, text: string): SdpError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(SdpError);
  const err = caught as SdpError;
  expect({ line: err.line, text: err.text }).toEqual({ line, text });
  expect(err.message).toContain(`line ${line}`);
  return err;
}

/** Replaces line `n` (1-based) of a CRLF SDP. */
function withLine(sdp: string, n: number, text: string): string {
  const lines = sdp.split('\r\n');
  lines[n - 1] = text;
  return lines.join('\r\n');
}

describe('readIceDescription', () => {
  it('reads the RFC 8839 §4.2.6 example: session-level credentials, pacing, ice2, candidates', () => {
    const d = readIceDescription(RFC8839_EXAMPLE);
    expect(d).toMatchObject({ ufrag: '8hhY', pwd: 'asd88fgpdd777uzjYhagZg', options: ['ice2'], pacingMs: 50, lite: false, connection: '192.0.2.3' });
    const m = d.media[0]!;
    expect(m).toMatchObject({ ufrag: '8hhY', pwd: 'asd88fgpdd777uzjYhagZg', options: ['ice2'], mediaLevel: {}, port: 45664, connection: '192.0.2.3' });
    expect(m.candidates.map((c) => [c.type, c.address, c.port, c.transport])).toEqual([
      ['host', '203.0.113.141', 8998, 'udp'],
      ['srflx', '192.0.2.3', 45664, 'udp'],
    ]);
    expect(m.candidates[1]).toMatchObject({ relatedAddress: '203.0.113.141', relatedPort: 8998 });
  });

  it('reads every pacing value of the RFC 8839 §5.5 grammar, 0 and 10 digits included (stun/pacing isPacingValue)', () => {
    for (const v of [0, 1, 9_999_999_999]) {
      expect(readIceDescription(RFC8839_EXAMPLE.replace('a=ice-pacing:50', `a=ice-pacing:${v}`)).pacingMs).toBe(v);
    }
  });

  it('reads a Chrome offer: BUNDLE, mids, media-level credentials, trickle, mDNS host, srflx raddr 0.0.0.0 rport 0', () => {
    const d = readIceDescription(fixture('chrome-offer-bundle.sdp'));
    expect(d.bundleGroups).toEqual([['0', '1']]);
    expect(d.ufrag).toBeUndefined();
    const [audio, video] = d.media;
    expect(audio).toMatchObject({ mid: '0', ufrag: 'Kd1x', pwd: 'Zm9vYmFyYmF6cXV4cXV1eDEy', options: ['trickle'], rtcpMux: true });
    expect(audio!.mediaLevel).toEqual({ ufrag: 'Kd1x', pwd: 'Zm9vYmFyYmF6cXV4cXV1eDEy', options: ['trickle'] });
    expect(audio!.rtcp).toEqual({ address: '0.0.0.0', port: 9 });
    expect(audio!.candidates[0]).toMatchObject({ type: 'host', address: '4a7b9e3c-5d2f-4c1a-9b8e-0f1e2d3c4b5a.local', port: 54400 });
    expect(audio!.candidates[1]).toMatchObject({ type: 'srflx', address: '203.0.113.7', relatedAddress: '0.0.0.0', relatedPort: 0 });
    expect(video).toMatchObject({ mid: '1', candidates: [], connection: '203.0.113.7', port: 54321 });
    expect(transportIndexOf(d, 1)).toBe(0);
    expect(transportIndexOf(d, 0)).toBe(0);
  });

  it('reads a Firefox offer: session-level credentials and options, upper-case UDP, end-of-candidates, bundle-only', () => {
    const d = readIceDescription(fixture('firefox-offer.sdp'));
    expect(d).toMatchObject({ ufrag: '3f9c2b1a', pwd: '8a6f1e2d3c4b5a69788796a5b4c3d2e1', options: ['trickle'] });
    const [audio, video] = d.media;
    expect(audio).toMatchObject({ ufrag: '3f9c2b1a', options: ['trickle'], mediaLevel: {}, endOfCandidates: true, port: 61000, connection: '192.0.2.50' });
    expect(audio!.candidates.map((c) => [c.transport, c.transportText])).toEqual([
      ['udp', 'UDP'],
      ['udp', 'UDP'],
      ['udp', 'UDP'],
    ]);
    expect(video).toMatchObject({ port: 0, bundleOnly: true, mid: '1', ufrag: '3f9c2b1a' });
    // The bundle-only section (port 0) shares the BUNDLE-tag section's transport.
    expect(transportIndexOf(d, 1)).toBe(0);
  });

  it('reads the SIP fixtures without ICE: no credentials, c=/m= address', () => {
    const nat = readIceDescription(fixture('sip-invite-behind-nat.sdp'));
    expect(descriptionHasIce(nat)).toBe(false);
    expect(nat.media[0]).toMatchObject({ connection: '10.0.0.180', port: 56014, candidates: [] });
    const relayed = readIceDescription(fixture('sip-invite-after-rtpproxy.sdp'));
    expect(relayed.media[0]).toMatchObject({ connection: '90.0.0.1', port: 51164 });
  });

  it('reads ice-lite, ice-mismatch, remote-candidates (several lines), session end-of-candidates', () => {
    const d = readIceDescription(
      [
        'v=0',
        'o=- 1 1 IN IP4 192.0.2.1',
        's=-',
        'c=IN IP4 192.0.2.1',
        't=0 0',
        'a=ice-lite',
        'a=ice-ufrag:abcd',
        'a=ice-pwd:abcdefghijklmnopqrstuv',
        'a=end-of-candidates',
        'm=audio 5000 RTP/AVP 0',
        'a=ice-mismatch',
        'a=remote-candidates:1 192.0.2.3 45664',
        'a=remote-candidates:2 192.0.2.3 45665',
      ].join('\n'),
    );
    expect(d.lite).toBe(true);
    expect(d.endOfCandidates).toBe(true);
    expect(d.media[0]!.iceMismatch).toBe(true);
    expect(d.media[0]!.remoteCandidates).toEqual([
      { component: 1, address: '192.0.2.3', port: 45664 },
      { component: 2, address: '192.0.2.3', port: 45665 },
    ]);
  });

  it('ignores candidates with an unknown transport or type, and FQDN candidates (RFC 8839 §5.1)', () => {
    const sdp = [
      'v=0',
      'o=- 1 1 IN IP4 192.0.2.1',
      's=-',
      'c=IN IP4 192.0.2.1',
      't=0 0',
      'a=ice-ufrag:abcd',
      'a=ice-pwd:abcdefghijklmnopqrstuv',
      'm=audio 5000 RTP/AVP 0',
      'a=candidate:1 1 sctp 100 192.0.2.1 5000 typ host',
      'a=candidate:1 1 udp 100 192.0.2.1 5000 typ newtype',
      'a=candidate:1 1 udp 100 media.example.com 5000 typ host',
      'a=candidate:1 1 udp 100 192.0.2.1 5000 typ host',
    ].join('\r\n');
    const m = readIceDescription(sdp).media[0]!;
    expect(m.candidates).toHaveLength(1);
    expect(m.ignoredCandidates.map((x) => x.line)).toEqual([9, 10, 11]);
    expect(m.ignoredCandidates[2]!.text).toBe('a=candidate:1 1 udp 100 media.example.com 5000 typ host');
  });
});

describe('errors name the line', () => {
  const base = RFC8839_EXAMPLE;
  it.each([
    [9, 'a=ice-ufrag:8hh'], // 3 chars
    [9, `a=ice-ufrag:${'a'.repeat(257)}`],
    [9, 'a=ice-ufrag:8h-Y'],
    [8, 'a=ice-pwd:short'],
    [6, 'a=ice-options:ice2 bad-tag'],
    [6, 'a=ice-options:'],
    [7, 'a=ice-pacing:fast'],
    [7, 'a=ice-pacing:12345678901'],
    [7, 'a=ice-pacing:00000000050'], // 11 digits: beyond 1*10DIGIT whatever the value
    [7, 'a=ice-pacing:-5'],
    [4, 'c=IN IP4'],
    [10, 'm=audio x RTP/AVP 0'],
    [10, 'm=audio 70000 RTP/AVP 0'],
    [12, 'garbage'],
    [13, 'a=candidate:1 1 UDP 2130706431 203.0.113.141 8998 typ'],
    [13, 'a=remote-candidates:1 192.0.2.3'],
    [13, 'a=ice-lite'],
    [13, 'a=rtcp:abc'],
    [7, 'a=candidate:1 1 UDP 2130706431 203.0.113.141 8998 typ host'],
    [7, 'a=ice-mismatch'],
  ])('line %i: %s', (line, text) => {
    expectSdpError(() => readIceDescription(withLine(base, line, text)), line, text);
  });

  it('wraps a CandidateParseError into an SdpError with the line, keeping the field as cause', () => {
    const text = 'a=candidate:1 1 UDP 0 203.0.113.141 8998 typ host';
    const err = expectSdpError(() => readIceDescription(withLine(base, 14, text)), 14, text);
    expect(err.cause).toBeInstanceOf(CandidateParseError);
    expect((err.cause as CandidateParseError).field).toBe('priority');
  });

  it('reports a duplicate attribute at the same level on its second line', () => {
    expectSdpError(() => readIceDescription(withLine(base, 7, 'a=ice-ufrag:9hhY')), 9, 'a=ice-ufrag:8hhY');
  });

  it('reports ice-pwd without ice-ufrag (RFC 8839 §5.4)', () => {
    expectSdpError(() => readIceDescription(withLine(base, 9, 'a=sendrecv')), 8, 'a=ice-pwd:asd88fgpdd777uzjYhagZg');
  });

  it('reports one ufrag used with two passwords', () => {
    const sdp = `${base}\r\nm=video 5002 RTP/AVP 96\r\na=ice-ufrag:8hhY\r\na=ice-pwd:zzzzzzzzzzzzzzzzzzzzzz`;
    expectSdpError(() => readIceDescription(sdp), 18, 'a=ice-pwd:zzzzzzzzzzzzzzzzzzzzzz');
  });

  it('reports duplicate mids on the second m= line', () => {
    const sdp = `${base}\r\na=mid:a\r\nm=video 5002 RTP/AVP 96\r\na=mid:a`;
    expectSdpError(() => readIceDescription(sdp), 17, 'm=video 5002 RTP/AVP 96');
  });
});

describe('reading arbitrary SDP throws only SdpError', () => {
  const check = (text: string) => {
    try {
      readIceDescription(text);
    } catch (e) {
      if (!(e instanceof SdpError)) throw e;
      expect(e.line).toBeGreaterThanOrEqual(0);
      if (e.line > 0) expect(text.split(/\r\n|\r|\n/)[e.line - 1]).toBe(e.text);
    }
  };

  it('random text', () => {
    fc.assert(fc.property(fc.string({ maxLength: 300 }), check), { numRuns: 500 });
  });

  it('random lines of SDP-ish shape', () => {
    const line = fc.oneof(
      fc.string({ maxLength: 40 }).map((s) => `a=${s}`),
      fc.constantFrom('a=ice-ufrag:', 'a=ice-pwd:', 'a=candidate:', 'a=ice-options:', 'a=remote-candidates:', 'a=rtcp:', 'c=IN IP4 ', 'm=audio ').chain((p) =>
        fc.string({ maxLength: 60 }).map((s) => p + s),
      ),
      fc.constantFrom('m=audio 9 RTP/AVP 0', 'a=ice-lite', 'a=ice-mismatch', 'a=end-of-candidates', 'a=mid:0', 'a=group:BUNDLE 0'),
    );
    fc.assert(fc.property(fc.array(line, { maxLength: 20 }), (ls) => check(ls.join('\r\n'))), { numRuns: 500 });
  });

  it('mutated fixtures', () => {
    const fixtures = ['chrome-offer-bundle.sdp', 'firefox-offer.sdp', 'sip-ice-offer-after-rtpproxy.sdp', 'sip-invite-behind-nat.sdp'].map(fixture);
    fc.assert(
      fc.property(fc.nat(fixtures.length - 1), fc.array(mutation, { minLength: 1, maxLength: 5 }), (f, ms) => check(mutate(fixtures[f]!, ms))),
      { numRuns: 1000 },
    );
  });

});
