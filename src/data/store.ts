/**
 * Fetching, verifying and finding data sets in the data folder (`dataDir()`): what `fhenet data fetch | verify |
 * list` do, and what the data-set loaders (datasets/cifar10, datasets/fashion-mnist) use to find stored copies.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createProgress, type ProgressOptions } from '../util/progress.js';
import { ConfigError } from '../util/errors.js';
import { datasetDir } from './data-dir.js';
import { acceptPart, downloadFile, sha256File } from './download.js';
import { ChecksumError, DataMissingError } from './errors.js';
import { DATASETS, type DataFile, type DataForm, type DatasetSpec } from './registry.js';

export function datasetSpec(name: string): DatasetSpec {
  const spec = DATASETS.find((d) => d.name === name);
  if (!spec) throw new ConfigError(`unknown data set '${name}'; known: ${DATASETS.map((d) => d.name).join(', ')} (fhenet data list)`);
  return spec;
}

export interface FetchOptions {
  /** An http(s) URL (a file, or a folder holding the form's files) or a local file or folder, instead of the official download. */
  from?: string;
  /** Form to fetch (default: the first with download URLs, or whichever form `from` matches). */
  form?: string;
  /** Folder to store into (default `datasetDir(spec.name)`). */
  dir?: string;
  progress?: ProgressOptions['mode'];
  retries?: number;
  log?: (line: string) => void;
}

export interface FetchResult {
  form: DataForm;
  dir: string;
  /** Per file: stored now, or already there and verified. */
  files: { name: string; path: string; action: 'downloaded' | 'copied' | 'verified' }[];
}

function pickForm(spec: DatasetSpec, id: string | undefined, usable: (f: DataForm) => boolean, why: string): DataForm {
  if (id !== undefined) {
    const f = spec.forms.find((x) => x.id === id);
    if (!f) throw new ConfigError(`${spec.name} has no form '${id}'; forms: ${spec.forms.map((x) => x.id).join(', ')}`);
    if (!usable(f)) throw new ConfigError(`${spec.name} form '${id}' ${why}`);
    return f;
  }
  const f = spec.forms.find(usable);
  if (!f) throw new ConfigError(`${spec.name}: no form ${why}`);
  return f;
}

/** Whether `file` is stored at `p` with its SHA-256 (the size is compared first, so a wrong file is cheap). */
async function storedAndValid(p: string, file: DataFile): Promise<boolean> {
  return fs.existsSync(p) && fs.statSync(p).size === file.size && (await sha256File(p)) === file.sha256;
}

