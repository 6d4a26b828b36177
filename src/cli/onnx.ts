/** `fhenet export` and `fhenet inspect`. The ONNX code loads in the actions: `fhenet --help` stays cheap (src/cli/main.ts). */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command, Option } from 'commander';

export function exportCommand(): Command {
  return new Command('export')
    .description('export a trained fhenet checkpoint (or re-export an ONNX file) as QONNX or QCDQ')
    .argument('<model>', 'model.safetensors from `fhenet train --out`, or an .onnx file')
    .addOption(new Option('--format <f>', 'QONNX (Brevitas/Concrete ML) or QCDQ (standard ONNX, onnxruntime)').choices(['qonnx', 'qcdq']).default('qonnx'))
    .addOption(new Option('--domain <d>', 'QONNX Quant domain').choices(['brevitas', 'qonnx']).default('brevitas'))
    .option('--int4', 'QCDQ: store 4-bit quantizers as int4/uint4 (opset 21)')
    .option('-o, --output <file>', 'output .onnx file (default: beside the model, <name>.<format>.onnx)')
    .action(async (model: string, o: { format: string; domain: string; int4?: boolean; output?: string }) => {
      const [{ exportQcdq, exportQonnx }, { BREVITAS_DOMAIN, QONNX_DOMAIN }, { loadGraph }] = await Promise.all([import('../onnx/export.js'), import('../onnx/graph.js'), import('./load.js')]);
      const graph = await loadGraph(model);
      // runs/cb/model.safetensors → runs/cb/model.qonnx.onnx: next to the checkpoint, never in the current folder by surprise
      const output = o.output ?? path.join(path.dirname(model), `${path.basename(model).replace(/\.(safetensors|onnx)$/, '').replace(/\.(qonnx|qcdq)$/, '')}.${o.format}.onnx`);
      const bytes =
        o.format === 'qcdq'
          ? exportQcdq(graph, { int4: o.int4 })
          : exportQonnx(graph, { domain: o.domain === 'qonnx' ? QONNX_DOMAIN : BREVITAS_DOMAIN });
      fs.writeFileSync(output, bytes);
      process.stdout.write(`wrote ${output} (${o.format}, ${bytes.length} bytes, ${graph.nodes.length} nodes)\n`);
    });
}

export function inspectCommand(): Command {
  return new Command('inspect')
    .description('list the operators, quantizers (bit widths, signedness, scales) and shapes of an ONNX model')
    .argument('<model>', '.onnx file (or an fhenet checkpoint)')
    .option('--json', 'print JSON')
    .action(async (model: string, o: { json?: boolean }) => {
      const [{ inspectGraph }, { loadGraph }] = await Promise.all([import('../onnx/inspect.js'), import('./load.js')]);
      const r = inspectGraph(await loadGraph(model));
      process.stdout.write(o.json ? `${JSON.stringify(r.json, null, 2)}\n` : `${r.text}\n`);
    });
}
