/** fast-check generators shared by the sip-offer-answer tests. */
import fc from 'fast-check';
import type { Candidate } from '../../src/candidates/candidate.js';
import type { IceDescription, IceMediaDescription } from '../../src/sip-offer-answer/index.js';

/** A host candidate record with the given address and port; any field can be overridden. */
export const cand = (over: Partial<Candidate> & Pick<Candidate, 'address' | 'port'>): Candidate => ({
  foundation: 'h1',
  component: 1,
  transport: 'udp',
  priority: 2130706431,
  type: 'host',
  ...over,
});

const ICE = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
export const iceChars = (min: number, max: number) =>
  fc.array(fc.constantFrom(...ICE), { minLength: min, maxLength: max }).map((a) => a.join(''));

export const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((p) => p.join('.'));
export const ipv6 = fc.array(fc.nat(0xffff), { minLength: 8, maxLength: 8 }).map((g) => g.map((x) => x.toString(16)).join(':'));
export const mdnsName = fc.uuid({ version: 4 }).map((u) => `${u}.local`);
export const port = fc.integer({ min: 0, max: 65535 });

export const candidate: fc.Arbitrary<Candidate> = fc
  .record({
    foundation: iceChars(1, 10),
    component: fc.integer({ min: 1, max: 2 }),
    transport: fc.constantFrom('udp' as const, 'tcp' as const),
    upper: fc.boolean(),
    priority: fc.integer({ min: 1, max: 0x7fffffff }),
    address: fc.oneof(ipv4, ipv6, mdnsName),
    port,
    type: fc.constantFrom('host' as const, 'srflx' as const, 'prflx' as const, 'relay' as const),
    related: fc.option(fc.tuple(fc.oneof(ipv4, ipv6), port), { nil: undefined }),
    tcpType: fc.constantFrom('active' as const, 'passive' as const, 'so' as const),
    generation: fc.option(fc.nat(9), { nil: undefined }),
  })
  .map((r) => ({
    foundation: r.foundation,
    component: r.component,
    transport: r.transport,
    ...(r.upper ? { transportText: r.transport.toUpperCase() } : {}),
    priority: r.priority,
    address: r.address,
    port: r.port,
    type: r.type,
    ...(r.type !== 'host' && r.related ? { relatedAddress: r.related[0], relatedPort: r.related[1] } : {}),
    ...(r.transport === 'tcp' ? { tcpType: r.tcpType } : {}),
    ...(r.generation !== undefined ? { extensions: [['generation', String(r.generation)] as const] } : {}),
  }));

const optionTag = fc.constantFrom('ice2', 'trickle', 'rtp+ecn', 'x/y', 'renomination');
const options = fc.uniqueArray(optionTag, { minLength: 1, maxLength: 3 });

/** A consistent IceDescription (effective values agree with the levels they come from). */
export const iceDescription: fc.Arbitrary<IceDescription> = fc
  .record({
    sessionCreds: fc.option(fc.tuple(iceChars(3, 20), iceChars(22, 40)), { nil: undefined }),
    sessionOptions: fc.option(options, { nil: undefined }),
    lite: fc.boolean(),
    pacingMs: fc.option(fc.integer({ min: 0, max: 1_000_000 }), { nil: undefined }),
    eoc: fc.boolean(),
    connection: fc.option(fc.oneof(ipv4, ipv6), { nil: undefined }),
    media: fc.array(
      fc.record({
        kind: fc.constantFrom('audio', 'video', 'application'),
        port,
        protocol: fc.constantFrom('RTP/AVP', 'UDP/TLS/RTP/SAVPF', 'TCP/RTP/AVP'),
        formats: fc.constantFrom('0', '0 8 101', '111', 'webrtc-datachannel'),
        hasMid: fc.boolean(),
        creds: fc.option(fc.tuple(iceChars(3, 20), iceChars(22, 40)), { nil: undefined }),
        options: fc.option(options, { nil: undefined }),
        candidates: fc.array(candidate, { maxLength: 4 }),
        eoc: fc.boolean(),
        mismatch: fc.boolean(),
        remote: fc.option(fc.array(fc.tuple(fc.integer({ min: 1, max: 2 }), ipv4, port), { minLength: 1, maxLength: 2 }), { nil: undefined }),
        connection: fc.option(fc.oneof(ipv4, ipv6), { nil: undefined }),
        rtcp: fc.option(fc.tuple(port, fc.option(ipv4, { nil: undefined })), { nil: undefined }),
        rtcpMux: fc.boolean(),
        bundleOnly: fc.boolean(),
      }),
      { minLength: 1, maxLength: 3 },
    ),
    bundle: fc.boolean(),
  })
  .map((r): IceDescription => {
    // Distinct prefixes keep "same ufrag, different pwd" (RFC 8839 §5.4) out of the generated values.
    const sUfrag = r.sessionCreds ? `s${r.sessionCreds[0]}` : undefined;
    const sPwd = r.sessionCreds?.[1];
    const media = r.media.map((m, i): IceMediaDescription => {
      const mUfrag = m.creds ? `m${i}${m.creds[0]}` : undefined;
      const ufrag = mUfrag ?? sUfrag;
      const pwd = m.creds?.[1] ?? sPwd;
      const connection = m.connection ?? r.connection;
      const rtcp = m.rtcp
        ? m.rtcp[1] !== undefined
          ? { address: m.rtcp[1], port: m.rtcp[0] }
          : connection !== undefined
            ? { address: connection, port: m.rtcp[0] }
            : undefined
        : undefined;
      const opts = m.options ?? r.sessionOptions ?? [];
      return {
        index: i,
        kind: m.kind,
        port: m.port,
        protocol: m.protocol,
        formats: m.formats,
        ...(m.hasMid ? { mid: `m${i}` } : {}),
        ...(ufrag !== undefined ? { ufrag } : {}),
        ...(pwd !== undefined ? { pwd } : {}),
        options: opts,
        mediaLevel: {
          ...(mUfrag !== undefined ? { ufrag: mUfrag, pwd: m.creds![1] } : {}),
          ...(m.options !== undefined ? { options: m.options } : {}),
        },
        candidates: m.candidates,
        ignoredCandidates: [],
        endOfCandidates: m.eoc,
        iceMismatch: m.mismatch,
        ...(m.remote ? { remoteCandidates: m.remote.map(([component, address, p]) => ({ component, address, port: p })) } : {}),
        ...(connection !== undefined ? { connection } : {}),
        ...(rtcp !== undefined ? { rtcp } : {}),
        rtcpMux: m.rtcpMux,
        bundleOnly: m.bundleOnly,
      };
    });
    const mids = media.flatMap((m) => (m.mid !== undefined ? [m.mid] : []));
    return {
      ...(sUfrag !== undefined ? { ufrag: sUfrag, pwd: sPwd! } : {}),
      options: r.sessionOptions ?? [],
      lite: r.lite,
      ...(r.pacingMs !== undefined ? { pacingMs: r.pacingMs } : {}),
      endOfCandidates: r.eoc,
      ...(r.connection !== undefined ? { connection: r.connection } : {}),
      bundleGroups: r.bundle && mids.length > 0 ? [mids] : [],
      media,
    };
  });