/** Stores a data set: downloads (resumable, verified), or copies verified local files; see `FetchOptions`. */
export async function fetchDataset(spec: DatasetSpec, opts: FetchOptions = {}): Promise<FetchResult> {
  const dir = opts.dir ?? datasetDir(spec.name);
  const log = opts.log ?? (() => {});
  const from = opts.from;
  if (from === undefined || /^https?:\/\//i.test(from)) {
    let form: DataForm;
    let urls: Map<string, string>;
    if (from === undefined) {
      form = pickForm(spec, opts.form, (f) => f.files.every((x) => x.url), 'has an official download; pass --from FILE');
      urls = new Map(form.files.map((f) => [f.name, f.url!]));
    } else {
      const base = new URL(from);
      const last = path.posix.basename(base.pathname);
      const named = spec.forms.filter((f) => f.files.some((x) => x.name === last));
      if (named.length) {
        // A URL of one file: the form(s) holding a file of that name.
        form = pickForm(spec, opts.form, (f) => named.includes(f), `has no file named ${last}`);
        const file = form.files.find((x) => x.name === last)!;
        urls = new Map([[file.name, from]]);
        if (form.files.length > 1) log(`${spec.name}: ${from} is one of ${form.files.length} files of the ${form.id} form; fetch the others too`);
      } else {
        // A folder URL: every file of the form under it.
        form = pickForm(spec, opts.form, (f) => f.files.some((x) => x.url), 'has downloadable files');
        const folder = from.endsWith('/') ? from : `${from}/`;
        urls = new Map(form.files.map((f) => [f.name, new URL(f.name, folder).href]));
      }
    }
    const files: FetchResult['files'] = [];
    for (const file of form.files) {
      const url = urls.get(file.name);
      if (!url) continue;
      const dest = path.join(dir, file.name);
      if (await storedAndValid(dest, file)) {
        files.push({ name: file.name, path: dest, action: 'verified' });
        continue;
      }
      const progress = createProgress({ label: `${spec.name} ${file.name}`, total: file.size, mode: opts.progress, everySeconds: 5 });
      try {
        await downloadFile(url, dir, file, { retries: opts.retries, onProgress: (d) => progress.update(d, mb(d, file.size)) });
      } finally {
        progress.stop();
      }
      log(`${spec.name}: ${file.name} downloaded and verified (SHA-256 ${file.sha256.slice(0, 16)}…)`);
      files.push({ name: file.name, path: dest, action: 'downloaded' });
    }
    return { form, dir, files };
  }

  if (!fs.existsSync(from)) throw new DataMissingError(`--from ${from}: no such file or folder`);
  let sources: { file: DataFile; src: string }[];
  let form: DataForm;
  if (fs.statSync(from).isDirectory()) {
    const complete = (f: DataForm) => f.files.every((x) => fs.existsSync(path.join(from, x.name)) && fs.statSync(path.join(from, x.name)).size === x.size);
    form = pickForm(spec, opts.form, complete, `has all its files in ${from} (${spec.forms.map((f) => `${f.id}: ${f.files.map((x) => x.name).join(', ')}`).join('; ')})`);
    sources = form.files.map((file) => ({ file, src: path.join(from, file.name) }));
  } else {
    // One local file: whichever known file it is, by content.
    const sha = await sha256File(from);
    const match = spec.forms.flatMap((f) => f.files.map((file) => ({ f, file }))).find((m) => m.file.sha256 === sha && (opts.form === undefined || m.f.id === opts.form));
    if (!match) {
      throw new ChecksumError(
        `${from} (SHA-256 ${sha}) is none of the files fhenet knows for ${spec.name}: ` +
          spec.forms.map((f) => `${f.id}: ${f.files.map((x) => `${x.name} ${x.sha256.slice(0, 12)}…`).join(', ')}`).join('; '),
      );
    }
    form = match.f;
    sources = [{ file: match.file, src: from }];
  }
  fs.mkdirSync(dir, { recursive: true });
  const files: FetchResult['files'] = [];
  for (const { file, src } of sources) {
    const dest = path.join(dir, file.name);
    if (await storedAndValid(dest, file)) {
      files.push({ name: file.name, path: dest, action: 'verified' });
      continue;
    }
    // Copy next to the destination, verify, then rename: a file under its final name is always complete.
    fs.copyFileSync(src, `${dest}.part`);
    await acceptPart(`${dest}.part`, dest, file, src);
    log(`${spec.name}: ${file.name} copied from ${src} and verified`);
    files.push({ name: file.name, path: dest, action: 'copied' });
  }
  return { form, dir, files };
}

export interface VerifyResult {
  dir: string;
  /** Forms with at least one file stored, each file checked. */
  forms: { form: DataForm; files: { name: string; status: 'ok' | 'missing' | 'mismatch'; sha256?: string }[]; complete: boolean }[];
  /** Interrupted downloads (`.part` files) — not counted as stored. */
  partial: string[];
  complete: boolean;
}

/** Re-hashes every stored file of `spec` against the registry. */
export async function verifyDataset(spec: DatasetSpec, dir = datasetDir(spec.name)): Promise<VerifyResult> {
  const forms: VerifyResult['forms'] = [];
  for (const form of spec.forms) {
    if (!form.files.some((f) => fs.existsSync(path.join(dir, f.name)))) continue;
    const files: VerifyResult['forms'][number]['files'] = [];
    for (const f of form.files) {
      const p = path.join(dir, f.name);
      if (!fs.existsSync(p)) {
        files.push({ name: f.name, status: 'missing' });
        continue;
      }
      const sha = await sha256File(p);
      files.push({ name: f.name, status: sha === f.sha256 ? 'ok' : 'mismatch', sha256: sha });
    }
    forms.push({ form, files, complete: files.every((x) => x.status === 'ok') });
  }
  const partial = fs.existsSync(dir) ? fs.readdirSync(dir).filter((n) => n.endsWith('.part')) : [];
  // Forms can share file names (Fashion-MNIST official vs Debian): report the forms the stored files belong to,
  // or every form with stored names when none matches (then each mismatch is the finding).
  const matching = forms.filter((f) => f.files.some((x) => x.status === 'ok'));
  return { dir, forms: matching.length ? matching : forms, partial, complete: forms.some((f) => f.complete) };
}

/**
 * The first form of `spec` whose files are all stored with their expected sizes (no hashing: loaders call this on
 * every load; `fhenet data verify` hashes). Returns the folder and form, or undefined.
 */
export function storedForm(spec: DatasetSpec, dir = datasetDir(spec.name)): { dir: string; form: DataForm; paths: string[] } | undefined {
  for (const form of spec.forms) {
    const paths = form.files.map((f) => path.join(dir, f.name));
    if (form.files.every((f, i) => fs.existsSync(paths[i]!) && fs.statSync(paths[i]!).size === f.size)) return { dir, form, paths };
  }
  return undefined;
}

function mb(done: number, total: number): string {
  return `${(done / 2 ** 20).toFixed(1)} / ${(total / 2 ** 20).toFixed(1)} MiB`;
}
