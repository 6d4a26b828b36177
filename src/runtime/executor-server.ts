/**
 * Server side of circuit execution: evaluates a compiled circuit on a client's encrypted inputs with the client's
 * evaluation key. Loads neither node-tfhe nor TensorFlow.js: client bytes (key and ciphertexts) are parsed only by
 * fhenet's own parser (ServerKey.fromCompressedBytes / decompressCiphertext). The plan (encodings, tables, noise
 * checks) is recomputed here from the circuit and the key's parameter set, never taken from the client.
 */
import type { Circuit } from '../compiler/circuit.js';
import { size } from '../compiler/circuit.js';
import { TfheParameterError } from '../tfhe/errors.js';
import { type CircuitPlan, RegionBudgets, planCircuitWith } from './executor-plan.js';
import type { Lut } from '../tfhe/lut.js';
import { LweCiphertext, linearCombination } from '../tfhe/lwe.js';
import { PbsPool } from '../tfhe/pool.js';
import { ServerKey, type ServerKeyOptions } from '../tfhe/server-key.js';
import { namedParams, type TfheParams } from '../tfhe/params.js';

/**
 * Where a circuit's independent KS-PBS run: the in-process worker pool (PbsPool) or any other executor with the
 * same contract — results in input order, each a fresh-noise ciphertext of its table's output; inputs whose noise
 * exceeds the key's bootstrapping budget are refused (ServerKey.checkPbsInput) before any work is sent out.
 */
export interface PbsRunner {
  /** Parallelism the runner offers (threads, or workers' threads), for reports. */
  readonly threads: number;
  pbsMany(cts: readonly LweCiphertext[], luts: readonly Lut[]): Promise<LweCiphertext[]>;
  close(): Promise<void>;
}

/** Builds a PbsRunner for a parsed key; `keyBytes` are the client's compressed key (what a remote worker loads). */
export type PbsRunnerFactory = (key: ServerKey, keyBytes: Uint8Array) => Promise<PbsRunner>;

export interface CircuitServerOptions {
  /** Parameter set the key must belong to (name or description). */
  params: string | TfheParams;
  /** Worker threads for the KS-PBS (default 1: the calling thread; > 1: a PbsPool sharing one expanded key). */
  threads?: number;
  log2PError?: number;
  backend?: ServerKeyOptions['backend'];
  outputHeadroomBits?: number;
  /** Run the KS-PBS elsewhere (e.g. src/scale's Redis queue of worker processes) instead of local threads. */
  pbsRunner?: PbsRunnerFactory;
}

export interface RunStats {
  samples: number;
  pbs: number;
  pbsSeconds: number;
  linearSeconds: number;
  ioSeconds: number;
}

const PBS_CHUNK = 8;

/**
 * Gives the event loop a turn when more than `sliceMs` passed since the last one: the decompression of the inputs
 * and the linear steps run on the calling thread (a server's event loop), so a large request must not starve the
 * server's other requests (/health among them).
 */
class EventLoopYielder {
  private last = performance.now();
  constructor(private readonly sliceMs = 10) {}
  async maybeYield(): Promise<void> {
    if (performance.now() - this.last < this.sliceMs) return;
    await new Promise<void>((r) => setImmediate(r));
    this.last = performance.now();
  }
}

/** A ciphertext of the constant c at encoding E (mask 0): for values known in clear (pruned neurons, padding). */
function trivialAt(dim: number, c: number, E: number): LweCiphertext {
  const data = new Uint32Array(2 * (dim + 1));
  const body = BigInt.asUintN(64, BigInt(c) << BigInt(63 - E));
  data[2 * dim] = Number(body & 0xffffffffn);
  data[2 * dim + 1] = Number(body >> 32n);
  return new LweCiphertext(data, 0, 0, 0);
}

