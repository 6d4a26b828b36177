/**
 * The server side: an evaluation key built from a client's TFHE-rs `CompressedServerKey` bytes,
 * and every operation a circuit evaluator needs on ciphertexts.
 *
 * Trust model: the key bytes and ciphertext bytes come from a client and are parsed by fhenet's
 * own strict parser (layouts.ts) — never by node-tfhe, whose WASM panics would poison the process.
 * A malformed or mismatched input costs the sender an error, bounded time and memory, and cannot
 * affect another client's key (keys share no mutable state besides per-key scratch buffers).
 */
import { TfheLimitError, TfheNoiseError, TfheParameterError } from './errors.js';
import { NegacyclicFft } from './fft.js';
import { keyswitch, expandKeyswitchKey, type KeyswitchKey } from './keyswitch.js';
import {
  parseCiphertext,
  parseCompressedCiphertext,
  parseCompressedServerKey,
  serializeCiphertextFields,
  type CompressedServerKeyFields,
  type ParseLimits,
} from './layouts.js';
import { buildLut, type Lut } from './lut.js';
import {
  LweCiphertext,
  linearCombination,
  matmul,
  trivial,
  type LinearContext,
} from './lwe.js';
import { noiseBudget, type NoiseBudget } from './noise.js';
import { NAMED_PARAMS, bigLweDimension, namedParams, plaintextModulus, validateParams, type TfheParams } from './params.js';
import { AesCtrStream } from './csprng.js';
import { BlindRotator, expandBootstrapKey, modulusSwitch, sampleExtract, type FourierBootstrapKey } from './pbs.js';
import { signedToWords } from './torus.js';
import { loadNativeKernel, nativeFftwError, type NativeKernel } from './native.js';
import { envDisabled } from '../util/native-addon.js';

export interface ServerKeyOptions {
  /**
   * The parameter set the key must belong to (a named set or a full description). If omitted, the
   * key's dimensions must match exactly one named set. Noise distributions are not in the key bytes,
   * so a custom set must be given here for the noise model.
   */
  params?: TfheParams | string;
  limits?: ParseLimits;
  /** Failure probability budget per decryption / per table lookup, as log2 (default −40). */
  log2PError?: number;
  /**
   * Largest resident size of the expanded key (keyswitching rows + Fourier bootstrapping key), in
   * bytes, checked before allocating (default 4 GiB; 2_2 needs ≈ 115 MB, 3_3 ≈ 1 GB).
   */
  maxExpandedBytes?: number;
  /** Also enforce TFHE-rs's nominal max_noise_level rule on linear combinations (default false). */
  enforceNoiseLevel?: boolean;
  /** Allocate the expanded key in SharedArrayBuffers (to hand to worker threads without copies). */
  shared?: boolean;
  /**
   * 'auto' (default): the native kernel if it builds/loads, else TypeScript. 'typescript': always
   * the TypeScript reference. 'native': the native kernel or an error.
   */
  backend?: 'auto' | 'typescript' | 'native';
  /**
   * Transform of the native blind rotation. 'auto' (default): FFTW where the kernel links it and it fits the
   * polynomial size (N ≤ FFTW_AUTO_MAX_POLYNOMIAL_SIZE, where it was measured faster; FHENET_TFHE_FFTW=1: any N),
   * unless FHENET_TFHE_FFTW=0; else the shared FFT. 'shared': the shared FFT, bit-identical to the
   * TypeScript reference. 'fftw': FFTW or an error. FFTW results differ from the reference only by float rounding
   * within the noise model's FFT term (docs/tfhe.md, "FFTW transforms in the blind rotation").
   */
  transform?: 'auto' | 'shared' | 'fftw';
}

/** Metadata written into serialized ciphertexts (defaults: the key's moduli, the ciphertext's own degree/noise level). */
export interface SerializeOptions {
  /**
   * `message_modulus` field; node-tfhe's decrypt reduces mod this. Use 2p to read carries and the
   * padding bit, p to read the full plaintext.
   */
  messageModulus?: number;
  carryModulus?: number;
}

