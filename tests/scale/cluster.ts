/**
 * Local processes for the scale-out tests and experiments: redis-server, HAProxy and fhenet CLI processes on
 * loopback, on ephemeral ports. Every process started here is recorded and `stopAll` kills it (SIGKILL), also when
 * the test failed; each wait is bounded in time.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';

const started = new Set<ChildProcess>();

/** The path of an installed command (also /usr/sbin, which is not on every user's PATH), or undefined. */
export function which(cmd: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  if (r.status === 0 && r.stdout.trim()) return r.stdout.trim();
  return ['/usr/sbin', '/usr/bin', '/usr/local/bin'].map((d) => path.join(d, cmd)).find((f) => fs.existsSync(f));
}

/** Whether a command is installed (tests skip with this reason otherwise, unless FHENET_REQUIRE_SCALE=1). */
export function have(cmd: string): boolean {
  return which(cmd) !== undefined;
}

export const REQUIRE_SCALE = process.env.FHENET_REQUIRE_SCALE === '1';

/** A TCP port nothing listens on right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export interface Proc {
  child: ChildProcess;
  /** Everything written to stdout and stderr so far. */
  output: () => string;
  /** Resolves with the first match of `re` in the output (bounded by `timeoutMs`). */
  waitFor: (re: RegExp, timeoutMs?: number) => Promise<RegExpMatchArray>;
  /** Resolves when the process has exited. */
  exited: Promise<number | null>;
  kill: (signal?: NodeJS.Signals) => Promise<void>;
}

export function startProcess(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Proc {
  const child = spawn(cmd, args, { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  started.add(child);
  let out = '';
  const listeners = new Set<() => void>();
  const onData = (d: Buffer) => {
    out += d.toString();
    if (out.length > 4_000_000) out = out.slice(-2_000_000);
    for (const l of listeners) l();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => {
    started.delete(child);
    for (const l of listeners) l();
    resolve(code);
  }));
  const waitFor = (re: RegExp, timeoutMs = 60_000) =>
    new Promise<RegExpMatchArray>((resolve, reject) => {
      const check = () => {
        const m = out.match(re);
        if (m) {
          done();
          resolve(m);
        } else if (child.exitCode !== null || child.signalCode !== null) {
          done();
          reject(new Error(`${cmd} exited (${child.exitCode ?? child.signalCode}) before printing ${re}:\n${out.slice(-3000)}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${cmd} did not print ${re} within ${timeoutMs} ms:\n${out.slice(-3000)}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        listeners.delete(check);
      };
      listeners.add(check);
      check();
    });
  const kill = async (signal: NodeJS.Signals = 'SIGKILL') => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill(signal);
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    }
  };
  return { child, output: () => out, waitFor, exited, kill };
}

/** Kills every process this module started that is still running. */
export async function stopAll(): Promise<void> {
  await Promise.all([...started].map((c) => {
    if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve();
    c.kill('SIGKILL');
    return new Promise<void>((r) => {
      c.once('exit', () => r());
      setTimeout(r, 5000);
    });
  }));
}

// A test runner killed outright cannot run afterAll: take the children along at least on a normal exit.
process.once('exit', () => {
  for (const c of started) c.kill('SIGKILL');
});

export interface RedisProc extends Proc {
  port: number;
  url: string;
  dir: string;
}

/**
 * redis-server on loopback with append-only-file persistence, fsync on every write (`appendfsync always`): a write
 * Redis acknowledged is on disk, so a killed and restarted Redis loses nothing acknowledged. No RDB snapshots.
 */
export async function startRedis(dir: string, port?: number): Promise<RedisProc> {
  fs.mkdirSync(dir, { recursive: true });
  for (let attempt = 0; ; attempt++) {
    const p = port ?? (await freePort());
    const proc = startProcess(which('redis-server') ?? 'redis-server', ['--port', String(p), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'always', '--save', '', '--protected-mode', 'yes', '--logfile', '']);
    try {
      await proc.waitFor(/Ready to accept connections/, 20_000);
      return { ...proc, port: p, url: `redis://127.0.0.1:${p}`, dir };
    } catch (e) {
      await proc.kill();
      if (port !== undefined || attempt >= 2) throw e;
    }
  }
}

export const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');

/** `fhenet <args>` from the sources (tsx), in the repository root. */
export function startFhenet(args: string[], env: NodeJS.ProcessEnv = {}): Proc {
  return startProcess(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts'), ...args], { cwd: ROOT, env });
}
