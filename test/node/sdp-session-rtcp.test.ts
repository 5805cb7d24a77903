/**
 * RTCP with and without rtcp-mux, table-driven, on loopback: every combination of {icewire offers, icewire answers}
 * x {peer with ICE, peer without ICE, ICE peer behind an ICE-unaware relay (mismatch)} x {no mux, mux accepted, mux
 * declined, rtcp-mux-only}. Each row asserts that nothing throws, the component count of each side, and that RTCP
 * arrives both ways: on component 2 (at `a=rtcp`, or RTP port + 1 when absent: RFC 3605, RFC 3550 §11), or on the
 * RTP component when multiplexed (RFC 5761).
 *
 * The peer without ICE answers with the real SIP body `test/fixtures/sdp/sip-invite-behind-nat.sdp` (addresses
 * moved to loopback): the kind of no-rtcp-mux body that made `setRemoteDescription` throw before. The relay mimics
 * the rtpproxy of `sip-invite-after-rtpproxy.sdp`: it rewrites `m=`/`a=rtcp` to its own ports and forwards.
 */
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { IceSdpSession } from '../../src/node/sdp-session.js';
import { UdpEndpoint } from '../../src/node/udp-endpoint.js';
import { readIceDescription } from '../../src/sip-offer-answer/ice-attributes.js';
import { signalledDestination } from '../../src/sip-offer-answer/ice-mismatch.js';
import type { Datagram, TransportAddress } from '../../src/types.js';

const loopback = { includeLoopback: true, addressFilter: (a: string) => a === '127.0.0.1' } as const;
const FIXTURE = readFileSync(new URL('../fixtures/sdp/sip-invite-behind-nat.sdp', import.meta.url), 'utf8');

type Peer = 'ice' | 'no-ice' | 'mismatch';
type Mux = 'none' | 'accepted' | 'declined' | 'mux-only';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(cleanup.splice(0).map((f) => f()));
});

/** The application's SDP: one audio section, with the rtcp-mux lines the row wants. */
function appSdp(lines: readonly string[]): string {
  return ['v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=-', 'c=IN IP4 0.0.0.0', 't=0 0', 'm=audio 9 RTP/AVP 0', 'a=rtpmap:0 PCMU/8000', 'a=sendrecv', ...lines, ''].join('\r\n');
}

function muxLines(mux: Mux, offering: boolean): string[] {
  if (mux === 'none') return [];
  if (mux === 'mux-only') return offering ? ['a=rtcp-mux', 'a=rtcp-mux-only'] : ['a=rtcp-mux'];
  if (mux === 'declined' && !offering) return [];
  return ['a=rtcp-mux'];
}

/** A SIP endpoint without ICE: the fixture body on loopback, RTP on an even port, RTCP on the next (or a=rtcp). */
class PlainPeer {
  readonly received: { component: number; data: string }[] = [];
  private constructor(readonly endpoint: UdpEndpoint) {}

  static async open(): Promise<PlainPeer> {
    let peer: PlainPeer | undefined;
    const endpoint = await UdpEndpoint.bind({
      addresses: ['127.0.0.1', '127.0.0.1'],
      rtpRtcpPairs: [[0, 1]],
      onDatagram: (d) => peer!.received.push({ component: d.local === endpoint.addresses[0] || d.local.port === endpoint.addresses[0]!.port ? 1 : 2, data: Buffer.from(d.data).toString() }),
    });
    peer = new PlainPeer(endpoint);
    cleanup.push(() => endpoint.close());
    return peer;
  }

  get rtp(): TransportAddress {
    return this.endpoint.addresses[0]!;
  }

  get rtcp(): TransportAddress {
    return this.endpoint.addresses[1]!;
  }

  /** The fixture, moved to this peer's sockets, with `extra` lines at the end of the audio section. */
  body(extra: readonly string[]): string {
    const rtcp = this.rtcp.port === this.rtp.port + 1 ? [] : [`a=rtcp:${this.rtcp.port}`];
    return `${FIXTURE.replaceAll('10.0.0.180', '127.0.0.1').replace('m=audio 56014', `m=audio ${this.rtp.port}`).trimEnd()}\r\n${[...rtcp, ...extra].join('\r\n')}${extra.length + rtcp.length > 0 ? '\r\n' : ''}`;
  }

  send(from: 1 | 2, to: TransportAddress, text: string): void {
    this.endpoint.send({ local: from === 1 ? this.rtp : this.rtcp, remote: to, data: Buffer.from(text) });
  }
}

