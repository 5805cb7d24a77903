/**
 * TURN allocations are released on close() over a slow path (issue 16, item 1): coturn behind a test-owned UDP
 * delay relay on loopback, with a per-user quota of 1, so an allocation left on the server shows as a 486 on the
 * next one. Bounded: two coturn processes, a few seconds.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IceAgent } from '../../src/node/ice-agent.js';
import { StunMethod, tryDecodeStunMessage } from '../../src/stun/index.js';
import { openTurnAllocation } from '../../src/node/turn-transport.js';
import { startCoturn, type Coturn } from '../helpers/coturn.js';
import { udpRelay } from '../helpers/udp-relay.js';

/** The shared loopback relay with a fixed delay each way; `onForward` sees each client datagram. */
const delayRelay = (target: { address: string; port: number }, delayMs: number, onForward?: (data: Uint8Array) => void) =>
  udpRelay(target, onForward ? { delayMs, onForward } : { delayMs });

let quota: Coturn;
let stale: Coturn;
beforeAll(async () => {
  [quota, stale] = await Promise.all([
    startCoturn({ tls: false, userQuota: 1, extraUsers: [['q1', 'pq']] }),
    startCoturn({ tls: false, userQuota: 1, staleNonceSec: 1, extraUsers: [['q2', 'pq']] }),
  ]);
}, 30_000);
afterAll(async () => {
  await Promise.allSettled([quota?.stop(), stale?.stop()]);
});

/**
 * The user's quota of one is free: a fresh allocation (straight to coturn) succeeds. coturn frees a deleted UDP
 * allocation on its next 1 s housekeeping tick, so a 486 is retried for 3 s; an allocation left on the server would
 * hold the quota for its whole 600 s lifetime.
 */
async function quotaFree(server: Coturn, username: string): Promise<void> {
  for (const deadline = Date.now() + 3_000; ; ) {
    try {
      const a = await openTurnAllocation({ server: { address: server.host, port: server.port }, username, password: 'pq', localAddress: '127.0.0.1', timeoutMs: 5_000 });
      await a.close();
      return;
    } catch (e) {
      if ((e as { errorCode?: number }).errorCode !== 486 || Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

const onLoopback = { includeLoopback: true, addressFilter: (a: string) => a === '127.0.0.1' } as const;

describe('IceAgent.close() releases TURN allocations over a slow path', () => {
  it('closed while its authenticated Allocate is in flight (40 ms each way): the allocation is deleted, not left', async () => {
    let agent: IceAgent | undefined;
    let closing: Promise<void> | undefined;
    // Close the moment the authenticated Allocate (the one after the 401, with MESSAGE-INTEGRITY) leaves for the
    // server: coturn will create the allocation 40 ms later, after the agent stopped waiting for it.
    const relay = await delayRelay({ address: quota.host, port: quota.port }, 40, (data) => {
      const r = tryDecodeStunMessage(data);
      if (closing === undefined && r.ok && r.message.method === StunMethod.Allocate && r.message.integrityOffset >= 0) closing = agent!.close();
    });
    try {
      agent = new IceAgent({ ...onLoopback, iceTransportPolicy: 'relay', iceServers: [{ urls: `turn:127.0.0.1:${relay.port}`, username: 'q1', credential: 'pq' }] });
      await agent.gather().catch(() => undefined);
      await closing;
      expect(closing).toBeDefined();
      // Let what was in flight land first (40 ms each way), or our own check could take the quota before it.
      await new Promise((r) => setTimeout(r, 200));
      await quotaFree(quota, 'q1');
    } finally {
      await agent?.close();
      await relay.close();
    }
  }, 20_000);

  it('a stale nonce on the deleting Refresh (120 ms each way) is answered within closeTimeoutMs', async () => {
    const relay = await delayRelay({ address: stale.host, port: stale.port }, 120);
    const warnings: string[] = [];
    const agent = new IceAgent({ ...onLoopback, iceTransportPolicy: 'relay', iceServers: [{ urls: `turn:127.0.0.1:${relay.port}`, username: 'q2', credential: 'pq' }] });
    agent.on('warning', (w) => warnings.push(w));
    try {
      await agent.gather();
      expect(agent.getLocalCandidates().some((c) => c.type === 'relay')).toBe(true);
      await new Promise((r) => setTimeout(r, 1_500)); // the nonce goes stale (1 s)
      await agent.close();
      expect(warnings.filter((w) => w.includes('not released'))).toEqual([]);
      await quotaFree(stale, 'q2');
    } finally {
      await agent.close();
      await relay.close();
    }
  }, 20_000);
});
