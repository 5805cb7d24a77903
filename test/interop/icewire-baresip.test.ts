/**
 * icewire against a real softphone: baresip 1.0 (Debian `baresip-core`, ICE from libre through its `ice` medianat
 * module), over SIP, in a network namespace holding one veth pair (see test/interop/baresip.ts for why). Calls go
 * both ways (baresip dials icewire's SIP user agent; icewire dials baresip, which auto-answers), with and without
 * rtcp-mux. Each call checks: both ICE agents connected, icewire's selected pair(s) on the veth addresses, RTP both
 * ways (icewire sends PCMU frames it builds; baresip's RTP statistics count them), and baresip's RTCP reaching
 * icewire on the right component (1 with rtcp-mux, 2 without).
 * `ICEWIRE_BARESIP_DEBUG=1` prints both SDP bodies, the SIP trace and baresip's log.
 *
 * Skipped with a warning only when network namespaces cannot be made (not root, no `ip netns`); a missing baresip
 * fails (CI installs it).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  BARESIP_ADDRESS,
  baresipPacketCounts,
  BaresipPeer,
  checkBaresip,
  checkNamespaces,
  ICEWIRE_ADDRESS,
  ICEWIRE_SIP_PORT,
  IcewireSipPeer,
  VethNamespace,
  type IcewireCallReport,
} from './baresip.js';

const namespaces = checkNamespaces();
if (!namespaces.ok) console.warn(`icewire-baresip interop test skipped: ${namespaces.reason}`);
const debug = Boolean(process.env.ICEWIRE_BARESIP_DEBUG);

let ns: VethNamespace | undefined;
let baresip: BaresipPeer | undefined;
let icewire: IcewireSipPeer | undefined;
afterEach(async () => {
  await Promise.allSettled([baresip?.close(), icewire?.close()]);
  baresip = undefined;
  icewire = undefined;
});
afterAll(() => ns?.remove());

const CALL = { mediaMs: 1_000, maxMediaMs: 7_000, hardTimeoutMs: 15_000 } as const;

interface Call {
  readonly report: IcewireCallReport;
  readonly baresipLog: readonly string[];
}

async function call(direction: 'baresip-dials' | 'icewire-dials', icewireMux: boolean, baresipMux: boolean): Promise<Call> {
  const space = ns!;
  const installed = checkBaresip();
  if (!installed.ok) throw new Error(installed.reason);
  try {
    if (direction === 'baresip-dials') {
      icewire = await IcewireSipPeer.start(space, { role: 'uas', rtcpMux: icewireMux, ...CALL });
      baresip = BaresipPeer.start(space, { rtcpMux: baresipMux, dial: `sip:icewire@${ICEWIRE_ADDRESS}:${ICEWIRE_SIP_PORT}` });
    } else {
      baresip = BaresipPeer.start(space, { rtcpMux: baresipMux });
      await baresip.waitLine(/baresip is ready/, 5_000);
      icewire = await IcewireSipPeer.start(space, { role: 'uac', rtcpMux: icewireMux, ...CALL });
    }
    const report = await icewire.report(CALL.hardTimeoutMs);
    // baresip prints its RTP table when the call ends (icewire's BYE).
    await baresip.waitLine(/^\s*packets:/, 3_000).catch(() => undefined);
    const c = { report, baresipLog: [...baresip.lines] };
    if (debug) console.log(JSON.stringify({ direction, icewireMux, baresipMux, ...c.report }, null, 1), '\n', c.baresipLog.join('\n'));
    return c;
  } catch (e) {
    if (debug) console.log(baresip?.log(), icewire?.stderr);
    throw e;
  }
}

/** The host candidates of an SDP body, by component. */
function remoteCandidates(sdp: string): { component: number; address: string; port: number }[] {
  return [...sdp.matchAll(/^a=candidate:\S+ (\d+) udp \d+ (\S+) (\d+) typ host/gim)].map((m) => ({ component: Number(m[1]), address: m[2]!, port: Number(m[3]) }));
}

