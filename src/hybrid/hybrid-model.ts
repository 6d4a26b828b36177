/**
 * HybridFHEModel: part of a network runs on the user's device, the named modules run on a server on encrypted data.
 *
 * The named modules are swapped (Module.setModule) for `RemoteModule` stubs; the rest of the model is untouched, so
 * `forward` keeps the model's own control flow. Modes (`setFheMode`):
 * - 'float'     the original modules (float or QAT) — dev side only;
 * - 'calibrate' the original modules, recording their inputs (what compileModel uses);
 * - 'disable'   each remote module's quantized graph, in clear (float interpreter);
 * - 'simulate'  each remote module's integer circuit, exact, in clear;
 * - 'execute'   through the crypto backend in-process: quantize → encrypt → serialize → server evaluator →
 *               serialize → decrypt → dequantize (no HTTP);
 * - 'remote'    the same over HTTP against `fhenet serve`.
 * Every mode is batched: a remote module receives the whole batch in one request.
 *
 * Module.forward is synchronous but remote calls are not. `forward` in 'execute'/'remote' therefore replays the
 * model: a stub whose result is not known yet throws a `PendingRemote` carrying its input; forward runs that call,
 * stores the result and runs the model again, until every remote call of the pass is answered (k remote calls →
 * k + 1 passes of the cheap local layers). A replayed stub checks that its input is bit-identical to the recorded
 * one, so a non-deterministic model is an error rather than a silent mismatch.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { Module } from '../nn/module.js';
import { type Activation, QuantTensor, valueOf } from '../nn/quant-tensor.js';
import { decodeTensors, saveModule } from '../nn/checkpoint.js';
import { moduleToGraph } from '../export/to-graph.js';
import { FheModel } from '../compiler/fhe-model.js';
import type { RoundingOption } from '../compiler/compile.js';
import { type Circuit, size } from '../compiler/circuit.js';
import { dequantizeOutput, quantizeInput, simulate } from '../compiler/simulate.js';
import { runGraph } from '../onnx/interpret.js';
import { ConfigError, StateDictError } from '../util/errors.js';
import { FHEModelClient, FHEModelDev, FHEModelServer, shapeKey } from './deployment.js';
import { RemoteClient } from './remote-client.js';
import { type InputQuantMeta, buildSubnet } from './subnet.js';
import { HybridError, RemoteCallError } from './errors.js';
import { writeFileAtomic } from './fsutil.js';
import { FHENET_VERSION, HYBRID_MANIFEST_FORMAT, checkVersion } from './version.js';

export type HybridMode = 'disable' | 'simulate' | 'execute' | 'remote' | 'calibrate' | 'float';
const MODES: readonly HybridMode[] = ['disable', 'simulate', 'execute', 'remote', 'calibrate', 'float'];

export interface HybridOptions {
  /** Base URL of an `fhenet serve` instance (remote mode). */
  serverUrl?: string;
  /** Bearer token for a server started with `--token-file` (sent on every request; never stored in artefacts). */
  serverToken?: string;
  /** Model name on the server (default 'model'). */
  modelName?: string;
}

export interface HybridCompileOptions {
  /** Bits of post-training quantization for float modules and of input quantizers of float inputs (default 8). */
  nBits?: number;
  /** Bits of the output quantizer appended to remote modules that do not end with one (default nBits). */
  outputBits?: number;
  roundingThresholdBits?: RoundingOption;
  maxTluBits?: number;
  /** Crypto backend of the artefacts (default 'simulate'). */
  backend?: string;
  /**
   * Allow a remote circuit whose output is a linear accumulator (not a table lookup). Such an output leaks the
   * module's weights to the client under TFHE (docs/hybrid.md); off by default. When set, no output quantizer is
   * appended.
   */
  allowLinearOutput?: boolean;
  /** Calibration batch size (default 256). */
  batchSize?: number;
}

/** Per key generation (one per remote module and shape, at the first execute/remote forward). */
export interface KeyReport {
  module: string;
  shape: string;
  /** Serialized evaluation-key bytes (uploaded once per uid in 'remote'). */
  bytes: number;
  keygenMs: number;
  /** /add_key round trip ('remote') or the local key load ('execute'). */
  uploadMs: number;
}

/** Per remote call: what crossed the wire and how long it took. */
export interface RemoteCallReport {
  module: string;
  shape: string;
  n: number;
  bytesSent: number;
  bytesReceived: number;
  /** Round trip of the /compute request. */
  httpMs: number;
  /** Quantize + encrypt + serialize, and deserialize + decrypt + dequantize, on the client. */
  encryptMs: number;
  decryptMs: number;
  totalMs: number;
}

