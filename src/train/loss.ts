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

/** z[i, targets[i]] for logits [N, V] and int32 targets [N]: one gather on the flattened logits. */
export function targetLogits(z: tf.Tensor2D, targets: tf.Tensor1D): tf.Tensor1D {
  const [n, v] = z.shape;
  return tf.tidy(() => {
    const flatIndex = tf.add(tf.mul(tf.range(0, n, 1, 'int32'), tf.scalar(v, 'int32')), targets);
    return tf.gather(tf.reshape(z, [-1]), flatIndex) as tf.Tensor1D;
  });
}

/**
 * Mean cross-entropy of logits [N, V] against integer targets [N] for a large vocabulary (a language model's next
 * token): the same value as `crossEntropy`, but the forward pass picks each row's target logit with a gather instead
 * of an [N, V] one-hot product, and the gradient is written directly as (softmax − one-hot) / N, so the tape keeps
 * only the logits and the targets.
 */
export function sparseCrossEntropy(logits: tf.Tensor, targets: tf.Tensor): tf.Scalar {
  if (logits.rank !== 2 || targets.rank !== 1 || targets.shape[0] !== logits.shape[0]) {
    throw new ShapeError(`sparseCrossEntropy expects logits [N, V] and targets [N], got [${logits.shape}] and [${targets.shape}]`);
  }
  const [n, v] = logits.shape as [number, number];
  const f = tf.customGrad(((z: tf.Tensor2D, y: tf.Tensor1D, save: (ts: tf.Tensor[]) => void) => {
    const labels = tf.cast(y, 'int32') as tf.Tensor1D;
    const lse = tf.logSumExp(z, 1);
    const picked = targetLogits(z, labels);
    save([z, labels]);
    return {
      value: tf.div(tf.sum(tf.sub(lse, picked)), n),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [zs, ys] = saved as [tf.Tensor2D, tf.Tensor1D];
        const grad = tf.sub(tf.softmax(zs), tf.oneHot(ys, v));
        return [tf.mul(grad, tf.div(dy, n)), tf.zerosLike(ys)];
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return f(logits, targets) as tf.Scalar;
}
