/** The TURN client (RFC 8656): sans-IO machine, codecs, stream framing, URIs. @module */
export * from './attributes.js';
export * from './channel-data.js';
export * from './credentials.js';
export * from './turn-client.js';
export * from './uri.js';
