/** The shipped model's corpus format and fixed split (experiments/gpt2-small/corpus.ts), on the committed held-out text. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { VALIDATION_TEXT, chaptersFromBibleTool, isValidationChapter } from '../../experiments/gpt2-small/corpus.js';

describe('gpt2-small corpus', () => {
  it('turns the bible tool lines into "Book C:V text" chapters', () => {
    const raw = 'Ge1:1 In the beginning God created the heaven and the earth.\nGe1:2 And the earth was without form.\nGe2:1 Thus the heavens\n1Jn1:1 That which was from the beginning\n';
    expect(chaptersFromBibleTool(raw)).toEqual([
      'Genesis 1:1 In the beginning God created the heaven and the earth.\nGenesis 1:2 And the earth was without form.',
      'Genesis 2:1 Thus the heavens',
      '1 John 1:1 That which was from the beginning',
    ]);
    expect(() => chaptersFromBibleTool('Xyz1:1 nothing')).toThrow(/unknown book/);
  });

  it('holds out 24 of 1,189 chapters, the committed validation text', () => {
    const held = Array.from({ length: 1189 }, (_, i) => i).filter(isValidationChapter);
    expect(held.length).toBe(24);
    const chapters = readFileSync(VALIDATION_TEXT, 'utf8').trimEnd().split('\n\n');
    expect(chapters.length).toBe(24);
    expect(chapters[0]!.startsWith('Genesis 26:1 And there was a famine in the land')).toBe(true);
    for (const c of chapters) expect(c.split('\n').every((line) => /^(\d )?[A-Z][a-z]+( of [A-Z][a-z]+)? \d+:\d+ \S/.test(line))).toBe(true);
  });
});