interface Compiled {
  /** Per-sample shape the module sees (NHWC for images). */
  moduleShape: number[];
  /** Per-sample shape of the circuit input (CHW for images). */
  graphShape: number[];
  /** Per-sample output shape the module returns (NHWC for images). */
  outShape: number[];
  fhe?: FheModel;
  dev?: FHEModelDev;
}

interface RemoteState {
  name: string;
  stub: RemoteModule;
  original?: Module;
  calib: Map<string, { shape: number[]; chunks: Float32Array[]; quant?: InputQuantMeta }>;
  compiled: Map<string, Compiled>;
  local: Map<string, { client: FHEModelClient; server: FHEModelServer; key: unknown }>;
  sessions: Map<string, Promise<{ client: FHEModelClient; uid: string }>>;
}

class PendingRemote extends Error {
  constructor(
    readonly state: RemoteState,
    readonly key: string,
    readonly input: Float32Array,
    readonly n: number,
  ) {
    super(`remote call of '${state.name}' pending`);
  }
}

/** The stand-in for a remote module inside the client model: no parameters, no weights. */
export class RemoteModule extends Module {
  constructor(
    private readonly owner: HybridFHEModel,
    readonly remoteName: string,
  ) {
    super();
  }

  forward(x: Activation): Activation {
    return this.owner._remoteForward(this.remoteName, x);
  }
}

const toChw = (s: number[]) => (s.length === 3 ? [s[2]!, s[0]!, s[1]!] : [...s]);
const toHwc = (s: number[]) => (s.length === 3 ? [s[1]!, s[2]!, s[0]!] : [...s]);

function sameData(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return false;
  return true;
}

/** Follows reshapes back from the circuit output: true when the output is produced by a table lookup. */
export function outputIsBootstrapped(c: Circuit): boolean {
  let v = c.output.value;
  for (;;) {
    const op = c.ops.find((o) => o.output === v);
    if (!op) return false;
    if (op.kind === 'tlu') return true;
    if (op.kind === 'reshape' || op.kind === 'transpose') v = op.input;
    else return false;
  }
}

