/**
 * `fhe: 'execute'`: compiled circuits (src/compiler/circuit.ts) run on TFHE ciphertexts.
 *
 * - client (`TfheCircuitClient`, node-tfhe; the client key never leaves its `TfheClient`): key generation, encryption
 *   of the quantized input integers at the input's encoding (seeded ciphertexts), decryption of the outputs;
 * - server (`TfheCircuitServer`, executor-server.ts; no node-tfhe): evaluation with the client's evaluation key;
 * - `TfheCircuitExecutor`: both in one process, the `CircuitExecutor` that `FheModel.forward(x, n, { fhe: 'execute' })`
 *   uses. Keys are generated once per parameter set and cached.
 *
 * Encodings, tables and noise checks: executor-plan.ts and docs/tfhe.md ("Executing circuits").
 */
import type { Circuit } from '../compiler/circuit.js';
import { size } from '../compiler/circuit.js';
import type { CircuitExecutor } from '../compiler/fhe-model.js';
import { TfheClient } from '../tfhe/client.js';
import { TfheParameterError } from '../tfhe/errors.js';
import { type CircuitPlan, type ExecutorPlanOptions, planCircuit, planCircuitWith } from './executor-plan.js';
import { type CircuitServerOptions, type RunStats, TfheCircuitServer } from './executor-server.js';
import { namedParams } from '../tfhe/params.js';

export { planCircuit, planCircuitWith, refusedSets, buildScaledLut, EXECUTOR_SETS, type CircuitPlan, type ExecutorPlanOptions } from './executor-plan.js';
export { TfheCircuitServer, type CircuitServerOptions, type RunStats } from './executor-server.js';

/** The client half: owns the secret key (inside a TfheClient), encrypts inputs and decrypts outputs. */
export class TfheCircuitClient {
  private readonly plans = new WeakMap<Circuit, CircuitPlan>();

  constructor(
    readonly client: TfheClient,
    private readonly opts: Omit<ExecutorPlanOptions, 'params'> = {},
  ) {}

  /** A new key for the parameter set the circuit needs (the smallest named set that fits, unless opts.params). */
  static forCircuit(circuit: Circuit, opts: ExecutorPlanOptions = {}): TfheCircuitClient {
    const plan = planCircuit(circuit, opts);
    const c = new TfheCircuitClient(TfheClient.create(plan.params.name), opts);
    c.plans.set(circuit, plan);
    return c;
  }

  get paramsName(): string {
    return this.client.params.name;
  }

  plan(circuit: Circuit): CircuitPlan {
    let p = this.plans.get(circuit);
    if (!p) this.plans.set(circuit, (p = planCircuitWith(circuit, namedParams(this.paramsName), this.opts)));
    return p;
  }

  /** The evaluation key (TFHE-rs CompressedServerKey bytes) to send to the server. */
  serverKey(): Uint8Array {
    return this.client.compressedServerKey();
  }

  /** Encrypt n samples of quantized input integers ([n, ...input shape]) as seeded ciphertexts, sample-major. */
  encryptInputs(circuit: Circuit, ints: ArrayLike<number>, n: number): Uint8Array[] {
    const per = size(circuit.input.shape);
    if (ints.length !== n * per) throw new TfheParameterError(`encryptInputs: ${ints.length} integers do not make ${n} inputs of ${per}`);
    const log2Delta = 63 - this.plan(circuit).inputE;
    const out: Uint8Array[] = [];
    for (let i = 0; i < ints.length; i++) out.push(this.client.encryptCompressedScaled(ints[i]!, log2Delta));
    return out;
  }

  /** Decrypt the server's n × (output size) ciphertexts to the output integers. */
  decryptOutputs(circuit: Circuit, cts: readonly Uint8Array[], n: number): Float64Array {
    const per = size(circuit.output.shape);
    if (cts.length !== n * per) throw new TfheParameterError(`decryptOutputs: ${cts.length} ciphertexts do not make ${n} outputs of ${per}`);
    const E = this.plan(circuit).outputE;
    return Float64Array.from(cts, (b) => this.client.decryptScaled(b, 63 - E, E + 1));
  }

  dispose(): void {
    this.client.dispose();
  }
}

export interface TfheExecutorOptions extends ExecutorPlanOptions {
  /** KS-PBS worker threads (default 1; > 1 uses a PbsPool). */
  threads?: number;
  backend?: CircuitServerOptions['backend'];
  /** Samples evaluated together (their lookups share PBS batches); default 32. */
  batch?: number;
  /** Run the KS-PBS elsewhere (e.g. `PbsQueueClient.factory` of src/scale: worker processes on a Redis queue). */
  pbsRunner?: CircuitServerOptions['pbsRunner'];
}

