import { describe, expect, it } from 'vitest';
import { Attr, attr, decodeStunMessage, encodeStunMessage, getAttribute, shortTermKey, StunMethod, verifyIntegrity } from '../../src/stun/index.js';

describe('smoke', () => {
  it('RFC 5769 2.1 sample request verifies', () => {
    const hex = `000100582112a442b7e7a701bc34d686fa87dfae802200105354554e207465737420636c69656e74002400046e0001ff80290008932ff9b151263b36000600096576746a3a68367659202020000800149aeaa70cbfd8cb56781ef2b5b2d3f249c1b571a280280004e57a3bcf`;
    const m = decodeStunMessage(Buffer.from(hex, 'hex'));
    expect(m.cls).toBe('request');
    expect(getAttribute(m, Attr.USERNAME)).toBe('evtj:h6vY');
    expect(verifyIntegrity(m, shortTermKey('VOkJxbRl1RmTxUk/WvJxBt'))).toBe('ok');
    expect(verifyIntegrity(m, shortTermKey('wrong'))).toBe('mismatch');
    expect(m.hasFingerprint).toBe(true);
  });
  it('round trips with integrity', () => {
    const txid = new Uint8Array(12).fill(7);
    const out = encodeStunMessage({ method: StunMethod.Binding, cls: 'success', transactionId: txid, attributes: [attr(Attr.XOR_MAPPED_ADDRESS, { address: '2001:db8::1', port: 3478 }, txid)] }, { integrityKey: shortTermKey('pw'), integrity: 'both', fingerprint: true });
    const m = decodeStunMessage(out);
    expect(getAttribute(m, Attr.XOR_MAPPED_ADDRESS)).toEqual({ address: '2001:db8::1', port: 3478 });
    expect(verifyIntegrity(m, shortTermKey('pw'))).toBe('ok');
    expect(verifyIntegrity(m, shortTermKey('pw'), 'sha1')).toBe('ok');
  });
});
