/**
 * IceAgent with an RTCP component (loopback only): RTP/RTCP port pairs, dropping component 2 once rtcp-mux is
 * accepted (RFC 5761 §5.1.3), and the warning for data sent on a component the agent does not have.
 */
import { createSocket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { InvalidStateError } from '../../src/errors.js';
import { agentPool, connectPair, nextData } from './agent-helpers.js';

const pool = agentPool();
afterEach(() => pool.closeAll());

/** Whether a UDP port on loopback can be bound now (the socket that had it is closed). */
function free(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    s.once('error', () => {
      s.close();
      resolve(false);
    });
    s.bind({ address: '127.0.0.1', port, exclusive: true }, () => s.close(() => resolve(true)));
  });
}

describe('IceAgent components (RTP and RTCP)', () => {
  it('two components: RTP on an even port, RTCP on the next one (RFC 3550 §11)', async () => {
    const a = pool.make({ components: 2 });
    await a.gather();
    const [rtp] = a.getLocalCandidates().filter((c) => c.component === 1);
    const [rtcp] = a.getLocalCandidates().filter((c) => c.component === 2);
    expect(rtp!.port % 2).toBe(0);
    expect(rtcp!.port).toBe(rtp!.port + 1);
  });

  it('dropComponent(2) after gathering: candidates and socket go, ICE runs on component 1 against a one-component peer', async () => {
    const a = pool.make({ components: 2 });
    const b = pool.make({ role: 'controlled' });
    const warnings: string[] = [];
    a.on('warning', (w) => warnings.push(w));
    await a.gather();
    const rtcpPort = a.getLocalCandidates().find((c) => c.component === 2)!.port;
    expect(await free(rtcpPort)).toBe(false);
    a.dropComponent(2);
    expect(a.components).toBe(1);
    expect(a.getLocalCandidates().every((c) => c.component === 1)).toBe(true);
    await connectPair(a, b);
    const until = Date.now() + 2000;
    while (!(await free(rtcpPort)) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    expect(await free(rtcpPort)).toBe(true);
    const got = nextData(b);
    expect(a.send(Buffer.from([0x80, 0xc8, 1]), 1)).toBe(true);
    await got;
    // RTCP on the dropped component: false and one warning, not one per report.
    expect(a.send(Buffer.from([0x80, 0xc8]), 2)).toBe(false);
    expect(a.send(Buffer.from([0x80, 0xc8]), 2)).toBe(false);
    expect(warnings.filter((w) => w.includes('component 2'))).toHaveLength(1);
  });

  it('dropComponent(2) before the sockets are bound: no RTCP socket or candidate at all', async () => {
    const a = pool.make({ components: 2 });
    const gathering = a.gather();
    a.dropComponent(2);
    await gathering;
    expect(a.getLocalCandidates().length).toBeGreaterThan(0);
    expect(a.getLocalCandidates().every((c) => c.component === 1)).toBe(true);
    expect(a.getStats()!.pairs).toEqual([]);
  });

  it('warns when send() targets a component the agent never had', async () => {
    const a = pool.make();
    const b = pool.make({ role: 'controlled' });
    const warnings: string[] = [];
    a.on('warning', (w) => warnings.push(w));
    await connectPair(a, b);
    expect(a.send(Buffer.from([0x80]), 2)).toBe(false);
    expect(warnings).toEqual([expect.stringContaining('component 2, which this agent does not have')]);
  });

  it('refuses to drop component 1 or a component that is not the last', async () => {
    const a = pool.make({ components: 3 });
    expect(() => a.dropComponent(1)).toThrow(InvalidStateError);
    expect(() => a.dropComponent(2)).toThrow(InvalidStateError);
    a.dropComponent(3);
    expect(() => a.dropComponent(3)).toThrow(InvalidStateError);
  });
});
