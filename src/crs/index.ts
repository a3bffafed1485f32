// The CRS framework: the interface, the registry (which holds the built-in
// components criu, self and none), and the self component's registration call.
export * from './registry.js';
export type * from './types.js';
export { registerSelf, selfRegistered, type SelfCallbacks } from './self/index.js';
