// Builds the npm package's code: dist/ = the TypeScript sources that make up the package (src, datasets, the CIFAR
// helpers experiments/cifar/lib.ts), compiled by tsc to ES modules with .d.ts declarations (tsconfig.build.json),
// plus the C sources and headers of the optional native kernels, which are compiled at first use on the user's machine.
// Run by `npm run build` and by `npm pack` (prepack).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(root, 'dist');
const t0 = Date.now();
fs.rmSync(dist, { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const r = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
if (r.status !== 0) {
  console.error('build: tsc failed');
  process.exit(r.status ?? 1);
}
let copied = 0;
const walk = (dir) => {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p);
    else if (e.name.endsWith('.c') || e.name.endsWith('.h')) {
      const to = path.join(dist, path.relative(root, p));
      fs.mkdirSync(path.dirname(to), { recursive: true });
      fs.copyFileSync(p, to);
      copied++;
    }
  }
};
walk(path.join(root, 'src'));
console.log(`build: dist/ in ${((Date.now() - t0) / 1000).toFixed(0)} s (${copied} native C sources and headers copied)`);
