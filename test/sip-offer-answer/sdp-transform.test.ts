/**
 * Issue 13, item 4: `icewire/sdp-transform`. Every SDP icewire writes in the offer/answer scenarios (offers, answers,
 * two components, pacing, lite, trickle with BUNDLE, an updated offer with remote-candidates, restart, mismatch) is
 * parsed by sdp-transform; the ICE view the adapter reads from the object must be what icewire's own reader reads
 * from the text, and a round trip (parse, adapter write, sdp-transform write, icewire read) must keep it.
 */
import { parse, write } from 'sdp-transform';
import { describe, expect, it } from 'vitest';
import { IceArgumentError, SdpError } from '../../src/errors.js';
import { OfferAnswer, readIceDescription } from '../../src/sip-offer-answer/index.js';
import { iceFromSdpTransform, iceIntoSdpTransform, parseSdpTransform, writeSdpTransform } from '../../src/sip-offer-answer/sdp-transform.js';
import { cand } from './arbitraries.js';
import { A, APP_AUDIO, APP_WEBRTC_ANSWER, B, exchange, fixture, hostA, hostA2, hostB, relayA, relayA2 } from './samples.js';

/** The SDP texts icewire writes across the scenarios, by name. */
function writtenByIcewire(): Record<string, string> {
  const out: Record<string, string> = {};

  // Two components (no rtcp-mux), pacing, end-of-candidates, host and relayed candidates.
  const a = new OfferAnswer({ local: { ...A, pacingMs: 60 } });
  const b = new OfferAnswer({ local: B });
  a.setLocalCandidates(0, [hostA, hostA2, relayA, relayA2]);
  a.setLocalEndOfCandidates();
  b.setLocalCandidates(0, [hostB, cand({ address: '10.0.0.2', port: 6001, component: 2, priority: 2130706430 })]);
  const first = exchange(a, b);
  out['offer, two components'] = first.offer;
  out['answer, two components'] = first.answer;

  // The controlling side's updated offer after selection carries a=remote-candidates (RFC 8839 §4.4.1.2.2).
  a.setSelectedPair(0, 1, { local: hostA, remote: { address: '10.0.0.2', port: 6000 } });
  a.setSelectedPair(0, 2, { local: hostA2, remote: { address: '10.0.0.2', port: 6001 } });
  const updated = exchange(a, b);
  out['updated offer with remote-candidates'] = updated.offer;
  out['answer to the updated offer'] = updated.answer;

  // ICE restart, both sides with new credentials.
  a.restartIce({ ufrag: 'RRRR', pwd: 'r'.repeat(22) });
  const restartOffer = a.createOffer(APP_AUDIO);
  b.setRemoteDescription(restartOffer, 'offer');
  b.restartIce({ ufrag: 'SSSS', pwd: 's'.repeat(22) });
  out['restart offer'] = restartOffer;
  out['restart answer'] = b.createAnswer(APP_AUDIO);

  // A lite answerer (RFC 8839 §5.3 a=ice-lite).
  const full = new OfferAnswer({ local: A });
  const lite = new OfferAnswer({ local: { ...B, lite: true } });
  full.setLocalCandidates(0, [hostA]);
  lite.setLocalCandidates(0, [hostB]);
  const liteExchange = exchange(full, lite);
  out['offer to a lite agent'] = liteExchange.offer;
  out['lite answer'] = liteExchange.answer;

  // Trickle with BUNDLE and media-level credentials (WebRTC): ice-options "ice2 trickle", a=mid, a=group:BUNDLE.
  const t = new OfferAnswer({ local: B, trickle: 'full', credentialsLevel: 'media' });
  t.setLocalCandidates(0, [hostB]);
  out['trickle BUNDLE offer'] = t.createOffer(APP_WEBRTC_ANSWER.replace(/a=setup:active/g, 'a=setup:actpass'));

  // An offer rewritten by a relay: the answer says a=ice-mismatch (RFC 8839 §4.2.5).
  const s = new OfferAnswer({ local: B });
  s.setLocalCandidates(0, [hostB]);
  s.setRemoteDescription(fixture('sip-ice-offer-after-rtpproxy.sdp'), 'offer');
  out['ice-mismatch answer'] = s.createAnswer(fixture('sip-invite-behind-nat.sdp'));
  return out;
}

const written = writtenByIcewire();

