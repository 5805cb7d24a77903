/** The STUN layer (RFC 8489): codec, integrity, transactions. Sans-IO. @module */
export * from './constants.js';
export * from './message.js';
export * from './attributes.js';
export * from './integrity.js';
export * from './fingerprint.js';
export * from './transaction.js';
export * from './nat-attributes.js';
export * from './nat-discovery.js';
