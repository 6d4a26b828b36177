/**
 * Descriptive statistics for benchmarks, sweeps and experiments, on simple-statistics: medians and quantiles of
 * timings, and the across-seed summary (mean, sample standard deviation, min/max, a 95 % confidence interval of the
 * mean) that sweep and experiment tables report.
 */
import { max, mean, median, min, probit, quantile, rootMeanSquare, sampleStandardDeviation } from 'simple-statistics';

export { mean, median, quantile, rootMeanSquare };

/** Two-sided 95 % Student-t critical values t_{0.975, df} for df = 1…30 (standard table); larger df use the normal's. */
const T975 = [
  12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131, 2.12, 2.11, 2.101, 2.093, 2.086, 2.08,
  2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042,
];

export interface Summary {
  n: number;
  mean: number;
  /** Sample standard deviation (n − 1); 0 for one value. */
  std: number;
  min: number;
  max: number;
  /** 95 % confidence interval of the mean (Student t; normal for n > 31); null for one value. */
  ci95: [number, number] | null;
}

export function summarize(values: readonly number[]): Summary {
  const xs = [...values];
  const m = mean(xs);
  if (xs.length < 2) return { n: xs.length, mean: m, std: 0, min: min(xs), max: max(xs), ci95: null };
  const s = sampleStandardDeviation(xs);
  const t = T975[xs.length - 2] ?? probit(0.975);
  const half = (t * s) / Math.sqrt(xs.length);
  return { n: xs.length, mean: m, std: s, min: min(xs), max: max(xs), ci95: [m - half, m + half] };
}

/** Median and 10th / 90th percentiles of timings. */
export function timingStats(xs: readonly number[]): { median: number; p10: number; p90: number } {
  const v = [...xs];
  return { median: median(v), p10: quantile(v, 0.1), p90: quantile(v, 0.9) };
}
