import * as tf from '@tensorflow/tfjs-core';
import { ShapeError } from '../util/errors.js';

/** Mean cross-entropy of logits [N, C] against integer labels [N] (torch.nn.CrossEntropyLoss). */
export function crossEntropy(logits: tf.Tensor, labels: tf.Tensor): tf.Scalar {
  if (logits.rank !== 2 || labels.rank !== 1 || labels.shape[0] !== logits.shape[0]) {
    throw new ShapeError(`crossEntropy expects logits [N, C] and labels [N], got [${logits.shape}] and [${labels.shape}]`);
  }
  return tf.tidy(() => {
    const oneHot = tf.oneHot(tf.cast(labels, 'int32') as tf.Tensor1D, logits.shape[1]!);
    return tf.neg(tf.mean(tf.sum(tf.mul(oneHot, tf.logSoftmax(logits)), 1))) as tf.Scalar;
  });
}
