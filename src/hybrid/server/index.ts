/**
 * `fhenet/hybrid/server`: the model server and what it needs (deployment artefacts, crypto backends, the key store,
 * bearer-token access) without TensorFlow.js — `fhenet/hybrid` also exports the tfjs-based `HybridFHEModel`.
 * `.dependency-cruiser.cjs` forbids any import from here that reaches `@tensorflow`; tests/hybrid/server-entry.test.ts
 * checks that importing it loads none.
 */
export * from './app.js';
export * from './key-store.js';
export * from './local-key-store.js';
export { limitsOf, type Limits } from './options.js';
export * from './auth.js';
export { FHEModelServer, SERVER_FILE, CLIENT_FILE, type ArtefactInfo } from '../deployment.js';
export { serverBackend, type ServerBackend } from '../backend.js';
export * from '../errors.js';
export * from '../version.js';
