/** Value helpers of src/types.ts: address formatting and comparison. */
import { describe, expect, it } from 'vitest';
import { formatAddress, sameAddress } from '../src/types.js';

describe('sameAddress', () => {
  it('compares IPv4 addresses and ports exactly', () => {
    expect(sameAddress({ address: '192.0.2.1', port: 5000 }, { address: '192.0.2.1', port: 5000 })).toBe(true);
    expect(sameAddress({ address: '192.0.2.1', port: 5000 }, { address: '192.0.2.1', port: 5001 })).toBe(false);
    expect(sameAddress({ address: '192.0.2.1', port: 5000 }, { address: '192.0.2.2', port: 5000 })).toBe(false);
  });

  it('compares IPv6 addresses in canonical form (a peer may signal upper case or uncompressed text)', () => {
    const canonical = { address: '2001:db8::2', port: 5000 };
    expect(sameAddress({ address: '2001:DB8::2', port: 5000 }, canonical)).toBe(true);
    expect(sameAddress(canonical, { address: '2001:0db8:0:0:0:0:0:2', port: 5000 })).toBe(true);
    expect(sameAddress({ address: '::FFFF:192.0.2.1', port: 1 }, { address: '::ffff:c000:201', port: 1 })).toBe(true);
    expect(sameAddress({ address: '2001:DB8::2', port: 5000 }, { address: '2001:db8::3', port: 5000 })).toBe(false);
    expect(sameAddress({ address: '2001:DB8::2', port: 5000 }, { address: '2001:db8::2', port: 5001 })).toBe(false);
  });

  it('leaves names (mDNS) and invalid text compared as written', () => {
    expect(sameAddress({ address: 'a.local', port: 1 }, { address: 'a.local', port: 1 })).toBe(true);
    expect(sameAddress({ address: 'A.local', port: 1 }, { address: 'a.local', port: 1 })).toBe(false);
  });
});

describe('formatAddress', () => {
  it('brackets IPv6 only', () => {
    expect(formatAddress({ address: '192.0.2.1', port: 1 })).toBe('192.0.2.1:1');
    expect(formatAddress({ address: '2001:db8::1', port: 2 })).toBe('[2001:db8::1]:2');
  });
});
