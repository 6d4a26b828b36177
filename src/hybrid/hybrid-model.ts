/**
 * HybridFHEModel: part of a network runs on the user's device, the named modules run on a server on encrypted data.
 *
 * The named modules are swapped (Module.setModule) for `RemoteModule` stubs; the rest of the model is untouched, so
 * the model keeps its own control flow. Modes (`setFheMode`):
 * - 'float'     the original modules (float or QAT) — dev side only;
 * - 'calibrate' the original modules, recording their inputs (what compileModel uses);
 * - 'disable'   each remote module's quantized graph, in clear (float interpreter);
 * - 'simulate'  each remote module's integer circuit, exact, in clear;
 * - 'execute'   through the crypto backend in-process: quantize → encrypt → serialize → server evaluator →
 *               serialize → decrypt → dequantize (no HTTP);
 * - 'remote'    the same over HTTP against `fhenet serve`.
 * Every mode is batched: a remote module receives the whole batch in one request.
 *
 * `forward` runs the model's asynchronous forward (`Module.callAsync`) in every mode: one pass of the model, in which
 * each remote module awaits its answer (k remote calls → k calls, 1 pass). The model's modules that lead to a remote
 * module must therefore implement `forwardAsync` (containers like `Sequential` do; see docs/hybrid.md).
 *
 * Parts: remote-module.ts (the stub), remote-layer.ts (one remote module's circuits and layouts), calibration.ts
 * (compileModel's work), encrypted-calls.ts (execute / remote sessions of circuits), hybrid-artefacts.ts (saved
 * files); the LLM path (dynamic quantization): dynamic-quant.ts, linear-backend.ts, glwe-linear-backend.ts,
 * linear-calls.ts, llm-routes.ts (server), hybrid-llm.ts (the recipe for GPT-2 folders).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Module } from '../nn/module.js';
import { type Activation, valueOf } from '../nn/quant-tensor.js';
import { tidyAsync } from '../nn/tidy-async.js';
import type { FheModel } from '../compiler/fhe-model.js';
import type { Circuit } from '../compiler/circuit.js';
import { ConfigError } from '../util/errors.js';
import { RemoteClient } from './remote-client.js';
import { HybridError } from './errors.js';
import { RemoteModule, type RemoteRunner } from './remote-module.js';
import { RemoteLayer } from './remote-layer.js';
import { CalibrationRecord, type HybridCompileOptions, compileLinearLayer, compileRemoteLayer } from './calibration.js';
import { LinearCalls } from './linear-calls.js';
import { linearServerBackend } from './linear-backend.js';
import { EncryptedCalls, type KeyReport, type RemoteCallReport } from './encrypted-calls.js';
import { compileEmbeddingLayer } from './remote-embedding.js';
import { refuseSharedLocalWeights } from './shared-weights.js';
import { loadClientWeights, readHybridManifest, readLinearSpecs, writeHybridArtefacts, writeLinearArtefacts } from './hybrid-artefacts.js';

export { RemoteModule } from './remote-module.js';
export { outputIsBootstrapped, type HybridCompileOptions } from './calibration.js';
export type { KeyReport, RemoteCallReport } from './encrypted-calls.js';

export type HybridMode = 'disable' | 'simulate' | 'execute' | 'remote' | 'calibrate' | 'float';
const MODES: readonly HybridMode[] = ['disable', 'simulate', 'execute', 'remote', 'calibrate', 'float'];

export interface HybridOptions {
  /** Base URL of an `fhenet serve` instance (remote mode). */
  serverUrl?: string;
  /** Bearer token for a server started with `--token-file` (sent on every request; never stored in artefacts). */
  serverToken?: string;
  /** Model name on the server (default 'model'). */
  modelName?: string;
  /**
   * Keep a remote module whose weight tensor a local module also uses (tied weights: GPT-2's lm_head remote with
   * transformer.wte local, the reference's recipe). Refused by default: the shared matrix is then written to the
   * client folder with the local module, so the remote one protects nothing (shared-weights.ts).
   */
  allowSharedLocalWeights?: boolean;
}

