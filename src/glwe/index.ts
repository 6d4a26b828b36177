/**
 * fhenet packed GLWE engine: encrypted vector × clear integer matrix for hybrid models' remote linear layers
 * (docs/glwe.md). No TensorFlow.js, no model code.
 *
 *   client:  generateKeys → encryptVector(clientKey, x, layout) → … → decryptVector(clientKey, result)
 *   server:  prepareEvaluationKey(evaluationKey) once per client, transformWeights(W) once per model,
 *            serverMatVec(preparedKey, weights, ciphertext, { bias, threads }) per call
 */
export { GlweError, GlweFormatError, GlweParameterError, GlweLimitError } from './errors.js';
export { GLWE_PARAMS_2048, glweParamsByCode, type GlweParams } from './params.js';
export { cryptoRng, type GlweRng } from './random.js';
export { generateKeys, prepareEvaluationKey, type ClientKey, type EvaluationKey, type PreparedEvaluationKey } from './keys.js';
export { planMatVec, MAX_DIM, type MatVecLayout } from './layout.js';
export { encryptVector, decryptVector, decryptPhases, type InputCiphertext, type MatVecResult } from './client.js';
export { transformWeights, type TransformedWeights, type TransformOptions } from './weights.js';
export { serverMatVec, type MatVecOptions } from './server.js';
export { predictNoise, type NoisePrediction } from './noise.js';
export { glweKernelError, loadGlweKernel } from './native.js';
export {
  GLWE_FORMAT_VERSION,
  serializeInputCiphertext,
  deserializeInputCiphertext,
  serializeResult,
  deserializeResult,
  serializeEvaluationKey,
  deserializeEvaluationKey,
  type GlweParseLimits,
} from './serialize.js';
