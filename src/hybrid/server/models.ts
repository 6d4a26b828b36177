/**
 * The server's catalogue: every `<model>/<module>/<shape>` folder loaded at start, with the limits its circuit and
 * backend imply (exact evaluation-key size and header check; largest batch and request body).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { size } from '../../compiler/circuit.js';
import { FhenetError } from '../../util/errors.js';
import { serverBackend } from '../backend.js';
import type { KeyFormat, RequestFormat } from '../crypto-backend.js';
import { CLIENT_FILE, FHEModelServer, SERVER_FILE } from '../deployment.js';
import { HybridError } from '../errors.js';
import type { Limits } from './options.js';

export interface ModuleEntry {
  model: string;
  module: string;
  shape: string;
  server: FHEModelServer;
  clientBytes: Buffer;
  key: KeyFormat;
  request: RequestFormat;
  /** Largest batch a /compute request may carry. */
  maxBatch: number;
  /** Largest /compute body: a frame of `maxBatch` samples. */
  maxRequestBytes: number;
}

/** Names of models and modules: what a folder name may be (no separators, no `..`). */
export const NAME_RE = /^[A-Za-z0-9_.-]{1,200}$/;

function entryOf(model: string, module: string, shape: string, server: FHEModelServer, clientBytes: Buffer, limits: Limits): ModuleEntry {
  const backend = serverBackend(server.info.backend);
  const key = backend.keyFormat(server.circuit, server.circuitId);
  const request = backend.requestFormat(server.circuit);
  const values = size(server.circuit.input.shape) + server.circuit.values.reduce((t, v) => t + size(v.shape), 0);
  const byMemory = Math.floor(limits.maxComputeMemoryBytes / (values * request.workingBytesPerValue));
  let maxBatch = Math.max(1, Math.min(limits.maxBatch, byMemory));
  while (maxBatch > 1 && request.frameBytes(maxBatch) > limits.maxCiphertextBytes) maxBatch = Math.floor(maxBatch / 2);
  return { model, module, shape, server, clientBytes, key, request, maxBatch, maxRequestBytes: request.frameBytes(maxBatch) };
}

/** Loads every model folder (a model that fails to load is an error at start, not at the first request). */
export function loadModels(modelsDir: string, limits: Limits): Map<string, ModuleEntry> {
  const out = new Map<string, ModuleEntry>();
  if (!fs.existsSync(modelsDir)) throw new FhenetError(`models folder ${modelsDir} does not exist`);
  for (const model of fs.readdirSync(modelsDir).sort()) {
    const mdir = path.join(modelsDir, model);
    if (!fs.statSync(mdir).isDirectory()) continue;
    for (const mod of fs.readdirSync(mdir).sort()) {
      const modDir = path.join(mdir, mod);
      if (!fs.statSync(modDir).isDirectory()) continue;
      for (const shape of fs.readdirSync(modDir).sort()) {
        const sdir = path.join(modDir, shape);
        if (!fs.existsSync(path.join(sdir, SERVER_FILE))) continue;
        const server = FHEModelServer.load(sdir);
        const clientBytes = fs.readFileSync(path.join(sdir, CLIENT_FILE));
        out.set(`${model}/${mod}/${shape}`, entryOf(model, mod, shape, server, clientBytes, limits));
      }
    }
  }
  return out;
}

/** The catalogue's lookups, with the 404s a client sees. */
export class Catalogue {
  constructor(readonly entries: Map<string, ModuleEntry>) {}

  models(): string[] {
    return [...new Set([...this.entries.values()].map((e) => e.model))];
  }

  modules(model: string): string[] {
    const mods = [...new Set([...this.entries.values()].filter((e) => e.model === model).map((e) => e.module))];
    if (!mods.length) throw new HybridError(`unknown model '${model}'`, 404, 'unknown_model');
    return mods;
  }

  shapes(model: string, module: string): string[] {
    const shapes = [...this.entries.values()].filter((e) => e.model === model && e.module === module).map((e) => e.shape);
    if (!shapes.length) throw new HybridError(`unknown model/module '${model}/${module}'`, 404, 'unknown_module');
    return shapes;
  }

  get(model: string, module: string, shape: string): ModuleEntry {
    const entry = this.entries.get(`${model}/${module}/${shape}`);
    if (entry) return entry;
    if (!this.models().includes(model)) throw new HybridError(`unknown model '${model}'`, 404, 'unknown_model');
    if (!this.modules(model).includes(module)) throw new HybridError(`model '${model}' has no remote module '${module}'`, 404, 'unknown_module');
    throw new HybridError(`module '${module}' of '${model}' was not compiled for input shape ${shape}`, 404, 'unknown_shape');
  }
}
