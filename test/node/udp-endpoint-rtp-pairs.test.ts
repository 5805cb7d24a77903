/**
 * RTP/RTCP port pairs of UdpEndpoint (RFC 3550 §11: RTP on an even port, RTCP on the next), loopback only.
 */
import { createSocket, type Socket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { IcewireError } from '../../src/errors.js';
import { UdpEndpoint } from '../../src/node/udp-endpoint.js';
import type { RandomSource } from '../../src/types.js';

const endpoints: UdpEndpoint[] = [];
const rawSockets: Socket[] = [];
afterEach(async () => {
  await Promise.all(endpoints.splice(0).map((e) => e.close()));
  await Promise.all(rawSockets.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))));
});

async function open(options: Parameters<typeof UdpEndpoint.bind>[0]): Promise<UdpEndpoint> {
  const e = await UdpEndpoint.bind(options);
  endpoints.push(e);
  return e;
}

function occupy(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    s.once('error', () => {
      s.close();
      resolve(false);
    });
    s.bind({ address: '127.0.0.1', port, exclusive: true }, () => {
      rawSockets.push(s);
      resolve(true);
    });
  });
}

/** A RandomSource whose bytes are all `b` (picks the first port tried in a range). */
const fixed = (b: number): RandomSource => ({ bytes: (n) => new Uint8Array(n).fill(b) });
const noop = () => undefined;

describe('UdpEndpoint RTP/RTCP pairs (RFC 3550 §11)', () => {
  it('binds RTP on an even ephemeral port and RTCP on the next one; the unpaired address is bound as before', async () => {
    for (let round = 0; round < 5; round++) {
      const e = await open({ addresses: ['127.0.0.1', '127.0.0.1', '127.0.0.1'], rtpRtcpPairs: [[0, 2]], onDatagram: noop });
      const [rtp, other, rtcp] = e.addresses;
      expect(rtp!.port % 2).toBe(0);
      expect(rtcp!.port).toBe(rtp!.port + 1);
      expect(other!.port).not.toBe(rtp!.port);
      await e.close();
    }
  });

  it('within a port range: the even port whose neighbour is free', async () => {
    // A free range of 6 ports on loopback: 4 even/odd pairs would fit, the first two are spoiled.
    let base = 0;
    for (let p = 40_000; p < 60_000 && base === 0; p += 8) {
      const all = await Promise.all([0, 1, 2, 3, 4, 5].map((i) => occupy(p + i)));
      await Promise.all(rawSockets.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))));
      if (all.every(Boolean)) base = p;
    }
    expect(base).toBeGreaterThan(0);
    expect(await occupy(base + 1)).toBe(true); // pair base/base+1: RTCP taken
    expect(await occupy(base + 2)).toBe(true); // pair base+2/base+3: RTP taken
    const e = await open({ addresses: ['127.0.0.1', '127.0.0.1'], rtpRtcpPairs: [[0, 1]], portRange: { min: base, max: base + 5 }, random: fixed(0), onDatagram: noop });
    expect(e.addresses.map((a) => a.port)).toEqual([base + 4, base + 5]);
  });

  it('falls back to any two ports when no even/odd pair is free', async () => {
    let base = 0;
    for (let p = 41_000; p < 60_000 && base === 0; p += 8) {
      const all = await Promise.all([0, 1, 2].map((i) => occupy(p + i)));
      await Promise.all(rawSockets.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))));
      if (all.every(Boolean) && p % 2 === 0) base = p;
    }
    expect(await occupy(base + 1)).toBe(true); // the one pair's RTCP port
    const e = await open({ addresses: ['127.0.0.1', '127.0.0.1'], rtpRtcpPairs: [[0, 1]], portRange: { min: base, max: base + 2 }, onDatagram: noop });
    expect(e.addresses.map((a) => a.port).sort()).toEqual([base, base + 2]);
  });

  it('refuses a pair of two IPs or an index out of range, with a typed error', async () => {
    await expect(UdpEndpoint.bind({ addresses: ['127.0.0.1', '127.0.0.2'], rtpRtcpPairs: [[0, 1]], onDatagram: noop })).rejects.toBeInstanceOf(IcewireError);
    await expect(UdpEndpoint.bind({ addresses: ['127.0.0.1'], rtpRtcpPairs: [[0, 1]], onDatagram: noop })).rejects.toBeInstanceOf(IcewireError);
  });

  it('closeSockets closes only the sockets named; the rest still send and receive', async () => {
    const got: number[] = [];
    const e = await open({ addresses: ['127.0.0.1', '127.0.0.1'], rtpRtcpPairs: [[0, 1]], onDatagram: (d) => got.push(d.local.port) });
    const [rtp, rtcp] = e.addresses;
    await e.closeSockets([rtcp!]);
    expect(e.addresses).toEqual([rtp]);
    // The RTCP port is free again: a plain socket can take it.
    expect(await occupy(rtcp!.port)).toBe(true);
    e.send({ local: rtp!, remote: rtp!, data: new Uint8Array([0x80, 1]) });
    await new Promise((r) => setTimeout(r, 50));
    expect(got).toEqual([rtp!.port]);
    expect(() => e.send({ local: rtcp!, remote: rtp!, data: new Uint8Array([0x80]) })).toThrow();
  });
});
