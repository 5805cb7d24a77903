/**
 * Floods at a connected pair (issue 16, item 8.1): two peer processes connected on loopback exchange data both
 * ways while a third socket (this test process) sends hostile datagrams at both agents' selected-pair ports for 3 s:
 * random bytes, STUN with bad integrity, bad fingerprints, answers to unknown transactions, ChannelData-looking junk,
 * unauthenticated role conflicts, oversized STUN. What must hold: the selected pairs and roles do not move, no pair
 * names the attacker, data keeps flowing (bounded largest gap), the attacker gets back far less than it sent (no
 * amplification), and the drop counters account for the flood.
 */
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeCheckRequest, encodeCheckSuccess } from '../../src/checklist/checks.js';
import { shortTermKey } from '../../src/stun/integrity.js';
import { ChaosPeer, connectedPair, sleep, stopAll, type PeerReport } from './peers.js';

afterAll(stopAll, 20_000);

const FLOOD_MS = 3_000;
/** Datagrams per 10 ms tick and target: 800 a second at each agent. */
const PER_TICK = 8;

/** One hostile datagram of kind `i % 7`, aimed at an agent whose ufrag is `lfrag` (the peer's is `rfrag`). */
function hostile(i: number, lfrag: string, rfrag: string): Uint8Array {
  const wrongKey = shortTermKey(randomBytes(16).toString('hex'));
  const id = randomBytes(12);
  switch (i % 7) {
    case 0:
      return randomBytes(20 + (i % 200));
    case 1: // right USERNAME, wrong password
      return encodeCheckRequest({ transactionId: id, username: `${lfrag}:${rfrag}`, priority: 1, role: 'controlling', tieBreaker: 2n ** 63n, useCandidate: true, key: wrongKey });
    case 2: {
      const m = encodeCheckRequest({ transactionId: id, username: `${lfrag}:${rfrag}`, priority: 1, role: 'controlled', tieBreaker: 1n, useCandidate: false, key: wrongKey });
      m[m.length - 1] = m[m.length - 1]! ^ 0xff; // bad FINGERPRINT
      return m;
    }
    case 3: // an answer to no transaction of ours
      return encodeCheckSuccess(id, { address: '127.0.0.1', port: 9 }, wrongKey);
    case 4: {
      const junk = randomBytes(40 + (i % 100));
      junk[0] = 0x40 + (i % 16); // ChannelData first byte (RFC 7983: 64..79)
      return junk;
    }
    case 5: // a role conflict without credentials: unknown USERNAME
      return encodeCheckRequest({ transactionId: id, username: `x${i}:${rfrag}`, priority: 1, role: 'controlling', tieBreaker: 2n ** 64n - 1n, useCandidate: false, key: wrongKey });
    default: {
      // Oversized STUN: a Binding request header announcing 3,000 bytes of attributes.
      const m = Buffer.alloc(3_020);
      m.writeUInt16BE(0x0001, 0);
      m.writeUInt16BE(3_000, 2);
      m.writeUInt32BE(0x2112a442, 4);
      id.copy(m, 8);
      return m;
    }
  }
}

const portOf = (s: string) => Number(s.slice(s.lastIndexOf(':') + 1));
const dropped = (r: PeerReport) => Object.values(r.dropped).reduce((x, y) => x + y, 0);

describe('a flood at a connected pair', () => {
  it('moves nothing: same pairs and roles, data flowing, no pair to the attacker, no amplification, drops counted', async () => {
    const a = await ChaosPeer.start('A', { role: 'controlling' });
    const b = await ChaosPeer.start('B', { role: 'controlled' });
    const attacker = createSocket('udp4');
    let pump: NodeJS.Timeout | undefined;
    try {
      const [ga, gb] = await connectedPair(a, b);
      await Promise.all([a.waitFor((e) => e.state === 'completed', 5_000, 'completed'), b.waitFor((e) => e.state === 'completed', 5_000, 'completed')]);
      await Promise.all([a.request({ cmd: 'startData', intervalMs: 10, size: 160 }), b.request({ cmd: 'startData', intervalMs: 10, size: 160 })]);
      await sleep(300);
      const [a0, b0] = await Promise.all([a.report(), b.report()]);
      const pa = a0.selected!;
      const pb = b0.selected!;
      await new Promise<void>((r) => attacker.bind(0, '127.0.0.1', () => r()));
      const attackerAddr = `127.0.0.1:${attacker.address().port}`;
      const got = { n: 0, bytes: 0 };
      attacker.on('message', (m) => {
        got.n++;
        got.bytes += m.length;
      });
      const sent = { n: 0, bytes: 0 };
      await Promise.all([a.request({ cmd: 'resetGap' }), b.request({ cmd: 'resetGap' })]);
      const targets = [
        { port: portOf(pa.local), lfrag: ga.params.ufrag, rfrag: gb.params.ufrag },
        { port: portOf(pb.local), lfrag: gb.params.ufrag, rfrag: ga.params.ufrag },
      ];
      let i = 0;
      const started = Date.now();
      pump = setInterval(() => {
        for (const t of targets) {
          for (let k = 0; k < PER_TICK; k++) {
            const d = hostile(i++, t.lfrag, t.rfrag);
            sent.n++;
            sent.bytes += d.length;
            attacker.send(d, t.port, '127.0.0.1');
          }
        }
      }, 10);
      await sleep(FLOOD_MS);
      clearInterval(pump);
      pump = undefined;
      const seconds = (Date.now() - started) / 1000;
      await sleep(300);
      const [a1, b1] = await Promise.all([a.report(), b.report()]);
      console.log(`flood ${seconds.toFixed(1)} s: sent ${sent.n} datagrams / ${sent.bytes} B, attacker got ${got.n} / ${got.bytes} B; largest data gap A ${a1.rx.maxGapMs} ms, B ${b1.rx.maxGapMs} ms; drops A +${dropped(a1) - dropped(a0)}, B +${dropped(b1) - dropped(b0)}`);
      expect(sent.n).toBeGreaterThan(3_000);
      for (const [before, after] of [[a0, a1], [b0, b1]] as const) {
        expect(after.selected).toEqual(before.selected);
        expect(after.role).toBe(before.role);
        expect(after.state).toBe('completed');
        expect(after.pairs.some((p) => p.remote === attackerAddr)).toBe(false);
        expect(after.rx.maxGapMs).toBeLessThan(500);
        expect(after.rx.sinceLastMs).toBeLessThan(200);
        expect(after.rx.count - before.rx.count).toBeGreaterThan(seconds * 50); // 100 a second were sent
        // Every hostile datagram was dropped and counted (a few may still sit in a socket buffer).
        expect(dropped(after) - dropped(before)).toBeGreaterThan(0.5 * (sent.n / 2));
      }
      // No amplification: unauthenticated replies are capped (64 a second per agent) and smaller than the requests.
      expect(got.n).toBeLessThanOrEqual(2 * 64 * Math.ceil(seconds + 1));
      expect(got.bytes).toBeLessThan(sent.bytes / 10);
    } finally {
      clearInterval(pump);
      attacker.close();
      await Promise.all([a.stop(), b.stop()]);
    }
  }, 40_000);
});
