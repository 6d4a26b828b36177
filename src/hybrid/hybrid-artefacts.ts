/**
 * The files of a hybrid model after `saveAndClearPrivateInfo(dir)`:
 *   dir/client/model.safetensors  the model's state dict without any remote module's parameters or buffers
 *   dir/client/hybrid.json        remote module names and shapes, versions (the manifest)
 *   dir/<module>/<shape>/server.fhe, client.json   per remote module and input shape (FHEModelDev)
 * With dynamic quantization (the LLM path, `kind: 'linear'` in the manifest) instead:
 *   dir/client/                   the model without the remote layers' weights — for a GPT2LMHeadModel a Hugging
 *                                 Face folder (config.json + model.safetensors, F32) — plus hybrid.json and
 *                                 remote-layers.safetensors (per remote layer: its per-channel weight scales s_w and
 *                                 the backend's public info, e.g. tokenScaleFloor; no bias: the server adds it)
 *   dir/llm/linear.safetensors    per remote layer its int8 weights [out, in], scales and float bias (the server's)
 * `dir`'s folder name is the model name `fhenet serve --models <parent of dir>` serves it under.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Module } from '../nn/module.js';
import { decodeTensors, saveModule } from '../nn/checkpoint.js';
import { decodeSafetensors, encodeSafetensors, type SafeTensor } from '../util/safetensors.js';
import { GPT2LMHeadModel } from '../transformers/gpt2/model.js';
import { savePretrained } from '../transformers/gpt2/pretrained.js';
import type { QuantizedLinear } from './dynamic-quant.js';
import { linearServerBackend } from './linear-backend.js';
import { StateDictError } from '../util/errors.js';
import { FHEModelDev } from './deployment.js';
import { HybridError } from './errors.js';
import { writeFileAtomic } from './fsutil.js';
import type { RemoteLayer } from './remote-layer.js';
import { FHENET_VERSION, HYBRID_MANIFEST_FORMAT, LLM_SERVER_DIR, LLM_SERVER_FILE, LLM_SERVER_FORMAT, checkVersion } from './version.js';

export interface HybridManifest {
  format: string;
  /** 'circuit' (default: integer circuits per module and shape) or 'linear' (dynamically quantized linear layers). */
  kind?: 'circuit' | 'linear';
  fhenetVersion: string;
  modelName: string;
  backend: string;
  modules: Record<string, { key: string; moduleShape: number[]; graphShape: number[]; outShape: number[] }[]>;
}

/** `dir/client`, or `dir` itself when it is a client folder (holds hybrid.json: what a user's device has). */
export function clientDir(dir: string): string {
  return fs.existsSync(path.join(dir, 'hybrid.json')) ? dir : path.join(dir, 'client');
}

/** Writes the server artefacts of every layer, the client's model file (the model holds stubs there) and the manifest. */
export function writeHybridArtefacts(dir: string, model: Module, layers: readonly RemoteLayer[], modelName: string, backend: string): void {
  for (const l of layers) if (!l.compiled.size) throw new HybridError(`module '${l.name}' is not compiled; call compileModel first`);
  const manifest: HybridManifest = {
    format: HYBRID_MANIFEST_FORMAT,
    fhenetVersion: FHENET_VERSION,
    modelName,
    backend,
    modules: Object.fromEntries(layers.map((l) => [l.name, [...l.compiled].map(([key, c]) => ({ key, moduleShape: c.moduleShape, graphShape: c.graphShape, outShape: c.outShape }))])),
  };
  for (const l of layers) {
    for (const [key, c] of l.compiled) {
      if (!c.fhe || !c.dev) throw new HybridError(`module '${l.name}' has no circuit for shape ${key} on this side (private info was cleared)`);
      new FHEModelDev(path.join(dir, l.name, key), c.fhe.circuit, c.dev.info).save();
    }
  }
  saveModule(path.join(clientDir(dir), 'model.safetensors'), model, { format: HYBRID_MANIFEST_FORMAT, remote: layers.map((l) => l.name).join(',') });
  writeFileAtomic(path.join(clientDir(dir), 'hybrid.json'), JSON.stringify(manifest, null, 1));
}

export function readHybridManifest(dir: string): HybridManifest {
  const mpath = path.join(clientDir(dir), 'hybrid.json');
  if (!fs.existsSync(mpath)) throw new HybridError(`${mpath} does not exist (write it with saveAndClearPrivateInfo)`, 404, 'not_found');
  const manifest = JSON.parse(fs.readFileSync(mpath, 'utf8')) as HybridManifest;
  checkVersion(mpath, manifest.format, HYBRID_MANIFEST_FORMAT, manifest.fhenetVersion);
  return manifest;
}