function matchNamed(f: CompressedServerKeyFields): TfheParams {
  const hits = Object.values(NAMED_PARAMS).filter((p) => keyMatches(p, f) === null);
  if (hits.length !== 1) {
    throw new TfheParameterError(
      hits.length === 0
        ? 'server key matches no named parameter set; pass options.params'
        : `server key matches several named sets (${hits.map((h) => h.name).join(', ')}); pass options.params`,
    );
  }
  return hits[0]!;
}

/** null if the key has exactly the set's dimensions, else a description of the first mismatch. */
function keyMatches(p: TfheParams, f: CompressedServerKeyFields): string | null {
  const checks: [string, number | string, number | string][] = [
    ['keyswitch base log', f.ksk.baseLog, p.ksBaseLog],
    ['keyswitch level', f.ksk.level, p.ksLevel],
    ['small LWE dimension', f.ksk.outputLweSize - 1, p.lweDimension],
    ['GLWE dimension', f.bsk.glweSize - 1, p.glweDimension],
    ['polynomial size', f.bsk.polynomialSize, p.polynomialSize],
    ['PBS base log', f.bsk.baseLog, p.pbsBaseLog],
    ['PBS level', f.bsk.level, p.pbsLevel],
    ['message modulus', f.messageModulus, p.messageModulus],
    ['carry modulus', f.carryModulus, p.carryModulus],
    ['modulus switch', f.modulusSwitch, p.modulusSwitch],
    ['PBS order', f.pbsOrder, 'keyswitch-bootstrap'],
  ];
  for (const [what, got, want] of checks) if (got !== want) return `${what} is ${got}, expected ${want}`;
  return null;
}

/**
 * Largest polynomial size for which 'auto' picks FFTW: measured faster here at N = 512 (1_1), 2048 (2_2) and 4096
 * (5_0), slower at N = 8192 (3_3: 203 vs 171 ms CPU per KS-PBS with FFTW_ESTIMATE plans; bench/results/tfhe.md).
 * FHENET_TFHE_FFTW=1 asks for FFTW at every size.
 */
export const FFTW_AUTO_MAX_POLYNOMIAL_SIZE = 4096;

/** Whether the blind rotation runs FFTW: the `transform` option, FHENET_TFHE_FFTW, and what the kernel can do. */
function chooseFftw(native: NativeKernel | null, fft: NegacyclicFft, transform: 'auto' | 'shared' | 'fftw'): boolean {
  if (transform === 'shared') return false;
  const usable = native !== null && native.fftwUsable(fft.n, fft.twRe, fft.twIm, fft.stRe, fft.stIm);
  if (transform === 'fftw') {
    if (!usable) {
      const why = native === null ? 'the native kernel is not in use' : native.fftwBuilt ? `FFTW's spectrum order was not matched for N = ${fft.n}` : `the kernel was built without FFTW (${nativeFftwError()})`;
      throw new TfheParameterError(`FFTW transform unavailable: ${why}; use transform 'auto' or 'shared'`);
    }
    return true;
  }
  const flag = process.env.FHENET_TFHE_FFTW;
  if (envDisabled(flag)) return false;
  return usable && (fft.n <= FFTW_AUTO_MAX_POLYNOMIAL_SIZE || flag?.trim() === '1');
}

/** Resident bytes of an expanded key: KSK rows (k·N·ℓ·(n+1) f64) + Fourier BSK (n·L·(k+1)²·N f64). */
export function expandedBytes(p: TfheParams): number {
  const k1 = p.glweDimension + 1;
  const ksk = bigLweDimension(p) * p.ksLevel * (p.lweDimension + 1) * 8;
  const bsk = p.lweDimension * p.pbsLevel * k1 * k1 * p.polynomialSize * 8;
  return ksk + bsk;
}

