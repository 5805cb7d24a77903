/**
 * Issue 13, item 3: every public method of IceAgent, IceSdpSession, OfferAnswer and the candidate helpers, given a
 * value of the wrong type from plain JavaScript (null, {}, a number for a string, an unknown enum value), throws a
 * typed error of src/errors.ts at the call (or rejects with one), never a raw TypeError, and the object still works
 * afterwards. The method lists are checked against the classes' prototypes, so a new public method fails this test
 * until its arguments are described here.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { arg, args, credentialProblem, is } from '../src/arguments.js';
import { IceArgumentError, IcewireError } from '../src/errors.js';
import {
  IceAgent,
  IceSdpSession,
  OfferAnswer,
  applyRTCIceCandidateInit,
  endOfCandidatesInit,
  formatCandidate,
  fromRTCIceCandidateInit,
  localCandidateInits,
  parseCandidate,
  signalledCandidate,
  toRTCIceCandidateInit,
  tryParseCandidate,
} from '../src/index.js';
import { A, APP_AUDIO, hostA } from './sip-offer-answer/samples.js';

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** What a parameter takes: a valid value for the other positions, and which values are of the wrong type. */
interface Param {
  readonly valid: () => unknown;
  readonly wrong: (v: unknown) => boolean;
  /** `undefined` is accepted (an optional parameter or one with a default). */
  readonly optional?: boolean;
}

const P = {
  string: (valid: string): Param => ({ valid: () => valid, wrong: (v) => typeof v !== 'string' }),
  int: (min: number, max: number, optional = false): Param => ({
    valid: () => min,
    wrong: (v) => typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max,
    optional,
  }),
  enum: (...values: string[]): Param => ({ valid: () => values[0], wrong: (v) => typeof v !== 'string' || !values.includes(v) }),
  /** An options object whose fields all have defaults: only non-objects are wrong. */
  options: (optional = true): Param => ({ valid: () => ({}), wrong: (v) => !isRecord(v), optional }),
  candidate: (optional = false): Param => ({ valid: () => hostA, wrong: (v) => !isRecord(v) || !('foundation' in v), optional }),
  candidates: { valid: () => [hostA], wrong: (v) => !Array.isArray(v) || v.some((x) => !isRecord(x) || !('foundation' in x)) } as Param,
  bytes: { valid: () => new Uint8Array(4), wrong: (v) => !(v instanceof Uint8Array) } as Param,
  address: { valid: () => ({ address: '127.0.0.1', port: 9 }), wrong: (v) => !isRecord(v) || typeof v['address'] !== 'string' || v['address'] === '' || typeof v['port'] !== 'number' } as Param,
  iceParameters: { valid: () => ({ ufrag: 'peer', pwd: 'p'.repeat(22) }), wrong: (v) => !isRecord(v) || credentialProblem('ufrag', v['ufrag']) !== undefined } as Param,
  session: { valid: () => new OfferAnswer({ local: A }), wrong: (v) => !(v instanceof OfferAnswer) } as Param,
  where: { valid: () => ({ index: 0 }), wrong: (v) => !isRecord(v) || ('mid' in v && typeof v['mid'] !== 'string') } as Param,
  location: { valid: () => ({ sdpMid: '0' }), wrong: (v) => !isRecord(v) || ('sdpMid' in v && v['sdpMid'] !== undefined && typeof v['sdpMid'] !== 'string') } as Param,
  init: { valid: () => ({ candidate: '', sdpMid: '0' }), wrong: (v) => !isRecord(v) } as Param,
  pair: { valid: () => ({ local: hostA, remote: { address: '10.0.0.2', port: 6000 } }), wrong: (v) => !isRecord(v) || !isRecord(v['local']) || !('foundation' in v['local']) } as Param,
  restartParams: { valid: () => undefined, wrong: (v) => !isRecord(v), optional: true } as Param,
  sdpfragBody: { valid: () => 'a=ice-ufrag:peer\r\na=ice-pwd:pppppppppppppppppppppp\r\n', wrong: (v) => typeof v !== 'string' && !(isRecord(v) && Array.isArray(v['media'])) } as Param,
};

const SDP = P.string(APP_AUDIO);

/** Public methods and their parameters; `[]` for methods without any. */
type Table = Readonly<Record<string, readonly Param[]>>;

