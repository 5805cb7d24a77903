import { describe, expect, it } from 'vitest';
import { CandidateParseError } from '../../src/errors.js';
import { IceAgent } from '../../src/node/ice-agent.js';
import { fromRTCIceCandidateInit } from '../../src/sip-offer-answer/webrtc.js';

describe('remote candidates from JSON signalling (issue 16)', () => {
  it('IceAgent.addRemoteCandidate throws a typed error at the call for a bad record (no socket is opened)', async () => {
    const agent = new IceAgent({ includeLoopback: true, addressFilter: (a) => a === '127.0.0.1' });
    const good = { foundation: '1', component: 1, transport: 'udp', priority: 100, address: '127.0.0.1', port: 9, type: 'host' } as const;
    expect(() => agent.addRemoteCandidate({ ...good, priority: 2 ** 40 })).toThrow(CandidateParseError);
    expect(() => agent.addRemoteCandidate({ ...good, component: '1' } as never)).toThrow(CandidateParseError);
    expect(() => agent.addRemoteCandidate(null as never)).toThrow(CandidateParseError);
    await agent.close();
  });

  it('fromRTCIceCandidateInit(null) is a typed error too', () => {
    expect(() => fromRTCIceCandidateInit(null as never)).toThrow(CandidateParseError);
    expect(() => fromRTCIceCandidateInit(7 as never)).toThrow(CandidateParseError);
  });
});

describe('IceAgent socket buffer options (issue 16, item 4)', () => {
  it('reach the host sockets: a nonsense size rejects gather() with an error naming the option', async () => {
    const agent = new IceAgent({ includeLoopback: true, addressFilter: (a) => a === '127.0.0.1', recvBufferSize: -1 });
    await expect(agent.gather()).rejects.toThrow(/recvBufferSize/);
    await agent.close();
    const ok = new IceAgent({ includeLoopback: true, addressFilter: (a) => a === '127.0.0.1', recvBufferSize: 1 << 18, sendBufferSize: 1 << 17 });
    await ok.gather();
    expect(ok.getLocalCandidates().length).toBeGreaterThan(0);
    await ok.close();
  });
});