/** Loads the client's model file into `model` (whose remote modules are stubs already): every key must be there. */
export function loadClientWeights(model: Module, dir: string): void {
  const { tensors } = decodeTensors(new Uint8Array(fs.readFileSync(path.join(clientDir(dir), 'model.safetensors'))));
  try {
    const missing = [...model.stateDict().keys()].filter((k) => !tensors.has(k));
    if (missing.length) throw new StateDictError(`client model file lacks ${missing.join(', ')}`);
    model.loadStateDict(tensors, { strict: true });
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
}

const LINEAR_SPECS_FILE = 'remote-layers.safetensors';

/** The dynamic-quantization artefacts (see the file comment). */
export function writeLinearArtefacts(dir: string, model: Module, layers: readonly RemoteLayer[], modelName: string, backend: string): void {
  const server = new Map<string, SafeTensor>();
  const client = new Map<string, SafeTensor>();
  const info: Record<string, string> = {};
  const backendImpl = linearServerBackend(backend);
  for (const l of layers) {
    const q = l.linear;
    if (!q?.weights.length) throw new HybridError(`module '${l.name}' has no quantized weights on this side; call compileModel({ dynamicQuantization: true }) first`);
    server.set(`${l.name}.weight`, { dtype: 'I8', shape: [q.outFeatures, q.inFeatures], data: q.weights });
    server.set(`${l.name}.scales`, { dtype: 'F32', shape: [q.outFeatures], data: q.scales });
    server.set(`${l.name}.bias`, { dtype: 'F32', shape: [q.outFeatures], data: q.bias });
    client.set(`${l.name}.scales`, { dtype: 'F32', shape: [q.outFeatures], data: q.scales });
    const published = backendImpl.clientInfo?.(q);
    if (published) info[`${l.name}.info`] = JSON.stringify(published);
  }
  const manifest: HybridManifest = {
    format: HYBRID_MANIFEST_FORMAT,
    fhenetVersion: FHENET_VERSION,
    kind: 'linear',
    modelName,
    backend,
    modules: Object.fromEntries(layers.map((l) => [l.name, [{ key: String(l.linear!.inFeatures), moduleShape: [l.linear!.inFeatures], graphShape: [l.linear!.inFeatures], outShape: [l.linear!.outFeatures] }]])),
  };
  writeFileAtomic(
    path.join(dir, LLM_SERVER_DIR, LLM_SERVER_FILE),
    encodeSafetensors(server, { format: LLM_SERVER_FORMAT, fhenetVersion: FHENET_VERSION, model: modelName, backend }),
  );
  const cdir = clientDir(dir);
  if (model instanceof GPT2LMHeadModel) savePretrained(model, cdir, { dtype: 'F32' });
  else saveModule(path.join(cdir, 'model.safetensors'), model, { format: HYBRID_MANIFEST_FORMAT, remote: layers.map((l) => l.name).join(',') });
  writeFileAtomic(path.join(cdir, LINEAR_SPECS_FILE), encodeSafetensors(client, { format: HYBRID_MANIFEST_FORMAT, ...info }));
  writeFileAtomic(path.join(cdir, 'hybrid.json'), JSON.stringify(manifest, null, 1));
}

/** Per remote layer what the client dequantizes with (no weight matrix, no bias). */
export function readLinearSpecs(dir: string, names: readonly string[]): Map<string, Omit<QuantizedLinear, 'weights' | 'bias'> & { info?: Record<string, unknown> }> {
  const file = path.join(clientDir(dir), LINEAR_SPECS_FILE);
  if (!fs.existsSync(file)) throw new HybridError(`${file} does not exist (write it with saveAndClearPrivateInfo)`, 404, 'not_found');
  const { tensors, metadata } = decodeSafetensors(new Uint8Array(fs.readFileSync(file)));
  const out = new Map<string, Omit<QuantizedLinear, 'weights' | 'bias'> & { info?: Record<string, unknown> }>();
  for (const name of names) {
    const scales = tensors.get(`${name}.scales`);
    if (!scales || scales.dtype !== 'F32') throw new StateDictError(`${file} lacks the scales of '${name}'`);
    const info = metadata[`${name}.info`];
    out.set(name, { inFeatures: 0, outFeatures: scales.shape[0]!, scales: scales.data as Float32Array, ...(info ? { info: JSON.parse(info) as Record<string, unknown> } : {}) });
  }
  return out;
}
