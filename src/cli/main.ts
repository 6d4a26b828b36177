/**
 * The `fhenet` command line. Each subcommand lives in its own file and registers here. A command file defines its
 * options up front (commander needs them for --help and parsing) and imports its implementation inside its action,
 * so that `fhenet --help`, `fhenet serve` and `fhenet worker` never load TensorFlow.js
 * (tests/cli/serve-process.test.ts).
 */
import { Command } from 'commander';
import { FhenetError } from '../util/errors.js';
import { packageInfo } from '../util/package-root.js';
import { analyzeCommand } from './analyze.js';
import { compileCommand } from './compile.js';
import { dataCommand } from './data.js';
import { demoCommand } from './demo.js';
import { executeCommand } from './execute.js';
import { hybridCommand } from './hybrid-build.js';
import { evalLmCommand } from './eval-lm.js';
import { exportCommand, inspectCommand } from './onnx.js';
import { generateCommand } from './generate.js';
import { hybridLlmCommand } from './hybrid-llm.js';
import { serveCommand } from './serve.js';
import { sweepCommand } from './sweep.js';
import { trainCommand } from './train.js';
import { workerCommand } from './worker.js';

const pkg = packageInfo();

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
  .addCommand(executeCommand())
  .addCommand(serveCommand())
  .addCommand(hybridCommand())
  .addCommand(demoCommand())
  .addCommand(dataCommand())
  .addCommand(generateCommand())
  .addCommand(evalLmCommand())
  .addCommand(hybridLlmCommand())
  .addCommand(workerCommand());

// Settings of `program` do not reach commands added with addCommand: every subcommand shows its help after a usage
// error (a missing argument, an unknown option), as the top level does.
const withHelpAfterError = (c: Command): void => {
  c.showHelpAfterError();
  c.commands.forEach(withHelpAfterError);
};
withHelpAfterError(program);

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
