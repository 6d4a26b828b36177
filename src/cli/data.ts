/** `fhenet data list | fetch NAME [--from URL|FILE] | verify NAME`: the data sets in the data folder (src/data). */
import { Command, Option } from 'commander';
import { dataDir } from '../data/data-dir.js';
import { DATASETS } from '../data/registry.js';
import { datasetSpec, fetchDataset, storedForm, verifyDataset } from '../data/store.js';
import { FhenetError } from '../util/errors.js';

export function dataCommand(): Command {
  const cmd = new Command('data').description(`download, verify and list data sets (stored in FHENET_DATA, now ${dataDir()})`).showHelpAfterError();
  cmd
    .command('list')
    .description('the data sets fhenet knows, their accepted forms and whether each is stored')
    .option('--json', 'print JSON')
    .action((o: { json?: boolean }) => {
      const rows = DATASETS.map((d) => ({ name: d.name, description: d.description, homepage: d.homepage, stored: storedForm(d)?.form.id ?? null, forms: d.forms }));
      if (o.json) {
        process.stdout.write(`${JSON.stringify({ dataDir: dataDir(), datasets: rows }, null, 2)}\n`);
        return;
      }
      const lines = [`data folder ${dataDir()} (FHENET_DATA)`, ''];
      for (const r of rows) {
        lines.push(`${r.name.padEnd(14)} ${r.stored ? `stored (${r.stored})` : 'not stored'} — ${r.description}`);
        for (const f of r.forms) lines.push(`${''.padEnd(14)}   form ${f.id}: ${f.description}${f.files.every((x) => x.url) ? '' : ' [--from FILE only]'}`);
      }
      process.stdout.write(`${lines.join('\n')}\n`);
    });
  cmd
    .command('fetch')
    .description('download a data set from its official location (or take --from URL|FILE|DIR), verify SHA-256 and store it')
    .argument('<name>', `data set: ${DATASETS.map((d) => d.name).join(', ')}`)
    .option('--from <source>', 'an http(s) URL (file or folder), or a local file or folder holding a known form')
    .option('--form <id>', 'which accepted form to fetch (fhenet data list)')
    .option('--retries <n>', 'resumed attempts after a connection is cut', (v) => Number(v), 3)
    .addOption(new Option('--progress <mode>', 'progress display').choices(['bar', 'lines', 'silent']))
    .action(async (name: string, o: { from?: string; form?: string; retries: number; progress?: 'bar' | 'lines' | 'silent' }) => {
      const spec = datasetSpec(name);
      const r = await fetchDataset(spec, { from: o.from, form: o.form, retries: o.retries, progress: o.progress, log: (s) => process.stderr.write(`${s}\n`) });
      for (const f of r.files) process.stdout.write(`${f.action.padEnd(10)} ${f.path}\n`);
      const stored = storedForm(spec);
      process.stdout.write(stored ? `${spec.name}: stored (${stored.form.id}) in ${r.dir}\n` : `${spec.name}: incomplete in ${r.dir} (fhenet data verify ${spec.name})\n`);
    });
  cmd
    .command('verify')
    .description('re-hash the stored files of a data set against their SHA-256; exit status 1 unless a form is complete and intact')
    .argument('<name>', `data set: ${DATASETS.map((d) => d.name).join(', ')}`)
    .option('--json', 'print JSON')
    .action(async (name: string, o: { json?: boolean }) => {
      const spec = datasetSpec(name);
      const r = await verifyDataset(spec);
      if (o.json) process.stdout.write(`${JSON.stringify({ ...r, forms: r.forms.map((f) => ({ ...f, form: f.form.id })) }, null, 2)}\n`);
      else {
        const lines = [`${spec.name} in ${r.dir}`];
        if (!r.forms.length) lines.push('  nothing stored');
        for (const f of r.forms) {
          lines.push(`  form ${f.form.id}: ${f.complete ? 'complete, every SHA-256 matches' : 'NOT complete'}`);
          for (const x of f.files) lines.push(`    ${x.status.padEnd(8)} ${x.name}`);
        }
        for (const p of r.partial) lines.push(`  interrupted download ${p} (not used; fhenet data fetch ${spec.name} resumes it)`);
        process.stdout.write(`${lines.join('\n')}\n`);
      }
      if (!r.complete) throw new FhenetError(`${spec.name} is not stored complete and intact in ${r.dir}; run fhenet data fetch ${spec.name}`);
    });
  return cmd;
}
