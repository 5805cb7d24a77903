/**
 * Candidate foundations (RFC 8445 §5.1.1.3). Two candidates share a foundation exactly when they have the same
 * type, their bases have the same IP address, they were obtained from STUN/TURN servers with the same IP address
 * (reflexive and relayed candidates), and the same transport protocol was used.
 * @module
 */
import { canonicalIp } from '../ip.js';
import type { CandidateType } from './candidate.js';

/** What decides a foundation. */
export interface FoundationInput {
  readonly type: CandidateType;
  /** IP of the candidate's base (port ignored). */
  readonly baseAddress: string;
  /** For server-reflexive and relayed candidates: the IP the agent used to contact the STUN/TURN server. */
  readonly serverAddress?: string;
  /** Transport used to obtain the candidate (the TURN transport for relays). */
  readonly transport: string;
}

/**
 * The text that identifies a foundation: equal for two inputs iff RFC 8445 §5.1.1.3 says their foundations are
 * equal. IPs are compared in canonical form; the server address only counts for srflx and relay candidates.
 */
export function foundationKey(input: FoundationInput): string {
  const server = input.type === 'srflx' || input.type === 'relay' ? canonicalIp(input.serverAddress ?? '') : '';
  return `${input.type}|${canonicalIp(input.baseAddress)}|${server}|${input.transport.toLowerCase()}`;
}

/**
 * Hands out short foundations (`'1'`, `'2'`, ...) per distinct `foundationKey`, in the order first asked for:
 * deterministic, unique within one registry, and valid `1*32ice-char`. Share one registry per agent so foundations
 * stay stable across gathering rounds.
 */
export class FoundationRegistry {
  readonly #byKey = new Map<string, string>();

  /** The foundation for `input`, allocating the next one if this key is new. */
  foundationFor(input: FoundationInput): string {
    const key = foundationKey(input);
    let f = this.#byKey.get(key);
    if (f === undefined) {
      f = String(this.#byKey.size + 1);
      this.#byKey.set(key, f);
    }
    return f;
  }

  /** Number of distinct foundations handed out. */
  get size(): number {
    return this.#byKey.size;
  }
}
