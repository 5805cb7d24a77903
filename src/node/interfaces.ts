/**
 * The host's interface list, for host candidate selection: `os.networkInterfaces()` fed through the pure
 * {@link selectHostAddresses} (RFC 8445 §5.1.1.1 exclusions and the caller's filters).
 * @module
 */
import { networkInterfaces } from 'node:os';
import { selectHostAddresses, type HostAddress, type HostSelectionOptions, type NetworkInterfaceMap } from '../candidates/host.js';

/** The addresses host candidates may be gathered on, right now. Loopback only with `includeLoopback`. */
export function listHostAddresses(options: HostSelectionOptions = {}): HostAddress[] {
  return selectHostAddresses(networkInterfaces() as NetworkInterfaceMap, options);
}
