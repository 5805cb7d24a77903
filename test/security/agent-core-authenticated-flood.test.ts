import { describe, expect, it } from 'vitest';
import { AgentCore } from '../../src/checklist/agent-core.js';
import { encodeCheckError, encodeCheckRequest, encodeCheckSuccess } from '../../src/checklist/checks.js';
import { ErrorCode } from '../../src/stun/constants.js';
import { shortTermKey } from '../../src/stun/integrity.js';
import { tryDecodeStunMessage } from '../../src/stun/message.js';
import type { AgentEvent } from '../../src/checklist/types.js';
import { host, seededRandom, signalled } from '../checklist/harness.js';
import { SeededRandom } from '../../src/testing/random.js';

const BASE = { address: '10.0.0.1', port: 5000 };
const PEER_PWD = 'p'.repeat(22);

function txid(i: number): Uint8Array {
  const id = new Uint8Array(12);
  new DataView(id.buffer).setUint32(8, i);
  return id;
}

/** A peer that holds valid credentials and misbehaves in every way the protocol lets it. */
function hostilePeer(role: 'controlling' | 'controlled', setRemoteFirst: boolean) {
  const a = new AgentCore({ random: seededRandom(3), role, remoteCandidateLimit: 100, checklistLimit: 100 });
  a.addStream(1);
  a.addLocalCandidate(0, host(BASE.address, BASE.port));
  if (setRemoteFirst) a.setRemoteParameters(0, { ufrag: 'peer', pwd: PEER_PWD });
  a.addRemoteCandidate(0, signalled(host('10.0.0.2', 6000)));
  const key = shortTermKey(a.getLocalParameters().pwd);
  const lfrag = a.getLocalParameters().ufrag;
  const events: AgentEvent[] = [];
  const rnd = new SeededRandom('hostile');
  let seq = 0;
  const step = (now: number): void => {
    // A request from a fresh source port each time, sometimes nominating, claiming the opposite role.
    const port = 1024 + (seq % 150);
    a.handleReceive(now, {
      local: BASE,
      remote: { address: '10.9.0.1', port },
      data: encodeCheckRequest({
        transactionId: txid(seq++),
        username: `${lfrag}:peer`,
        priority: rnd.bytes(4)[0]! * 1000 + 1,
        role: role === 'controlling' ? 'controlled' : 'controlling',
        tieBreaker: 5n,
        useCandidate: seq % 3 === 0,
        key,
      }),
    });
    a.handleTimeout(now);
    // Answer every check we sent: success with a new mapped address each time, or an error.
    for (let d = a.pollTransmit(); d; d = a.pollTransmit()) {
      const m = tryDecodeStunMessage(d.data);
      if (!m.ok || m.message.cls !== 'request') continue;
      const id = Uint8Array.from(m.message.transactionId);
      const mapped = { address: `10.8.${(seq >> 8) & 255}.${seq & 255}`, port: 1 + (seq % 60000) };
      const data = seq % 4 === 0 ? encodeCheckError(id, ErrorCode.BadRequest, 'x', shortTermKey(PEER_PWD)) : encodeCheckSuccess(id, mapped, shortTermKey(PEER_PWD));
      a.handleReceive(now, { local: d.local, remote: d.remote, data });
    }
    for (let e = a.pollEvent(); e; e = a.pollEvent()) events.push(e);
  };
  return { a, events, step };
}

describe('a peer with valid credentials cannot grow our memory without bound', () => {
  for (const role of ['controlling', 'controlled'] as const) {
    for (const early of [true, false]) {
      it(`${role}, remote parameters ${early ? 'before' : 'after'} the flood`, () => {
        const { a, events, step } = hostilePeer(role, early);
        let now = 0;
        for (let i = 0; i < 8000; i++) {
          if (!early && i === 4000) a.setRemoteParameters(0, { ufrag: 'peer', pwd: PEER_PWD });
          step((now += 20));
        }
        const cl = a.getChecklist(0);
        expect(cl.pairs.length).toBeLessThanOrEqual(100);
        expect(cl.valid.length).toBeLessThanOrEqual(300);
        expect(cl.triggered.length).toBeLessThanOrEqual(100);
        expect(a.getStats().pairs.length).toBeLessThanOrEqual(300);
        expect(events.filter((e) => e.type === 'prflx-remote').length).toBeLessThanOrEqual(100);
        expect(events.filter((e) => e.type === 'prflx-local').length).toBeLessThanOrEqual(300);
      });
    }
  }
});
