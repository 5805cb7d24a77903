/**
 * Remote candidates whose address is an mDNS `.local` name (draft-ietf-mmusic-mdns-ice-candidates §3.2.1): each is
 * held until its name resolves, then goes on with the address in place of the name (or is dropped, step 5). The
 * query itself is not done here: whoever owns the mDNS socket answers a `resolve` request with
 * {@link RemoteNameResolver.resolved} (the agent's in-machine responder, or the Node edge's socket).
 *
 * End-of-candidates is held too: after it the agent MUST ignore new candidates of that stream (RFC 8838 §14), so a
 * stream's end is passed on only once the last of its names resolved or failed.
 *
 * Sans-IO and without time: it only orders candidates, names and ends. Outputs are polled after every call.
 * @module
 */
import type { Candidate } from './candidate.js';

/** A remote candidate ready for the checklist; `mdnsName` is the name it was signalled under, once resolved. */
export type ResolvedCandidate = Candidate & { readonly mdnsName?: string };

/** What the owner must do next, in order. */
export type RemoteNameOutput =
  /** Hand this candidate to the checklist (its name, if it had one, is resolved: `mdnsName` keeps it). */
  | { readonly type: 'candidate'; readonly stream: number; readonly candidate: ResolvedCandidate }
  /** The candidate is ignored; `reason` is `mdns-disabled` or `mdns-<why it did not resolve>`. */
  | { readonly type: 'dropped'; readonly stream: number; readonly candidate: Candidate; readonly reason: string }
  /** Pass the stream's held end-of-candidates on: no name of it is still resolving. */
  | { readonly type: 'end-of-candidates'; readonly stream: number }
  /** Start resolving `name` (lower case) and report the outcome with `resolved`. Asked once per name at a time. */
  | { readonly type: 'resolve'; readonly name: string };

/** Options of {@link RemoteNameResolver}. */
export interface RemoteNameResolverOptions {
  /** Resolve names at all; when false, every `.local` candidate is dropped (`mdns-disabled`). */
  readonly enabled: boolean;
}

/** True for a candidate address that is an mDNS name rather than an IP literal (DNS names ignore case). */
export function isMdnsAddress(address: string): boolean {
  return address.toLowerCase().endsWith('.local');
}

/** Holds `.local` remote candidates, and the end-of-candidates behind them, until their names resolve. */
export class RemoteNameResolver {
  readonly #enabled: boolean;
  /** Candidates waiting, by lower-case name. */
  readonly #waiting = new Map<string, { readonly stream: number; readonly candidate: Candidate }[]>();
  /** Streams whose end-of-candidates waits for names still resolving. */
  readonly #endHeld = new Set<number>();
  readonly #out: RemoteNameOutput[] = [];

  constructor(options: RemoteNameResolverOptions) {
    this.#enabled = options.enabled;
  }

  /** Names being resolved. */
  get pending(): number {
    return this.#waiting.size;
  }

  /** A remote candidate from signalling: passed on at once unless its address is a name to resolve. */
  add(stream: number, candidate: Candidate): void {
    if (!isMdnsAddress(candidate.address)) {
      this.#out.push({ type: 'candidate', stream, candidate });
      return;
    }
    if (!this.#enabled) {
      this.#out.push({ type: 'dropped', stream, candidate, reason: 'mdns-disabled' });
      return;
    }
    const name = candidate.address.toLowerCase();
    const waiting = this.#waiting.get(name);
    if (waiting !== undefined) {
      waiting.push({ stream, candidate });
      return;
    }
    this.#waiting.set(name, [{ stream, candidate }]);
    this.#out.push({ type: 'resolve', name });
  }

  /**
   * The peer's end-of-candidates for `stream`. Returns true when it may be passed on now; false when names of that
   * stream are still resolving, and it comes out as an `end-of-candidates` output after the last of them.
   */
  end(stream: number): boolean {
    if (!this.#resolvingIn(stream)) return true;
    this.#endHeld.add(stream);
    return false;
  }

  /**
   * The outcome of a `resolve` request: the address, or undefined with why not (`reason`, default `unresolved`).
   * Outcomes for names nobody waits for are ignored.
   */
  resolved(name: string, address: string | undefined, reason = 'unresolved'): void {
    const key = name.toLowerCase();
    const waiting = this.#waiting.get(key);
    if (waiting === undefined) return;
    this.#waiting.delete(key);
    for (const w of waiting) {
      if (address !== undefined) {
        this.#out.push({ type: 'candidate', stream: w.stream, candidate: { ...w.candidate, address, mdnsName: w.candidate.address } });
      } else {
        this.#out.push({ type: 'dropped', stream: w.stream, candidate: w.candidate, reason: `mdns-${reason}` });
      }
    }
    for (const stream of [...this.#endHeld]) {
      if (this.#resolvingIn(stream)) continue;
      this.#endHeld.delete(stream);
      this.#out.push({ type: 'end-of-candidates', stream });
    }
  }

  /** The next thing to do, or undefined. */
  poll(): RemoteNameOutput | undefined {
    return this.#out.shift();
  }

  #resolvingIn(stream: number): boolean {
    for (const list of this.#waiting.values()) if (list.some((w) => w.stream === stream)) return true;
    return false;
  }
}