export class HybridFHEModel {
  readonly model: Module;
  readonly moduleNames: readonly string[];
  readonly modelName: string;
  serverUrl: string | undefined;
  private readonly serverToken: string | undefined;
  private mode: HybridMode = 'float';
  private readonly layers = new Map<string, RemoteLayer>();
  private calibration: Map<string, CalibrationRecord> | undefined;
  private http: RemoteClient | undefined;
  private backend = 'simulate';
  private readonly encrypted = new EncryptedCalls(() => ({ http: this.remote(), modelName: this.modelName }));
  private readonly linearCalls = new LinearCalls(
    () => this.backend,
    () => ({ http: this.remote(), modelName: this.modelName }),
    { calls: this.encrypted.calls, keyReports: this.encrypted.keyReports, report: (r) => this.encrypted.report(r) },
  );
  /** Compiled with dynamic quantization (the LLM path): every remote module is an integer linear layer. */
  private dynamic = false;
  /** Asynchronous forwards of this model in progress (a stub called synchronously during one is an error). */
  private asyncForwards = 0;

  constructor(model: Module, moduleNames: string[], opts: HybridOptions = {}) {
    if (!moduleNames.length) throw new ConfigError('HybridFHEModel: give at least one module name');
    const names = [...new Set(moduleNames)];
    for (const a of names) {
      if (a === '') throw new ConfigError('HybridFHEModel: the whole model cannot be remote (module name is empty)');
      for (const b of names) if (a !== b && b.startsWith(`${a}.`)) throw new ConfigError(`HybridFHEModel: remote modules '${a}' and '${b}' overlap`);
    }
    this.model = model;
    this.moduleNames = names;
    this.modelName = opts.modelName ?? 'model';
    if (!/^[A-Za-z0-9_.-]{1,200}$/.test(this.modelName)) throw new ConfigError(`HybridFHEModel: model name '${this.modelName}' must match [A-Za-z0-9_.-]`);
    this.serverUrl = opts.serverUrl;
    this.serverToken = opts.serverToken;
    if (!opts.allowSharedLocalWeights) refuseSharedLocalWeights(model, names);
    model.eval();
    const runner: RemoteRunner = { runSync: (name, x) => this.runSync(name, x), runAsync: (name, x) => this.runAsync(name, x) };
    for (const name of names) {
      const original = model.getModule(name); // throws listing the valid names
      const stub = new RemoteModule(runner, name);
      model.setModule(name, stub);
      // Models written TypeScript-style call children through fields (`this.fc2.call(x)`), which PyTorch resolves
      // through its module registry; point such fields of the owner at the stub too.
      const cut = name.lastIndexOf('.');
      const owner = cut < 0 ? model : model.getModule(name.slice(0, cut));
      for (const k of Object.keys(owner)) if ((owner as unknown as Record<string, unknown>)[k] === original) (owner as unknown as Record<string, unknown>)[k] = stub;
      this.layers.set(name, new RemoteLayer(name, stub, original));
    }
  }

  get fheMode(): HybridMode {
    return this.mode;
  }

  setFheMode(mode: HybridMode): void {
    if (!MODES.includes(mode)) throw new ConfigError(`unknown hybrid mode '${String(mode)}' (${MODES.join(', ')})`);
    this.mode = mode;
  }

  /** Reports of remote/execute calls, oldest first (bounded to the last 10,000). */
  get calls(): RemoteCallReport[] {
    return this.encrypted.calls;
  }

  /** Key generations of execute/remote sessions, oldest first. */
  get keyReports(): KeyReport[] {
    return this.encrypted.keyReports;
  }

  /** Circuits per remote module and input shape (dev side, after compileModel). */
  circuits(): Map<string, Map<string, Circuit>> {
    const out = new Map<string, Map<string, Circuit>>();
    for (const [name, l] of this.layers) {
      const m = new Map<string, Circuit>();
      for (const [k, c] of l.compiled) if (c.fhe) m.set(k, c.fhe.circuit);
      out.set(name, m);
    }
    return out;
  }

  /** FheModel per remote module and input shape (dev side). */
  fheModel(name: string, shape?: string): FheModel {
    const l = this.layer(name);
    const c = shape ? l.compiled.get(shape) : [...l.compiled.values()][0];
    if (!c?.fhe) throw new HybridError(`module '${name}' has no compiled circuit${shape ? ` for shape ${shape}` : ''} on this side`);
    return c.fhe;
  }

  private layer(name: string): RemoteLayer {
    const l = this.layers.get(name);
    if (!l) throw new ConfigError(`'${name}' is not a remote module (remote: ${this.moduleNames.join(', ')})`);
    return l;
  }

