/**
 * Exact full-vocabulary training at the cost of the corpus's own vocabulary.
 *
 * The KJV corpus uses about 9,900 of GPT-2's 50,257 tokens. With tied embeddings and no lm_head bias, a token whose
 * embedding row is zero has logit exactly 0 at every position, so the full softmax's normaliser is
 * Σ_{seen} e^{z_i} + U·e^0 (U = number of zero rows). Training computes the logits of the seen tokens only plus one
 * constant column log U, which gives exactly the 50,257-way cross-entropy of a model whose unseen rows are zero.
 * Those rows stay zero throughout: they are never looked up as inputs nor used as outputs, so their gradient is
 * exactly 0, Adam's update of a zero gradient with zero moments is 0 and decoupled weight decay keeps 0 at 0. The
 * exported model is therefore an ordinary GPT-2 whose full-vocabulary perplexity equals the training metric (tested
 * in tests/transformers/subset-vocabulary.test.ts); it gives every token absent from the corpus the same small
 * probability. The saving is the [tokens × 50,257] logits, softmax and lm_head products, about 5× here.
 */
import * as tf from '@tensorflow/tfjs-core';
import { embeddingLookup } from '../../src/nn/embedding.js';
import type { LMForward, TokenIds } from '../../src/train/causal-lm.js';
import type { GPT2LMHeadModel } from '../../src/transformers/gpt2/model.js';

export interface SubsetVocabulary {
  /** Token ids that occur in the streams, ascending: the logit columns 0…ids.length−1. */
  ids: Int32Array;
  /** Column of each token id, −1 for ids that never occur. */
  targetIndex: Int32Array;
  /** Tokens outside the subset (zero rows). */
  unseen: number;
}

export function subsetVocabulary(streams: TokenIds[], vocabSize: number): SubsetVocabulary {
  const seen = new Uint8Array(vocabSize);
  for (const s of streams) for (let i = 0; i < s.length; i++) seen[s[i]!] = 1;
  const ids = Int32Array.from([...seen.keys()].filter((id) => seen[id] === 1));
  const targetIndex = new Int32Array(vocabSize).fill(-1);
  ids.forEach((id, col) => (targetIndex[id] = col));
  return { ids, targetIndex, unseen: vocabSize - ids.length };
}

/** Sets the (tied) embedding rows of the tokens outside the subset to zero. */
export function zeroUnseenRows(model: GPT2LMHeadModel, subset: SubsetVocabulary): void {
  if (!model.config.tie_word_embeddings) throw new Error('the subset-vocabulary identity needs tied embeddings');
  const wte = model.transformer.wte.weight;
  const keep = new Float32Array(model.config.vocab_size);
  for (const id of subset.ids) keep[id] = 1;
  const masked = tf.tidy(() => tf.mul(wte, tf.tensor2d(keep, [keep.length, 1])));
  wte.assign(masked);
  masked.dispose();
}

/** ids [B, T] → logits [B, T, |subset| + 1]: the subset's logits and the constant column log(unseen). */
export function subsetForward(subset: SubsetVocabulary): LMForward {
  return (model, ids) => {
    const m = model as GPT2LMHeadModel;
    const hidden = m.transformer.call(ids) as tf.Tensor;
    const [b, t, e] = hidden.shape as [number, number, number];
    const rows = embeddingLookup(m.transformer.wte.weight, tf.tensor1d(subset.ids, 'int32'));
    const logits = tf.matMul(tf.reshape(hidden, [b * t, e]), rows, false, true);
    const rest = tf.fill([b * t, 1], subset.unseen > 0 ? Math.log(subset.unseen) : -Infinity);
    return tf.reshape(tf.concat([logits, rest], 1), [b, t, subset.ids.length + 1]);
  };
}
