/** Learning-rate schedules, evaluated per epoch like torch's StepLR and CosineAnnealingLR. */
import { ConfigError } from '../util/errors.js';

export type Schedule =
  | { kind: 'constant' }
  | { kind: 'step'; stepSize: number; gamma: number }
  | { kind: 'cosine'; tMax: number; etaMin?: number };

export function learningRate(base: number, epoch: number, s: Schedule): number {
  switch (s.kind) {
    case 'constant':
      return base;
    case 'step':
      if (!(s.stepSize >= 1)) throw new ConfigError(`step schedule needs stepSize ≥ 1, got ${s.stepSize}`);
      return base * s.gamma ** Math.floor(epoch / s.stepSize);
    case 'cosine': {
      const etaMin = s.etaMin ?? 0;
      return etaMin + ((base - etaMin) * (1 + Math.cos((Math.PI * Math.min(epoch, s.tMax)) / s.tMax))) / 2;
    }
  }
}
