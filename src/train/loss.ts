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

/**
 * Knowledge-distillation term (Hinton et al. 2015): T² · mean over the batch of KL(softmax(t/T) ‖ softmax(s/T)),
 * the student logits `s` pulled towards the teacher logits `t` softened by temperature T. The T² keeps its gradient
 * on the scale of the cross-entropy's as T changes. The teacher's logits are constants here (no gradient).
 */
export function distillationLoss(student: tf.Tensor, teacher: tf.Tensor, temperature: number): tf.Scalar {
  if (student.rank !== 2 || !tf.util.arraysEqual(student.shape, teacher.shape)) {
    throw new ShapeError(`distillationLoss expects student and teacher logits of one shape [N, C], got [${student.shape}] and [${teacher.shape}]`);
  }
  return tf.tidy(() => {
    const logPt = tf.logSoftmax(tf.div(teacher, temperature));
    const logPs = tf.logSoftmax(tf.div(student, temperature));
    const kl = tf.sum(tf.mul(tf.exp(logPt), tf.sub(logPt, logPs)), 1);
    return tf.mul(tf.mean(kl), temperature * temperature) as tf.Scalar;
  });
}