  /**
   * One calibration pass over `x` (batched) records every remote module's inputs; each module then becomes a
   * quantized sub-network (subnet.ts), is exported with moduleToGraph and compiled into a circuit. With
   * `dynamicQuantization` (the LLM recipe) each remote module must be a Linear/Conv1D — or an Embedding, computed as
   * Eᵀ·onehot(id) (remote-embedding.ts) — and becomes a per-channel int8 layer whose inputs the client quantizes per
   * token (dynamic-quant.ts); `backend` then names a linear backend
   * ('simulate' or 'glwe'). Leaves the model in 'simulate' mode.
   */
  compileModel(x: tf.Tensor, opts: HybridCompileOptions = {}): void {
    for (const l of this.layers.values()) {
      if (!l.original) throw new HybridError(`module '${l.name}' has no weights on this side (private info was cleared); compile on the model owner's side`);
    }
    const dynamic = opts.dynamicQuantization ?? false;
    if (dynamic && (opts.nBits ?? 8) !== 8) throw new ConfigError(`dynamicQuantization quantizes inputs and weights to 8 bits; nBits ${opts.nBits} is not supported`);
    const backend = opts.backend ?? 'simulate';
    if (dynamic) linearServerBackend(backend); // fails early on an unknown linear backend
    this.backend = backend;
    this.dynamic = dynamic;
    const n = x.shape[0]!;
    const bs = opts.batchSize ?? 256;
    const prev = this.mode;
    const records = new Map([...this.layers.keys()].map((name) => [name, new CalibrationRecord(name, !dynamic)]));
    this.calibration = records;
    this.mode = 'calibrate';
    try {
      for (let s = 0; s < n; s += bs) tf.tidy(() => void this.model.call(tf.slice(x, s, Math.min(bs, n - s))));
    } finally {
      this.mode = prev;
      this.calibration = undefined;
    }
    void this.linearCalls.close();
    for (const l of this.layers.values()) {
      void this.encrypted.dropLocal(l.name);
      l.linear = undefined;
      if (!dynamic && l.lookup !== undefined) throw new ConfigError(`remote embedding '${l.name}' is computed as a product with a one-hot vector: compile with { dynamicQuantization: true }`);
      if (dynamic) (l.lookup !== undefined ? compileEmbeddingLayer : compileLinearLayer)(l, records.get(l.name)!);
      else compileRemoteLayer(l, records.get(l.name)!, { ...opts, modelName: this.modelName, backend: this.backend });
    }
    this.mode = 'simulate';
  }

  /**
   * Writes what a client may have, and what the server needs (hybrid-artefacts.ts), then drops the remote
   * modules' weights and circuits from this object (only 'remote' mode remains). Serve `dir` with
   * `fhenet serve --models <parent of dir>` (dir's folder name is the model name).
   */
  saveAndClearPrivateInfo(dir: string): void {
    if (this.dynamic) writeLinearArtefacts(dir, this.model, [...this.layers.values()], this.modelName, this.backend);
    else writeHybridArtefacts(dir, this.model, [...this.layers.values()], this.modelName, this.backend);
    for (const l of this.layers.values()) {
      l.original?.dispose();
      l.original = undefined;
      if (l.linear) l.linear = { ...l.linear, info: linearServerBackend(this.backend).clientInfo?.(l.linear), weights: new Int8Array(0), bias: new Float32Array(0) };
      for (const c of l.compiled.values()) {
        c.fhe = undefined;
        c.dev = undefined;
      }
    }
    void this.encrypted.dropLocal();
    void this.linearCalls.close();
    this.mode = 'remote';
  }

  /**
   * The client side: `model` is a fresh instance of the same architecture; its local layers are loaded from
   * `dir/client/model.safetensors` and the remote modules are bound to the server (mode 'remote').
   */
  static loadClient(model: Module, dir: string, opts: HybridOptions = {}): HybridFHEModel {
    const manifest = readHybridManifest(dir);
    // The client holds what the folder holds: the shared-weight check is the model owner's (at build time).
    const h = new HybridFHEModel(model, Object.keys(manifest.modules), { ...opts, modelName: opts.modelName ?? manifest.modelName, allowSharedLocalWeights: true });
    h.backend = manifest.backend;
    h.dynamic = manifest.kind === 'linear';
    const specs = h.dynamic ? readLinearSpecs(dir, Object.keys(manifest.modules)) : undefined;
    for (const [name, shapes] of Object.entries(manifest.modules)) {
      const l = h.layer(name);
      l.original?.dispose(); // the fresh instance's untrained weights are of no use
      l.original = undefined;
      if (specs) l.linear = { ...specs.get(name)!, inFeatures: shapes[0]!.moduleShape[0]!, weights: new Int8Array(0), bias: new Float32Array(0) };
      else for (const s of shapes) l.compiled.set(s.key, { moduleShape: s.moduleShape, graphShape: s.graphShape, outShape: s.outShape });
    }
    loadClientWeights(model, dir);
    h.mode = 'remote';
    return h;
  }

