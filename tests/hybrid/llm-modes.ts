/**
 * The mode comparison the hybrid-LLM tests share: the model's own `generate` (KV cache, batched, left-padded
 * prompts) and one forward's last logits in float, then — after `compileModel` with dynamic quantization — in
 * disable, simulate and execute, with the assertions every such test makes (same tokens; execute = simulate exactly,
 * the backend being exact; disable ≈ simulate; 8-bit ≈ float; one call per remote layer and step in execute).
 */
import { expect } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import type { GPT2LMHeadModel } from '../../src/transformers/gpt2/model.js';
import { generate } from '../../src/transformers/generation.js';
import type { HybridFHEModel } from '../../src/hybrid/hybrid-model.js';

export interface LlmRun {
  tokens: number[][];
  logits: number[];
}

/** Greedy continuations of `prompts` and the logits of the first prompt's last position (the current mode). */
export async function greedyRun(h: HybridFHEModel, model: GPT2LMHeadModel, prompts: number[][], newTokens: number): Promise<LlmRun> {
  const { newTokens: tokens } = await generate(model, prompts, { maxNewTokens: newTokens, eosTokenId: null });
  const y = await h.forward(tf.tensor2d([prompts[0]!], [1, prompts[0]!.length], 'int32'));
  const logits = Array.from(y.dataSync()).slice(-model.config.vocab_size);
  y.dispose();
  return { tokens, logits };
}

/** Float run, compileModel(calibration) with dynamic quantization (simulate backend), then the three clear/in-process modes, checked. */
export async function compileAndCompareModes(h: HybridFHEModel, model: GPT2LMHeadModel, calibration: tf.Tensor, prompts: number[][], newTokens: number): Promise<Record<'float' | 'disable' | 'simulate' | 'execute', LlmRun>> {
  h.setFheMode('float');
  const float = await greedyRun(h, model, prompts, newTokens);
  h.compileModel(calibration, { nBits: 8, dynamicQuantization: true });
  const runs: Partial<Record<'disable' | 'simulate' | 'execute', LlmRun>> = {};
  for (const mode of ['disable', 'simulate', 'execute'] as const) {
    h.setFheMode(mode);
    const calls = h.calls.length;
    runs[mode] = await greedyRun(h, model, prompts, newTokens);
    // one call per remote layer and step for the whole batch, and one per layer for the forward
    expect(h.calls.length - calls, mode).toBe(mode === 'execute' ? (newTokens + 1) * h.moduleNames.length : 0);
  }
  const { disable, simulate, execute } = runs as Record<'disable' | 'simulate' | 'execute', LlmRun>;
  expect(simulate.tokens).toEqual(disable.tokens);
  expect(execute.tokens).toEqual(simulate.tokens);
  expect(execute.logits).toEqual(simulate.logits); // the simulate backend is exact
  const maxDiff = (a: number[], b: number[]) => Math.max(...a.map((v, i) => Math.abs(v - b[i]!)));
  expect(maxDiff(simulate.logits, disable.logits)).toBeLessThan(1e-4);
  const spread = Math.max(...float.logits) - Math.min(...float.logits);
  expect(maxDiff(simulate.logits, float.logits)).toBeLessThan(0.05 * spread); // 8-bit ≈ float
  return { float, disable, simulate, execute };
}
