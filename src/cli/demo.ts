/**
 * icewire demo (`icewire demo`, and `npm start` through examples/demo.ts). It runs two ICE agents on loopback that negotiate through SIP-style SDP offer/answer,
 * with the built-in STUN server as their only server: no outside server is ever contacted.
 * `--virtual` runs the same negotiation between two simulated NATs (one symmetric) in virtual time,
 * with a simulated TURN server, and shows the relay being chosen.
 */
import { AgentMachine } from '../agent-machine.js';
import { formatCandidate } from '../candidates/grammar.js';
import type { AgentMachineEvent } from '../agent-machine.js';
import { IceSdpSession } from '../node/sdp-session.js';
import { startStunServer } from '../node/stun-server.js';
import { OfferAnswer } from '../sip-offer-answer/offer-answer.js';
import { signalledCandidate } from '../candidates/signal.js';
import { VirtualNetwork, NatPresets, addStunServer, addTurnServer } from '../testing/index.js';

const APP_SDP = ['v=0', 'o=- 4242 1 IN IP4 127.0.0.1', 's=icewire demo', 't=0 0', 'm=audio 9 RTP/AVP 0', 'c=IN IP4 0.0.0.0', 'a=rtcp-mux', 'a=sendrecv', ''].join('\r\n');
const iceLines = (sdp: string) =>
  sdp.split(/\r?\n/).filter((l) => /^(a=(ice-|candidate|end-of-candidates|remote-candidates)|c=|m=)/.test(l)).map((l) => `    ${l}`).join('\n');
const rtp = (seq: number) => Buffer.from([0x80, 0x00, seq >> 8, seq & 0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0xde, 0xad]);

