/** A readable summary of a model: modules, parameter counts and every quantizer's format and scale. */
import * as tf from '@tensorflow/tfjs-core';
import type { Module } from './module.js';

export interface QuantizerInfo {
  path: string;
  bitWidth: number;
  signed: boolean;
  narrow: boolean;
  scaling: string;
  /** Per-tensor scale, or the range of per-channel scales; absent before a learned scale has statistics. */
  scale?: number | [number, number];
}

export interface ModelSummary {
  parameters: number;
  modules: { path: string; type: string; parameters: number }[];
  quantizers: QuantizerInfo[];
}

/** Duck-typed views, so this file does not import the quant layer (nn must not depend on quant). */
interface QuantizerLike {
  opts: { bitWidth: number; signed: boolean; narrow: boolean; scaling: string };
  evalScale(): number | undefined;
}
interface WeightQuantOwner {
  quantWeight(): { scale: tf.Tensor; value: tf.Tensor };
  weightQuant: unknown;
}

function isQuantizer(m: unknown): m is QuantizerLike {
  return typeof (m as QuantizerLike).evalScale === 'function' && typeof (m as QuantizerLike).opts === 'object';
}

export function summarize(model: Module): ModelSummary {
  const modules = model.namedModules().filter(([p]) => p !== '').map(([path, m]) => ({
    path,
    type: m.constructor.name,
    parameters: m.namedParameters().reduce((a, [, v]) => a + v.size, 0),
  }));
  const quantizers: QuantizerInfo[] = [];
  for (const [path, m] of model.namedModules()) {
    if (!isQuantizer(m)) continue;
    const { bitWidth, signed, narrow, scaling } = m.opts;
    const info: QuantizerInfo = { path, bitWidth, signed, narrow, scaling };
    const s = m.evalScale();
    if (s !== undefined) info.scale = s;
    else {
      const ownerPath = path.slice(0, path.lastIndexOf('.'));
      const owner = model.getModule(ownerPath) as unknown as WeightQuantOwner;
      if (owner.weightQuant === m) {
        const vals = tf.tidy(() => owner.quantWeight().scale.dataSync());
        const lo = Math.min(...vals);
        const hi = Math.max(...vals);
        info.scale = lo === hi ? lo : [lo, hi];
      }
    }
    quantizers.push(info);
  }
  return { parameters: model.parameters().reduce((a, v) => a + v.size, 0), modules, quantizers };
}

export function formatSummary(s: ModelSummary): string {
  const lines = [`parameters: ${s.parameters}`];
  if (s.quantizers.length) {
    lines.push('quantizers:');
    for (const q of s.quantizers) {
      const fmt = `${q.bitWidth}-bit ${q.signed ? 'signed' : 'unsigned'}${q.narrow ? ' narrow' : ''}`;
      const scale = q.scale === undefined ? '' : Array.isArray(q.scale) ? ` scale ${q.scale[0].toPrecision(4)}…${q.scale[1].toPrecision(4)}` : ` scale ${q.scale.toPrecision(6)}`;
      lines.push(`  ${q.path.padEnd(24)} ${fmt.padEnd(22)} ${q.scaling.padEnd(8)}${scale}`);
    }
  }
  return lines.join('\n');
}
