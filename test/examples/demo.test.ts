import { describe, expect, it, vi } from 'vitest';
import { realDemo, virtualDemo } from '../../examples/demo.js';

// `npm start` is one of the two commands README promises: the demo must keep working.
describe('the demo', () => {
  it('negotiates on loopback through SDP, prints the ICE lines, the checks, the selected pair and echoed data', async () => {
    const lines: string[] = [];
    const log = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void lines.push(a.join(' ')));
    try {
      await realDemo();
    } finally {
      log.mockRestore();
    }
    const out = lines.join('\n');
    expect(out).toMatch(/built-in STUN server on 127\.0\.0\.1:\d+/);
    expect(out).toMatch(/alice gathered a=candidate:/);
    expect(out).toMatch(/pair host 127\.0\.0\.1:\d+ -> host 127\.0\.0\.1:\d+: succeeded/);
    expect(out).toMatch(/alice: completed/);
    expect(out).toMatch(/a=ice-ufrag:/);
    expect(out).toMatch(/selected pair: candidate:/);
    expect(out.match(/bytes back in/g)).toHaveLength(5);
  });

  it('--virtual chooses the relay between a symmetric and a port-restricted NAT', () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
    try {
      const sel = virtualDemo();
      expect([sel.local, sel.remote]).toContain('relay');
    } finally {
      log.mockRestore();
    }
  });
});