/** The loopback demo: two agents, SIP-style offer/answer, the built-in STUN server. */
export async function realDemo(): Promise<void> {
  const stun = await startStunServer({ address: '127.0.0.1', port: 0 });
  console.log(`built-in STUN server on ${stun.address}:${stun.port} (loopback only)\n`);
  const options = {
    includeLoopback: true,
    addressFilter: (a: string) => a === '127.0.0.1',
    iceServers: [{ urls: `stun:127.0.0.1:${stun.port}` }],
  };
  const alice = new IceSdpSession(options);
  const bob = new IceSdpSession(options);
  const start = performance.now();
  const ms = () => `${(performance.now() - start).toFixed(2).padStart(7)} ms`;
  const addr = (c: { address: string; port: number; type: string }) => `${c.type} ${c.address}:${c.port}`;
  for (const [name, session] of [['alice', alice], ['bob', bob]] as const) {
    session.on('candidate', (c) => console.log(`  ${ms()}  ${name} gathered a=${formatCandidate(c)}`));
    session.on('pairstatechange', (p) => console.log(`  ${ms()}  ${name} pair ${addr(p.local)} -> ${addr(p.remote)}: ${p.state}${p.nominated ? ' (nominated)' : ''}`));
  }
  const completed = (name: string, session: IceSdpSession) =>
    new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${name} did not complete`)), 10_000);
      const on = (s: string) => {
        console.log(`  ${ms()}  ${name}: ${s}`);
        if (s === 'completed' || s === 'failed') {
          clearTimeout(t);
          session.off('statechange', on);
          if (s === 'completed') resolve();
          else reject(new Error(`${name} failed`));
        }
      };
      session.on('statechange', on);
    });
  try {
    console.log('gathering and checks (ms since the offer was requested):');
    const both = Promise.all([completed('alice', alice), completed('bob', bob)]);
    const offer = await alice.createOffer(APP_SDP);
    await bob.setRemoteDescription(offer, 'offer');
    const answer = await bob.createAnswer(APP_SDP);
    await alice.setRemoteDescription(answer, 'answer');
    await both;
    console.log('\nalice → bob: SIP INVITE body (ICE lines)\n' + iceLines(offer));
    console.log('bob → alice: 200 OK body (ICE lines)\n' + iceLines(answer));
    const a = alice.agent()!;
    const b = bob.agent()!;
    const pair = a.getSelectedCandidatePair()!;
    console.log(`\nselected pair: ${formatCandidate(pair.local)}  ⇄  ${formatCandidate(pair.remote)}`);
    const stats = a.getStats()?.pairs.find((p) => p.nominated);
    if (stats?.currentRoundTripTime !== undefined) console.log(`check RTT: ${(stats.currentRoundTripTime * 1000).toFixed(3)} ms`);
    b.on('data', (d) => b.send(d));
    console.log('\nRTP-like packets echoed by bob:');
    for (let seq = 1; seq <= 5; seq++) {
      const t0 = performance.now();
      const back = new Promise<Buffer>((resolve) => a.once('data', (d) => resolve(d)));
      a.send(rtp(seq));
      const got = await back;
      console.log(`  seq ${seq}: ${got.length} bytes back in ${(performance.now() - t0).toFixed(3)} ms`);
    }
  } finally {
    await alice.close();
    await bob.close();
    await stun.close();
  }
}

/** The same negotiation between two simulated NATs in virtual time; returns the selected pair's candidate types. */
export function virtualDemo(): { local: string; remote: string } {
  const net = new VirtualNetwork({ seed: 'icewire-demo' });
  const stun = addStunServer(net, { address: '198.51.100.1' });
  const turn = addTurnServer(net, { address: '198.51.100.2', users: { demo: 'demo-password' } });
  const natA = net.addNat({ name: 'natA (symmetric)', publicIp: '203.0.113.1', ...NatPresets.symmetric });
  const natB = net.addNat({ name: 'natB (port-restricted cone)', publicIp: '203.0.113.2', ...NatPresets.portRestrictedCone });
  const hostA = net.addHost({ name: 'alice', network: natA.lan });
  const hostB = net.addHost({ name: 'bob', network: natB.lan });
  console.log('virtual network (seeded, virtual time):');
  console.log(`  alice ${hostA.ips[0]} behind ${natA.name} ${natA.publicIp}`);
  console.log(`  bob   ${hostB.ips[0]} behind ${natB.name} ${natB.publicIp}`);
  console.log(`  STUN ${stun.address.address}:${stun.address.port}, TURN ${turn.address.address}:${turn.address.port}\n`);
  const make = (name: string, host: typeof hostA, role: 'controlling' | 'controlled') => {
    const machine = new AgentMachine({
      random: net.random.fork(name),
      role,
      bases: [{ address: host.address(5000), component: 1 }],
      stunServers: [stun.address],
      turnServers: [{ server: turn.address, username: 'demo', credential: 'demo-password' }],
    });
    const events: AgentMachineEvent[] = [];
    host.attach(machine, { name, onEvent: (e) => events.push(e as AgentMachineEvent) });
    machine.gather(net.now);
    return { machine, events };
  };
  const a = make('alice', hostA, 'controlling');
  const b = make('bob', hostB, 'controlled');
  net.runUntilTrue(() => a.machine.gatheringState === 'complete' && b.machine.gatheringState === 'complete', 10_000);
  const local = (x: typeof a) => x.events.flatMap((e) => (e.type === 'candidate' ? [signalledCandidate(e.candidate)] : []));
  const oaA = new OfferAnswer({ local: a.machine.core.getLocalParameters(0) });
  const oaB = new OfferAnswer({ local: b.machine.core.getLocalParameters(0) });
  oaA.setLocalCandidates(0, local(a));
  oaA.setLocalEndOfCandidates(0);
  oaB.setLocalCandidates(0, local(b));
  oaB.setLocalEndOfCandidates(0);
  const offer = oaA.createOffer(APP_SDP);
  console.log('offer (ICE lines)\n' + iceLines(offer) + '\n');
  oaB.setRemoteDescription(offer, 'offer');
  const answer = oaB.createAnswer(APP_SDP);
  console.log('answer (ICE lines)\n' + iceLines(answer) + '\n');
  oaA.setRemoteDescription(answer, 'answer');
  const feed = (x: typeof a, oa: OfferAnswer) => {
    const plan = oa.transports()[0]!;
    x.machine.setRemoteParameters(0, { ufrag: plan.remoteUfrag!, pwd: plan.remotePwd! });
    for (const c of plan.remoteCandidates) x.machine.addRemoteCandidate(net.now, 0, c);
    x.machine.endOfRemoteCandidates(0);
  };
  feed(a, oaA);
  feed(b, oaB);
  const t0 = net.now;
  const done = net.runUntilTrue(() => a.machine.core.state === 'completed' && b.machine.core.state === 'completed', 60_000);
  const states = a.events.filter((e) => e.type === 'state').map((e) => (e.type === 'state' ? e.state : ''));
  console.log(`alice states: ${states.join(' → ')}`);
  if (!done) throw new Error('the virtual agents did not complete');
  const sel = a.machine.core.getSelectedPair(0, 1)!;
  console.log(`completed after ${(net.now - t0).toFixed(0)} ms of virtual time`);
  console.log(`selected pair: ${sel.local.type} ${sel.local.address}:${sel.local.port}  ⇄  ${sel.remote.type} ${sel.remote.address}:${sel.remote.port}`);
  console.log(sel.local.type === 'relay' || sel.remote.type === 'relay' ? 'the relay was chosen: a symmetric NAT facing a port-restricted one leaves no direct path' : 'a direct path was found');
  return { local: sel.local.type, remote: sel.remote.type };
}
