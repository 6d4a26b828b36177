/**
 * Lines that a benchmark or experiment prints as it goes and keeps, to write them out as its markdown report at the
 * end (or part-way, for long runs).
 */
export class ReportLog {
  readonly lines: string[] = [];

  /** Prints `s` and keeps it (bound, so it can be passed around as a plain function). */
  readonly log = (s = ''): void => {
    console.log(s);
    this.lines.push(s);
  };

  /** The kept lines, then `extra`, newline-terminated. */
  text(extra: string[] = []): string {
    return `${[...this.lines, ...extra].join('\n')}\n`;
  }
}