/** What every call must show, whatever its direction. */
function expectMediaBothWays(c: Call, components: 1 | 2): void {
  const r = c.report;
  const context = `report: ${JSON.stringify(r, null, 1)}\nbaresip:\n${c.baresipLog.join('\n').slice(-4000)}`;
  expect(r.errors, context).toEqual([]);
  expect(r.states.some((s) => s === 'connected' || s === 'completed'), context).toBe(true);
  expect(r.components, context).toBe(components);
  // icewire's selected pair: its veth address, baresip's host candidate on the veth pair (baresip gathers on both
  // ends, since both are local to the namespace).
  expect(r.selected.length).toBe(components);
  const offered = remoteCandidates(r.remoteSdp);
  r.selected.forEach((pair, i) => {
    expect(pair, context).not.toBeNull();
    expect(pair!.local.address, context).toBe(ICEWIRE_ADDRESS);
    expect([ICEWIRE_ADDRESS, BARESIP_ADDRESS], context).toContain(pair!.remote.address);
    // The remote end is one of the host candidates baresip signalled for that component.
    expect(offered, context).toContainEqual({ component: i + 1, address: pair!.remote.address, port: pair!.remote.port });
  });
  // baresip's ICE finished its checks, and it sends RTCP to icewire's end of the RTCP component's pair.
  expect(c.baresipLog.some((l) => /ice: audio: connectivity check is complete/.test(l)), context).toBe(true);
  const rtcpLocal = r.selected[components - 1]!.local;
  expect(c.baresipLog.some((l) => l.includes(`starting RTCP with remote ${rtcpLocal.address}:${rtcpLocal.port}`)), context).toBe(true);
  // RTP both ways: baresip's on icewire's component 1, and icewire's counted by baresip.
  expect(r.rtpReceived[0], context).toBeGreaterThan(10);
  expect(r.rtpSent, context).toBeGreaterThan(10);
  const counts = baresipPacketCounts(c.baresipLog);
  expect(counts, context).toBeDefined();
  // Nothing is lost inside the namespace; a few packets may still be in flight when the call ends.
  expect(counts!.received, context).toBeGreaterThan(r.rtpSent * 0.8);
  expect(r.rtpReceived[0], context).toBeGreaterThan(counts!.sent * 0.8);
  // RTCP from baresip on the RTCP component: 1 with rtcp-mux (RFC 5761), 2 without; nothing on the other.
  expect(r.rtcpReceived[components - 1], context).toBeGreaterThan(0);
  if (components === 2) expect(r.rtcpReceived[0], context).toBe(0);
  if (components === 2) expect(r.rtpReceived[1], context).toBe(0);
}

describe.skipIf(!namespaces.ok)('interop: icewire <-> baresip over SIP, in a veth namespace', () => {
  beforeAll(() => {
    ns = VethNamespace.create();
  });

  it('baresip is installed', () => {
    const b = checkBaresip();
    expect(b.ok ? 'ok' : b.reason).toBe('ok');
  });

  it('baresip dials icewire, rtcp-mux: ICE up, RTP both ways, RTCP on component 1', async () => {
    const c = await call('baresip-dials', true, true);
    expect(c.report.remoteSdp).toMatch(/^a=rtcp-mux/m);
    expect(c.report.localSdp).toMatch(/^a=rtcp-mux/m);
    expectMediaBothWays(c, 1);
  });

  it('baresip dials icewire, no rtcp-mux: ICE up on two components, RTCP on component 2', async () => {
    const c = await call('baresip-dials', false, false);
    expect(c.report.localSdp).not.toMatch(/^a=rtcp-mux/m);
    expectMediaBothWays(c, 2);
  });

  it('icewire dials baresip, rtcp-mux: ICE up, RTP both ways, RTCP on component 1', async () => {
    const c = await call('icewire-dials', true, true);
    expect(c.report.remoteSdp).toMatch(/^a=rtcp-mux/m);
    expectMediaBothWays(c, 1);
  });

  it('icewire dials baresip, no rtcp-mux: ICE up on two components, RTCP on component 2', async () => {
    const c = await call('icewire-dials', false, false);
    expect(c.report.remoteSdp).not.toMatch(/^a=rtcp-mux/m);
    expectMediaBothWays(c, 2);
  });

  // RFC 5761 §5.1.3 (Interactions with ICE): an offer with rtcp-mux keeps its RTCP candidates and a=rtcp, in case the
  // answerer declines mux, as baresip configured without it does.
  it('icewire offers rtcp-mux, baresip declines it (RFC 5761 §5.1.3): RTCP falls back to component 2', async () => {
    const c = await call('icewire-dials', true, false);
    expect(c.report.remoteSdp).not.toMatch(/^a=rtcp-mux/m);
    expectMediaBothWays(c, 2);
  });
});
