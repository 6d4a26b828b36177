// Makes `import { … } from 'fhenet'` type-check in the tslab notebooks (run by scripts/notebooks.sh).
//
// tslab type-checks every cell with its own compiler options: CommonJS output and 'node10' module resolution, which
// reads a package's "types"/"typesVersions" but not its "exports", and compiles any .ts file a cell imports as if it
// were part of the notebook. So the notebooks get fhenet's *declarations* (.d.ts, emitted by tsc from the sources)
// as a types-only package in notebooks/node_modules/fhenet (git-ignored), with one typesVersions entry per subpath
// export of package.json. At run time the kernel resolves 'fhenet' to the TypeScript sources through package.json
// "exports" (Node's self-reference) and tsx's loader (NODE_OPTIONS=--import tsx in the kernelspec): the declarations
// only serve the type checker and completion.
//
// Rebuilds only when a source file is newer than the last build (about 20 s; a no-op otherwise).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const pkgDir = path.join(root, 'notebooks', 'node_modules', 'fhenet');
const typesDir = path.join(pkgDir, 'types');
const stamp = path.join(pkgDir, '.built');
const config = path.join(root, 'notebooks', 'tsconfig.types.json');
const force = process.argv.includes('--force');

/** The declaration inputs (tsconfig.types.json "include"), less src/cli. */
function inputs() {
  const out = [];
  const walk = (dir) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) {
        if (p !== path.join(root, 'src', 'cli')) walk(p);
      } else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(p);
    }
  };
  walk(path.join(root, 'src'));
  walk(path.join(root, 'datasets'));
  out.push(path.join(root, 'experiments', 'cifar', 'lib.ts'));
  return out;
}

const files = inputs();
const newest = Math.max(...[...files, config, path.join(root, 'tsconfig.json'), path.join(root, 'package.json'), fileURLToPath(import.meta.url)].map((f) => fs.statSync(f).mtimeMs));
if (!force && fs.existsSync(stamp) && fs.statSync(stamp).mtimeMs >= newest) {
  console.log('notebooks: fhenet declarations up to date');
  process.exit(0);
}

const t0 = Date.now();
fs.rmSync(typesDir, { recursive: true, force: true });
fs.mkdirSync(pkgDir, { recursive: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const r = spawnSync(process.execPath, [tsc, '-p', config], { cwd: root, encoding: 'utf8' });
const lines = `${r.stdout}${r.stderr}`.split('\n').filter((l) => /error TS\d+/.test(l));
// Declaration-only errors (TS4xxx, e.g. a mixin whose class expression has protected members) make tsc skip that
// file's .d.ts; anything else is a real type error, which `npm run typecheck` reports too.
const other = lines.filter((l) => !/error TS4\d{3}/.test(l));
if (other.length > 0) {
  console.error(other.slice(0, 20).join('\n'));
  console.error('notebooks: tsc found type errors while emitting the fhenet declarations');
  process.exit(1);
}
// Files tsc left without a declaration get one from ts.transpileDeclaration (per file, no type inference: a class
// extending a mixin call is declared as extending `any`, so its members are typed loosely).
const ts = createRequire(import.meta.url)('typescript');
const filled = [];
for (const f of files) {
  const rel = path.relative(root, f);
  const dts = path.join(typesDir, rel.replace(/\.ts$/, '.d.ts'));
  if (fs.existsSync(dts)) continue;
  const out = ts.transpileDeclaration(fs.readFileSync(f, 'utf8'), {
    fileName: f,
    compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.NodeNext, strict: true },
  });
  fs.mkdirSync(path.dirname(dts), { recursive: true });
  fs.writeFileSync(dts, out.outputText);
  filled.push(rel);
}

// typesVersions: one entry per subpath export, pointing at the declaration of the export's target.
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const map = {};
// An export is { "fhenet-source": "./src/….ts", "default": "./dist/….js" }: the source path names the declaration.
const sourceOf = (target) => (typeof target === 'string' ? target : target?.['fhenet-source']);
for (const [key, entry] of Object.entries(pkg.exports ?? {})) {
  const target = sourceOf(entry);
  if (typeof target !== 'string' || !target.endsWith('.ts') || key === '.') continue;
  const from = key.replace(/^\.\//, '');
  map[from] = [`types/${target.replace(/^\.\//, '').replace(/\.ts$/, '.d.ts')}`];
}
const main = sourceOf(pkg.exports?.['.']) ?? './src/index.ts';
fs.writeFileSync(
  path.join(pkgDir, 'package.json'),
  `${JSON.stringify(
    {
      name: 'fhenet',
      version: pkg.version,
      private: true,
      description: 'Generated by notebooks/build-types.mjs: fhenet declarations for the tslab notebooks (types only).',
      types: `types/${main.replace(/^\.\//, '').replace(/\.ts$/, '.d.ts')}`,
      typesVersions: { '*': map },
    },
    null,
    2,
  )}\n`,
);
fs.writeFileSync(stamp, `${new Date().toISOString()}\n`);
console.log(
  `notebooks: fhenet declarations built in ${((Date.now() - t0) / 1000).toFixed(0)} s` +
    (filled.length ? ` (${filled.length} file(s) declared without inference: ${filled.join(', ')})` : ''),
);