describe('icewire/sdp-transform', () => {
  it('the scenarios cover what the adapter must carry', () => {
    const all = Object.values(written).join('');
    for (const attr of ['a=ice-options:ice2', 'trickle', 'a=ice-pacing:60', 'a=ice-lite', 'a=ice-mismatch', 'a=end-of-candidates', 'a=remote-candidates:', 'a=group:BUNDLE', ' 2 udp ', 'typ relay raddr']) {
      expect(all, attr).toContain(attr);
    }
  });

  it.each(Object.entries(written))('%s: the ICE view read from the parsed object is the one read from the text', (_name, sdp) => {
    expect(iceFromSdpTransform(parseSdpTransform(sdp))).toEqual(readIceDescription(sdp));
  });

  it.each(Object.entries(written))('%s: parse, adapter write, sdp-transform write, icewire read keeps it', (_name, sdp) => {
    const ice = readIceDescription(sdp);
    // Into sdp-transform's own parse (ice2 lost there): the adapter's write puts every ICE value back.
    const object = iceIntoSdpTransform(parse(sdp), ice);
    expect(readIceDescription(write(object))).toEqual(ice);
    expect(iceFromSdpTransform(object)).toEqual(ice);
  });

  it("restores what sdp-transform's parser loses: the ice-options after the first, and all remote-candidates lines", () => {
    const sdp = written['updated offer with remote-candidates']!;
    expect(parse(sdp).iceOptions).toBe('ice2'); // ice2 only because it is written first
    const twoTags = sdp.replace('a=ice-options:ice2', 'a=ice-options:trickle ice2');
    expect(parse(twoTags).iceOptions).toBe('trickle');
    expect(iceFromSdpTransform(parse(twoTags)).options).toEqual(['trickle']);
    expect(iceFromSdpTransform(parseSdpTransform(twoTags)).options).toEqual(['trickle', 'ice2']);

    const split = sdp.replace(/^a=remote-candidates:(1 \S+ \d+) (2 \S+ \d+)$/m, 'a=remote-candidates:$1\r\na=remote-candidates:$2');
    expect(split).not.toBe(sdp);
    expect(iceFromSdpTransform(parse(split)).media[0]!.remoteCandidates).toHaveLength(1);
    expect(iceFromSdpTransform(parseSdpTransform(split)).media[0]!.remoteCandidates).toEqual(readIceDescription(split).media[0]!.remoteCandidates);
  });

  it('keeps ice-pacing and ice-mismatch as the invalid entries sdp-transform writes, and the candidate extensions it knows', () => {
    const object = parseSdpTransform(written['offer, two components']!);
    expect(object.invalid).toContainEqual({ value: 'ice-pacing:60' });
    expect(parseSdpTransform(written['ice-mismatch answer']!).media[0]!.invalid).toContainEqual({ value: 'ice-mismatch' });
    const withExt = cand({ address: '10.0.0.1', port: 5000, extensions: [['generation', '0'], ['network-id', '3'], ['network-cost', '10']] });
    const d = readIceDescription(written['offer to a lite agent']!);
    const ice = { ...d, media: [{ ...d.media[0]!, candidates: [withExt] }] };
    const back = iceFromSdpTransform(iceIntoSdpTransform(parse(written['offer to a lite agent']!), ice));
    expect(back.media[0]!.candidates).toEqual([withExt]);
  });

  it('refuses what icewire refuses, with the same typed errors', () => {
    const object = parseSdpTransform(written['offer, two components']!);
    expect(() => iceFromSdpTransform({ ...object, iceUfrag: 'ab' })).toThrow(/ice-ufrag must be 4 to 256 ice-chars/);
    const { origin: _o, ...noOrigin } = object;
    expect(() => iceFromSdpTransform(noOrigin as never)).toThrow(SdpError);
    expect(() => iceFromSdpTransform(null as never)).toThrow(IceArgumentError);
    expect(() => iceIntoSdpTransform(object, { ...readIceDescription(APP_AUDIO), media: [] })).toThrow(IceArgumentError);
    expect(() => parseSdpTransform(7 as never)).toThrow(IceArgumentError);
  });

  it('writeSdpTransform leaves the object as it was (sdp-transform fills in defaults in place)', () => {
    const object = { media: [{ type: 'audio', port: 9, protocol: 'RTP/AVP', rtp: [], fmtp: [] }] };
    const text = writeSdpTransform(object as never);
    expect(text).toMatch(/^v=0\r\ns= \r\nm=audio 9 RTP\/AVP \r\n/);
    expect(object).toEqual({ media: [{ type: 'audio', port: 9, protocol: 'RTP/AVP', rtp: [], fmtp: [] }] });
  });

  it('drives OfferAnswer for an application that holds parsed SDP', () => {
    const appObject = parse(APP_AUDIO);
    const offerer = new OfferAnswer({ local: A });
    offerer.setLocalCandidates(0, [hostA]);
    offerer.createOffer(writeSdpTransform(appObject));
    const offerObject = iceIntoSdpTransform(appObject, offerer.localDescription!);
    expect(offerObject.iceUfrag).toBe('AAAA');
    expect(offerObject.media[0]!.candidates?.[0]).toMatchObject({ ip: '10.0.0.1', port: 5000, type: 'host' });
    expect(appObject.iceUfrag).toBeUndefined(); // the application's object is not changed

    const answerer = new OfferAnswer({ local: B });
    answerer.setLocalCandidates(0, [hostB]);
    const r = answerer.setRemoteDescription(writeSdpTransform(offerObject), 'offer');
    expect(r.streams[0]).toMatchObject({ mode: 'ice', candidates: [hostA] });
    answerer.createAnswer(APP_AUDIO);
    const answerObject = iceIntoSdpTransform(parse(APP_AUDIO), answerer.localDescription!);
    expect(offerer.setRemoteDescription(write(answerObject), 'answer').streams[0]).toMatchObject({ mode: 'ice', candidates: [hostB] });
  });
});