  /**
   * Runs the model in the current mode: one asynchronous pass (`model.callAsync`), each remote module awaiting its
   * answer. `x` is a batch ([n, ...]); the result is a new tensor the caller owns. Intermediate tensors are freed
   * (`tidyAsync`: asynchronous forwards of the process run one at a time).
   */
  forward(x: tf.Tensor): Promise<tf.Tensor> {
    return tidyAsync(async () => {
      this.asyncForwards++;
      try {
        return valueOf(await this.model.callAsync(x));
      } finally {
        this.asyncForwards--;
      }
    });
  }

  /** A stub's answer in the synchronous modes (calibration, and `model.call` in float/disable/simulate). */
  private runSync(name: string, x: Activation): Activation {
    if (this.asyncForwards > 0) throw this.syncCallError(name);
    const mode = this.mode;
    if (mode === 'execute' || mode === 'remote') {
      throw new HybridError(`mode '${mode}' computes asynchronously: run the model through HybridFHEModel.forward (or model.callAsync), not model.call`);
    }
    return this.answerInClear(this.layer(name), mode, x);
  }

  /** A stub's answer in every mode. */
  private async runAsync(name: string, x: Activation): Promise<Activation> {
    const l = this.layer(name);
    const mode = this.mode;
    if (mode !== 'execute' && mode !== 'remote') return this.answerInClear(l, mode, x);
    if (l.linear) {
      const { tokens, input, toActivation } = l.prepareLinear(valueOf(x));
      const out = mode === 'execute' ? await this.linearCalls.execute(this.modelName, name, l.linear, input, tokens) : await this.linearCalls.remote(name, l.linear, input, tokens);
      return toActivation(out);
    }
    const call = l.prepare(valueOf(x));
    const out = mode === 'execute' ? await this.encrypted.execute(name, call.key, call.compiled.dev, call.input, call.n) : await this.encrypted.remote(name, call.key, call.input, call.n);
    return call.toActivation(out);
  }

  private answerInClear(l: RemoteLayer, mode: Exclude<HybridMode, 'execute' | 'remote'>, x: Activation): Activation {
    if (mode === 'float' || mode === 'calibrate') {
      if (!l.original) throw new HybridError(`mode '${mode}' needs the weights of '${l.name}', which were cleared on this side; use 'remote'`);
      if (mode === 'calibrate') this.calibration?.get(l.name)?.add(x);
      return l.original.call(x);
    }
    if (l.linear) {
      const { tokens, input, toActivation } = l.prepareLinear(valueOf(x));
      return toActivation(l.runLinearClear(mode, input, tokens));
    }
    const call = l.prepare(valueOf(x));
    return call.toActivation(l.runClear(mode, call));
  }

  /** Names the modules on the way to `name` that have no forwardAsync of their own (why the stub was called synchronously). */
  private syncCallError(name: string): ConfigError {
    const parts = name.split('.');
    const missing: string[] = [];
    for (let i = 0; i < parts.length; i++) {
      const p = parts.slice(0, i).join('.');
      const m = this.model.getModule(p);
      if (!m.hasOwnForwardAsync()) missing.push(`${m.constructor.name} '${p}'`);
    }
    return new ConfigError(
      `remote module '${name}' was called synchronously (module.call) during HybridFHEModel.forward; ` +
        `give ${missing.length ? missing.join(', ') : 'the module that calls it'} a forwardAsync that awaits child.callAsync(x) (docs/hybrid.md, "Asynchronous forward")`,
    );
  }

  private remote(): RemoteClient {
    if (!this.serverUrl) throw new HybridError("mode 'remote' needs a serverUrl (new HybridFHEModel(model, names, { serverUrl }))");
    if (!this.http || this.http.baseUrl !== this.serverUrl.replace(/\/+$/, '')) this.http = new RemoteClient(this.serverUrl, { token: this.serverToken });
    return this.http;
  }

  /** The uid a remote module/shape registered on the server (dynamic quantization: the one uid of every layer; undefined before the first remote forward). */
  uidOf(name: string, shape: string): Promise<string | undefined> {
    this.layer(name);
    return this.dynamic ? this.linearCalls.uid() : this.encrypted.uidOf(name, shape);
  }

  /** Forget server sessions (keys are uploaded again at the next remote forward). */
  resetRemoteSessions(): void {
    this.encrypted.resetRemoteSessions();
  }

  /** Releases keys and worker threads of 'execute' (local server) and the client keys of 'remote' sessions. */
  async close(): Promise<void> {
    await this.encrypted.close();
    await this.linearCalls.close();
  }
}
