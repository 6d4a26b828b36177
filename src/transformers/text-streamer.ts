/**
 * Turns a stream of generated token ids into text pieces for a terminal (transformers' TextStreamer habit).
 * Byte-level BPE tokens can end in the middle of a UTF-8 character, so the whole generated sequence is decoded each
 * time and only the new, complete part is released; a trailing U+FFFD (an incomplete character) is held back until
 * the next token completes it.
 */
export interface Decoder {
  decode(ids: readonly number[]): string;
}

export class TextStreamer {
  private readonly ids: number[] = [];
  private emitted = 0;

  constructor(private readonly tokenizer: Decoder) {}

  /** Adds tokens; returns the text that became final. */
  push(...tokens: number[]): string {
    this.ids.push(...tokens);
    const text = this.tokenizer.decode(this.ids);
    const stable = text.endsWith('\uFFFD') ? text.replace(/\uFFFD+$/, '') : text;
    if (stable.length <= this.emitted) return '';
    const piece = stable.slice(this.emitted);
    this.emitted = stable.length;
    return piece;
  }

  /** The rest, including any incomplete character at the very end. */
  end(): string {
    const text = this.tokenizer.decode(this.ids);
    const piece = text.slice(this.emitted);
    this.emitted = text.length;
    return piece;
  }
}
