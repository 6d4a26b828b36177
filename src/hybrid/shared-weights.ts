/**
 * Weights that a remote module shares with a module that stays on the client (tied weights: GPT-2's `lm_head` uses
 * `transformer.wte.weight`). Making only one of them remote protects nothing — the shared matrix is written to the
 * client folder with the local module — so HybridFHEModel refuses it unless told otherwise (docs/hybrid.md, "Which
 * names protect which weights").
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Module } from '../nn/module.js';
import { ConfigError } from '../util/errors.js';

/** The variables a module computes with itself: its registered parameters and any variable field (a tied weight is a field). */
function ownVariables(m: Module): Set<tf.Variable> {
  const out = new Set<tf.Variable>();
  for (const [n, v] of m.namedParameters()) if (!n.includes('.')) out.add(v);
  for (const v of Object.values(m)) if (v instanceof tf.Variable) out.add(v);
  return out;
}

export interface SharedWeight {
  remote: string;
  local: string;
}

/** Pairs (remote module, local module) that compute with the same variable; `remote` names the remote modules. */
export function sharedLocalWeights(model: Module, remote: readonly string[]): SharedWeight[] {
  const inside = (name: string, root: string) => name === root || name.startsWith(`${root}.`);
  const owner = new Map<tf.Variable, string>();
  for (const r of remote) for (const [, m] of model.getModule(r).namedModules(r)) for (const v of ownVariables(m)) owner.set(v, r);
  const out: SharedWeight[] = [];
  for (const [name, m] of model.namedModules()) {
    if (remote.some((r) => inside(name, r))) continue;
    for (const v of ownVariables(m)) {
      const r = owner.get(v);
      if (r !== undefined && !out.some((p) => p.remote === r && p.local === name)) out.push({ remote: r, local: name || '(the model itself)' });
    }
  }
  return out;
}

/** Throws a ConfigError naming the local modules to make remote too (or the option that keeps them local knowingly). */
export function refuseSharedLocalWeights(model: Module, remote: readonly string[]): void {
  const pairs = sharedLocalWeights(model, remote);
  if (!pairs.length) return;
  const list = pairs.map((p) => `'${p.remote}' shares its weight with '${p.local}'`).join('; ');
  const locals = [...new Set(pairs.map((p) => p.local))];
  throw new ConfigError(
    `HybridFHEModel: ${list}, which would stay on the client, so the shared matrix would be written to the client folder. ` +
      `Make ${locals.map((l) => `'${l}'`).join(', ')} remote too (CLI: --remote all-linear,embeddings), keep the remote module local, ` +
      `or pass { allowSharedLocalWeights: true } to accept that the client holds it (docs/hybrid.md, "Which names protect which weights")`,
  );
}