export class ServerKey {
  readonly params: TfheParams;
  readonly budget: NoiseBudget;
  readonly linear: LinearContext;
  readonly ksk: KeyswitchKey;
  /** The Fourier bootstrapping key, in the frequency order of the blind rotation's transform (`order`). */
  readonly bsk: FourierBootstrapKey;
  readonly fft: NegacyclicFft;
  private readonly rotator: BlindRotator;
  private readonly ksOut: Float64Array;
  private readonly msMask: Int32Array;
  private readonly limits: ParseLimits;
  private readonly native: NativeKernel | null;

  /** `ownsKey`: bsk was just expanded for this key (may be reordered in place); else it is shared and decides. */
  private constructor(params: TfheParams, ksk: KeyswitchKey, bsk: FourierBootstrapKey, fft: NegacyclicFft, opts: ServerKeyOptions, ownsKey: boolean) {
    this.params = params;
    this.budget = noiseBudget(params, opts.log2PError ?? -40);
    this.linear = {
      plaintextModulus: plaintextModulus(params),
      budget: this.budget,
      ...(opts.enforceNoiseLevel ? { maxNoiseLevel: params.maxNoiseLevel } : {}),
    };
    this.ksk = ksk;
    this.fft = fft;
    const backend = opts.backend ?? 'auto';
    this.native = backend === 'typescript' ? null : loadNativeKernel();
    if (backend === 'native' && !this.native) throw new TfheParameterError('native kernel unavailable');
    const transform = opts.transform ?? 'auto';
    if (ownsKey) {
      if (chooseFftw(this.native, fft, transform)) {
        if (!this.native!.fftwKeyOrder(bsk.data, fft.n, fft.twRe, fft.twIm, fft.stRe, fft.stIm)) throw new TfheParameterError('FFTW transform unavailable: the key could not be reordered');
        bsk = { ...bsk, order: 'fftw' };
      }
    } else {
      // A shared expanded key (worker threads): its order fixes the transform.
      if (transform !== 'auto' && transform !== bsk.order) {
        throw new TfheParameterError(`this expanded key is in the ${bsk.order} transform's order; for transform '${transform}' expand a key with it (ServerKey.fromCompressedBytes)`);
      }
      if (bsk.order === 'fftw') chooseFftw(this.native, fft, 'fftw'); // throws where this thread cannot run FFTW
    }
    this.bsk = bsk;
    this.rotator = new BlindRotator(bsk, fft, this.native);
    this.ksOut = new Float64Array(params.lweDimension + 1);
    this.msMask = new Int32Array(params.lweDimension);
    this.limits = { ...opts.limits, maxLweDimension: bigLweDimension(params) };
  }

  /** Parse, validate against the parameter set, decompress and precompute (Fourier) a client's key. */
  static fromCompressedBytes(bytes: Uint8Array, opts: ServerKeyOptions = {}): ServerKey {
    const { params, fields } = ServerKey.inspect(bytes, opts);
    return ServerKey.fromParts(params, fields, opts);
  }

  /**
   * Parse and validate key bytes against the expected parameter set without expanding them
   * (cheap: a copy of the bodies); throws the same typed errors as fromCompressedBytes.
   */
  static inspect(bytes: Uint8Array, opts: ServerKeyOptions = {}): { params: TfheParams; fields: CompressedServerKeyFields } {
    const fields = parseCompressedServerKey(bytes, opts.limits);
    const params = opts.params === undefined ? matchNamed(fields) : typeof opts.params === 'string' ? namedParams(opts.params) : opts.params;
    validateParams(params);
    const mismatch = keyMatches(params, fields);
    if (mismatch) throw new TfheParameterError(`server key does not belong to parameter set '${params.name}': ${mismatch}`);
    const bytes8 = expandedBytes(params);
    const limit = opts.maxExpandedBytes ?? 4 * 2 ** 30;
    if (bytes8 > limit) {
      throw new TfheLimitError(`expanding this key needs ${(bytes8 / 2 ** 20).toFixed(0)} MiB, above the limit of ${(limit / 2 ** 20).toFixed(0)} MiB`);
    }
    return { params, fields };
  }