/** Figures of the last run (sums over its batches). */
export interface ExecuteStats extends RunStats {
  params: string;
  keygenSeconds: number;
  serverKeyBytes: number;
  encryptSeconds: number;
  serverSeconds: number;
  decryptSeconds: number;
  bytesUp: number;
  bytesDown: number;
}

interface Session {
  client: TfheCircuitClient;
  server: TfheCircuitServer;
  keygenSeconds: number;
  keyBytes: number;
}

/**
 * Local 'execute': plays client and server in one process. Key generation (node-tfhe) and key expansion happen once
 * per parameter set; call close() to stop worker threads and free the keys.
 */
export class TfheCircuitExecutor implements CircuitExecutor {
  private readonly sessions = new Map<string, Promise<Session>>();
  private readonly plans = new WeakMap<Circuit, CircuitPlan>();
  lastStats: ExecuteStats | undefined;

  constructor(readonly opts: TfheExecutorOptions = {}) {}

  plan(circuit: Circuit): CircuitPlan {
    let p = this.plans.get(circuit);
    if (!p) this.plans.set(circuit, (p = planCircuit(circuit, this.opts)));
    return p;
  }

  /** Client key + server for a set (created on first use). */
  session(paramsName: string): Promise<Session> {
    let s = this.sessions.get(paramsName);
    if (!s) {
      s = (async () => {
        const t0 = performance.now();
        const { params: _p, threads, backend, batch: _b, pbsRunner, ...planOpts } = this.opts;
        const client = new TfheCircuitClient(TfheClient.create(paramsName), planOpts);
        const keyBytes = client.serverKey();
        const keygenSeconds = (performance.now() - t0) / 1000;
        const server = await TfheCircuitServer.create(keyBytes, {
          params: paramsName,
          ...(threads !== undefined ? { threads } : {}),
          ...(backend ? { backend } : {}),
          ...(pbsRunner ? { pbsRunner } : {}),
          ...(planOpts.log2PError !== undefined ? { log2PError: planOpts.log2PError } : {}),
          ...(planOpts.outputHeadroomBits !== undefined ? { outputHeadroomBits: planOpts.outputHeadroomBits } : {}),
        });
        return { client, server, keygenSeconds, keyBytes: keyBytes.length };
      })();
      this.sessions.set(paramsName, s);
    }
    return s;
  }

  async run(circuit: Circuit, inputInts: Float64Array, n: number): Promise<Float64Array> {
    const plan = this.plan(circuit);
    const s = await this.session(plan.params.name);
    const perIn = size(circuit.input.shape);
    const perOut = size(circuit.output.shape);
    const out = new Float64Array(n * perOut);
    const batch = Math.max(1, this.opts.batch ?? 32);
    const st: ExecuteStats = {
      params: plan.params.name, keygenSeconds: s.keygenSeconds, serverKeyBytes: s.keyBytes,
      samples: n, pbs: 0, pbsSeconds: 0, linearSeconds: 0, ioSeconds: 0,
      encryptSeconds: 0, serverSeconds: 0, decryptSeconds: 0, bytesUp: 0, bytesDown: 0,
    };
    for (let i = 0; i < n; i += batch) {
      const b = Math.min(batch, n - i);
      let t0 = performance.now();
      const cts = s.client.encryptInputs(circuit, inputInts.subarray(i * perIn, (i + b) * perIn), b);
      st.encryptSeconds += (performance.now() - t0) / 1000;
      st.bytesUp += cts.reduce((a, c) => a + c.length, 0);
      t0 = performance.now();
      const res = await s.server.runEncrypted(circuit, cts, b);
      st.serverSeconds += (performance.now() - t0) / 1000;
      const r = s.server.lastStats!;
      st.pbs += r.pbs;
      st.pbsSeconds += r.pbsSeconds;
      st.linearSeconds += r.linearSeconds;
      st.ioSeconds += r.ioSeconds;
      st.bytesDown += res.reduce((a, c) => a + c.length, 0);
      t0 = performance.now();
      out.set(s.client.decryptOutputs(circuit, res, b), i * perOut);
      st.decryptSeconds += (performance.now() - t0) / 1000;
    }
    this.lastStats = st;
    return out;
  }

  async close(): Promise<void> {
    for (const p of this.sessions.values()) {
      const s = await p;
      await s.server.close();
      s.client.dispose();
    }
    this.sessions.clear();
  }
}
