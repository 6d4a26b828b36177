/** A plain SVG plot of a language model's training loss (line) and validation loss (dots) against steps. */
import type { LMLogEntry } from '../../src/train/causal-lm.js';

export function lossCurveSvg(log: LMLogEntry[], title: string): string {
  const W = 720;
  const H = 420;
  const L = 60;
  const R = 20;
  const T = 40;
  const B = 50;
  const maxStep = Math.max(1, ...log.map((e) => e.step));
  const values = log.flatMap((e) => (e.validationLoss === undefined ? [e.loss] : [e.loss, e.validationLoss]));
  const yMax = Math.ceil(Math.max(1, ...values));
  const yMin = Math.max(0, Math.floor(Math.min(yMax - 1, ...values)));
  const x = (s: number) => L + ((W - L - R) * s) / maxStep;
  const y = (v: number) => T + ((H - T - B) * (yMax - v)) / (yMax - yMin);
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="24" text-anchor="middle" font-size="15">${title.replace(/&/g, '&amp;').replace(/</g, '&lt;')}</text>`,
  ];
  for (let v = yMin; v <= yMax; v++) {
    out.push(`<line x1="${L}" x2="${W - R}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/><text x="${L - 8}" y="${y(v) + 4}" text-anchor="end">${v}</text>`);
  }
  const tick = 10 ** Math.floor(Math.log10(maxStep)) * (maxStep / 10 ** Math.floor(Math.log10(maxStep)) > 4 ? 1 : 0.5);
  for (let s = 0; s <= maxStep; s += tick) {
    out.push(`<text x="${x(s)}" y="${H - B + 18}" text-anchor="middle">${s}</text>`);
  }
  const pts = log.map((e) => `${x(e.step).toFixed(1)},${y(e.loss).toFixed(1)}`).join(' ');
  out.push(`<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points="${pts}"/>`);
  for (const e of log.filter((e) => e.validationLoss !== undefined)) {
    out.push(`<circle cx="${x(e.step).toFixed(1)}" cy="${y(e.validationLoss!).toFixed(1)}" r="3.5" fill="#d62728"><title>step ${e.step}: ${e.validationLoss!.toFixed(3)}</title></circle>`);
  }
  out.push(
    `<rect x="${L}" y="${T}" width="${W - L - R}" height="${H - T - B}" fill="none" stroke="#333"/>`,
    `<text x="${(L + W - R) / 2}" y="${H - 10}" text-anchor="middle">optimizer step</text>`,
    `<text transform="translate(16 ${(T + H - B) / 2}) rotate(-90)" text-anchor="middle">cross-entropy (nats/token)</text>`,
    `<text x="${W - R - 170}" y="${T + 18}" fill="#1f77b4">training loss (10-step mean)</text>`,
    `<text x="${W - R - 170}" y="${T + 34}" fill="#d62728">validation loss</text>`,
    '</svg>',
  );
  return out.join('\n') + '\n';
}