  /** Build from already parsed fields. Trusted input only: call inspect() first on client bytes. */
  static fromParts(params: TfheParams, f: CompressedServerKeyFields, opts: ServerKeyOptions = {}): ServerKey {
    const fft = new NegacyclicFft(params.polynomialSize);
    const ksk = expandKeyswitchKey(f.ksk, opts.shared);
    const bsk = expandBootstrapKey(f.bsk, fft, opts.shared);
    return new ServerKey(params, ksk, bsk, fft, opts, true);
  }

  /**
   * Rebuild around an already expanded key (worker threads share the arrays). The key's frequency order fixes the
   * blind rotation's transform; `opts.transform`, if not 'auto', must agree with it.
   */
  static fromExpanded(params: TfheParams, ksk: KeyswitchKey, bsk: FourierBootstrapKey, opts: ServerKeyOptions = {}): ServerKey {
    return new ServerKey(params, ksk, bsk, new NegacyclicFft(params.polynomialSize), opts, false);
  }

  /** Which implementation runs the keyswitch and blind rotation. */
  get backend(): 'native' | 'typescript' {
    return this.native ? 'native' : 'typescript';
  }

  /** Which transform the blind rotation runs: FFTW (native only) or the shared FFT (TypeScript's algorithm). */
  get transform(): 'fftw' | 'shared' {
    return this.bsk.order;
  }

  private runKeyswitch(input: Uint32Array): void {
    const k = this.ksk;
    if (this.native) this.native.keyswitch(k.rows, input, this.ksOut, k.inputDimension, k.outputSize, k.baseLog, k.level);
    else keyswitch(k, input, this.ksOut);
  }

  get plaintextModulus(): number {
    return this.linear.plaintextModulus;
  }

  /** Dimension k·N of client ciphertexts and PBS outputs. */
  get lweDimension(): number {
    return bigLweDimension(this.params);
  }

  // ------------------------------------------------------------------ ciphertext I/O

  private checkMeta(what: string, messageModulus: number, carryModulus: number, ap: { kind: string; pbsOrder?: string }): void {
    const p = this.params;
    if (messageModulus !== p.messageModulus || carryModulus !== p.carryModulus) {
      throw new TfheParameterError(
        `${what}: message/carry modulus ${messageModulus}/${carryModulus} do not match the key's ${p.messageModulus}/${p.carryModulus}`,
      );
    }
    if (ap.kind !== 'standard' || ap.pbsOrder !== 'keyswitch-bootstrap') {
      throw new TfheParameterError(`${what}: atomic pattern must be Standard(KeyswitchBootstrap)`);
    }
  }

  /** Variance assumed for a client ciphertext with a given nominal noise level (conservative). */
  private clientVariance(noiseLevel: number): number {
    return Math.max(1, noiseLevel) ** 2 * this.budget.freshVariance;
  }

  /** A shortint `Ciphertext` from a client (parsed by fhenet, validated against this key). */
  parseCiphertext(bytes: Uint8Array): LweCiphertext {
    const c = parseCiphertext(bytes, this.limits);
    if (c.data.length / 2 - 1 !== this.lweDimension) {
      throw new TfheParameterError(`ciphertext: LWE dimension ${c.data.length / 2 - 1}, this key expects ${this.lweDimension}`);
    }
    this.checkMeta('ciphertext', c.messageModulus, c.carryModulus, c.atomicPattern);
    return new LweCiphertext(c.data, this.clientVariance(c.noiseLevel), c.noiseLevel, c.degree);
  }

