/**
 * Argument checks for the public API, and the RFC 8839 value rules they share with the SDP reader.
 *
 * Every public method of `IceAgent`, `IceSdpSession`, `OfferAnswer` and the candidate helpers starts with one line
 * (`arg(value, 'name', is.string)` or `args([...], [...])`), so a plain JavaScript caller that passes `null`, `{}`,
 * a number for a string or an unknown enum value gets an `IceArgumentError` at the call, never a `TypeError` from
 * deep inside or a bad value stored for later.
 *
 * The ice-ufrag / ice-pwd / ice-option-tag / ice-pacing rules live here, once: the SDP reader
 * (`sip-offer-answer/ice-attributes.ts`), the local parameter checks and `setRemoteParameters` of the agents all
 * call these functions, so a value is accepted or refused alike whichever way it comes in.
 * @module
 */
import { IceArgumentError } from './errors.js';

/** RFC 8839 §5.1 `ice-char = ALPHA / DIGIT / "+" / "/"`. */
const ICE_CHAR = /^[A-Za-z0-9+/]+$/;

/** True when `s` is a valid `ice-ufrag` value (RFC 8839 §5.4: 4..256 ice-chars). */
export function isValidUfrag(s: string): boolean {
  return credentialProblem('ufrag', s) === undefined;
}

/** True when `s` is a valid `ice-pwd` value (RFC 8839 §5.4: 22..256 ice-chars). */
export function isValidPwd(s: string): boolean {
  return credentialProblem('pwd', s) === undefined;
}

/**
 * Why `value` cannot be an `ice-ufrag` or `ice-pwd` (RFC 8839 §5.4: ufrag 4..256, pwd 22..256 ice-chars), or
 * undefined when it can. The one rule for SDP attributes and for parameters given through the API.
 */
export function credentialProblem(kind: 'ufrag' | 'pwd', value: unknown): string | undefined {
  if (typeof value !== 'string') return `ice-${kind} must be a string`;
  const min = kind === 'ufrag' ? 4 : 22;
  if (value.length < min || value.length > 256 || !ICE_CHAR.test(value)) return `ice-${kind} must be ${min} to 256 ice-chars (RFC 8839 §5.4)`;
  return undefined;
}

/** True when `s` is a valid `ice-option-tag` (RFC 8839 §5.6: 1*ice-char). */
export function isValidIceOption(s: string): boolean {
  return typeof s === 'string' && s.length >= 1 && ICE_CHAR.test(s);
}

/** The largest `pacing-value` (RFC 8839 §5.5: 1*10DIGIT). */
export const MAX_PACING_MS = 9_999_999_999;

/** True when `ms` is a pacing value the RFC 8839 §5.5 grammar can carry: an integer of 1 to 10 digits. */
export function isPacingValue(ms: number): boolean {
  return Number.isInteger(ms) && ms >= 0 && ms <= MAX_PACING_MS;
}

/** A check of one argument: throws `IceArgumentError` naming `name` when `value` does not fit. */
export type ArgCheck = (value: unknown, name: string) => void;

