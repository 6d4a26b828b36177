/** A language model's training loss (line) and validation loss (dots) against optimizer steps, as SVG. */
import type { LMLogEntry } from '../../src/train/causal-lm.js';
import { type SeriesPoint, lineChartSpec, renderSvg } from '../../src/plot/index.js';

export function lossCurveSvg(log: LMLogEntry[], title: string): Promise<string> {
  const points: SeriesPoint[] = log.flatMap((e) => [
    { x: e.step, y: e.loss, series: 'training loss (10-step mean)' },
    ...(e.validationLoss === undefined ? [] : [{ x: e.step, y: e.validationLoss, series: 'validation loss' }]),
  ]);
  return renderSvg(lineChartSpec(points, { title, xTitle: 'optimizer step', yTitle: 'cross-entropy (nats/token)', dotsOnly: ['validation loss'], width: 620 }));
}