/**
 * An ICE-unaware media relay (rtpproxy-like) between two sides: per component one socket facing each side; what
 * arrives on one leaves by the other, to the other side's latched (or signalled) address.
 */
class Relay {
  readonly #dest = new Map<string, TransportAddress>();
  private constructor(readonly endpoint: UdpEndpoint) {}

  static async open(): Promise<Relay> {
    let relay: Relay | undefined;
    const endpoint = await UdpEndpoint.bind({ addresses: ['127.0.0.1', '127.0.0.1', '127.0.0.1', '127.0.0.1'], onDatagram: (d) => relay!.#forward(d) });
    relay = new Relay(endpoint);
    cleanup.push(() => endpoint.close());
    return relay;
  }

  /** Socket facing side `s` ('x' or 'y') for component `c`. */
  facing(s: 'x' | 'y', c: number): TransportAddress {
    return this.endpoint.addresses[(s === 'x' ? 0 : 2) + c - 1]!;
  }

  /** Rewrites a body sent by side `from` for the other side: m= and a=rtcp name the relay (RFC 8839 §4.2.5 mismatch). */
  rewrite(body: string, from: 'x' | 'y'): string {
    const to = from === 'x' ? 'y' : 'x';
    const m = readIceDescription(body).media[0]!;
    const dest = signalledDestination(m);
    this.#dest.set(`${from}1`, dest.rtp!);
    if (dest.rtcp) this.#dest.set(`${from}2`, dest.rtcp);
    const rtcpLine = dest.rtcp ? `a=rtcp:${this.facing(to, 2).port}` : undefined;
    let out = body.replace(/^m=audio \d+/m, `m=audio ${this.facing(to, 1).port}`).replace(/^a=rtcp:.*\r\n/m, '');
    out = out.replace(/^(m=audio .*\r\n)/m, `$1${rtcpLine ? `${rtcpLine}\r\n` : ''}a=nortpproxy:yes\r\n`);
    return out;
  }

  #forward(d: Datagram): void {
    const i = this.endpoint.addresses.findIndex((a) => a.port === d.local.port);
    const side = i < 2 ? 'x' : 'y';
    const other = side === 'x' ? 'y' : 'x';
    const c = (i % 2) + 1;
    this.#dest.set(`${side}${c}`, d.remote); // latch the sender
    const to = this.#dest.get(`${other}${c}`);
    if (to) this.endpoint.send({ local: this.facing(other, c), remote: to, data: d.data });
  }
}

function session(): IceSdpSession {
  const s = new IceSdpSession(loopback);
  cleanup.push(() => s.close());
  return s;
}

/** Waits until `pred` holds (bounded). */
async function until(pred: () => boolean, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  while (!pred() && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
  return pred();
}

/** Texts received by a session's first agent, with their component. */
function inbox(s: IceSdpSession): { component: number; data: string }[] {
  const got: { component: number; data: string }[] = [];
  s.agent()!.on('data', (data, component) => got.push({ component, data: data.toString() }));
  return got;
}

const isUp = (s: IceSdpSession) => ['connected', 'completed'].includes(s.agent()!.state);
const ROLES = ['offerer', 'answerer'] as const;
const PEERS: readonly Peer[] = ['ice', 'no-ice', 'mismatch'];
const MUXES: readonly Mux[] = ['none', 'accepted', 'declined', 'mux-only'];
const rows = ROLES.flatMap((role) => PEERS.flatMap((peer) => MUXES.map((mux) => [role, peer, mux] as const)));
/** RTCP's own component exists unless both sides multiplex. */
const componentsFor = (mux: Mux) => (mux === 'accepted' || mux === 'mux-only' ? 1 : 2);

describe('IceSdpSession RTCP, mux or not (issue 13)', () => {
  it.each(rows)('icewire %s, peer %s, rtcp-mux %s', async (role, peer, mux) => {
    const comps = componentsFor(mux);
    const a = session();
    const offerSdp = appSdp(muxLines(mux, true));
    const answerSdp = appSdp(muxLines(mux, false));

    if (peer === 'no-ice') {
      const p = await PlainPeer.open();
      if (role === 'offerer') {
        const offer = await a.createOffer(offerSdp);
        // The offer offers RTCP candidates and a=rtcp beside rtcp-mux (RFC 5761 §5.1.3), none with rtcp-mux-only.
        const o = readIceDescription(offer).media[0]!;
        expect(o.candidates.some((c) => c.component === 2)).toBe(mux !== 'mux-only');
        expect(o.rtcp !== undefined).toBe(mux !== 'mux-only');
        await a.setRemoteDescription(p.body(muxLines(mux, false)), 'answer');
      } else {
        await a.setRemoteDescription(p.body(muxLines(mux, true)), 'offer');
        const answer = await a.createAnswer(answerSdp);
        expect(readIceDescription(answer).media[0]!.rtcp !== undefined).toBe(comps === 2);
      }
      const got = inbox(a);
      const ours = signalledDestination(a.offerAnswer.localDescription!.media[0]!);
      expect(a.agent()!.components).toBe(comps);
      // icewire -> peer: RTCP on its own port (a=rtcp or RTP port + 1), or on the RTP port when multiplexed.
      expect(a.agent()!.send(Buffer.from('rtcp-from-a'), comps)).toBe(true);
      expect(await until(() => p.received.some((r) => r.data === 'rtcp-from-a'))).toBe(true);
      expect(p.received.find((r) => r.data === 'rtcp-from-a')!.component).toBe(comps);
      // peer -> icewire: to our a=rtcp (or RTP port + 1), or our RTP port.
      p.send(comps as 1 | 2, comps === 2 ? ours.rtcp! : ours.rtp!, 'rtcp-from-peer');
      expect(await until(() => got.some((r) => r.data === 'rtcp-from-peer'))).toBe(true);
      expect(got.find((r) => r.data === 'rtcp-from-peer')!.component).toBe(comps);
      // Without ICE the state follows the peer's media: connected once something arrived.
      expect(await until(() => isUp(a))).toBe(true);
      return;
    }

    const b = session();
    const relay = peer === 'mismatch' ? await Relay.open() : undefined;
    const toB = (sdp: string) => relay?.rewrite(sdp, 'x') ?? sdp;
    const toA = (sdp: string) => relay?.rewrite(sdp, 'y') ?? sdp;
    if (role === 'offerer') {
      const offer = await a.createOffer(offerSdp);
      await b.setRemoteDescription(toB(offer), 'offer');
      const answer = await b.createAnswer(answerSdp);
      await a.setRemoteDescription(toA(answer), 'answer');
    } else {
      const offer = await b.createOffer(offerSdp);
      await a.setRemoteDescription(toA(offer), 'offer');
      const answer = await a.createAnswer(answerSdp);
      await b.setRemoteDescription(toB(answer), 'answer');
    }
    expect(a.agent()!.components).toBe(comps);
    expect(b.agent()!.components).toBe(comps);
    if (peer === 'mismatch') {
      expect(a.offerAnswer.transports()[0]!.mode).toBe('mismatch');
      expect(b.offerAnswer.transports()[0]!.mode).toBe('mismatch');
    }
    // With ICE both connect by checks; without (mismatch), once the other side's media arrives (below).
    if (peer === 'ice') expect(await until(() => isUp(a) && isUp(b))).toBe(true);
    const gotA = inbox(a);
    const gotB = inbox(b);
    // Both ways, each side sending first (latching relays and peers learn the source).
    expect(await until(() => (b.agent()!.send(Buffer.from('rtcp-from-b'), comps), gotA.some((r) => r.data === 'rtcp-from-b')))).toBe(true);
    expect(await until(() => (a.agent()!.send(Buffer.from('rtcp-from-a'), comps), gotB.some((r) => r.data === 'rtcp-from-a')))).toBe(true);
    expect(gotA.find((r) => r.data === 'rtcp-from-b')!.component).toBe(comps);
    expect(gotB.find((r) => r.data === 'rtcp-from-a')!.component).toBe(comps);
    expect(await until(() => isUp(a) && isUp(b))).toBe(true);
  });

  it('an answer declining rtcp-mux-only (RFC 8858 says it must not) throws nothing: RTCP stays on RTP, with a warning', async () => {
    const a = session();
    const warnings: string[] = [];
    a.on('warning', (w) => warnings.push(w));
    const p = await PlainPeer.open();
    await a.createOffer(appSdp(['a=rtcp-mux', 'a=rtcp-mux-only']));
    await a.setRemoteDescription(p.body([]), 'answer');
    expect(a.agent()!.components).toBe(1);
    expect(warnings.some((w) => w.includes('rtcp-mux-only'))).toBe(true);
    expect(a.agent()!.send(Buffer.from('rtp'), 1)).toBe(true);
    expect(await until(() => p.received.some((r) => r.data === 'rtp'))).toBe(true);
  });
});