function bad(name: string, detail: string): never {
  throw new IceArgumentError(name, detail);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `the string "${value.length > 40 ? `${value.slice(0, 40)}...` : value}"`;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return `${typeof value} ${String(value)}`;
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Argument rules, combined as needed: `is.optional(is.int(1, 256))`, `is.record({ ufrag: is.string })`. */
export const is = {
  string: ((v, name) => {
    if (typeof v !== 'string') bad(name, `expected a string, got ${describe(v)}`);
  }) as ArgCheck,
  boolean: ((v, name) => {
    if (typeof v !== 'boolean') bad(name, `expected a boolean, got ${describe(v)}`);
  }) as ArgCheck,
  /** An integer in `min..max`. */
  int(min: number, max: number): ArgCheck {
    return (v, name) => {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) bad(name, `expected an integer in ${min}..${max}, got ${describe(v)}`);
    };
  },
  /** One of the given strings (an enum). */
  oneOf(...values: readonly string[]): ArgCheck {
    return (v, name) => {
      if (typeof v !== 'string' || !values.includes(v)) bad(name, `expected one of ${values.map((x) => `'${x}'`).join(', ')}, got ${describe(v)}`);
    };
  },
  /** A plain object (not null, not an array); `fields` checks named fields (other fields are allowed). */
  record(fields: Readonly<Record<string, ArgCheck>> = {}): ArgCheck {
    return (v, name) => {
      if (!isRecord(v)) bad(name, `expected an object, got ${describe(v)}`);
      for (const [k, check] of Object.entries(fields)) check(v[k], `${name}.${k}`);
    };
  },
  /** An array whose every element passes `each`. */
  array(each?: ArgCheck): ArgCheck {
    return (v, name) => {
      if (!Array.isArray(v)) bad(name, `expected an array, got ${describe(v)}`);
      if (each) v.forEach((x, i) => each(x, `${name}[${i}]`));
    };
  },
  bytes: ((v, name) => {
    if (!(v instanceof Uint8Array)) bad(name, `expected a Uint8Array or Buffer, got ${describe(v)}`);
  }) as ArgCheck,
  function: ((v, name) => {
    if (typeof v !== 'function') bad(name, `expected a function, got ${describe(v)}`);
  }) as ArgCheck,
  /** An instance of `type` (e.g. an `OfferAnswer` session). */
  instance(type: abstract new (...a: never[]) => unknown): ArgCheck {
    return (v, name) => {
      if (!(v instanceof type)) bad(name, `expected a ${type.name}, got ${describe(v)}`);
    };
  },
  /** `undefined`, or what `check` accepts. */
  optional(check: ArgCheck): ArgCheck {
    return (v, name) => {
      if (v !== undefined) check(v, name);
    };
  },
  /** What any of `checks` accepts; the error is the last one's. */
  either(...checks: readonly ArgCheck[]): ArgCheck {
    return (v, name) => {
      let last: unknown;
      for (const c of checks) {
        try {
          c(v, name);
          return;
        } catch (e) {
          last = e;
        }
      }
      throw last;
    };
  },
  /** A `{ address, port }` transport address. */
  address: ((v, name) => {
    if (!isRecord(v)) bad(name, `expected an { address, port } object, got ${describe(v)}`);
    if (typeof v['address'] !== 'string' || v['address'] === '') bad(`${name}.address`, `expected an IP address string, got ${describe(v['address'])}`);
    if (typeof v['port'] !== 'number' || !Number.isInteger(v['port']) || v['port'] < 0 || v['port'] > 65535) {
      bad(`${name}.port`, `expected a port in 0..65535, got ${describe(v['port'])}`);
    }
  }) as ArgCheck,
  /** The peer's ICE parameters: ufrag and pwd by the RFC 8839 §5.4 rule of the SDP reader, lite, pacing, options. */
  iceParameters: ((v, name) => {
    if (!isRecord(v)) bad(name, `expected an { ufrag, pwd } object, got ${describe(v)}`);
    for (const kind of ['ufrag', 'pwd'] as const) {
      const problem = credentialProblem(kind, v[kind]);
      if (problem !== undefined) bad(`${name}.${kind}`, problem);
    }
    if (v['lite'] !== undefined && typeof v['lite'] !== 'boolean') bad(`${name}.lite`, `expected a boolean, got ${describe(v['lite'])}`);
    const pacing = v['pacingMs'];
    if (pacing !== undefined && (typeof pacing !== 'number' || !isPacingValue(pacing))) bad(`${name}.pacingMs`, 'expected an ice-pacing value: an integer of 1 to 10 digits (RFC 8839 §5.5)');
    const options = v['options'];
    if (options !== undefined && (!Array.isArray(options) || !options.every((o) => isValidIceOption(o as string)))) {
      bad(`${name}.options`, 'expected a list of ice-option-tags (1*ice-char, RFC 8839 §5.6)');
    }
  }) as ArgCheck,
};

/** Checks one argument. */
export function arg(value: unknown, name: string, check: ArgCheck): void {
  check(value, name);
}

/** Checks several arguments, each given as `[value, name, check]`, in order. */
export function args(...list: readonly (readonly [value: unknown, name: string, check: ArgCheck])[]): void {
  for (const [value, name, check] of list) check(value, name);
}
