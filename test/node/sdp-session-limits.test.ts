/**
 * RFC 8445 §6.1.2.5 across a SIP session: the pair limit holds for the session's whole checklist set, and each
 * transport's agent holds one checklist of it, so each gets an even share.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { IceSdpSession } from '../../src/node/sdp-session.js';

const onLoopback = { includeLoopback: true, addressFilter: (a: string) => a === '127.0.0.1' };
const appSdp = [
  'v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=call', 't=0 0',
  ...[0, 1, 2, 3].flatMap(() => ['m=audio 9 RTP/AVP 0', 'c=IN IP4 0.0.0.0', 'a=rtcp-mux', 'a=sendrecv']),
  '',
].join('\r\n');

describe('IceSdpSession and the checklist set', () => {
  it('splits checklistLimit evenly over its transports: 8 pairs for 4 transports, 2 each', async () => {
    const caller = new IceSdpSession({ ...onLoopback, checklistLimit: 8 });
    const callee = new IceSdpSession(onLoopback);
    try {
      await callee.setRemoteDescription(await caller.createOffer(appSdp), 'offer');
      let answer = await callee.createAnswer(appSdp);
      // Five more candidates per section, on loopback ports nobody uses: 6 remote candidates, 6 pairs offered each.
      answer = answer.replace(/(a=candidate:[^\r\n]*\r\n)/g, (line: string) =>
        line + [1, 2, 3, 4, 5].map((i) => `a=candidate:x${i} 1 udp ${100 - i} 127.0.0.1 ${9 + i} typ host\r\n`).join(''),
      );
      await caller.setRemoteDescription(answer, 'answer');
      await new Promise((r) => setTimeout(r, 50));
      const counts = [0, 1, 2, 3].map((i) => caller.agent(i)!.getStats()!.pairs.length);
      for (const n of counts) expect(n).toBeLessThanOrEqual(2);
      expect(counts.reduce((x, y) => x + y)).toBeLessThanOrEqual(8);
    } finally {
      await Promise.all([caller.close(), callee.close()]);
    }
  });
});

describe('IceSdpSession and the cap on pairs aimed at one remote address (RFC 8445 §19.5.1)', () => {
  it('holds across its transports: 4 sections x 5 candidates on one third-party loopback address, cap 6, give 6 pairs there', async () => {
    const caller = new IceSdpSession({ ...onLoopback, remoteAddressPairLimit: 6 });
    const callee = new IceSdpSession(onLoopback);
    try {
      await callee.setRemoteDescription(await caller.createOffer(appSdp), 'offer');
      let answer = await callee.createAnswer(appSdp);
      // Five more candidates per section, all naming 127.0.0.9 (loopback; nobody listens there).
      answer = answer.replace(/(a=candidate:[^\r\n]*\r\n)/g, (line: string) =>
        line + [1, 2, 3, 4, 5].map((i) => `a=candidate:x${i} 1 udp ${100 - i} 127.0.0.9 ${9 + i} typ host\r\n`).join(''),
      );
      await caller.setRemoteDescription(answer, 'answer');
      await new Promise((r) => setTimeout(r, 50));
      const pairs = [0, 1, 2, 3].flatMap((i) => caller.agent(i)!.getStats()!.pairs);
      expect(pairs.filter((p) => p.remote.address === '127.0.0.9').length).toBe(6);
      // Each transport still has its pair to the real peer.
      for (let i = 0; i < 4; i++) expect(caller.agent(i)!.getStats()!.pairs.some((p) => p.remote.address === '127.0.0.1')).toBe(true);
    } finally {
      await Promise.all([caller.close(), callee.close()]);
    }
  });
});

describe('IceSdpSession and the number of m= sections', () => {
  it('refuses a description with more than maxMediaSections, naming the first section too many, before opening anything', async () => {
    const { SdpError } = await import('../../src/errors.js');
    const session = new IceSdpSession({ ...onLoopback, maxMediaSections: 3 });
    try {
      await expect(session.createOffer(appSdp)).rejects.toThrow(SdpError);
      await expect(session.createOffer(appSdp)).rejects.toMatchObject({ line: 17, text: 'm=audio 9 RTP/AVP 0' });
      const offer = appSdp.replace(/m=audio 9 RTP\/AVP 0/g, 'm=audio 5000 RTP/AVP 0');
      await expect(session.setRemoteDescription(offer, 'offer')).rejects.toThrow(/more than 3 m= sections/);
      expect(session.agent()).toBeUndefined(); // no agent, no socket
    } finally {
      await session.close();
    }
  });
});

describe('out of file descriptors', () => {
  // A child with a low descriptor limit runs the published bundle (dist/pkg, built before the tests in CI).
  const bundle = new URL('../../dist/pkg/index.js', import.meta.url);
  it.skipIf(!existsSync(bundle))('createOffer rejects with a typed UdpBindError naming EMFILE, not a raw SystemError', () => {
    const script = `
      const { IceSdpSession } = await import(${JSON.stringify(bundle.href)});
      const m = Array.from({ length: 40 }, () => ['m=audio 9 RTP/AVP 0', 'c=IN IP4 0.0.0.0', 'a=sendrecv']).flat();
      const s = new IceSdpSession({ includeLoopback: true, addressFilter: (a) => a === '127.0.0.1' });
      try { await s.createOffer(['v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=x', 't=0 0', ...m, ''].join('\\r\\n')); console.log('no error'); }
      catch (e) { console.log(e.constructor.name, e.code, /EMFILE/.test(e.message)); }
      await s.close();`;
    const out = spawnSync('bash', ['-c', `ulimit -n 40 && exec "${process.execPath}" --input-type=module -e "$0"`, script], { encoding: 'utf8', timeout: 20_000 });
    expect(out.stdout.trim()).toBe('UdpBindError ERR_UDP_BIND true');
  });
});
