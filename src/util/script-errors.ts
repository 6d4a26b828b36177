/**
 * Imported first by the scripts under experiments/ and bench/: a `FhenetError` (a user mistake or missing data, whose
 * message says the fix) ends the script with one line and exit status 2, as the `fhenet` CLI does; any other error
 * keeps its stack trace. Not installed under vitest (tests import some of these scripts' helpers).
 */
import * as path from 'node:path';
import { FhenetError } from './errors.js';

if (!process.env.VITEST) {
  process.on('uncaughtException', (err) => {
    if (err instanceof FhenetError) {
      process.stderr.write(`${path.basename(process.argv[1] ?? 'script')}: ${err.name}: ${err.message}\n`);
      process.exit(2);
    }
    console.error(err);
    process.exit(1);
  });
}