export class HybridFHEModel {
  readonly model: Module;
  readonly moduleNames: readonly string[];
  readonly modelName: string;
  serverUrl: string | undefined;
  private readonly serverToken: string | undefined;
  private mode: HybridMode = 'float';
  private readonly states = new Map<string, RemoteState>();
  private replay: { results: { input: Float32Array; output: tf.Tensor | undefined; data: Float32Array; shape: number[] }[]; cursor: number } | undefined;
  private http: RemoteClient | undefined;
  private backend = 'simulate';
  /** Reports of remote/execute calls, oldest first (bounded to the last 10,000). */
  readonly calls: RemoteCallReport[] = [];
  /** Key generations of execute/remote sessions, oldest first. */
  readonly keyReports: KeyReport[] = [];

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
    model.eval();
    for (const name of names) {
      const original = model.getModule(name); // throws listing the valid names
      const stub = new RemoteModule(this, name);
      model.setModule(name, stub);
      // Models written TypeScript-style call children through fields (`this.fc2.call(x)`), which PyTorch resolves
      // through its module registry; point such fields of the owner at the stub too.
      const cut = name.lastIndexOf('.');
      const owner = cut < 0 ? model : model.getModule(name.slice(0, cut));
      for (const k of Object.keys(owner)) if ((owner as unknown as Record<string, unknown>)[k] === original) (owner as unknown as Record<string, unknown>)[k] = stub;
      this.states.set(name, { name, stub, original, calib: new Map(), compiled: new Map(), local: new Map(), sessions: new Map() });
    }
  }

  get fheMode(): HybridMode {
    return this.mode;
  }

  setFheMode(mode: HybridMode): void {
    if (!MODES.includes(mode)) throw new ConfigError(`unknown hybrid mode '${String(mode)}' (${MODES.join(', ')})`);
    this.mode = mode;
  }

  /** Circuits per remote module and input shape (dev side, after compileModel). */
  circuits(): Map<string, Map<string, Circuit>> {
    const out = new Map<string, Map<string, Circuit>>();
    for (const [name, st] of this.states) {
      const m = new Map<string, Circuit>();
      for (const [k, c] of st.compiled) if (c.fhe) m.set(k, c.fhe.circuit);
      out.set(name, m);
    }
    return out;
  }

  /** FheModel per remote module and input shape (dev side). */
  fheModel(name: string, shape?: string): FheModel {
    const st = this.state(name);
    const c = shape ? st.compiled.get(shape) : [...st.compiled.values()][0];
    if (!c?.fhe) throw new HybridError(`module '${name}' has no compiled circuit${shape ? ` for shape ${shape}` : ''} on this side`);
    return c.fhe;
  }

  private state(name: string): RemoteState {
    const st = this.states.get(name);
    if (!st) throw new ConfigError(`'${name}' is not a remote module (remote: ${this.moduleNames.join(', ')})`);
    return st;
  }

  /**
   * One calibration pass over `x` (batched) records every remote module's inputs; each module then becomes a
   * quantized sub-network (subnet.ts), is exported with moduleToGraph and compiled into a circuit. Leaves the
   * model in 'simulate' mode.
   */
  compileModel(x: tf.Tensor, opts: HybridCompileOptions = {}): void {
    const nBits = opts.nBits ?? 8;
    const outputBits = opts.outputBits ?? nBits;
    this.backend = opts.backend ?? 'simulate';
    for (const st of this.states.values()) {
      if (!st.original) throw new HybridError(`module '${st.name}' has no weights on this side (private info was cleared); compile on the model owner's side`);
      st.calib.clear();
    }
    const n = x.shape[0]!;
    const bs = opts.batchSize ?? 256;
    const prev = this.mode;
    this.mode = 'calibrate';
    try {
      for (let s = 0; s < n; s += bs) {
        tf.tidy(() => {
          this.model.call(tf.slice(x, s, Math.min(bs, n - s)));
        });
      }
    } finally {
      this.mode = prev;
    }
    for (const st of this.states.values()) {
      if (!st.calib.size) throw new HybridError(`remote module '${st.name}' was never called during calibration`);
      st.compiled.clear();
      this.dropLocal(st);
      for (const [key, cal] of st.calib) {
        const total = cal.chunks.reduce((a, c) => a + c.length, 0);
        const data = new Float32Array(total);
        let off = 0;
        for (const c of cal.chunks) {
          data.set(c, off);
          off += c.length;
        }
        const count = total / size(cal.shape);
        const subnet = buildSubnet(st.name, st.original!, data, count, cal.shape, cal.quant, { nBits, outputBits, outputQuant: !opts.allowLinearOutput });
        const graph = moduleToGraph(subnet, cal.shape, { graphName: `${this.modelName}.${st.name}` });
        const graphData = cal.shape.length === 3 ? tf.tidy(() => tf.transpose(tf.tensor(data, [count, ...cal.shape]), [0, 3, 1, 2]).dataSync() as Float32Array) : data;
        const fhe = FheModel.compile(graph, { data: graphData, n: count }, { roundingThresholdBits: opts.roundingThresholdBits, maxTluBits: opts.maxTluBits, batchSize: opts.batchSize });
        if (!opts.allowLinearOutput && !outputIsBootstrapped(fhe.circuit)) {
          throw new HybridError(
            `remote module '${st.name}': the circuit output is a linear accumulator, which would let a client solve for the weights; end the module with a quantizer or pass allowLinearOutput`,
          );
        }
        const graphShape = toChw(cal.shape);
        const outShape = toHwc(fhe.circuit.output.shape);
        const dev = new FHEModelDev('', fhe.circuit, { modelName: this.modelName, moduleName: st.name, backend: this.backend });
        st.compiled.set(shapeKey(graphShape), { moduleShape: cal.shape, graphShape, outShape, fhe, dev });
      }
      st.calib.clear();
    }
    this.mode = 'simulate';
  }

  /**
   * Writes what a client may have, and what the server needs:
   *   dir/client/model.safetensors  the model's state dict without any remote module's parameters or buffers
   *   dir/client/hybrid.json        remote module names and shapes, versions
   *   dir/<module>/<shape>/server.fhe, client.json   per remote module and input shape (FHEModelDev)
   * then drops the remote modules' weights and circuits from this object (only 'remote' mode remains).
   * Serve `dir` with `fhenet serve --models <parent of dir>` (dir's folder name is the model name).
   */
  saveAndClearPrivateInfo(dir: string): void {
    for (const st of this.states.values()) if (!st.compiled.size) throw new HybridError(`module '${st.name}' is not compiled; call compileModel first`);
    const manifest = {
      format: HYBRID_MANIFEST_FORMAT,
      fhenetVersion: FHENET_VERSION,
      modelName: this.modelName,
      backend: this.backend,
      modules: Object.fromEntries(
        [...this.states.values()].map((st) => [
          st.name,
          [...st.compiled].map(([key, c]) => ({ key, moduleShape: c.moduleShape, graphShape: c.graphShape, outShape: c.outShape })),
        ]),
      ),
    };
    for (const st of this.states.values()) {
      for (const [key, c] of st.compiled) new FHEModelDev(path.join(dir, st.name, key), c.fhe!.circuit, c.dev!.info).save();
    }
    saveModule(path.join(dir, 'client', 'model.safetensors'), this.model, { format: HYBRID_MANIFEST_FORMAT, remote: this.moduleNames.join(',') });
    writeFileAtomic(path.join(dir, 'client', 'hybrid.json'), JSON.stringify(manifest, null, 1));
    for (const st of this.states.values()) {
      st.original?.dispose();
      st.original = undefined;
      for (const c of st.compiled.values()) {
        c.fhe = undefined;
        c.dev = undefined;
      }
      this.dropLocal(st);
    }
    this.mode = 'remote';
  }

  /**
   * The client side: `model` is a fresh instance of the same architecture; its local layers are loaded from
   * `dir/client/model.safetensors` and the remote modules are bound to the server (mode 'remote').
   */
  static loadClient(model: Module, dir: string, opts: HybridOptions = {}): HybridFHEModel {
    const mpath = path.join(dir, 'client', 'hybrid.json');
    if (!fs.existsSync(mpath)) throw new HybridError(`${mpath} does not exist (write it with saveAndClearPrivateInfo)`, 404, 'not_found');
    const manifest = JSON.parse(fs.readFileSync(mpath, 'utf8')) as {
      format: string;
      fhenetVersion: string;
      modelName: string;
      backend: string;
      modules: Record<string, { key: string; moduleShape: number[]; graphShape: number[]; outShape: number[] }[]>;
    };
    checkVersion(mpath, manifest.format, HYBRID_MANIFEST_FORMAT, manifest.fhenetVersion);
    const h = new HybridFHEModel(model, Object.keys(manifest.modules), { ...opts, modelName: opts.modelName ?? manifest.modelName });
    h.backend = manifest.backend;
    for (const [name, shapes] of Object.entries(manifest.modules)) {
      const st = h.state(name);
      st.original?.dispose(); // the fresh instance's untrained weights are of no use
      st.original = undefined;
      for (const s of shapes) st.compiled.set(s.key, { moduleShape: s.moduleShape, graphShape: s.graphShape, outShape: s.outShape });
    }
    const { tensors } = decodeTensors(new Uint8Array(fs.readFileSync(path.join(dir, 'client', 'model.safetensors'))));
    try {
      const own = [...model.stateDict().keys()];
      const missing = own.filter((k) => !tensors.has(k));
      if (missing.length) throw new StateDictError(`client model file lacks ${missing.join(', ')}`);
      model.loadStateDict(tensors, { strict: true });
    } finally {
      for (const t of tensors.values()) t.dispose();
    }
    h.mode = 'remote';
    return h;
  }

  /** Runs the model in the current mode. `x` is a batch ([n, ...]); the result is a new tensor the caller owns. */
  async forward(x: tf.Tensor): Promise<tf.Tensor> {
    if (this.mode !== 'execute' && this.mode !== 'remote') return tf.tidy(() => valueOf(this.model.call(x)));
    const results: NonNullable<typeof this.replay>['results'] = [];
    try {
      for (let pass = 0; ; pass++) {
        this.replay = { results, cursor: 0 };
        try {
          return tf.tidy(() => valueOf(this.model.call(x)));
        } catch (e) {
          if (!(e instanceof PendingRemote)) throw e;
          const out = await this.runEncrypted(e.state, e.key, e.input, e.n);
          const c = e.state.compiled.get(e.key)!;
          results.push({ input: e.input, output: undefined, data: out, shape: [e.n, ...c.outShape] });
        } finally {
          this.replay = undefined;
        }
      }
    } finally {
      for (const r of results) r.output?.dispose();
    }
  }

  /** Called by the stubs inside model.forward. */
  _remoteForward(name: string, x: Activation): Activation {
    const st = this.state(name);
    const mode = this.mode;
    if (mode === 'float' || mode === 'calibrate') {
      if (!st.original) throw new HybridError(`mode '${mode}' needs the weights of '${name}', which were cleared on this side; use 'remote'`);
      if (mode === 'calibrate') this.record(st, x);
      return st.original.call(x);
    }
    const v = valueOf(x);
    const n = v.shape[0]!;
    const moduleShape = v.shape.slice(1);
    const key = shapeKey(toChw(moduleShape));
    const c = st.compiled.get(key);
    if (!c) {
      throw new HybridError(`remote module '${name}' was not compiled for input shape [${moduleShape}] (compiled: ${[...st.compiled.keys()].join(', ') || 'none'})`);
    }
    const graphIn = (v.rank === 4 ? tf.transpose(v, [0, 3, 1, 2]) : v).dataSync() as Float32Array;
    const fromGraph = (out: Float32Array): tf.Tensor => {
      const outChw = toChw(c.outShape);
      const t = tf.tensor(out, [n, ...outChw]);
      return outChw.length === 3 ? tf.transpose(t, [0, 2, 3, 1]) : t;
    };
    if (mode === 'disable' || mode === 'simulate') {
      if (!c.fhe) throw new HybridError(`mode '${mode}' needs the circuit of '${name}', which was cleared on this side; use 'remote'`);
      if (mode === 'disable') {
        const g = c.fhe.graph;
        const r = runGraph(g, { [g.inputs[0]!.name]: { dims: [n, ...c.graphShape], data: graphIn } }).outputs.get(g.outputs[0]!.name)!;
        return fromGraph(r.data instanceof Float32Array ? r.data : Float32Array.from(r.data as ArrayLike<number>));
      }
      const circuit = c.fhe.circuit;
      return fromGraph(dequantizeOutput(circuit, simulate(circuit, quantizeInput(circuit, graphIn), n).output));
    }
    // execute / remote: replay
    const rp = this.replay;
    if (!rp) throw new HybridError(`mode '${mode}' runs through HybridFHEModel.forward (async), not model.call`);
    const i = rp.cursor++;
    const rec = rp.results[i];
    if (!rec) throw new PendingRemote(st, key, Float32Array.from(graphIn), n);
    if (!sameData(rec.input, graphIn)) throw new HybridError(`remote module '${name}': input changed between replays (is the model deterministic and in eval mode?)`);
    const t = fromGraph(rec.data);
    return t;
  }

  private record(st: RemoteState, x: Activation): void {
    const v = valueOf(x);
    const shape = v.shape.slice(1);
    const key = shapeKey(shape);
    let cal = st.calib.get(key);
    let quant: InputQuantMeta | undefined;
    if (x instanceof QuantTensor) {
      if (x.scale.size !== 1) throw new HybridError(`remote module '${st.name}': its input has per-channel scales; remote inputs need one scale`);
      quant = { scale: x.scale.dataSync()[0]!, bitWidth: x.bitWidth, signed: x.signed, narrow: x.narrow };
    }
    if (!cal) st.calib.set(key, (cal = { shape, chunks: [], quant }));
    else if (JSON.stringify(cal.quant) !== JSON.stringify(quant)) throw new HybridError(`remote module '${st.name}': its input quantization changed during calibration`);
    cal.chunks.push(Float32Array.from(v.dataSync() as Float32Array));
  }

  private async runEncrypted(st: RemoteState, key: string, input: Float32Array, n: number): Promise<Float32Array> {
    const t0 = performance.now();
    if (this.mode === 'execute') {
      let loc = st.local.get(key);
      if (!loc) {
        const c = st.compiled.get(key)!;
        if (!c.dev) throw new HybridError(`'execute' needs the circuit of '${st.name}', which was cleared on this side; use 'remote'`);
        const client = FHEModelClient.fromArtefact(c.dev.clientArtefact);
        const server = FHEModelServer.fromBytes(c.dev.serverBytes);
        const k0 = performance.now();
        await client.generatePrivateAndEvaluationKeysAsync();
        const evalKey = client.getSerializedEvaluationKeys();
        const k1 = performance.now();
        loc = { client, server, key: await server.loadKeyAsync(evalKey) };
        st.local.set(key, loc);
        this.keyReports.push({ module: st.name, shape: key, bytes: evalKey.length, keygenMs: k1 - k0, uploadMs: performance.now() - k1 });
      }
      const t0e = performance.now();
      const ct = loc.client.quantizeEncryptSerialize(input, n);
      const t1 = performance.now();
      const res = await loc.server.runAsync(ct, { handle: loc.key });
      const t2 = performance.now();
      const out = loc.client.deserializeDecryptDequantize(res, n).output;
      const t3 = performance.now();
      this.report({ module: st.name, shape: key, n, bytesSent: ct.length, bytesReceived: res.length, httpMs: t2 - t1, encryptMs: t1 - t0e, decryptMs: t3 - t2, totalMs: t3 - t0e });
      return out;
    }
    const http = this.remote();
    let ses = st.sessions.get(key);
    if (!ses) {
      ses = (async () => {
        const client = FHEModelClient.fromArtefact(await http.getClient(this.modelName, st.name, key));
        const k0 = performance.now();
        await client.generatePrivateAndEvaluationKeysAsync();
        const evalKey = client.getSerializedEvaluationKeys();
        const k1 = performance.now();
        const uid = await http.addKey(this.modelName, st.name, key, evalKey);
        this.keyReports.push({ module: st.name, shape: key, bytes: evalKey.length, keygenMs: k1 - k0, uploadMs: performance.now() - k1 });
        return { client, uid };
      })();
      st.sessions.set(key, ses);
      ses.catch(() => st.sessions.delete(key));
    }
    const { client, uid } = await ses;
    const t0b = performance.now();
    const ct = client.quantizeEncryptSerialize(input, n);
    const t1 = performance.now();
    let res: Awaited<ReturnType<RemoteClient['compute']>>;
    try {
      res = await http.compute(uid, this.modelName, st.name, key, ct);
    } catch (e) {
      // The server deletes keys to stay within its storage budget or after a time to live: upload the same
      // evaluation keys again (no new key generation) under a new uid and retry once.
      if (!(e instanceof RemoteCallError && e.code === 'unknown_uid')) throw e;
      // Concurrent forwards that hit the same deleted uid share one upload.
      const current = st.sessions.get(key);
      const shared = current && current !== ses ? await current.catch(() => undefined) : undefined;
      let again = shared?.client === client ? current : undefined;
      if (!again) {
        again = (async () => {
          const evalKey = client.getSerializedEvaluationKeys();
          const k1 = performance.now();
          const fresh = await http.addKey(this.modelName, st.name, key, evalKey);
          this.keyReports.push({ module: st.name, shape: key, bytes: evalKey.length, keygenMs: 0, uploadMs: performance.now() - k1 });
          return { client, uid: fresh };
        })();
        st.sessions.set(key, again);
        again.catch(() => st.sessions.delete(key));
      }
      res = await http.compute((await again).uid, this.modelName, st.name, key, ct);
    }
    const { bytes, stats } = res;
    const t2 = performance.now();
    const out = client.deserializeDecryptDequantize(bytes, n).output;
    const t3 = performance.now();
    this.report({ module: st.name, shape: key, n, bytesSent: stats.bytesSent, bytesReceived: stats.bytesReceived, httpMs: stats.ms, encryptMs: t1 - t0b, decryptMs: t3 - t2, totalMs: t3 - t0b });
    return out;
  }

  private report(r: RemoteCallReport): void {
    this.calls.push(r);
    if (this.calls.length > 10_000) this.calls.splice(0, 5_000);
  }

  private remote(): RemoteClient {
    if (!this.serverUrl) throw new HybridError("mode 'remote' needs a serverUrl (new HybridFHEModel(model, names, { serverUrl }))");
    if (!this.http || this.http.baseUrl !== this.serverUrl.replace(/\/+$/, '')) this.http = new RemoteClient(this.serverUrl, { token: this.serverToken });
    return this.http;
  }

  /** The uid a remote module/shape registered on the server (undefined before the first remote forward). */
  async uidOf(name: string, shape: string): Promise<string | undefined> {
    const s = this.state(name).sessions.get(shape);
    return s ? (await s).uid : undefined;
  }

  /** Forget server sessions (keys are uploaded again at the next remote forward). */
  resetRemoteSessions(): void {
    for (const st of this.states.values()) {
      for (const ses of st.sessions.values()) ses.then((x) => x.client.dispose(), () => undefined);
      st.sessions.clear();
    }
  }

  private dropLocal(st: RemoteState): void {
    for (const loc of st.local.values()) {
      loc.client.dispose();
      void loc.server.disposeKey(loc.key).catch(() => undefined);
    }
    st.local.clear();
  }

  /** Releases keys and worker threads of 'execute' (local server) and the client keys of 'remote' sessions. */
  async close(): Promise<void> {
    for (const st of this.states.values()) {
      for (const loc of st.local.values()) {
        loc.client.dispose();
        await loc.server.disposeKey(loc.key);
      }
      st.local.clear();
    }
    this.resetRemoteSessions();
  }
}