  /** A shortint `CompressedCiphertext` (seeded): regenerates the mask from its AES-CTR seed. */
  decompressCiphertext(bytes: Uint8Array): LweCiphertext {
    const c = parseCompressedCiphertext(bytes, this.limits);
    const n = c.lweSize - 1;
    if (n !== this.lweDimension) {
      throw new TfheParameterError(`compressed ciphertext: LWE dimension ${n}, this key expects ${this.lweDimension}`);
    }
    this.checkMeta('compressed ciphertext', c.messageModulus, c.carryModulus, c.atomicPattern);
    const data = new Uint32Array(2 * (n + 1));
    new AesCtrStream(c.seed).fillU64(data, 0, n);
    data[2 * n] = c.body[0]!;
    data[2 * n + 1] = c.body[1]!;
    return new LweCiphertext(data, this.clientVariance(c.noiseLevel), c.noiseLevel, c.degree);
  }

  /** Serialize as a TFHE-rs shortint `Ciphertext` that node-tfhe's `Shortint.decrypt` accepts. */
  serializeCiphertext(ct: LweCiphertext, opts: SerializeOptions = {}): Uint8Array {
    if (ct.dimension !== this.lweDimension) {
      throw new TfheParameterError(`only big-key ciphertexts (dimension ${this.lweDimension}) can be serialized; got ${ct.dimension}`);
    }
    return serializeCiphertextFields({
      data: ct.data,
      degree: ct.degree,
      noiseLevel: Math.max(1, Math.ceil(ct.noiseLevel)),
      messageModulus: opts.messageModulus ?? this.params.messageModulus,
      carryModulus: opts.carryModulus ?? this.params.carryModulus,
      atomicPattern: { kind: 'standard', pbsOrder: 'keyswitch-bootstrap' },
    });
  }

  // ------------------------------------------------------------------ leveled operations

  add(a: LweCiphertext, b: LweCiphertext): LweCiphertext {
    return linearCombination(this.linear, [1, 1], [a, b]);
  }

  sub(a: LweCiphertext, b: LweCiphertext): LweCiphertext {
    return linearCombination(this.linear, [1, -1], [a, b]);
  }

  neg(a: LweCiphertext): LweCiphertext {
    return linearCombination(this.linear, [-1], [a]);
  }

  mulScalar(a: LweCiphertext, w: number): LweCiphertext {
    return linearCombination(this.linear, [w], [a]);
  }

  /** a + m (a clear plaintext, taken mod 2p). */
  addPlain(a: LweCiphertext, m: number): LweCiphertext {
    return linearCombination(this.linear, [1], [a], m);
  }

  /** Σ w_i·x_i + bias. */
  dot(weights: ArrayLike<number>, x: readonly LweCiphertext[], bias = 0): LweCiphertext {
    return linearCombination(this.linear, weights, x, bias);
  }

  /** y = W·x + bias with W row-major rows × cols. */
  matmul(w: ArrayLike<number>, rows: number, cols: number, x: readonly LweCiphertext[], bias?: ArrayLike<number>): LweCiphertext[] {
    return matmul(this.linear, w, rows, cols, x, bias);
  }

  /** A noiseless encryption of the constant m. */
  trivial(m: number): LweCiphertext {
    return trivial(this.linear, this.lweDimension, m);
  }

  // ------------------------------------------------------------------ bootstrapping

  /** The table of f over the plaintext space [0, p). See lut.ts for padding-bit semantics. */
  lut(f: (m: number) => number): Lut {
    return buildLut(this.params.polynomialSize, this.plaintextModulus, f);
  }

  /** Log2 of the estimated failure probability of a PBS on `ct` (for diagnostics). */
  pbsFailureLog2(ct: LweCiphertext): number {
    return ct.variance <= this.budget.maxPbsInputVariance ? this.budget.log2PError : 0;
  }

  /** Keyswitch only, as an LWE under the small key (dimension n); mainly for tests and benchmarks. */
  keyswitch(ct: LweCiphertext): LweCiphertext {
    this.checkInput(ct, 'keyswitch');
    this.runKeyswitch(ct.data);
    const n = this.params.lweDimension;
    const out = new Uint32Array(2 * (n + 1));
    for (let i = 0; i <= n; i++) signedToWords(this.ksOut[i]!, out, i);
    return new LweCiphertext(out, ct.variance + this.budget.keyswitchVariance, ct.noiseLevel, ct.degree);
  }

