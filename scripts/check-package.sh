#!/usr/bin/env bash
# The package as a user gets it: packs fhenet (npm pack runs the build), installs the tarball into a fresh temporary
# project, and there imports it from plain ESM JavaScript, type-checks a TypeScript file against its declarations,
# runs `fhenet --version` and a one-epoch `fhenet train` — with no tsx and no access to the checkout.
#
#   bash scripts/check-package.sh            # what CI runs
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/fhenet-consumer-XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$root"
npm pack --silent --pack-destination "$work" >/dev/null
tgz=$(ls "$work"/fhenet-*.tgz)
echo "package: $(basename "$tgz"), $(stat -c %s "$tgz") bytes, $(tar tzf "$tgz" | wc -l) files"

mkdir "$work/app" && cd "$work/app"
echo '{ "name": "fhenet-consumer", "version": "1.0.0", "private": true, "type": "module" }' > package.json
# The TypeScript compiler and Node types of the repository's own lock, so this check needs nothing new.
ts=$(node -p "require('$root/node_modules/typescript/package.json').version")
types=$(node -p "require('$root/node_modules/@types/node/package.json').version")
npm install --no-audit --no-fund --prefer-offline --loglevel=error "$tgz" "typescript@$ts" "@types/node@$types" >/dev/null
if [ -e node_modules/tsx ]; then echo "tsx was installed with fhenet: it must be a dev dependency only" >&2; exit 1; fi

cat > esm.mjs <<'JS'
import { QuantLinear, Sequential, initBackend } from 'fhenet';
import { FheModel } from 'fhenet/compiler';
import { loadOnnxFile } from 'fhenet/onnx';
import { buildServer } from 'fhenet/hybrid';
import { generateCheckerboard } from 'fhenet/datasets/checkerboard';
import { DATASETS } from 'fhenet/data';
const b = await initBackend('cpu');
const net = new Sequential(new QuantLinear(2, 2, { weightBitWidth: 3 }));
const data = generateCheckerboard({ seed: 1 });
console.log(`plain ESM import: backend ${b.choice}, ${net.parameters().length} parameters, ${data.train.y.length} training points,`,
  typeof FheModel.compile, typeof loadOnnxFile, typeof buildServer, DATASETS.map((d) => d.name).join('+'));
JS
node esm.mjs

cat > check.ts <<'TS'
import { QuantLinear, Sequential, fit } from 'fhenet';
import { FheModel } from 'fhenet/compiler';
import type { Graph } from 'fhenet/onnx';
import { generateCheckerboard } from 'fhenet/datasets/checkerboard';
const net: Sequential = new Sequential(new QuantLinear(2, 2, { weightBitWidth: 3 }));
const run: Promise<{ seconds: number }> = fit(net, generateCheckerboard({ seed: 1 }), { epochs: 1, batchSize: 32, lr: 1e-3 });
export const compile: (g: Graph) => FheModel = (g) => FheModel.compile(g, { data: new Float32Array(2), n: 1 });
void run;
TS
# skipLibCheck as in most projects: the declarations of @tensorflow/tfjs-layers and onnx-proto themselves do not
# type-check (upstream); check.ts is still checked against fhenet's declarations.
cat > tsconfig.json <<'JSON'
{ "compilerOptions": { "target": "ES2022", "module": "NodeNext", "moduleResolution": "NodeNext", "strict": true, "noEmit": true, "skipLibCheck": true, "types": ["node"] }, "files": ["check.ts"] }
JSON
npx tsc -p tsconfig.json
echo "TypeScript: check.ts type-checks against the package's declarations"

npx fhenet --version
npx fhenet train --epochs 1 --out runs/cb | grep -E 'test accuracy|saved'
test -f runs/cb/model.safetensors
echo "package check passed"
