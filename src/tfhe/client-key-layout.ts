/**
 * Layout of a shortint `ClientKey` (reference (c)). Used ONLY inside the client process, on the
 * client's own freshly generated key, to read the exact parameters of the set it chose (node-tfhe
 * exposes no getter for noise distributions or the modulus-switch mode). The server never sees
 * these bytes; nothing here is exported from the server entry point.
 */
import { BincodeReader } from './bincode.js';
import type { NoiseDistribution, TfheParams } from './params.js';

export interface ClientKeyContents {
  /** Flattened GLWE secret key (k·N bits) as (lo, hi) words: the key of fresh ciphertexts. */
  glweKey: Uint32Array;
  /** Small LWE secret key (n bits) as (lo, hi) words. */
  lweKey: Uint32Array;
  params: Omit<TfheParams, 'name'>;
}

function readDistribution(r: BincodeReader, field: string): NoiseDistribution {
  const kind = r.variant(field, 2);
  if (kind === 0) {
    const std = r.f64(`${field}.std`);
    r.f64(`${field}.mean`);
    return { kind: 'gaussian', std };
  }
  return { kind: 'tuniform', boundLog2: r.u32(`${field}.bound_log2`) };
}

export function parseClientKey(bytes: Uint8Array): ClientKeyContents {
  const r = new BincodeReader(bytes, 'client_key');
  r.variant('atomic_pattern', 1);
  const glweKey = r.vecU64('glwe_secret_key.data', 1 << 20);
  r.u64Number('glwe_secret_key.polynomial_size');
  const lweKey = r.vecU64('lwe_secret_key.data', 1 << 20);
  r.variant('pbs_parameters', 1); // only PBSParameters::PBS (classic) is supported
  const lweDimension = r.u64Number('lwe_dimension');
  const glweDimension = r.u64Number('glwe_dimension');
  const polynomialSize = r.u64Number('polynomial_size');
  const lweNoise = readDistribution(r, 'lwe_noise_distribution');
  const glweNoise = readDistribution(r, 'glwe_noise_distribution');
  const pbsBaseLog = r.u64Number('pbs_base_log');
  const pbsLevel = r.u64Number('pbs_level');
  const ksBaseLog = r.u64Number('ks_base_log');
  const ksLevel = r.u64Number('ks_level');
  const messageModulus = r.u64Number('message_modulus');
  const carryModulus = r.u64Number('carry_modulus');
  const maxNoiseLevel = r.u64Number('max_noise_level');
  const log2PFail = r.f64('log2_p_fail');
  r.u128('ciphertext_modulus.modulus');
  r.u64('ciphertext_modulus.scalar_bits');
  const keyChoice = r.variant('encryption_key_choice', 2);
  if (keyChoice !== 0) r.fail('encryption_key_choice', "only the 'Big' encryption key choice is supported");
  const ms = r.variant('modulus_switch_noise_reduction_params', 3);
  if (ms === 1) {
    r.u64('drift.count');
    r.f64('drift.a');
    r.f64('drift.b');
    r.f64('drift.c');
  }
  return {
    glweKey,
    lweKey,
    params: {
      lweDimension, glweDimension, polynomialSize, lweNoise, glweNoise,
      pbsBaseLog, pbsLevel, ksBaseLog, ksLevel, messageModulus, carryModulus, maxNoiseLevel, log2PFail,
      modulusSwitch: ms === 0 ? 'standard' : ms === 1 ? 'drift' : 'centered-mean',
    },
  };
}
