/**
 * RFC 8445 §14.2 on the wire: 200 `IceAgent`s (plus a connected pair keeping consent) in this process, real loopback
 * sockets, one shared pacer. Every datagram the process sends is captured around `node:dgram` `send()` and
 * classified from its bytes (see `bench/pacing-wire.bench.ts`). Bounded: at most ~9 s of capture, every socket
 * closed before the assertions.
 */
import { describe, expect, it } from 'vitest';
import { captureWire } from '../../bench/pacing-wire.bench.js';

describe('process-wide pacing on the wire (RFC 8445 §14.2)', () => {
  it('no two new gathering or check transactions of the process leave less than 5 ms apart', async () => {
    const r = await captureWire({ agents: 200, remotes: 2, maxWindowMs: 9000, consentPair: true });
    expect(r.agentCount).toBe(202);
    // Enough to mean something: gathering (Binding to the STUN server) and checks of many agents.
    expect(r.gathering).toBeGreaterThan(50);
    expect(r.newTransactions - r.gathering).toBeGreaterThan(100);
    // Retransmissions (RTO) and consent checks (RFC 7675) were on the wire but are not new transactions.
    expect(r.retransmissions).toBeGreaterThan(0);
    expect(r.consent).toBeGreaterThanOrEqual(2);
    // From the end of one send() to the start of the next, never under 5 ms; the first two included.
    const under = r.gaps.filter((g) => g < 5);
    expect(under).toEqual([]);
    expect(r.firstGap).toBeGreaterThanOrEqual(5);
    // The edge reported exactly the new transactions to the pacer: consent and retransmissions are not paced.
    expect(r.pacedSends).toBe(r.newTransactions);
  }, 30_000);
});
