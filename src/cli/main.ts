/** The `fhenet` command line. Each subcommand lives in its own file and registers here. */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { FhenetError } from '../util/errors.js';
import { analyzeCommand } from './analyze.js';
import { compileCommand } from './compile.js';
import { demoCommand } from './demo.js';
import { evalLmCommand } from './eval-lm.js';
import { exportCommand, inspectCommand } from './onnx.js';
import { generateCommand } from './generate.js';
import { serveCommand } from './serve.js';
import { sweepCommand } from './sweep.js';
import { trainCommand } from './train.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

const program = new Command('fhenet')
  .description('train, analyse, export, compile and serve neural networks that run on encrypted data')
  .version(pkg.version)
  .showHelpAfterError()
  .addCommand(trainCommand())
  .addCommand(analyzeCommand())
  .addCommand(sweepCommand())
  .addCommand(exportCommand())
  .addCommand(inspectCommand())
  .addCommand(compileCommand())
  .addCommand(serveCommand())
  .addCommand(demoCommand());
program.addCommand(generateCommand());
program.addCommand(evalLmCommand());

try {
  await program.parseAsync(process.argv);
} catch (err) {
  // Errors fhenet raises on purpose are user-facing: print the message, not a stack trace.
  if (err instanceof FhenetError) {
    process.stderr.write(`fhenet: ${err.name}: ${err.message}\n`);
    process.exit(2);
  }
  throw err;
}