const ICE_AGENT: Table = {
  gather: [],
  getLocalParameters: [],
  getLocalCandidates: [],
  setRemoteParameters: [P.iceParameters],
  addRemoteCandidate: [{ valid: () => hostA, wrong: (v) => typeof v !== 'string' && (!isRecord(v) || !('foundation' in v)) }],
  endOfRemoteCandidates: [],
  getSelectedCandidatePair: [P.int(1, 256, true)],
  send: [P.bytes, P.int(1, 256, true)],
  useWithoutIce: [P.address, P.int(1, 256, true)],
  dropComponent: [P.int(2, 256)],
  restart: [],
  getStats: [],
  close: [],
};

const SDP_SESSION: Table = {
  agent: [P.int(0, 65535, true)],
  createOffer: [SDP],
  createAnswer: [SDP],
  setRemoteDescription: [SDP, P.enum('offer', 'answer')],
  restart: [],
  applySdpfrag: [P.string('a=ice-ufrag:peer')],
  close: [],
};

const OFFER_ANSWER: Table = {
  transports: [],
  setLocalCandidates: [P.int(0, 65535), P.candidates],
  addLocalCandidate: [P.int(0, 65535), P.candidate()],
  localCandidates: [P.int(0, 65535)],
  setLocalEndOfCandidates: [P.int(0, 65535, true)],
  remoteCandidates: [P.int(0, 65535)],
  setSelectedPair: [P.int(0, 65535), P.int(1, 256), P.pair],
  clearSelectedPairs: [P.int(0, 65535, true)],
  restartIce: [P.restartParams],
  createOffer: [SDP],
  answerTransports: [SDP],
  createAnswer: [SDP],
  setRemoteDescription: [SDP, P.enum('offer', 'answer')],
  addRemoteCandidate: [P.where, P.candidate(true)],
  applyRemoteSdpfrag: [P.sdpfragBody],
  createSdpfrag: [P.options()],
  sdpfrag: [P.options()],
};

const HELPERS: Readonly<Record<string, readonly [(...a: never[]) => unknown, readonly Param[]]>> = {
  parseCandidate: [parseCandidate, [P.string('candidate:1 1 udp 1 10.0.0.1 9 typ host')]],
  formatCandidate: [formatCandidate, [P.candidate(), P.options()]],
  signalledCandidate: [signalledCandidate, [{ valid: () => hostA, wrong: (v) => !isRecord(v) }]],
  fromRTCIceCandidateInit: [fromRTCIceCandidateInit, [P.init]],
  toRTCIceCandidateInit: [toRTCIceCandidateInit, [P.candidate(), P.location]],
  endOfCandidatesInit: [endOfCandidatesInit, [P.location]],
  applyRTCIceCandidateInit: [applyRTCIceCandidateInit, [P.session, P.init]],
  localCandidateInits: [localCandidateInits, [P.session]],
};

/** Public method names of a class: its prototype's own functions, minus the constructor, accessors and `#private`. */
function publicMethods(proto: object): string[] {
  return Object.getOwnPropertyNames(proto).filter((n) => {
    const d = Object.getOwnPropertyDescriptor(proto, n)!;
    return n !== 'constructor' && typeof d.value === 'function';
  });
}

/** Runs `call` and returns how it ended: a value, a synchronous throw or a rejection. */
async function outcome(call: () => unknown): Promise<{ ok: true } | { ok: false; error: unknown }> {
  try {
    const r = call();
    if (r instanceof Promise) await r;
    return { ok: true };
  } catch (error) {
    return { ok: false, error };
  }
}

/** Values of every JavaScript type: what JSON signalling or a careless caller may hand over. */
const anyValue = fc.oneof(
  fc.anything({ withBigInt: true, withDate: true, withMap: true, withSet: true, withTypedArray: true, withNullPrototype: true }),
  fc.constantFrom<unknown>(null, {}, [], 0, -1, 1.5, Number.NaN, '', 'pranswer2', true, Symbol('x'), () => 1),
);

async function fuzz(make: () => Record<string, (...a: unknown[]) => unknown>, table: Table, runs: number): Promise<void> {
  for (const [name, params] of Object.entries(table)) {
    const target = make();
    for (let i = 0; i < params.length; i++) {
      const p = params[i]!;
      await fc.assert(
        fc.asyncProperty(anyValue, async (bad) => {
          fc.pre(p.wrong(bad) && !(p.optional && bad === undefined));
          const a = params.map((q, j) => (j === i ? bad : q.valid()));
          const r = await outcome(() => target[name]!(...a));
          expect(r.ok, `${name} argument ${i} = ${fc.stringify(bad)} was accepted`).toBe(false);
          if (!r.ok) expect(r.error, `${name} argument ${i} = ${fc.stringify(bad)}: ${fc.stringify(r.error)}`).toBeInstanceOf(IcewireError);
        }),
        { numRuns: runs, seed: 13 },
      );
    }
  }
}

