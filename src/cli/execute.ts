/**
 * `fhenet execute <circuit.fhec>`: runs a compiled circuit on encrypted data for a few samples — keys generated here
 * (node-tfhe; the secret key stays in this process), inputs encrypted, the circuit evaluated on ciphertexts by
 * fhenet's TFHE executor, outputs decrypted — and compares every output integer with the exact clear simulation.
 * The last step of the README's train → export → compile → execute sequence. Imports no TensorFlow.js.
 */
import * as fs from 'node:fs';
import { Command } from 'commander';
import { ConfigError } from '../util/errors.js';
import { intOption } from './options.js';

interface ExecuteOptions {
  data: string;
  samples: number;
  threads: number;
  json?: boolean;
}

export function executeCommand(): Command {
  return new Command('execute')
    .description('run a compiled circuit (.fhec from fhenet compile -o) on encrypted data for a few samples and compare with simulate')
    .argument('<circuit>', 'circuit file written by fhenet compile -o')
    .option('--data <data>', "labelled inputs: 'checkerboard', 'peer' or a JSON file {x, n, y?} (test split for named data sets)", 'checkerboard')
    .option('--samples <n>', 'how many samples to encrypt and run', intOption('--samples', 1, 10_000), 2)
    .option('--threads <n>', 'PBS worker threads', intOption('--threads', 1, 256), 2)
    .option('--json', 'print the result as JSON')
    .action(async (file: string, o: ExecuteOptions) => {
      if (!fs.existsSync(file)) throw new ConfigError(`${file} does not exist; write a circuit with fhenet compile MODEL -o ${file}`);
      const [{ deserializeCircuit, size }, { accuracy }, { dequantizeOutput, quantizeInput, simulate }, { loadData }] = await Promise.all([
        import('../compiler/circuit.js'),
        import('../compiler/compare.js'),
        import('../compiler/simulate.js'),
        import('./load.js'),
      ]);
      const circuit = deserializeCircuit(new Uint8Array(fs.readFileSync(file)));
      const data = loadData(o.data, 'test');
      const n = Math.min(o.samples, data.n);
      const perIn = size(circuit.input.shape);
      if (data.x.length !== data.n * perIn) throw new ConfigError(`--data ${o.data}: ${data.x.length / data.n} values per sample, the circuit takes ${perIn}`);
      const xInt = quantizeInput(circuit, data.x.subarray(0, n * perIn));
      const clear = simulate(circuit, xInt, n).output;
      const { TfheCircuitExecutor } = await import('../runtime/executor.js');
      const exec = new TfheCircuitExecutor({ threads: o.threads });
      const log = (s: string) => process.stderr.write(`${s}\n`);
      try {
        const plan = exec.plan(circuit); // throws, naming the table and the fix, when no parameter set fits
        log(`fhenet execute: ${file} on ${plan.params.name}, ${plan.pbsPerSample} PBS per sample; generating keys (the secret key stays in this process)…`);
        const t0 = performance.now();
        const enc = await exec.run(circuit, Float64Array.from(xInt), n);
        const seconds = (performance.now() - t0) / 1000;
        const st = exec.lastStats!;
        const perOut = size(circuit.output.shape);
        let equal = 0;
        for (let i = 0; i < n; i++) {
          let same = true;
          for (let j = 0; j < perOut; j++) if (enc[i * perOut + j] !== clear[i * perOut + j]) same = false;
          if (same) equal++;
        }
        const labels = data.y?.subarray(0, n);
        const result = {
          circuit: file,
          params: st.params,
          samples: n,
          pbsPerSample: plan.pbsPerSample,
          equalToSimulate: equal,
          accuracyEncrypted: labels ? accuracy(dequantizeOutput(circuit, enc), labels, perOut) : undefined,
          accuracySimulate: labels ? accuracy(dequantizeOutput(circuit, clear), labels, perOut) : undefined,
          keygenSeconds: st.keygenSeconds,
          secondsPerSample: (seconds - st.keygenSeconds) / n,
          serverKeyBytes: st.serverKeyBytes,
          bytesUpPerSample: st.bytesUp / n,
          bytesDownPerSample: st.bytesDown / n,
          threads: o.threads,
        };
        if (o.json) {
          process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
        } else {
          const pct = (v: number | undefined) => (v === undefined ? 'n/a (no labels)' : `${(100 * v).toFixed(1)} %`);
          process.stdout.write(
            [
              `parameter set      ${result.params} (${result.pbsPerSample} PBS per sample)`,
              `samples            ${n} encrypted, evaluated on ciphertexts, decrypted`,
              `equal to simulate  ${equal}/${n} (every output integer)`,
              `accuracy           encrypted ${pct(result.accuracyEncrypted)}, simulate ${pct(result.accuracySimulate)}`,
              `time               keys ${result.keygenSeconds.toFixed(1)} s, then ${result.secondsPerSample.toFixed(1)} s per sample (${o.threads} threads)`,
              `bytes              evaluation key ${(result.serverKeyBytes / 2 ** 20).toFixed(1)} MiB; per sample ${(result.bytesUpPerSample / 1024).toFixed(1)} KiB up, ${(result.bytesDownPerSample / 1024).toFixed(1)} KiB down`,
            ].join('\n') + '\n',
          );
        }
        if (equal !== n) process.exitCode = 1;
      } finally {
        await exec.close();
      }
    });
}
