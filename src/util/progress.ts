/**
 * Progress for long work: a live bar (cli-progress) on an interactive terminal, and plain periodic lines
 * otherwise (CI logs, pipes), so a log shows progress without carriage-return noise.
 */
import cliProgress from 'cli-progress';

export interface Progress {
  /** Sets the absolute position and optional status text. */
  update(done: number, status?: string): void;
  stop(): void;
}

export interface ProgressOptions {
  label: string;
  total: number;
  /** Force a mode (default: bar when stderr is a TTY). */
  mode?: 'bar' | 'lines' | 'silent';
  /** Minimum seconds between plain lines. */
  everySeconds?: number;
  stream?: NodeJS.WriteStream;
}

export function createProgress(opts: ProgressOptions): Progress {
  const stream = opts.stream ?? process.stderr;
  const mode = opts.mode ?? (stream.isTTY ? 'bar' : 'lines');
  if (mode === 'silent') return { update() {}, stop() {} };
  if (mode === 'bar') {
    const bar = new cliProgress.SingleBar(
      { format: `${opts.label} [{bar}] {value}/{total} {percentage}% eta {eta_formatted} {status}`, stream, hideCursor: true },
      cliProgress.Presets.shades_classic,
    );
    bar.start(opts.total, 0, { status: '' });
    return {
      update: (done, status = '') => bar.update(done, { status }),
      stop: () => bar.stop(),
    };
  }
  const every = (opts.everySeconds ?? 10) * 1000;
  const start = Date.now();
  let last = 0;
  let lastPos = 0;
  const line = (done: number, status: string) => {
    const pct = opts.total ? Math.floor((100 * done) / opts.total) : 100;
    const secs = ((Date.now() - start) / 1000).toFixed(1);
    stream.write(`${opts.label}: ${done}/${opts.total} (${pct}%) ${secs}s${status ? ` ${status}` : ''}\n`);
  };
  return {
    update(done, status = '') {
      lastPos = done;
      const now = Date.now();
      if (now - last >= every || done === opts.total) {
        last = now;
        line(done, status);
      }
    },
    stop() {
      if (lastPos !== opts.total && last !== 0) line(lastPos, 'stopped');
    },
  };
}
