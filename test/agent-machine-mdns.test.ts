import { describe, expect, it } from 'vitest';
import { AgentMachine } from '../src/agent-machine.js';
import { MdnsResponder } from '../src/candidates/mdns.js';
import { SeededRandom } from '../src/testing/random.js';

// A remote `.local` candidate still resolving when end-of-candidates arrives must not be lost: the core ignores
// candidates after end-of-candidates (RFC 8838), so the machine passes the end on only after resolution.
describe('AgentMachine: end-of-candidates while an mDNS name is resolving', () => {
  it('the resolved candidate still reaches the checklist', () => {
    const group = { address: '224.0.0.251', port: 5353 };
    const aLocal = { address: '192.0.2.1', port: 5353 };
    const bLocal = { address: '192.0.2.2', port: 5353 };
    const responderA = new MdnsResponder({ random: new SeededRandom('ra'), local: aLocal, group });
    const responderB = new MdnsResponder({ random: new SeededRandom('rb'), local: bLocal, group });
    const a = new AgentMachine({
      random: new SeededRandom('a'),
      bases: [{ address: { address: '192.0.2.1', port: 5000 }, component: 1 }],
      mdns: { responder: responderA, local: aLocal },
    });
    a.gather(0);
    a.setRemoteParameters(0, { ufrag: 'peer', pwd: 'peerpasswordpeerpassword' });
    const name = responderB.register(0, '192.0.2.2');
    a.addRemoteCandidate(0, 0, { foundation: '1', component: 1, transport: 'udp', priority: 2130706431, address: name, port: 6000, type: 'host' });
    a.endOfRemoteCandidates(0);
    expect(a.core.getChecklist(0).pairs).toHaveLength(0);
    // Carry A's query to B's responder and B's answer back, as the multicast group would.
    for (let d = a.pollTransmit(); d; d = a.pollTransmit()) {
      if (d.remote.address === group.address) responderB.handleReceive(1, { local: group, remote: aLocal, data: d.data });
    }
    for (let d = responderB.pollTransmit(); d; d = responderB.pollTransmit()) a.handleReceive(2, { local: d.remote.address === group.address ? group : aLocal, remote: bLocal, data: d.data });
    const pairs = a.core.getChecklist(0).pairs;
    expect(pairs).toHaveLength(1);
    expect(pairs[0]!.remote.address).toBe('192.0.2.2');
  });
});
