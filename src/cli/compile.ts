/** `fhenet compile`: a model → circuit, with the bit-width and cost report and, given labels, the accuracy drift. */
import * as fs from 'node:fs';
import { Command } from 'commander';
import { FheModel } from '../compiler/fhe-model.js';
import { formatReport } from '../compiler/report.js';
import { compareModes, formatCompare } from '../compiler/compare.js';
import { serializeCircuit } from '../compiler/circuit.js';
import { intOption } from './options.js';
import { hasQuantizers, quantizeFloatGraph } from '../compiler/ptq.js';
import { CompileError } from '../compiler/errors.js';
import { loadData, loadGraph } from './load.js';

export function compileCommand(): Command {
  return new Command('compile')
    .description('compile a quantized model to an FHE circuit and report bit widths, table lookups and cost')
    .argument('<model>', '.onnx (QONNX or QCDQ) or an fhenet checkpoint')
    .option('--calib <data>', "calibration data: 'checkerboard', 'peer' or a JSON file {x, n}", 'checkerboard')
    .option('--eval <data>', "labelled data to compare float / disable / simulate on (test split for named data sets)")
    .option('--rounding <bits>', 'round table inputs to this many bits (rounding_threshold_bits)', intOption('--rounding', 1, 16))
    .option('--rounding-per-channel', 'with --rounding: each channel rounds away only the bits its own range needs (fhenet; src/compiler/rounding.ts)')
    .option('--rounding-align', 'with --rounding: per-channel offsets put the rounding steps on the tables\' steps, fitted on the calibration data (fhenet)')
    .option('--rounding-approximate', "with --rounding: Concrete's approximate rounding — TFHE lookups sized for the rounded width, an index may be one step off near a boundary")
    .option('--n-bits <bits>', 'post-training quantization of a float model to this many bits', intOption('--n-bits', 2, 16))
    .option('-o, --output <file>', 'write the circuit (.fhec)')
    .option('--json', 'print the report as JSON')
    .action(async (modelFile: string, o: { calib: string; eval?: string; rounding?: number; roundingPerChannel?: boolean; roundingAlign?: boolean; roundingApproximate?: boolean; nBits?: number; output?: string; json?: boolean }) => {
      if ((o.roundingPerChannel || o.roundingAlign || o.roundingApproximate) && o.rounding === undefined) {
        throw new CompileError('options', '--rounding-per-channel, --rounding-align and --rounding-approximate refine --rounding <bits>', 'add --rounding <bits>');
      }
      const rounding =
        o.rounding === undefined ? undefined : { bits: o.rounding, perChannel: o.roundingPerChannel, align: o.roundingAlign, ...(o.roundingApproximate ? { method: 'approximate' as const } : {}) };
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
      let compare;
      if (o.eval) {
        const d = loadData(o.eval, 'test');
        if (!d.y) throw new Error(`--eval data '${o.eval}' has no labels`);
        compare = await compareModes(model, d.x, d.y);
      }
      if (o.output) fs.writeFileSync(o.output, serializeCircuit(model.circuit));
      if (o.json) {
        process.stdout.write(`${JSON.stringify({ report, compare }, null, 2)}\n`);
        return;
      }
      process.stdout.write(`${formatReport(report)}\n`);
      if (compare) process.stdout.write(`\n${formatCompare(compare)}\n`);
      if (o.output) process.stdout.write(`\nwrote ${o.output}\n`);
    });
}
