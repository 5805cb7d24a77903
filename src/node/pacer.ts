/**
 * The process-wide pacer (RFC 8445 §14.2: all transactions of all agents of an implementation at most once every
 * 5 ms). Which agents share a pacer is an edge decision, so the instance lives here: every `IceAgent` of the process
 * uses it unless given another (or `false`). The sans-IO core paces globally only with an injected pacer.
 * @module
 */
import { GlobalPacer } from '../stun/pacing.js';

let processPacer: GlobalPacer | undefined;

/** The pacer shared by every agent of this process (5 ms), created on first use. */
export function processWidePacer(): GlobalPacer {
  processPacer ??= new GlobalPacer();
  return processPacer;
}
