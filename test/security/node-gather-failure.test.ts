/**
 * The Node edge after a failed gather: loopback only. No packet is sent (the mDNS socket fails to join its group).
 */
import { describe, expect, it } from 'vitest';
import { IceAgent } from '../../src/node/ice-agent.js';
import { loopback } from '../node/agent-helpers.js';

const udpHandles = (): number => process.getActiveResourcesInfo().filter((x) => x === 'UDPWrap' || x === 'UDPWRAP').length;
const released = (): Promise<void> => new Promise((r) => setImmediate(() => setImmediate(r)));

describe('IceAgent: a gather that fails part-way leaves no socket open', () => {
  it('mDNS cannot start after the host sockets were bound: gather rejects and the sockets are closed, close() or not', async () => {
    await released();
    const before = udpHandles();
    // An invalid group makes addMembership throw after bind (MdnsSocket closes its own socket).
    const a = new IceAgent({ ...loopback, mdns: { port: 0, group: '127.0.0.2', interfaceAddress: '127.0.0.1' } });
    await expect(a.gather()).rejects.toThrow();
    await released();
    expect(udpHandles()).toBe(before);
    await a.close();
    await released();
    expect(udpHandles()).toBe(before);
  });
});
