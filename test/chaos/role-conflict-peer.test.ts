/**
 * The 487 peer (issue 16, item 8.5): a scripted peer on loopback answers every check with an authenticated
 * 487 Role Conflict, whatever the role. The agent switches role each time, gives the pair up after
 * MAX_ROLE_CONFLICTS_PER_PAIR answers (src/checklist/responses.ts), and reaches `failed` on its normal timers
 * (the PAC timer, here 3 s) having sent a bounded number of checks.
 */
import { createSocket } from 'node:dgram';
import { describe, expect, it } from 'vitest';
import { encodeCheckError } from '../../src/checklist/checks.js';
import { MAX_ROLE_CONFLICTS_PER_PAIR } from '../../src/checklist/responses.js';
import { IceAgent } from '../../src/node/ice-agent.js';
import { ErrorCode } from '../../src/stun/constants.js';
import { shortTermKey } from '../../src/stun/integrity.js';
import { tryDecodeStunMessage } from '../../src/stun/message.js';

const PEER_PWD = 'r'.repeat(22);

describe('a peer that answers every check with 487', () => {
  it('the agent fails within its PAC timer + 2 s, after a bounded number of checks', async () => {
    const peer = createSocket('udp4');
    const agent = new IceAgent({ includeLoopback: true, addressFilter: (a) => a === '127.0.0.1', role: 'controlling', failureGraceMs: 3_000 });
    let requests = 0;
    const roles = new Set<string>();
    try {
      await new Promise<void>((r) => peer.bind(0, '127.0.0.1', () => r()));
      peer.on('message', (m, from) => {
        const d = tryDecodeStunMessage(m);
        if (!d.ok || d.message.cls !== 'request') return;
        requests++;
        peer.send(encodeCheckError(Uint8Array.from(d.message.transactionId), ErrorCode.RoleConflict, 'Role Conflict', shortTermKey(PEER_PWD)), from.port, from.address);
      });
      agent.on('statechange', () => roles.add(agent.role));
      await agent.gather();
      const failed = new Promise<number>((resolve) => agent.on('statechange', (s) => s === 'failed' && resolve(Date.now())));
      const started = Date.now();
      agent.setRemoteParameters({ ufrag: 'peer487', pwd: PEER_PWD });
      agent.addRemoteCandidate({ foundation: 'x', component: 1, transport: 'udp', priority: 2_130_706_431, address: '127.0.0.1', port: peer.address().port, type: 'host' });
      agent.endOfRemoteCandidates();
      const at = await Promise.race([failed, new Promise<number>((_, rej) => setTimeout(() => rej(new Error(`not failed within 5 s (${requests} checks, state ${agent.state})`)), 5_000))]);
      console.log(`487 peer: failed after ${at - started} ms, ${requests} checks`);
      expect(at - started).toBeLessThan(3_000 + 2_000);
      expect(at - started).toBeGreaterThanOrEqual(2_900); // not before the PAC timer (RFC 8863)
      expect(requests).toBeGreaterThan(MAX_ROLE_CONFLICTS_PER_PAIR);
      expect(requests).toBeLessThanOrEqual(MAX_ROLE_CONFLICTS_PER_PAIR + 2);
      const sent = agent.getStats()!.checksSent;
      expect(sent).toBe(requests);
    } finally {
      await agent.close();
      peer.close();
    }
  }, 15_000);
});
