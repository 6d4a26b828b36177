/**
 * Learning-rate schedules, evaluated per epoch like torch's StepLR and CosineAnnealingLR (`fit`), or per optimizer
 * step (`fitCausalLM`: linear warm-up then cosine decay, as GPT-2-style training uses).
 */
import { ConfigError } from '../util/errors.js';

export type Schedule =
  | { kind: 'constant' }
  | { kind: 'step'; stepSize: number; gamma: number }
  | { kind: 'cosine'; tMax: number; etaMin?: number }
  /** Linear warm-up from base/warmup to base over `warmup` steps, then cosine from base to etaMin at `total`. */
  | { kind: 'warmupCosine'; warmup: number; total: number; etaMin?: number };

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
    case 'warmupCosine': {
      if (!(s.total >= 1) || !(s.warmup >= 0) || s.warmup > s.total) {
        throw new ConfigError(`warmupCosine schedule needs 0 ≤ warmup ≤ total and total ≥ 1, got warmup ${s.warmup}, total ${s.total}`);
      }
      const etaMin = s.etaMin ?? 0;
      if (epoch < s.warmup) return (base * (epoch + 1)) / s.warmup;
      const t = Math.min(1, (epoch - s.warmup) / Math.max(1, s.total - s.warmup));
      return etaMin + ((base - etaMin) * (1 + Math.cos(Math.PI * t))) / 2;
    }
  }
}
