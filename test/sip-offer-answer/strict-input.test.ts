/**
 * Issue 13, item 3: a body that is not SDP is an SdpError where it enters, naming the line, not a description with
 * zero streams that fails later; ufrag/pwd are checked by one rule whether they come from SDP or from the API.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isPacingValue } from '../../src/stun/pacing.js';
import { IceArgumentError, IcewireError, SdpError } from '../../src/errors.js';
import { AgentMachine } from '../../src/agent-machine.js';
import { IceAgent } from '../../src/node/ice-agent.js';
import { OfferAnswer, readIceDescription } from '../../src/sip-offer-answer/index.js';
import { SeededRandom } from '../../src/testing/random.js';
import { A, APP_AUDIO, B } from './samples.js';

function sdpError(f: () => unknown): SdpError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(SdpError);
    return e as SdpError;
  }
  throw new Error('expected an SdpError');
}

describe('a body that is not SDP (RFC 8866 §5)', () => {
  it.each([
    ['', 0, /empty body/],
    ['   \r\n', 0, /empty body/],
    ['v=0', 1, /no "o=" \(origin\)/],
    ['a=b', 1, /first line must be "v=0"/],
    ['o=- 1 1 IN IP4 127.0.0.1\r\nv=0\r\ns=-\r\nt=0 0', 1, /first line must be "v=0"/],
    ['v=1\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0', 1, /only "v=0"/],
    ['v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9 RTP/AVP 0', 4, /no "s=" \(session name\)/],
    ['v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nm=audio 9 RTP/AVP 0', 4, /no "t=" \(timing\)/],
    ['v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\ns=again\r\nt=0 0', 4, /a second "s="/],
    [`${APP_AUDIO}v=0\r\n`, 9, /a second "v="/],
  ])('%j is refused at line %i', (body, line, message) => {
    const e = sdpError(() => readIceDescription(body));
    expect(e.line).toBe(line);
    expect(e.message).toMatch(message);
  });

  it('JSON is not SDP either, and the error names its first line', () => {
    const e = sdpError(() => readIceDescription('{"type":"offer","sdp":"v=0"}'));
    expect(e.line).toBe(1);
    expect(e.message).toMatch(/not an SDP "<type>=<value>" line/);
  });

  it("OfferAnswer refuses them as offers, answers and as the application's SDP", () => {
    for (const body of ['', 'v=0', 'a=b']) {
      expect(() => new OfferAnswer({ local: A }).setRemoteDescription(body, 'offer')).toThrow(SdpError);
      expect(() => new OfferAnswer({ local: A }).createOffer(body)).toThrow(SdpError);
      const offerer = new OfferAnswer({ local: A });
      offerer.createOffer(APP_AUDIO);
      expect(() => offerer.setRemoteDescription(body, 'answer')).toThrow(SdpError);
      expect(offerer.signalingState).toBe('have-local-offer'); // nothing applied
    }
  });

  it('an answer without the m= sections of the offer names RFC 3264 §6', () => {
    const offerer = new OfferAnswer({ local: A });
    offerer.createOffer(APP_AUDIO);
    const noMedia = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n';
    expect(() => offerer.setRemoteDescription(noMedia, 'answer')).toThrow(/the answer has 0 m= sections, the offer 1 \(RFC 3264 §6/);
  });

  it('a re-offer with fewer m= sections than before is refused (RFC 3264 §8)', () => {
    const a = new OfferAnswer({ local: A });
    const b = new OfferAnswer({ local: B });
    b.setRemoteDescription(a.createOffer(APP_AUDIO), 'offer');
    a.setRemoteDescription(b.createAnswer(APP_AUDIO), 'answer');
    const noMedia = 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n';
    expect(() => b.setRemoteDescription(noMedia, 'offer')).toThrow(/fewer than the 1 of the previous description \(RFC 3264 §8\)/);
    expect(b.signalingState).toBe('stable');
  });
});

describe('ufrag and pwd: one rule for the SDP reader and setRemoteParameters (RFC 8839 §5.4)', () => {
  const iceChar = fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/');
  const value = fc.oneof(fc.string({ unit: iceChar, minLength: 0, maxLength: 30 }), fc.string({ maxLength: 30 }), fc.string({ unit: iceChar, minLength: 250, maxLength: 260 }));

  function sdpAccepts(ufrag: string, pwd: string): boolean {
    const sdp = `v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=ice-ufrag:${ufrag}\r\na=ice-pwd:${pwd}\r\nm=audio 9 RTP/AVP 0\r\n`;
    try {
      const d = readIceDescription(sdp);
      // The reader trims the value; what it keeps must be what was written for the comparison to hold.
      return d.ufrag === ufrag && d.pwd === pwd;
    } catch (e) {
      if (e instanceof SdpError) return false;
      throw e;
    }
  }

  function apiAccepts(ufrag: string, pwd: string): boolean {
    const m = new AgentMachine({ random: new SeededRandom(1), bases: [{ address: { address: '192.0.2.10', port: 5000 }, component: 1 }] });
    try {
      m.setRemoteParameters(0, { ufrag, pwd });
      return true;
    } catch (e) {
      if (e instanceof IceArgumentError) return false;
      throw e;
    }
  }

  it('accept and refuse the same values', () => {
    fc.assert(
      fc.property(value, value, (ufrag, pwd) => {
        // Values with line breaks or surrounding spaces cannot be written as one SDP line: compare the rest.
        fc.pre(!/[\r\n]/.test(ufrag + pwd) && ufrag.trim() === ufrag && pwd.trim() === pwd && ufrag !== '' && pwd !== '');
        expect(apiAccepts(ufrag, pwd)).toBe(sdpAccepts(ufrag, pwd));
      }),
      { numRuns: 400, seed: 13 },
    );
  });

  it('IceAgent refuses an empty ufrag, a 5-character pwd and a missing pwd at the call', async () => {
    const agent = new IceAgent({ includeLoopback: true, addressFilter: (a) => a === '127.0.0.1' });
    try {
      expect(() => agent.setRemoteParameters({ ufrag: '', pwd: 'p'.repeat(22) })).toThrow(/params\.ufrag: ice-ufrag must be 4 to 256 ice-chars/);
      expect(() => agent.setRemoteParameters({ ufrag: 'peer', pwd: 'short' })).toThrow(/params\.pwd: ice-pwd must be 22 to 256 ice-chars/);
      expect(() => agent.setRemoteParameters({ ufrag: 'peer' } as never)).toThrow(IceArgumentError);
      expect(() => agent.setRemoteParameters({ ufrag: 'peer', pwd: 'p'.repeat(22), pacingMs: 1.5 })).toThrow(/pacingMs/);
      expect(isPacingValue(1.5)).toBe(false);
      agent.setRemoteParameters({ ufrag: 'peer', pwd: 'p'.repeat(22) });
    } finally {
      await agent.close();
    }
  });

  it('IceArgumentError is an IcewireError with a stable code', () => {
    const e = new IceArgumentError('x', 'y');
    expect(e).toBeInstanceOf(IcewireError);
    expect(e.code).toBe('ERR_INVALID_ARGUMENT');
    expect(e.argument).toBe('x');
  });
});
