/** `fhenet serve` in a child process (so its CPU time and memory are its own), ready when /health answers. */
import { type ChildProcess, spawn } from 'node:child_process';

export async function serveChild(modelsDir: string, keysDir: string): Promise<{ server: ChildProcess; url: string }> {
  const port = 20000 + Math.floor(Math.random() * 20000);
  const server = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'serve', '--models', modelsDir, '--keys', keysDir, '--port', String(port), '--log-level', 'warn'], { stdio: ['ignore', 'inherit', 'inherit'] });
  process.once('exit', () => server.kill('SIGTERM')); // no orphaned server if the script dies
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${url}/health`)).ok) return { server, url };
    } catch {
      /* not up yet */
    }
    if (i > 600) throw new Error('server did not start');
    await new Promise((r) => setTimeout(r, 500));
  }
}
