/**
 * fhenet TFHE runtime: public entry point.
 *
 * This entry point is the server side and does not load node-tfhe (a server never hands client bytes
 * to it). The client side (node-tfhe wrapper) is `./client.js`: TfheClient, chooseParameterSet.
 * See docs/tfhe.md.
 */
export { TfheError, TfheFormatError, TfheParameterError, TfheNoiseError, TfheLimitError } from './errors.js';
export { ServerKey, expandedBytes, type ServerKeyOptions, type SerializeOptions } from './server-key.js';
export { PbsPool } from './pool.js';
export { LweCiphertext, reduceWeight, type LinearContext } from './lwe.js';
export type { Lut } from './lut.js';
export { noiseBudget, type NoiseBudget } from './noise.js';
export {
  NAMED_PARAMS,
  DEFAULT_PARAMS_NAME,
  namedParams,
  plaintextModulus,
  delta,
  type TfheParams,
  type NoiseDistribution,
} from './params.js';
export {
  parseCiphertext,
  parseCompressedCiphertext,
  parseCompressedServerKey,
  serializeCiphertextFields,
  type ParseLimits,
} from './layouts.js';
export { nativeKernelError } from './native.js';
