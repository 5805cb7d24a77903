/** sdp-lines.ts: the tokenizer and the line tests the reader and the writer share. */
import { describe, expect, it } from 'vitest';
import { SdpError } from '../../src/errors.js';
import { attributeName, bundleGroupMids, connectionAddress, splitAttribute, splitSdpLines, type SdpLine } from '../../src/sip-offer-answer/sdp-lines.js';

const line = (text: string): SdpLine => splitSdpLines(text)[0]!;

describe('splitSdpLines', () => {
  it('numbers lines from 1 across CRLF, LF and CR, skipping blank ones', () => {
    const lines = splitSdpLines('v=0\r\no=- 1 1 IN IP4 127.0.0.1\n\ns=-\rt=0 0\r\n');
    expect(lines.map((l) => [l.number, l.type, l.value])).toEqual([
      [1, 'v', '0'],
      [2, 'o', '- 1 1 IN IP4 127.0.0.1'],
      [4, 's', '-'],
      [5, 't', '0 0'],
    ]);
  });

  it('names the line that is not "<type>=<value>"', () => {
    try {
      splitSdpLines('v=0\r\nnot sdp\r\n');
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(SdpError);
      expect({ line: (e as SdpError).line, text: (e as SdpError).text }).toEqual({ line: 2, text: 'not sdp' });
    }
  });
});

describe('attribute helpers', () => {
  it('splitAttribute separates name and value; property attributes have none', () => {
    expect(splitAttribute('ice-ufrag:abcd')).toEqual(['ice-ufrag', 'abcd']);
    expect(splitAttribute('candidate:1 1 udp 1 10.0.0.1 5000 typ host')).toEqual(['candidate', '1 1 udp 1 10.0.0.1 5000 typ host']);
    expect(splitAttribute('ice-lite ')).toEqual(['ice-lite', undefined]);
    expect(attributeName(line('a=mid:0'))).toBe('mid');
    expect(attributeName(line('c=IN IP4 10.0.0.1'))).toBeUndefined();
  });

  it('connectionAddress: the address before any /ttl, undefined for a malformed c= value', () => {
    expect(connectionAddress('IN IP4 10.0.0.1')).toBe('10.0.0.1');
    expect(connectionAddress('IN IP4 233.252.0.1/127/2')).toBe('233.252.0.1');
    expect(connectionAddress('IN IP6 2001:db8::1')).toBe('2001:db8::1');
    expect(connectionAddress('IN IP4 /127')).toBe('');
    expect(connectionAddress('IN IP4')).toBeUndefined();
  });

  it('bundleGroupMids: BUNDLE in any case, any whitespace between mids; other groups are not BUNDLE', () => {
    expect(bundleGroupMids(line('a=group:BUNDLE 0 1'))).toEqual(['0', '1']);
    expect(bundleGroupMids(line('a=group:bundle\t0  1'))).toEqual(['0', '1']);
    expect(bundleGroupMids(line('a=group:LS 0 1'))).toBeUndefined();
    expect(bundleGroupMids(line('a=mid:BUNDLE'))).toBeUndefined();
  });
});