/** ct + t (a clear torus constant, mod 2^64), with the variance field overridden. */
/** 2^scaleLog2 · ct + t (mask and body, mod 2^64), with the given variance recorded. */
function scaleAddTorus(ct: LweCiphertext, scaleLog2: number, t: bigint, variance: number): LweCiphertext {
  const data = ct.data.slice();
  if (scaleLog2 > 0) {
    if (scaleLog2 > 31) throw new TfheParameterError(`internal: per-channel scale 2^${scaleLog2} is out of range`);
    // Words are little-endian (lo, hi) pairs of 64-bit torus elements: shift each pair left.
    for (let w = 0; w < data.length; w += 2) {
      const lo = data[w]!;
      data[w + 1] = ((data[w + 1]! << scaleLog2) | (lo >>> (32 - scaleLog2))) >>> 0;
      data[w] = (lo << scaleLog2) >>> 0;
    }
  }
  const i = data.length - 2;
  const body = BigInt.asUintN(64, ((BigInt(data[i + 1]!) << 32n) | BigInt(data[i]!)) + t);
  data[i] = Number(body & 0xffffffffn);
  data[i + 1] = Number(body >> 32n);
  return new LweCiphertext(data, variance, ct.noiseLevel, 0);
}

export class TfheCircuitServer {
  private readonly plans = new WeakMap<Circuit, CircuitPlan>();
  readonly budgets: RegionBudgets;
  /** Figures of the last runEncrypted call. */
  lastStats: RunStats | undefined;

  private constructor(
    readonly key: ServerKey,
    private readonly pool: PbsRunner | undefined,
    private readonly opts: CircuitServerOptions,
  ) {
    this.budgets = new RegionBudgets(key.params, key.budget.log2PError);
  }

  /** Parse, validate and expand a client's compressed server key (≈ 1 s for 2_2); threads > 1 starts a worker pool. */
  static async create(keyBytes: Uint8Array, opts: CircuitServerOptions): Promise<TfheCircuitServer> {
    const params = typeof opts.params === 'string' ? namedParams(opts.params) : opts.params;
    const keyOpts: ServerKeyOptions = { params, log2PError: opts.log2PError ?? -40, ...(opts.backend ? { backend: opts.backend } : {}) };
    const threads = opts.threads ?? 1;
    if (opts.pbsRunner) {
      const key = ServerKey.fromCompressedBytes(keyBytes, keyOpts);
      return new TfheCircuitServer(key, await opts.pbsRunner(key, keyBytes), opts);
    }
    if (threads > 1) {
      const pool = await PbsPool.create(keyBytes, { ...keyOpts, threads });
      return new TfheCircuitServer(pool.key, pool, opts);
    }
    return new TfheCircuitServer(ServerKey.fromCompressedBytes(keyBytes, keyOpts), undefined, opts);
  }

  get threads(): number {
    return this.pool?.threads ?? 1;
  }

  /** The plan of `circuit` for this key's parameter set (computed once per circuit). */
  plan(circuit: Circuit): CircuitPlan {
    let p = this.plans.get(circuit);
    if (!p) {
      p = planCircuitWith(circuit, this.key.params, {
        log2PError: this.key.budget.log2PError,
        ...(this.opts.outputHeadroomBits !== undefined ? { outputHeadroomBits: this.opts.outputHeadroomBits } : {}),
      });
      this.plans.set(circuit, p);
    }
    return p;
  }

  private async pbsMany(cts: LweCiphertext[], luts: Lut[]): Promise<LweCiphertext[]> {
    if (this.pool) return this.pool.pbsMany(cts, luts);
    const out: LweCiphertext[] = [];
    for (let i = 0; i < cts.length; i += PBS_CHUNK) out.push(...this.key.pbsBatch(cts.slice(i, i + PBS_CHUNK), luts.slice(i, i + PBS_CHUNK)));
    return out;
  }

