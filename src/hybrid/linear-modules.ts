/**
 * The linear layers of a model by `namedModules()` name — the reference's recipe for hybrid LLMs selects every
 * `torch.nn.Linear` and `transformers.Conv1D` this way — and their weights as a [out, in] matrix.
 */
import type { Module } from '../nn/module.js';
import { Linear } from '../nn/layers.js';
import { Conv1D } from '../nn/conv1d.js';
import { ConfigError } from '../util/errors.js';

export function isLinearModule(m: Module): m is Linear | Conv1D {
  return m instanceof Linear || m instanceof Conv1D;
}

/** Every Linear / Conv1D of `model` (QAT subclasses included), in `namedModules()` order. */
export function linearModuleNames(model: Module): string[] {
  return model.namedModules().filter(([name, m]) => name !== '' && isLinearModule(m)).map(([name]) => name);
}

/** The layer's effective weight as [out, in] row-major float32 (Conv1D stores [in, out]) and its bias. */
export function linearWeights(name: string, m: Module): { weight: Float32Array; bias?: Float32Array; outFeatures: number; inFeatures: number } {
  if (m instanceof Conv1D) {
    const [nx, nf] = m.weight.shape as [number, number];
    const w = m.weight.dataSync() as Float32Array;
    const weight = new Float32Array(nx * nf);
    for (let i = 0; i < nx; i++) for (let o = 0; o < nf; o++) weight[o * nx + i] = w[i * nf + o]!;
    return { weight, bias: Float32Array.from(m.bias.dataSync() as Float32Array), outFeatures: nf, inFeatures: nx };
  }
  if (m instanceof Linear) {
    const w = m.effectiveWeight();
    const weight = Float32Array.from(w.dataSync() as Float32Array);
    if (w !== m.weight) w.dispose();
    return { weight, bias: m.bias ? Float32Array.from(m.bias.dataSync() as Float32Array) : undefined, outFeatures: m.outFeatures, inFeatures: m.inFeatures };
  }
  throw new ConfigError(`dynamic quantization: remote module '${name}' is a ${m.constructor.name}; only Linear and Conv1D layers can be remote with dynamicQuantization (linearModuleNames(model) lists them)`);
}