  private checkInput(ct: LweCiphertext, what: string): void {
    if (ct.dimension !== this.lweDimension) {
      throw new TfheParameterError(`${what}: ciphertext dimension ${ct.dimension}, expected ${this.lweDimension}`);
    }
  }

  /** Throws what pbs() would throw for this input (shape, table size, noise budget). */
  checkPbsInput(ct: LweCiphertext, lut: Lut): void {
    this.checkInput(ct, 'pbs');
    if (lut.poly.length !== this.params.polynomialSize) throw new TfheParameterError('pbs: lookup table built for another polynomial size');
    if (ct.variance > this.budget.maxPbsInputVariance) {
      throw new TfheNoiseError(
        `pbs: input noise σ = 2^${(Math.log2(ct.variance) / 2).toFixed(2)} exceeds the bootstrapping budget ` +
          `σ ≤ 2^${(Math.log2(this.budget.maxPbsInputVariance) / 2).toFixed(2)} for p_error = 2^${this.budget.log2PError}`,
      );
    }
  }

  /**
   * KS-PBS: keyswitch to the small key, switch to Z/2N, blind-rotate the table, extract. The output
   * is a fresh-noise ciphertext under the big key encrypting lut(m), noise level 1.
   */
  pbs(ct: LweCiphertext, lut: Lut): LweCiphertext {
    this.checkPbsInput(ct, lut);
    const p = this.params;
    this.runKeyswitch(ct.data);
    const log2N2 = Math.log2(2 * p.polynomialSize);
    const body = modulusSwitch(this.ksOut, p.lweDimension, log2N2, p.modulusSwitch, this.msMask);
    const acc = this.rotator.rotate(lut.poly, this.msMask, body);
    const data = sampleExtract(acc, p.glweDimension, p.polynomialSize);
    return new LweCiphertext(data, this.budget.pbsOutputVariance, 1, lut.degree);
  }

  /**
   * KS-PBS of several independent ciphertexts in one pass over the key (one table for all, or one
   * table per ciphertext). Same results as pbs() on each; higher throughput because the Fourier key
   * is streamed from memory once per batch instead of once per ciphertext.
   */
  pbsBatch(cts: readonly LweCiphertext[], luts: Lut | readonly Lut[]): LweCiphertext[] {
    const B = cts.length;
    if (B === 0) return [];
    const list = Array.isArray(luts) ? (luts as readonly Lut[]) : new Array<Lut>(B).fill(luts as Lut);
    if (list.length !== B) throw new TfheParameterError(`pbsBatch: ${list.length} tables for ${B} ciphertexts`);
    for (let b = 0; b < B; b++) this.checkPbsInput(cts[b]!, list[b]!);
    const p = this.params;
    const n = p.lweDimension;
    const N = p.polynomialSize;
    const log2N2 = Math.log2(2 * N);
    const masks = new Int32Array(B * n);
    const bodies = new Int32Array(B);
    const lutData = new Float64Array(B * N);
    for (let b = 0; b < B; b++) {
      this.runKeyswitch(cts[b]!.data);
      bodies[b] = modulusSwitch(this.ksOut, n, log2N2, p.modulusSwitch, masks.subarray(b * n, (b + 1) * n));
      lutData.set(list[b]!.poly, b * N);
    }
    const accs = this.rotator.rotateBatch(lutData, masks, bodies);
    const size = (p.glweDimension + 1) * N;
    return cts.map((_, b) =>
      new LweCiphertext(sampleExtract(accs.subarray(b * size, (b + 1) * size), p.glweDimension, N), this.budget.pbsOutputVariance, 1, list[b]!.degree),
    );
  }

  /** pbs(ct, lut(f)). Build the Lut once with lut() when applying the same f many times. */
  applyLut(ct: LweCiphertext, f: (m: number) => number): LweCiphertext {
    return this.pbs(ct, this.lut(f));
  }
}
