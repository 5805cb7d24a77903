/**
 * ICE-TCP (RFC 6544) against libnice (Debian gir1.2-nice-0.1, `ice-tcp` on, `ice-udp` off), on loopback, in both
 * roles: TCP host candidates only on both sides (libnice gathers active and passive ones), a TCP pair selected on
 * both, and data echoed back through the RFC 4571 framing. Fails under CI when libnice is missing.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { IceAgent } from '../../src/node/ice-agent.js';
import { formatCandidate } from '../../src/candidates/grammar.js';
import { checkLibnice, closePeers, LibnicePeer } from './libnice.js';

const availability = checkLibnice();
const run = availability.ok || Boolean(process.env.CI);
const loopback = { includeLoopback: true, addressFilter: (a: string) => a === '127.0.0.1' } as const;

const peers: LibnicePeer[] = [];
const agents: IceAgent[] = [];
afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.close()));
  await closePeers(peers.splice(0));
});

function reaches(agent: IceAgent, states: readonly string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`icewire stuck in ${agent.state}`)), 10_000);
    const check = (s: string) => {
      if (states.includes(s)) {
        clearTimeout(t);
        resolve();
      } else if (s === 'failed') reject(new Error('icewire failed'));
    };
    check(agent.state);
    agent.on('statechange', check);
  });
}

describe.skipIf(!run)('interop: icewire <-> libnice over ICE-TCP on loopback', () => {
  for (const icewireRole of ['controlling', 'controlled'] as const) {
    it(`icewire ${icewireRole}, TCP only both sides: a TCP pair is selected and data is echoed`, async () => {
      const nice = LibnicePeer.start({ role: icewireRole === 'controlling' ? 'controlled' : 'controlling', address: '127.0.0.1', hardTimeoutSec: 20, waitMs: 10_000, tcpOnly: true });
      peers.push(nice);
      const agent = new IceAgent({ ...loopback, role: icewireRole, transports: ['tcp'] });
      agents.push(agent);
      const [remote] = await Promise.all([nice.local(), agent.gather()]);
      // libnice signals TCP candidates with tcptype (active ones with port 9).
      expect(remote.candidates.length).toBeGreaterThan(0);
      expect(remote.candidates.every((c) => / tcp /i.test(c) && /tcptype (active|passive|so)/.test(c))).toBe(true);
      const local = agent.getLocalParameters();
      nice.setRemote({ ufrag: local.ufrag, pwd: local.pwd, candidates: agent.getLocalCandidates().map((c) => formatCandidate(c)) });
      agent.setRemoteParameters({ ufrag: remote.ufrag, pwd: remote.pwd });
      for (const line of remote.candidates) agent.addRemoteCandidate(line);
      agent.endOfRemoteCandidates();
      await Promise.all([reaches(agent, ['connected', 'completed']), nice.waitState('ready')]);
      const selected = await nice.waitSelected();
      expect(selected.local.candidate).toMatch(/ tcp /i);
      expect(agent.getSelectedCandidatePair()?.local.transport).toBe('tcp');

      const payload = Buffer.from([0x00, 0xff, ...Buffer.from('icewire ⇄ libnice over TCP'), 0x00]);
      const back = new Promise<Buffer>((resolve) => agent.once('data', (d) => resolve(d)));
      expect(agent.send(payload)).toBe(true);
      expect((await back).equals(payload)).toBe(true);
      if (icewireRole === 'controlling') await reaches(agent, ['completed']);
    });
  }
});
