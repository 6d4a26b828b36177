/**
 * Charts as SVG text, from Vega-Lite specifications (vega-lite compiles the grammar, vega renders headless: no
 * browser, no canvas). fhenet's reports, experiments and notebooks describe WHAT to plot as a Vega-Lite spec and get
 * a standalone SVG string back; the axes, ticks, scales and legends are the library's job.
 */
import type { TopLevelSpec } from 'vega-lite';

export type { TopLevelSpec } from 'vega-lite';

/** The SVG of a Vega-Lite spec (white background; deterministic for the same spec and data). */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  // Loaded on first use: vega is ESM with top-level await (a CommonJS require of it fails, as in tslab's cells), and
  // modules that can plot (the sweep) should not pay for it unless they do.
  const [vega, { compile }] = await Promise.all([import('vega'), import('vega-lite')]);
  const view = new vega.View(vega.parse(compile({ background: 'white', ...spec } as TopLevelSpec).spec), { renderer: 'none' });
  try {
    return `${await view.toSVG()}\n`;
  } finally {
    view.finalize();
  }
}

/** One point of a line chart: x, y and the series it belongs to. */
export interface SeriesPoint {
  x: number;
  y: number;
  series: string;
}

export interface LineChartOptions {
  title: string;
  xTitle: string;
  yTitle: string;
  /** Axis format of y (d3-format), e.g. '.0%' for fractions shown as percentages. */
  yFormat?: string;
  /** Series drawn as dots only (e.g. sparse validation points); the others as lines with dots. */
  dotsOnly?: string[];
  /** x takes integer values only (epochs, token numbers): integer ticks. */
  xInteger?: boolean;
  /** y axis starts at zero (default: fit the data). */
  yZero?: boolean;
  width?: number;
  height?: number;
}

/** A line chart of several series against one x axis (the common case of training curves and per-token figures). */
export function lineChartSpec(points: SeriesPoint[], o: LineChartOptions): TopLevelSpec {
  const dots = new Set(o.dotsOnly ?? []);
  // Dots on the lines while they can be told apart; long curves (training steps) are plain lines.
  const marked = points.filter((p) => !dots.has(p.series)).length <= 120;
  const x = { field: 'x', type: 'quantitative' as const, title: o.xTitle, ...(o.xInteger ? { axis: { format: 'd', tickMinStep: 1 } } : {}) };
  const y = { field: 'y', type: 'quantitative' as const, title: o.yTitle, scale: { zero: o.yZero ?? false }, ...(o.yFormat ? { axis: { format: o.yFormat } } : {}) };
  const color = { field: 'series', type: 'nominal' as const, title: null, legend: { orient: 'bottom' as const, labelLimit: 400 } };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: o.title,
    width: o.width ?? 560,
    height: o.height ?? 300,
    data: { values: points },
    layer: [
      { transform: [{ filter: { not: { field: 'series', oneOf: [...dots] } } }], mark: { type: 'line', point: marked }, encoding: { x, y, color } },
      { transform: [{ filter: { field: 'series', oneOf: [...dots] } }], mark: { type: 'point', filled: true, size: 40 }, encoding: { x, y, color } },
    ],
  } as TopLevelSpec;
}
