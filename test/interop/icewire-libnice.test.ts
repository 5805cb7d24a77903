/**
 * icewire against a real ICE stack we did not write: libnice (Debian gir1.2-nice-0.1), driven by
 * test/interop/libnice_peer.py, on loopback, in both roles. Fails under CI when libnice is missing.
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

function up(agent: IceAgent): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`icewire stuck in ${agent.state}`)), 10_000);
    const check = (s: string) => {
      if (s === 'completed' || s === 'connected') {
        clearTimeout(t);
        resolve();
      } else if (s === 'failed') reject(new Error('icewire failed'));
    };
    check(agent.state);
    agent.on('statechange', check);
  });
}

describe.skipIf(!run)('interop: icewire <-> libnice on loopback', () => {
  it('libnice is installed', () => expect(availability.ok ? 'ok' : availability.reason).toBe('ok'));

  for (const icewireRole of ['controlling', 'controlled'] as const) {
    it(`icewire ${icewireRole}, libnice ${icewireRole === 'controlling' ? 'controlled' : 'controlling'}: connect and echo`, async () => {
      const nice = LibnicePeer.start({
        role: icewireRole === 'controlling' ? 'controlled' : 'controlling',
        address: '127.0.0.1',
        hardTimeoutSec: 20,
        waitMs: 10_000,
      });
      peers.push(nice);
      const agent = new IceAgent({ ...loopback, role: icewireRole });
      agents.push(agent);
      const [remote] = await Promise.all([nice.local(), agent.gather()]);
      const local = agent.getLocalParameters();
      nice.setRemote({ ufrag: local.ufrag, pwd: local.pwd, candidates: agent.getLocalCandidates().map((c) => formatCandidate(c)) });
      agent.setRemoteParameters({ ufrag: remote.ufrag, pwd: remote.pwd });
      for (const line of remote.candidates) agent.addRemoteCandidate(line);
      agent.endOfRemoteCandidates();
      await Promise.all([up(agent), nice.waitState('ready')]);
      const selected = await nice.waitSelected();
      expect(selected.remote.port).toBe(agent.getLocalCandidates()[0]!.port);

      // libnice echoes what it receives: our datagram must come back unchanged, over the selected pair.
      const payload = Buffer.from([0x00, 0xff, ...Buffer.from('icewire ⇄ libnice'), 0x00]);
      const back = new Promise<Buffer>((resolve) => agent.once('data', (d) => resolve(d)));
      expect(agent.send(payload)).toBe(true);
      expect((await back).equals(payload)).toBe(true);
      if (icewireRole === 'controlling') {
        await new Promise<void>((resolve) => (agent.state === 'completed' ? resolve() : agent.on('statechange', (s) => s === 'completed' && resolve())));
        expect(agent.getSelectedCandidatePair()?.remote.port).toBe(selected.local.port);
      }
    });
  }
});
