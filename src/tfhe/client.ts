/**
 * The client side: node-tfhe (TFHE-rs 1.7 compiled to WASM) does all secret-key work — key
 * generation, encryption, decryption. The client key stays inside a TfheClient instance: it is never
 * returned, serialized for others or written anywhere; only the compressed server key (evaluation
 * key) and ciphertexts leave.
 *
 * Encoding: node-tfhe's `Shortint.encrypt` reduces the message mod message_modulus. To encrypt any
 * m ∈ [0, 2p) (p = message·carry) we encrypt 0 and add m·Δ to the body — adding a plaintext is a
 * public operation and keeps the fresh noise. Decryption reads the plaintext mod the ciphertext's
 * own `message_modulus` field, so `decrypt` rewrites that field to the modulus asked for (p by
 * default) before calling node-tfhe. Every byte string is checked by fhenet's own parser before it
 * reaches node-tfhe: a WASM panic would poison node-tfhe for the rest of the process.
 */
import * as tfhe from 'node-tfhe';
import { parseClientKey } from './client-key-layout.js';
import { TfheParameterError } from './errors.js';
import {
  parseCiphertext,
  parseCompressedCiphertext,
  serializeCiphertextFields,
  serializeCompressedCiphertextFields,
} from './layouts.js';
import { noiseBudget } from './noise.js';
import { DEFAULT_PARAMS_NAME, NAMED_PARAMS, bigLweDimension, plaintextModulus, validateParams, type TfheParams } from './params.js';

const { Shortint, ShortintParameters, ShortintParametersName, ShortintEncryptionKeyChoice } = tfhe;

type NamedSet = keyof typeof ShortintParametersName;

/** A custom set: every field of TfheParams except the name and the modulus-switch mode (Standard). */
export type CustomParams = Omit<TfheParams, 'name' | 'modulusSwitch'>;

function nodeNoise(d: TfheParams['lweNoise']): tfhe.ShortintNoiseDistribution {
  return d.kind === 'tuniform' ? Shortint.try_new_t_uniform(d.boundLog2) : Shortint.new_gaussian_from_std_dev(d.std);
}

function nodeParams(choice: string | CustomParams): tfhe.ShortintParameters {
  if (typeof choice === 'string') {
    const id = ShortintParametersName[choice as NamedSet];
    if (id === undefined) throw new TfheParameterError(`node-tfhe has no parameter set named '${choice}'`);
    return new ShortintParameters(id);
  }
  const c = choice;
  return Shortint.new_parameters(
    c.lweDimension, c.glweDimension, c.polynomialSize, nodeNoise(c.lweNoise), nodeNoise(c.glweNoise),
    c.pbsBaseLog, c.pbsLevel, c.ksBaseLog, c.ksLevel, BigInt(c.messageModulus), BigInt(c.carryModulus),
    BigInt(c.maxNoiseLevel), c.log2PFail, 64, ShortintEncryptionKeyChoice.Big,
  );
}

/** Add m·Δ (mod 2^64) to a u64 given as (lo, hi) words at index i. */
function addPlaintext(words: Uint32Array, i: number, m: number, p: number): void {
  const v = ((m % (2 * p)) + 2 * p) % (2 * p);
  const delta = (1n << 63n) / BigInt(p);
  const cur = (BigInt(words[2 * i + 1]!) << 32n) | BigInt(words[2 * i]!);
  const next = BigInt.asUintN(64, cur + BigInt(v) * delta);
  words[2 * i] = Number(next & 0xffffffffn);
  words[2 * i + 1] = Number(next >> 32n);
}

export class TfheClient {
  /** The parameters, read from the client's own key (exact, including noise distributions). */
  readonly params: TfheParams;
  #ck: tfhe.ShortintClientKey;
  /** Secret key bits, for phase/noise measurement only (never leaves this object). */
  #glweKey: Uint32Array;
  #serverKey: Uint8Array | undefined;

  private constructor(ck: tfhe.ShortintClientKey, name: string) {
    this.#ck = ck;
    const contents = parseClientKey(Shortint.serialize_client_key(ck));
    this.#glweKey = contents.glweKey;
    this.params = { name, ...contents.params };
    validateParams(this.params);
  }

