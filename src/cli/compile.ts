/** `fhenet compile`: a model → circuit, with the bit-width and cost report and, given labels, the accuracy drift. */
import * as fs from 'node:fs';
import { Command } from 'commander';
import { intOption, numberOption } from './options.js';
import { CompileError } from '../compiler/errors.js';
import type { CircuitPlan } from '../runtime/executor-plan.js';
import type { Circuit } from '../compiler/circuit.js';

/** What fhenet's TFHE executor would do with the circuit: its parameter set and PBS count, or why none fits. */
interface TfheSummary {
  set?: string;
  pbsPerSample?: number;
  tables?: { op: string; accumulatorBits: number; approximate: boolean; log2Sigma: number; log2Budget: number; log2PFail: number }[];
  refused?: string;
  /** With --eval: accuracy of the noisy simulation on the plan (one draw, seed 0), lookups off by one per sample. */
  noisy?: { accuracy: number; simulateAccuracy: number; flipsPerSample: number };
}

async function tfheSummary(circuit: Circuit): Promise<{ summary: TfheSummary; plan?: CircuitPlan }> {
  const { planCircuit } = await import('../runtime/executor-plan.js');
  try {
    const plan = planCircuit(circuit);
    const tables = plan.noise.map((t) => ({
      op: t.op,
      accumulatorBits: t.B,
      approximate: t.approximate,
      log2Sigma: Math.log2(t.variance) / 2,
      log2Budget: Math.log2(t.budget) / 2,
      log2PFail: t.log2PFail,
    }));
    return { summary: { set: plan.params.name, pbsPerSample: plan.pbsPerSample, tables }, plan };
  } catch (e) {
    return { summary: { refused: (e as Error).message } };
  }
}

async function noisyAccuracy(circuit: Circuit, plan: CircuitPlan, x: Float32Array, labels: ArrayLike<number>): Promise<{ accuracy: number; flipsPerSample: number }> {
  const [{ simulateWithNoise }, { dequantizeOutput, quantizeInput }, { accuracy }] = await Promise.all([
    import('../runtime/noisy-simulate.js'),
    import('../compiler/simulate.js'),
    import('../compiler/compare.js'),
  ]);
  const n = labels.length;
  const r = simulateWithNoise(circuit, plan, quantizeInput(circuit, x), n, { seed: 0 });
  const out = dequantizeOutput(circuit, r.output);
  const ok = accuracy(out, labels, out.length / n);
  const flips = Object.values(r.flips).reduce((a, v) => a + v, 0);
  return { accuracy: ok, flipsPerSample: flips / n };
}

function formatTfhe(t: TfheSummary): string {
  if (!t.set) return `TFHE (fhenet's executor): no parameter set fits — ${t.refused}`;
  const lines = [`TFHE (fhenet's executor): ${t.set}, ${t.pbsPerSample} PBS per sample`];
  for (const x of t.tables!) {
    lines.push(
      `  ${x.op}: ${x.accumulatorBits}-bit accumulator${x.approximate ? ' (approximate)' : ''}, σ 2^${x.log2Sigma.toFixed(1)} of 2^${x.log2Budget.toFixed(1)} allowed, ` +
        `P(${x.approximate ? 'off by more than one step' : 'wrong lookup'}) 2^${x.log2PFail.toFixed(0)}`,
    );
  }
  if (t.noisy) {
    lines.push(
      `  simulate with TFHE noise (one draw): accuracy ${(100 * t.noisy.accuracy).toFixed(2)} % (exact simulate ${(100 * t.noisy.simulateAccuracy).toFixed(2)} %), ` +
        `${t.noisy.flipsPerSample.toFixed(2)} lookups off by one per sample`,
    );
  }
  return lines.join('\n');
}