  /**
   * Evaluate the circuit on n samples: `inputs` holds n × (input size) compressed ciphertexts (sample-major, the
   * client's `encryptInputs`); returns n × (output size) TFHE-rs shortint ciphertexts for `decryptOutputs`.
   */
  async runEncrypted(circuit: Circuit, inputs: readonly Uint8Array[], n: number): Promise<Uint8Array[]> {
    const plan = this.plan(circuit);
    const key = this.key;
    const dim = key.lweDimension;
    const nIn = size(circuit.input.shape);
    if (!Number.isInteger(n) || n < 1 || inputs.length !== n * nIn) {
      throw new TfheParameterError(`runEncrypted: ${inputs.length} ciphertexts do not make ${n} inputs of ${nIn} values`);
    }
    const stats: RunStats = { samples: n, pbs: 0, pbsSeconds: 0, linearSeconds: 0, ioSeconds: 0 };
    let t0 = performance.now();
    /** value → samples → elements, at the value's own encoding; rescaled copies under `${v}@${E}`. */
    const env = new Map<string, LweCiphertext[][]>();
    const yielder = new EventLoopYielder();
    const input: LweCiphertext[][] = [];
    for (let s = 0; s < n; s++) {
      const row: LweCiphertext[] = new Array(nIn);
      for (let i = 0; i < nIn; i++) {
        row[i] = key.decompressCiphertext(inputs[s * nIn + i]!);
        if ((i & 15) === 15) await yielder.maybeYield();
      }
      input.push(row);
      await yielder.maybeYield();
    }
    env.set(circuit.input.name, input);
    stats.ioSeconds += (performance.now() - t0) / 1000;

    const get = (v: string, e: number): LweCiphertext[][] => {
      const ev = plan.E.get(v)!;
      const base = env.get(v)!;
      if (e === ev) return base;
      const keyName = `${v}@${e}`;
      let r = env.get(keyName);
      if (!r) {
        const ctx = this.budgets.linearContext(ev);
        const f = 2 ** (ev - e);
        r = base.map((row) => row.map((ct) => linearCombination(ctx, [f], [ct])));
        env.set(keyName, r);
      }
      return r;
    };

    for (const step of plan.steps) {
      const consts = plan.constants.get(step.output)!;
      const nOut = consts.length;
      if (step.kind === 'linear') {
        t0 = performance.now();
        const ctx = this.budgets.linearContext(step.E, step.margin);
        const ins = step.inputs.map((v) => get(v, step.E));
        const n0 = ins[0]![0]!.length;
        const { offsets, src, w } = step.terms;
        const out: LweCiphertext[][] = [];
        for (let s = 0; s < n; s++) {
          const row: LweCiphertext[] = new Array(nOut);
          for (let j = 0; j < nOut; j++) {
            const c = consts[j]!;
            if (!Number.isNaN(c)) {
              row[j] = trivialAt(dim, c, step.E);
              continue;
            }
            const a = offsets[j]!;
            const b = offsets[j + 1]!;
            const pick = (q: number) => (src[q]! < n0 ? ins[0]![s]![src[q]!]! : ins[1]![s]![src[q]! - n0]!);
            if (b - a === 1 && w[a] === 1) row[j] = pick(a);
            else {
              const cts: LweCiphertext[] = [];
              for (let q = a; q < b; q++) cts.push(pick(q));
              row[j] = linearCombination(ctx, w.subarray(a, b), cts);
            }
          }
          out.push(row);
          await yielder.maybeYield();
        }
        env.set(step.output, out);
        stats.linearSeconds += (performance.now() - t0) / 1000;
      } else {
        t0 = performance.now();
        const src = get(step.input, step.B);
        const cts: LweCiphertext[] = [];
        const luts: Lut[] = [];
        const where: [number, number][] = [];
        const out: LweCiphertext[][] = [];
        // The plan checked the noise against this lookup's own margin (2^(62−B)); the key's generic check is
        // relative to its own plaintext modulus, so the variance field is capped at what it accepts.
        const cap = key.budget.maxPbsInputVariance;
        for (let s = 0; s < n; s++) {
          const row: LweCiphertext[] = new Array(nOut);
          for (let j = 0; j < nOut; j++) {
            const c = consts[j]!;
            if (!Number.isNaN(c)) row[j] = trivialAt(dim, c, step.E);
            else {
              const ct = src[s]![j]!;
              const ch = step.channelOf[j]!;
              const sc = step.scaleLog2[ch]!;
              cts.push(scaleAddTorus(ct, sc, step.shifts[ch]!, Math.min(ct.variance * 4 ** sc, cap)));
              luts.push(step.luts[step.channelOf[j]!]!);
              where.push([s, j]);
            }
          }
          out.push(row);
        }
        const res = await this.pbsMany(cts, luts);
        res.forEach((ct, i) => (out[where[i]![0]]![where[i]![1]] = ct));
        env.set(step.output, out);
        stats.pbs += cts.length;
        stats.pbsSeconds += (performance.now() - t0) / 1000;
      }
    }
    t0 = performance.now();
    const result = get(circuit.output.value, plan.outputE).flatMap((row) => row.map((ct) => key.serializeCiphertext(ct)));
    stats.ioSeconds += (performance.now() - t0) / 1000;
    this.lastStats = stats;
    return result;
  }

  async close(): Promise<void> {
    await this.pool?.close();
  }
}