describe('public methods check their arguments (fast-check)', () => {
  it('the tables list every public method', () => {
    expect(publicMethods(IceAgent.prototype).sort()).toEqual(Object.keys(ICE_AGENT).sort());
    expect(publicMethods(IceSdpSession.prototype).sort()).toEqual(Object.keys(SDP_SESSION).sort());
    expect(publicMethods(OfferAnswer.prototype).sort()).toEqual(Object.keys(OFFER_ANSWER).sort());
  });

  it('IceAgent', async () => {
    const agents: IceAgent[] = [];
    await fuzz(
      () => {
        const a = new IceAgent({ includeLoopback: true, addressFilter: (x) => x === '127.0.0.1' });
        agents.push(a);
        return a as unknown as Record<string, (...a: unknown[]) => unknown>;
      },
      ICE_AGENT,
      150,
    );
    await Promise.all(agents.map((a) => a.close()));
  });

  it('IceSdpSession', async () => {
    const sessions: IceSdpSession[] = [];
    await fuzz(
      () => {
        const s = new IceSdpSession({ includeLoopback: true, addressFilter: (x) => x === '127.0.0.1' });
        sessions.push(s);
        return s as unknown as Record<string, (...a: unknown[]) => unknown>;
      },
      SDP_SESSION,
      150,
    );
    await Promise.all(sessions.map((s) => s.close()));
  });

  it('OfferAnswer, which still works after the bad calls', async () => {
    const oa = new OfferAnswer({ local: A });
    await fuzz(() => oa as unknown as Record<string, (...a: unknown[]) => unknown>, OFFER_ANSWER, 150);
    expect(oa.createOffer(APP_AUDIO)).toContain('a=ice-ufrag:AAAA');
  });

  it('the candidate helpers', async () => {
    for (const [name, [f, params]] of Object.entries(HELPERS)) {
      await fuzz(() => ({ [name]: f as (...a: unknown[]) => unknown }), { [name]: params }, 150);
    }
  });

  it('tryParseCandidate reports, never throws, whatever it is given', () => {
    fc.assert(
      fc.property(anyValue, (v) => {
        expect(tryParseCandidate(v as string).ok).toBe(typeof v === 'string' ? tryParseCandidate(v).ok : false);
      }),
      { numRuns: 300, seed: 13 },
    );
  });

  it('constructors refuse non-objects and unknown enum values', () => {
    for (const bad of [null, 5, 'x', [], { role: 'boss' }, { components: 0 }, { lite: 'yes' }]) {
      expect(() => new IceAgent(bad as never)).toThrow(IceArgumentError);
    }
    for (const bad of [null, 5, 'x', { trickle: 'sometimes' }, { maxMediaSections: -1 }]) {
      expect(() => new IceSdpSession(bad as never)).toThrow(IceArgumentError);
    }
    for (const bad of [undefined, null, {}, { local: null }, { local: A, trickle: 'x' }, { local: A, bundleCandidates: 'some' }]) {
      expect(() => new OfferAnswer(bad as never)).toThrow(IceArgumentError);
    }
  });

  it('description types outside offer/answer are refused before anything is read', () => {
    expect(() => new OfferAnswer({ local: A }).setRemoteDescription(APP_AUDIO, 'pranswer2' as never)).toThrow(/bad argument type: expected one of 'offer', 'answer', got the string "pranswer2"/);
  });
});

describe('src/arguments.ts', () => {
  it('names the argument and what it got', () => {
    expect(() => arg(null, 'appSdp', is.string)).toThrow('bad argument appSdp: expected a string, got null');
    expect(() => args(['x', 'a', is.string], [7, 'b', is.record()])).toThrow('bad argument b: expected an object, got number 7');
    expect(() => arg({ local: { x: 1 } }, 'pair', is.record({ local: is.record({ x: is.string }) }))).toThrow('bad argument pair.local.x');
    expect(() => arg([1, 'x'], 'list', is.array(is.int(0, 9)))).toThrow('bad argument list[1]');
    expect(() => arg(undefined, 'n', is.optional(is.int(0, 1)))).not.toThrow();
    expect(() => arg(3, 'n', is.either(is.string, is.int(0, 1)))).toThrow(IceArgumentError);
  });
});
