/** Candidates: the record, the `a=candidate` grammar, priorities, foundations, host selection, gathering, mDNS. Sans-IO. @module */
export * from './candidate.js';
export * from './grammar.js';
export * from './priority.js';
export * from './foundation.js';
export * from './host.js';
export * from './redundancy.js';
export * from './signal.js';
export * from './gatherer.js';
export * from './mdns.js';
