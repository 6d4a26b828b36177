/**
 * The files of a hybrid model after `saveAndClearPrivateInfo(dir)`:
 *   dir/client/model.safetensors  the model's state dict without any remote module's parameters or buffers
 *   dir/client/hybrid.json        remote module names and shapes, versions (the manifest)
 *   dir/<module>/<shape>/server.fhe, client.json   per remote module and input shape (FHEModelDev)
 * `dir`'s folder name is the model name `fhenet serve --models <parent of dir>` serves it under.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Module } from '../nn/module.js';
import { decodeTensors, saveModule } from '../nn/checkpoint.js';
import { StateDictError } from '../util/errors.js';
import { FHEModelDev } from './deployment.js';
import { HybridError } from './errors.js';
import { writeFileAtomic } from './fsutil.js';
import type { RemoteLayer } from './remote-layer.js';
import { FHENET_VERSION, HYBRID_MANIFEST_FORMAT, checkVersion } from './version.js';

export interface HybridManifest {
  format: string;
  fhenetVersion: string;
  modelName: string;
  backend: string;
  modules: Record<string, { key: string; moduleShape: number[]; graphShape: number[]; outShape: number[] }[]>;
}

export function clientDir(dir: string): string {
  return path.join(dir, 'client');
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
