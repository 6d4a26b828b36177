/**
 * fhenet's layering, enforced (`npm run lint:deps`, part of `npm test`). docs/ARCHITECTURE.md's "may import" table
 * is this file in prose; change both together.
 *
 * Each folder of src/ may import itself, the folders listed for it below and npm packages; anything else is an error.
 * Folders listed here that do not exist yet (glwe, transformers, scale, data) are planned this session; their rules
 * apply as soon as their code is merged.
 */

/** Folder (under src/) → the src/ folders it may import. `hybrid/server` is the model server inside `hybrid`. */
const MAY_IMPORT = {
  util: [],
  // charts: Vega-Lite specs rendered to SVG
  plot: [],
  backend: ['util'],
  nn: ['util'],
  quant: ['nn', 'util'],
  train: ['nn', 'util'],
  onnx: ['util'],
  compiler: ['onnx', 'util'],
  tfhe: ['util'],
  // glwe reuses tfhe's CSPRNG seed expansion, torus arithmetic and FFT
  glwe: ['tfhe', 'util'],
  data: ['util'],
  runtime: ['compiler', 'tfhe', 'onnx', 'util'],
  models: ['nn', 'quant', 'util'],
  prune: ['nn', 'quant', 'util'],
  // circuit-rounding.ts reads a compiled circuit's rounding (compiler's circuit format, types only)
  analysis: ['nn', 'quant', 'train', 'compiler', 'util'],
  ptq: ['nn', 'quant', 'train', 'analysis', 'util'],
  export: ['nn', 'quant', 'onnx', 'util'],
  sweep: ['train', 'models', 'prune', 'analysis', 'ptq', 'quant', 'nn', 'backend', 'plot', 'util'],
  transformers: ['nn', 'quant', 'train', 'backend', 'util'],
  // the LLM path: GPT-2 models (transformers) and the packed GLWE engine (glwe)
  hybrid: ['compiler', 'runtime', 'tfhe', 'onnx', 'export', 'nn', 'quant', 'ptq', 'transformers', 'glwe', 'util'],
  // the model server: deployment artefacts and crypto backends of hybrid, never the tfjs side (hybrid-model, subnet)
  'hybrid/server': ['compiler', 'runtime', 'tfhe', 'glwe', 'onnx', 'util'],
  scale: ['runtime', 'tfhe', 'hybrid/server', 'sweep', 'util'],
};

/** Imports outside src/ that a folder may make: the sweep's checkerboard task generates its data. */
const MAY_IMPORT_OUTSIDE = { sweep: ['^datasets/checkerboard/'] };

/** The files of src/hybrid that the server may import (no TensorFlow.js behind any of them). */
const HYBRID_SERVER_SIDE = ['deployment', 'backend', 'crypto-backend', 'tfhe-backend', 'linear-backend', 'glwe-linear-backend', 'dynamic-quant', 'errors', 'version', 'fsutil'];
const hybridServerSide = `^src/hybrid/(${HYBRID_SERVER_SIDE.join('|')})\\.ts$`;

/** Layers that must load without TensorFlow.js (a server imports them). */
const NO_TFJS = ['onnx', 'compiler', 'tfhe', 'runtime', 'glwe', 'data', 'util', 'plot', 'hybrid/server', 'scale'];

const esc = (s) => s.replace(/\//g, '\\/');
const folders = Object.keys(MAY_IMPORT);

function layerRule(from) {
  const allowed = [from, ...MAY_IMPORT[from]];
  // sub-folders with their own rules (hybrid/server) are excluded from the parent's rule
  const nested = folders.filter((f) => f !== from && f.startsWith(`${from}/`));
  const extra = [];
  if (from === 'hybrid') allowed.push(...nested);
  if (MAY_IMPORT[from].includes('hybrid/server')) extra.push(hybridServerSide);
  if (from === 'hybrid/server') extra.push(hybridServerSide);
  const allowedPaths = allowed.map((f) => `^src/${esc(f)}/`).concat(extra, MAY_IMPORT_OUTSIDE[from] ?? []);
  return {
    name: `layer-${from.replace('/', '-')}`,
    comment: `src/${from} may import only ${MAY_IMPORT[from].length ? MAY_IMPORT[from].map((f) => `src/${f}`).join(', ') : 'nothing of fhenet'} (docs/ARCHITECTURE.md)`,
    severity: 'error',
    from: { path: `^src/${esc(from)}/`, ...(nested.length ? { pathNot: nested.map((f) => `^src/${esc(f)}/`) } : {}) },
    to: { path: '^(src|datasets|experiments|bench|tests)/', pathNot: allowedPaths },
  };
}

module.exports = {
  forbidden: [
    ...folders.map(layerRule),
    {
      name: 'no-tfjs-in-server-layers',
      comment: `${NO_TFJS.map((f) => `src/${f}`).join(', ')} and the server side of src/hybrid load without TensorFlow.js (a server imports them)`,
      severity: 'error',
      from: { path: [`^src/(${NO_TFJS.map(esc).join('|')})/`, hybridServerSide] },
      to: { path: '^node_modules/@tensorflow/', reachable: true },
    },
    {
      name: 'train-never-imports-hybrid',
      comment: 'training code never imports the model server or the hybrid layer',
      severity: 'error',
      from: { path: '^src/train/' },
      to: { path: '^src/hybrid/' },
    },
    {
      name: 'datasets-layer',
      comment: 'datasets/ may import src/train (types), src/data (the data folder, verified downloads) and src/util only',
      severity: 'error',
      from: { path: '^datasets/' },
      to: { path: '^src/', pathNot: ['^src/(train|data|util)/'] },
    },
    {
      name: 'src-never-imports-scripts',
      comment: 'library code never imports experiments, benchmarks or tests',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^(experiments|bench|tests|notebooks)/' },
    },
    {
      name: 'no-circular',
      comment: 'no import cycle inside src/ (type-only imports are erased at compile time and create no cycle)',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only'] } },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^notebooks/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default', 'types'], extensions: ['.ts', '.js', '.cjs', '.mjs', '.json', '.d.ts'] },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
