// The snapshot store, one import for its users: layout.ts (what a snapshot is),
// write.ts (begin, commit, abort, remove), read.ts (open, list, verify), trust.ts
// (who may have written one), gc.ts (what dead writers left). See docs/ARCHITECTURE.md and docs/SECURITY.md.
export * from './layout.js';
export * from './write.js';
export * from './read.js';
export * from './gc.js';
