import { describe, expect, it } from 'vitest';
import { Gatherer, type GathererEvent, type RelayAllocationRequest } from '../../src/candidates/gatherer.js';
import { decodeStunMessage } from '../../src/stun/index.js';
import { SeededRandom } from '../../src/testing/random.js';
import type { Datagram, TransportAddress } from '../../src/types.js';

// A one-port mux socket gathers host and server-reflexive candidates only; the agent's own TURN socket beside it
// gathers relayed ones only (HostBase.serves).
const MUX: TransportAddress = { address: '127.0.0.1', port: 3478 };
const OWN: TransportAddress = { address: '127.0.0.1', port: 40000 };
const STUN: TransportAddress = { address: '127.0.0.10', port: 3478 };
const TURN = { server: { address: '127.0.0.20', port: 3478 } };

function drain(g: Gatherer): { sent: Datagram[]; events: GathererEvent[] } {
  const sent: Datagram[] = [];
  const events: GathererEvent[] = [];
  for (let d = g.pollTransmit(); d; d = g.pollTransmit()) sent.push(d);
  for (let e = g.pollEvent(); e; e = g.pollEvent()) events.push(e);
  return { sent, events };
}

describe('Gatherer: bases that serve only host or only relayed candidates', () => {
  it('host-only base: host and STUN, no Allocate; relay-only base: Allocate only, no host, no srflx', () => {
    const requests: RelayAllocationRequest[] = [];
    const g = new Gatherer({
      random: new SeededRandom('serves'),
      bases: [{ address: MUX, component: 1, serves: 'host' }, { address: OWN, component: 1, serves: 'relay' }],
      stunServers: [STUN],
      turnServers: [TURN],
      relayAllocator: { allocate: (_now, r) => requests.push(r) },
      taMs: 0,
    });
    g.start(0);
    const first = drain(g);
    const hosts = first.events.flatMap((e) => (e.type === 'candidate' ? [e.candidate] : []));
    expect(hosts.map((c) => [c.type, c.port])).toEqual([['host', MUX.port]]);
    expect(requests.map((r) => r.base)).toEqual([OWN]);
    // The Binding request to the STUN server leaves from the mux socket.
    expect(first.sent.map((d) => [decodeStunMessage(d.data).cls, d.local, d.remote])).toEqual([['request', MUX, STUN]]);
    g.relayResult(60, requests[0]!.id, { ok: true, relayed: { address: '203.0.113.5', port: 50000 }, mapped: { address: '198.51.100.1', port: 40000 } });
    const later = drain(g).events.flatMap((e) => (e.type === 'candidate' ? [e.candidate] : []));
    expect(later.map((c) => c.type)).toEqual(['relay']);
  });

  it('a relay-only base whose server is out of capacity asks no Binding instead', () => {
    const requests: RelayAllocationRequest[] = [];
    const g = new Gatherer({
      random: new SeededRandom('serves2'),
      bases: [{ address: OWN, component: 1, serves: 'relay' }],
      turnServers: [TURN],
      relayAllocator: { allocate: (_now, r) => requests.push(r) },
      taMs: 0,
    });
    g.start(0);
    drain(g);
    g.relayResult(1, requests[0]!.id, { ok: false, reason: '486', insufficientCapacity: true });
    expect(drain(g).sent).toEqual([]);
  });
});