export function compileCommand(): Command {
  return new Command('compile')
    .description('compile a quantized model to an FHE circuit and report bit widths, table lookups and cost')
    .argument('<model>', '.onnx (QONNX or QCDQ) or an fhenet checkpoint')
    .option('--calib <data>', "calibration data: 'checkerboard', 'peer' or a JSON file {x, n}", 'checkerboard')
    .option('--eval <data>', "labelled data to compare float / disable / simulate on (test split for named data sets)")
    .option('--rounding <bits>', 'round table inputs to this many bits (rounding_threshold_bits)', intOption('--rounding', 1, 16))
    .option('--rounding-per-channel', 'with --rounding: each channel rounds away only the bits its own range needs (fhenet; src/compiler/rounding.ts)')
    .option('--rounding-align', 'with --rounding: per-channel offsets put the rounding steps on the tables\' steps, fitted on the calibration data (fhenet)')
    .option('--rounding-headroom <fraction>', 'with --rounding-per-channel: how far past its calibrated range each channel\'s table reaches, as a fraction of the range (default 0.25)', numberOption('--rounding-headroom'))
    .option('--rounding-approximate', "with --rounding: Concrete's approximate rounding — TFHE lookups sized for the rounded width, an index may be one step off near a boundary")
    .option('--n-bits <bits>', 'post-training quantization of a float model to this many bits', intOption('--n-bits', 2, 16))
    .option('-o, --output <file>', 'write the circuit (.fhec)')
    .option('--json', 'print the report as JSON')
    .action(async (modelFile: string, o: { calib: string; eval?: string; rounding?: number; roundingPerChannel?: boolean; roundingAlign?: boolean; roundingApproximate?: boolean; roundingHeadroom?: number; nBits?: number; output?: string; json?: boolean }) => {
      if ((o.roundingPerChannel || o.roundingAlign || o.roundingApproximate || o.roundingHeadroom !== undefined) && o.rounding === undefined) {
        throw new CompileError('options', '--rounding-per-channel, --rounding-align, --rounding-headroom and --rounding-approximate refine --rounding <bits>', 'add --rounding <bits>');
      }
      const rounding =
        o.rounding === undefined ? undefined : { bits: o.rounding, perChannel: o.roundingPerChannel, align: o.roundingAlign, ...(o.roundingHeadroom !== undefined ? { headroom: o.roundingHeadroom } : {}), ...(o.roundingApproximate ? { method: 'approximate' as const } : {}) };
      // Loaded here, not at the top: `fhenet --help` and the server commands stay cheap (src/cli/main.ts).
      const [{ FheModel }, { formatReport }, { compareModes, formatCompare }, { serializeCircuit }, { hasQuantizers, quantizeFloatGraph }, { loadData, loadGraph }] = await Promise.all([
        import('../compiler/fhe-model.js'),
        import('../compiler/report.js'),
        import('../compiler/compare.js'),
        import('../compiler/circuit.js'),
        import('../compiler/graph-ptq.js'),
        import('./load.js'),
      ]);
      let graph = await loadGraph(modelFile);
      const calib = loadData(o.calib, 'train');
      if (!hasQuantizers(graph)) {
        if (o.nBits === undefined) throw new CompileError(graph.name, 'the model is float (no quantizers)', 'pass --n-bits N for post-training quantization, or export a QAT model');
        graph = quantizeFloatGraph(graph, { data: calib.x, n: calib.n }, { nBits: o.nBits });
      } else if (o.nBits !== undefined) {
        throw new CompileError(graph.name, '--n-bits is for float models; this one is already quantized');
      }
      const model = FheModel.compile(graph, { data: calib.x, n: calib.n }, { roundingThresholdBits: rounding });
      const report = model.report();
      const { summary: tfhe, plan } = await tfheSummary(model.circuit);
      let compare;
      if (o.eval) {
        const d = loadData(o.eval, 'test');
        if (!d.y) throw new Error(`--eval data '${o.eval}' has no labels`);
        compare = await compareModes(model, d.x, d.y);
        if (plan) tfhe.noisy = { ...(await noisyAccuracy(model.circuit, plan, d.x, d.y)), simulateAccuracy: compare.accuracy.simulate };
      }
      if (o.output) fs.writeFileSync(o.output, serializeCircuit(model.circuit));
      if (o.json) {
        process.stdout.write(`${JSON.stringify({ report, tfhe, compare }, null, 2)}\n`);
        return;
      }
      process.stdout.write(`${formatReport(report)}\n\n${formatTfhe(tfhe)}\n`);
      if (compare) process.stdout.write(`\n${formatCompare(compare)}\n`);
      if (o.output) process.stdout.write(`\nwrote ${o.output}\n`);
    });
}
