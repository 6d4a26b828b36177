/**
 * `fhenet/runtime`: compiled circuits run on TFHE ciphertexts (the executor: plan, client, server) and the noisy
 * simulation of a plan. This layer sits above the compiler's circuit format and the TFHE primitives (src/tfhe) and
 * imports no TensorFlow.js.
 */
export * from './executor.js';
export { simulateWithNoise, noisyIndex, type NoisySimulateResult } from './noisy-simulate.js';
