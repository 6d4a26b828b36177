/**
 * The training corpus of the shipped model: the King James Bible from Debian's `bible-kjv-text` package (public
 * domain text; the package's retrieval software is GPL-2+, only its text output is used), read through the
 * package's `bible` tool (`apt-get install -y bible-kjv`).
 *
 * Each verse becomes one line "Book C:V text" (e.g. "Genesis 1:1 In the beginning God created …"), chapters are
 * separated by a blank line. Fixed split: of the 1,189 chapters in canonical order, chapter i (0-based) is held out
 * for validation when i % 50 === 25 (24 chapters, ≈ 2 %); all others are training text. The held-out text is
 * committed (kjv-validation.txt) for tests and perplexity checks.
 *
 *   npx tsx experiments/gpt2-small/corpus.ts [--out runs/gpt2-small/corpus]
 *
 * Writes train.txt / validation.txt, their GPT-2 token ids as little-endian uint16 (train.u16, validation.u16; an
 * `<|endoftext|>` closes each file), and corpus.json with the counts.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GPT2Tokenizer } from '../../src/transformers/tokenizer.js';

const HERE = import.meta.dirname;
export const MODEL_DIR = join(HERE, '../../models/gpt2-kjv-small');
export const VALIDATION_TEXT = join(HERE, 'kjv-validation.txt');

/** The `bible` tool's book abbreviations, in canonical order, with the book names used in the corpus. */
const BOOKS: [string, string][] = [
  ['Ge', 'Genesis'], ['Exo', 'Exodus'], ['Lev', 'Leviticus'], ['Num', 'Numbers'], ['Deu', 'Deuteronomy'],
  ['Josh', 'Joshua'], ['Jdgs', 'Judges'], ['Ruth', 'Ruth'], ['1Sm', '1 Samuel'], ['2Sm', '2 Samuel'],
  ['1Ki', '1 Kings'], ['2Ki', '2 Kings'], ['1Chr', '1 Chronicles'], ['2Chr', '2 Chronicles'], ['Ezra', 'Ezra'],
  ['Neh', 'Nehemiah'], ['Est', 'Esther'], ['Job', 'Job'], ['Psa', 'Psalms'], ['Prv', 'Proverbs'],
  ['Eccl', 'Ecclesiastes'], ['SSol', 'Song of Solomon'], ['Isa', 'Isaiah'], ['Jer', 'Jeremiah'],
  ['Lam', 'Lamentations'], ['Eze', 'Ezekiel'], ['Dan', 'Daniel'], ['Hos', 'Hosea'], ['Joel', 'Joel'],
  ['Amos', 'Amos'], ['Obad', 'Obadiah'], ['Jonah', 'Jonah'], ['Mic', 'Micah'], ['Nahum', 'Nahum'],
  ['Hab', 'Habakkuk'], ['Zep', 'Zephaniah'], ['Hag', 'Haggai'], ['Zec', 'Zechariah'], ['Mal', 'Malachi'],
  ['Mat', 'Matthew'], ['Mark', 'Mark'], ['Luke', 'Luke'], ['John', 'John'], ['Acts', 'Acts'], ['Rom', 'Romans'],
  ['1Cor', '1 Corinthians'], ['2Cor', '2 Corinthians'], ['Gal', 'Galatians'], ['Eph', 'Ephesians'],
  ['Phi', 'Philippians'], ['Col', 'Colossians'], ['1Th', '1 Thessalonians'], ['2Th', '2 Thessalonians'],
  ['1Tim', '1 Timothy'], ['2Tim', '2 Timothy'], ['Titus', 'Titus'], ['Phmn', 'Philemon'], ['Heb', 'Hebrews'],
  ['Jas', 'James'], ['1Pet', '1 Peter'], ['2Pet', '2 Peter'], ['1Jn', '1 John'], ['2Jn', '2 John'], ['3Jn', '3 John'],
  ['Jude', 'Jude'], ['Rev', 'Revelation'],
];

/** Chapter i (0-based, canonical order) is validation text when this holds. */
export const isValidationChapter = (i: number): boolean => i % 50 === 25;

/** The whole KJV as chapters of "Book C:V text" lines, from the `bible` tool's raw "AbbrC:V text" lines. */
export function chaptersFromBibleTool(raw: string): string[] {
  const names = new Map(BOOKS);
  const chapters: string[][] = [];
  let current = '';
  for (const line of raw.split('\n')) {
    if (line.trim() === '') continue;
    const m = /^(\d?[A-Za-z]+)(\d+):(\d+) (.*)$/.exec(line);
    if (!m) throw new Error(`unexpected line from the bible tool: ${line.slice(0, 80)}`);
    const [, abbr, chapter, verse, text] = m;
    const book = names.get(abbr!);
    if (!book) throw new Error(`unknown book abbreviation ${abbr}`);
    const key = `${abbr}${chapter}`;
    if (key !== current) {
      chapters.push([]);
      current = key;
    }
    chapters.at(-1)!.push(`${book} ${chapter}:${verse} ${text!.trim()}`);
  }
  return chapters.map((c) => c.join('\n'));
}

function toU16(ids: number[]): Uint8Array {
  const out = new Uint16Array(ids.length);
  ids.forEach((id, i) => {
    if (id > 0xffff) throw new Error(`token id ${id} does not fit uint16`);
    out[i] = id;
  });
  return new Uint8Array(out.buffer);
}

function main(): void {
  const outIdx = process.argv.indexOf('--out');
  const out = outIdx > 0 ? process.argv[outIdx + 1]! : 'runs/gpt2-small/corpus';
  let raw: string;
  try {
    raw = execFileSync('bible', ['-f', 'Gen1:1-Rev22:21'], { encoding: 'utf8', maxBuffer: 64 << 20 });
  } catch (e) {
    console.error(`cannot run the 'bible' tool (${(e as Error).message}); install it: apt-get install -y bible-kjv`);
    process.exit(1);
  }
  const chapters = chaptersFromBibleTool(raw);
  if (chapters.length !== 1189) throw new Error(`expected 1,189 chapters, got ${chapters.length}`);
  const train = chapters.filter((_, i) => !isValidationChapter(i)).join('\n\n') + '\n';
  const validation = chapters.filter((_, i) => isValidationChapter(i)).join('\n\n') + '\n';
  const tokenizer = GPT2Tokenizer.fromPretrained(MODEL_DIR);
  mkdirSync(out, { recursive: true });
  const stats: Record<string, unknown> = { source: 'Debian bible-kjv-text 4.38 via `bible -f Gen1:1-Rev22:21`', chapters: chapters.length, validationRule: 'chapter index % 50 === 25' };
  for (const [name, text] of [['train', train], ['validation', validation]] as const) {
    const ids = [...tokenizer.encode(text), tokenizer.eosTokenId];
    writeFileSync(join(out, `${name}.txt`), text);
    writeFileSync(join(out, `${name}.u16`), toU16(ids));
    stats[name] = { bytes: Buffer.byteLength(text), tokens: ids.length, distinctTokens: new Set(ids).size };
  }
  writeFileSync(VALIDATION_TEXT, validation);
  writeFileSync(join(out, 'corpus.json'), JSON.stringify(stats, null, 2) + '\n');
  console.log(JSON.stringify(stats, null, 2));
}

if (process.argv[1] && import.meta.filename === process.argv[1]) main();