  /** New client key for a named node-tfhe set (default: the 2_2 TUniform set) or a custom set. */
  static create(choice: string | CustomParams = DEFAULT_PARAMS_NAME): TfheClient {
    const ck = Shortint.new_client_key(nodeParams(choice));
    return new TfheClient(ck, typeof choice === 'string' ? choice : 'custom');
  }

  get plaintextModulus(): number {
    return plaintextModulus(this.params);
  }

  /** The evaluation key as TFHE-rs `CompressedServerKey` bytes (generated once, ≈ 3 s for 2_2). */
  compressedServerKey(): Uint8Array {
    if (!this.#serverKey) {
      const sk = Shortint.new_compressed_server_key(this.#ck);
      this.#serverKey = Shortint.serialize_compressed_server_key(sk);
      sk.free();
    }
    return this.#serverKey;
  }

  /** Encrypt m ∈ [0, 2p) (taken mod 2p) as shortint `Ciphertext` bytes. */
  encrypt(m: number): Uint8Array {
    const ct = Shortint.encrypt(this.#ck, 0n);
    const f = parseCiphertext(Shortint.serialize_ciphertext(ct));
    ct.free();
    addPlaintext(f.data, f.data.length / 2 - 1, m, this.plaintextModulus);
    f.degree = Math.max(f.degree, m);
    return serializeCiphertextFields(f);
  }

  /** Encrypt m as a seeded shortint `CompressedCiphertext` (124 bytes for 2_2). */
  encryptCompressed(m: number): Uint8Array {
    const ct = Shortint.encrypt_compressed(this.#ck, 0n);
    const f = parseCompressedCiphertext(Shortint.serialize_compressed_ciphertext(ct));
    ct.free();
    addPlaintext(f.body, 0, m, this.plaintextModulus);
    f.degree = Math.max(f.degree, m);
    return serializeCompressedCiphertextFields(f);
  }

  /**
   * Decrypt shortint `Ciphertext` bytes to a value mod `modulus` (default p = message·carry; use 2p
   * to see the padding bit). The bytes are validated first, so a bad server answer is an error here,
   * not a node-tfhe panic.
   */
  decrypt(bytes: Uint8Array, modulus: number = this.plaintextModulus): number {
    const f = parseCiphertext(bytes);
    if (f.data.length / 2 - 1 !== bigLweDimension(this.params)) {
      throw new TfheParameterError(`decrypt: ciphertext dimension ${f.data.length / 2 - 1}, expected ${bigLweDimension(this.params)}`);
    }
    if (modulus < 1 || modulus > 2 * this.plaintextModulus || (modulus & (modulus - 1)) !== 0) {
      throw new TfheParameterError(`decrypt: modulus ${modulus} must be a power of two ≤ 2p`);
    }
    f.messageModulus = modulus;
    const ct = Shortint.deserialize_ciphertext(serializeCiphertextFields(f));
    const v = Shortint.decrypt(this.#ck, ct);
    ct.free();
    return Number(v);
  }

  /**
   * The noise of a ciphertext: phase − expected·Δ as a signed number of 2^64-torus units (client
   * side only; used to check the noise model by measurement). `expected` defaults to the nearest
   * message.
   */
  noise(bytes: Uint8Array, expected?: number): number {
    const f = parseCiphertext(bytes);
    const n = f.data.length / 2 - 1;
    if (n !== this.#glweKey.length / 2) throw new TfheParameterError('noise: ciphertext dimension does not match the key');
    let dot = 0n;
    for (let i = 0; i < n; i++) {
      if (this.#glweKey[2 * i] !== 0) dot += (BigInt(f.data[2 * i + 1]!) << 32n) | BigInt(f.data[2 * i]!);
    }
    const body = (BigInt(f.data[2 * n + 1]!) << 32n) | BigInt(f.data[2 * n]!);
    const phase = BigInt.asUintN(64, body - dot);
    const p = BigInt(this.plaintextModulus);
    const delta = (1n << 63n) / p;
    const m = expected !== undefined ? BigInt(expected) : (phase + delta / 2n) / delta;
    return Number(BigInt.asIntN(64, phase - m * delta));
  }

  /**
   * Seeded encryption of the integer m at the scale 2^log2Delta (any encoding, not only the key's Δ): the torus
   * value m·2^log2Delta mod 2^64 (m may be negative). Used by the circuit executor's per-value encodings.
   */
  encryptCompressedScaled(m: number, log2Delta: number): Uint8Array {
    if (!Number.isSafeInteger(m)) throw new TfheParameterError(`encryptCompressedScaled: ${m} is not a safe integer`);
    if (!Number.isInteger(log2Delta) || log2Delta < 0 || log2Delta > 63) throw new TfheParameterError(`encryptCompressedScaled: log2Delta ${log2Delta} not in [0, 63]`);
    const ct = Shortint.encrypt_compressed(this.#ck, 0n);
    const f = parseCompressedCiphertext(Shortint.serialize_compressed_ciphertext(ct));
    ct.free();
    const cur = (BigInt(f.body[1]!) << 32n) | BigInt(f.body[0]!);
    const next = BigInt.asUintN(64, cur + (BigInt(m) << BigInt(log2Delta)));
    f.body[0] = Number(next & 0xffffffffn);
    f.body[1] = Number(next >> 32n);
    return serializeCompressedCiphertextFields(f);
  }

  /**
   * Decrypt a shortint `Ciphertext` encoded at the scale 2^log2Delta: the phase (read with the secret key inside
   * this object) divided by 2^log2Delta and rounded, as a signed integer mod 2^bits (in [−2^(bits−1), 2^(bits−1))).
   */
  decryptScaled(bytes: Uint8Array, log2Delta: number, bits: number): number {
    if (!Number.isInteger(log2Delta) || log2Delta < 1 || log2Delta > 63) throw new TfheParameterError(`decryptScaled: log2Delta ${log2Delta} not in [1, 63]`);
    if (!Number.isInteger(bits) || bits < 1 || bits > 53 || bits + log2Delta > 64) throw new TfheParameterError(`decryptScaled: ${bits} bits at scale 2^${log2Delta}`);
    const f = parseCiphertext(bytes);
    const n = f.data.length / 2 - 1;
    if (n !== this.#glweKey.length / 2) throw new TfheParameterError('decryptScaled: ciphertext dimension does not match the key');
    let dot = 0n;
    for (let i = 0; i < n; i++) {
      if (this.#glweKey[2 * i] !== 0) dot += (BigInt(f.data[2 * i + 1]!) << 32n) | BigInt(f.data[2 * i]!);
    }
    const body = (BigInt(f.data[2 * n + 1]!) << 32n) | BigInt(f.data[2 * n]!);
    const phase = BigInt.asUintN(64, body - dot);
    const rounded = (phase + (1n << BigInt(log2Delta - 1))) >> BigInt(log2Delta);
    return Number(BigInt.asIntN(bits, rounded));
  }

  /** Release the WASM memory of the key. */
  dispose(): void {
    this.#ck.free();
  }
}

/**
 * Smallest named set whose plaintext space holds `bits`-bit table inputs and whose PBS budget (at
 * 2^log2PError per table lookup) covers a dot product of bootstrapped values with weight 2-norm
 * `weightNorm2` (plus fresh client inputs, whose noise is negligible next to PBS outputs).
 */
export function chooseParameterSet(bits: number, weightNorm2: number, log2PError = -40): TfheParams {
  const order = [
    'V1_7_PARAM_MESSAGE_1_CARRY_1_KS_PBS_GAUSSIAN_2M128',
    'PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128',
    'V1_6_PARAM_MESSAGE_5_CARRY_0_KS_PBS_GAUSSIAN_2M128',
    'V1_6_PARAM_MESSAGE_2_CARRY_3_KS_PBS_GAUSSIAN_2M128',
    'V1_7_PARAM_MESSAGE_3_CARRY_3_KS_PBS_GAUSSIAN_2M128',
    'V1_7_PARAM_MESSAGE_4_CARRY_4_KS_PBS_GAUSSIAN_2M128',
  ];
  for (const name of order) {
    const p = NAMED_PARAMS[name]!;
    if (plaintextModulus(p) < 2 ** bits) continue;
    const b = noiseBudget(p, log2PError);
    if (weightNorm2 * weightNorm2 * b.pbsOutputVariance <= b.maxPbsInputVariance) return p;
  }
  throw new TfheParameterError(
    `no named parameter set covers ${bits}-bit table inputs with weight norm ${weightNorm2} at p_error 2^${log2PError}; use a custom set`,
  );
}
