/**
 * `npm start`: the icewire demo, the same code as `icewire demo` (src/cli/demo.ts). Two ICE agents on loopback
 * negotiate through SIP-style SDP offer/answer with the built-in STUN server; `npm start -- --virtual` runs the same
 * negotiation between two simulated NATs in virtual time.
 */
import { pathToFileURL } from 'node:url';
import { realDemo, virtualDemo } from '../src/cli/demo.js';

export { realDemo, virtualDemo };

// Run only as the entry point (`npm start`), not when a test imports the functions.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  if (process.argv.includes('--virtual')) virtualDemo();
  else await realDemo();
}
