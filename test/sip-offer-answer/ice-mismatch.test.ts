import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { detectIceMismatch, readIceDescription, signalledDestination } from '../../src/sip-offer-answer/index.js';

const fixture = (name: string) => readFileSync(new URL(`../fixtures/sdp/${name}`, import.meta.url), 'utf8');

const ICE_OFFER = (c: string, m: string, extra: string[] = []) =>
  [
    'v=0',
    'o=- 1 1 IN IP4 192.0.2.1',
    's=-',
    `c=IN IP4 ${c}`,
    't=0 0',
    'a=ice-ufrag:abcd',
    'a=ice-pwd:abcdefghijklmnopqrstuv',
    `m=audio ${m} RTP/AVP 0`,
    'a=candidate:1 1 UDP 2130706431 192.0.2.1 5000 typ host',
    ...extra,
  ].join('\r\n');

describe('detectIceMismatch', () => {
  it('matches when c=/m=/a=rtcp are listed candidates (the ICE phone as sent)', () => {
    const d = readIceDescription(fixture('sip-ice-offer.sdp'));
    expect(detectIceMismatch(d, 0)).toEqual({ mismatch: false, reason: 'match' });
  });

  it('flags the offer whose c=/m= an rtpproxy rewrote to 90.0.0.1:51164', () => {
    const d = readIceDescription(fixture('sip-ice-offer-after-rtpproxy.sdp'));
    expect(detectIceMismatch(d, 0)).toEqual({ mismatch: true, component: 1, destination: { address: '90.0.0.1', port: 51164 } });
  });

  it('is not about streams without ICE', () => {
    expect(detectIceMismatch(readIceDescription(fixture('sip-invite-after-rtpproxy.sdp')), 0)).toEqual({ mismatch: false, reason: 'no-ice' });
  });

  it('never flags the 0.0.0.0/9 trickle placeholder (RFC 8839 §4.2.5 item 2, RFC 8840 §4.1.2)', () => {
    expect(detectIceMismatch(readIceDescription(ICE_OFFER('0.0.0.0', '9')), 0)).toEqual({ mismatch: false, reason: 'placeholder' });
    expect(detectIceMismatch(readIceDescription(fixture('chrome-offer-trickle-initial.sdp')), 0)).toEqual({ mismatch: false, reason: 'placeholder' });
    expect(detectIceMismatch(readIceDescription(ICE_OFFER('0.0.0.0', '10')), 0).mismatch).toBe(true);
  });

  it('never flags an FQDN default destination (item 4)', () => {
    expect(detectIceMismatch(readIceDescription(ICE_OFFER('media.example.com', '5000')), 0)).toEqual({ mismatch: false, reason: 'fqdn' });
  });

  it('checks a=rtcp against component 2 candidates', () => {
    const ok = ICE_OFFER('192.0.2.1', '5000', ['a=rtcp:5001', 'a=candidate:1 2 UDP 2130706430 192.0.2.1 5001 typ host']);
    expect(detectIceMismatch(readIceDescription(ok), 0).mismatch).toBe(false);
    const bad = ICE_OFFER('192.0.2.1', '5000', ['a=rtcp:6001', 'a=candidate:1 2 UDP 2130706430 192.0.2.1 5001 typ host']);
    expect(detectIceMismatch(readIceDescription(bad), 0)).toEqual({ mismatch: true, component: 2, destination: { address: '192.0.2.1', port: 6001 } });
  });

  it('checks the implied RTCP port only when component 2 candidates exist', () => {
    expect(detectIceMismatch(readIceDescription(ICE_OFFER('192.0.2.1', '5000')), 0).mismatch).toBe(false);
    const implied = ICE_OFFER('192.0.2.1', '5000', ['a=candidate:1 2 UDP 2130706430 192.0.2.1 7001 typ host']);
    expect(detectIceMismatch(readIceDescription(implied), 0)).toMatchObject({ mismatch: true, component: 2 });
    expect(signalledDestination(readIceDescription(implied).media[0]!)).toMatchObject({ rtcp: { address: '192.0.2.1', port: 5001 }, rtcpImplicit: true });
  });

  it('compares IPv6 addresses in canonical form', () => {
    const sdp = [
      'v=0',
      'o=- 1 1 IN IP6 2001:db8::1',
      's=-',
      'c=IN IP6 2001:DB8:0::1',
      't=0 0',
      'a=ice-ufrag:abcd',
      'a=ice-pwd:abcdefghijklmnopqrstuv',
      'm=audio 5000 RTP/AVP 0',
      'a=rtcp-mux',
      'a=candidate:1 1 UDP 2130706431 2001:db8::1 5000 typ host',
    ].join('\r\n');
    expect(detectIceMismatch(readIceDescription(sdp), 0).mismatch).toBe(false);
  });

  it('tests a bundled section without candidates against the BUNDLE-tag section (Chrome max-bundle)', () => {
    const d = readIceDescription(fixture('chrome-offer-bundle.sdp'));
    expect(detectIceMismatch(d, 0).mismatch).toBe(false);
    expect(detectIceMismatch(d, 1).mismatch).toBe(false);
  });

  it('ignores rejected streams', () => {
    expect(detectIceMismatch(readIceDescription(ICE_OFFER('192.0.2.99', '0')), 0)).toEqual({ mismatch: false, reason: 'rejected' });
  });
});
