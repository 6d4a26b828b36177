/**
 * The model server under a hostile `/compute` on the TFHE backend (issue 22, server finding 1): one client with a
 * valid uid sends frames of seeded ciphertexts far larger than the circuit expects (copies of a real 124-byte
 * ciphertext, the frame's batch size set to match). The server runs in a child process (`fhenet serve`'s
 * `buildServer`), so its memory is measured alone: VmRSS sampled from /proc every 10 ms, and `/health` probed every
 * 20 ms during each request (latency of every probe; a probe still unanswered when the request ends counts with its
 * time so far). Each size gets a fresh server process (the key reloaded from disk, then one legitimate compute), and
 * the client gives up after --cap-s seconds (the request is aborted; an old server keeps computing, which is part of
 * the attack). A server that refuses a body by its Content-Length answers 413 and closes the connection while the
 * client is still sending; fetch (undici) then reports the closed socket, not the answer ("connection closed").
 * Prints one line per body size: status, request time, peak RSS above the idle server, /health max/p50.
 *
 *   npx tsx bench/hostile-compute.ts [--sizes-mb 2.44,9.77] [--concurrent 1] [--cap-s 30]
 *
 * The TFHE module is the seed example's TFHE-sized variant (bench/hybrid-load.ts --backend tfhe: 2_2 set, input 10).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { Command } from 'commander';

const argv = process.argv.slice(2);
if (argv[0] === '--serve') {
  // the server process: the same buildServer `fhenet serve` runs
  const { buildServer } = await import('../src/hybrid/server/app.js');
  const app = await buildServer({ modelsDir: argv[1]!, keysDir: argv[2]!, logger: false, tfheThreads: 2 });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const addr = app.server.address() as { port: number };
  process.stdout.write(`PORT ${addr.port}\n`);
  await new Promise(() => undefined);
}

const opts = new Command('bench/hostile-compute.ts')
  .option('--sizes-mb <list>', 'hostile body sizes, MiB', '2.44,9.77')
  .option('--concurrent <n>', 'identical hostile requests sent at once', '1')
  .option('--cap-s <s>', 'the client aborts a request after this many seconds', '30')
  .parse()
  .opts<{ sizesMb: string; concurrent: string; capS: string }>();
const capMs = Number(opts.capS) * 1000;
const sizes = opts.sizesMb.split(',').map(Number);
const concurrent = Number(opts.concurrent);

const tf = await import('@tensorflow/tfjs-core');
const { initBackend } = await import('../src/backend/index.js');
const { manualSeed } = await import('../src/nn/init.js');
const { Linear, ReLU, Sequential } = await import('../src/nn/layers.js');
const { Module } = await import('../src/nn/module.js');
const { HybridFHEModel } = await import('../src/hybrid/hybrid-model.js');
const { FHEModelClient } = await import('../src/hybrid/deployment.js');
const { RemoteClient } = await import('../src/hybrid/remote-client.js');
const { decodeTfheCiphertexts, encodeTfheCiphertexts } = await import('../src/hybrid/tfhe-backend.js');

class SeedNet extends Module {
  readonly seq = this.addModule('seq', new Sequential(new Linear(10, 10), new ReLU(), new Linear(10, 10)));
  forward(x: import('../src/nn/quant-tensor.js').Activation): import('../src/nn/quant-tensor.js').Activation {
    return this.seq.call(x);
  }
}

await initBackend();
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'fhenet-hostile-'));
manualSeed(1);
const net = new SeedNet();
const lin = [...net.namedModules()].find(([n]) => n === 'seq.0')![1] as unknown as { weight: import('@tensorflow/tfjs-core').Variable };
const w = Float32Array.from(lin.weight.dataSync() as Float32Array);
for (let r = 0; r < 10; r++) {
  const order = Array.from({ length: 10 }, (_, k) => k).sort((a, b) => Math.abs(w[r * 10 + b]!) - Math.abs(w[r * 10 + a]!));
  for (const k of order.slice(3)) w[r * 10 + k] = 0;
}
lin.weight.assign(tf.tensor(w, [10, 10]));
const h = new HybridFHEModel(net, ['seq.0'], { modelName: 'seed' });
h.compileModel(tf.randomUniform([200, 10], -1, 1, 'float32', 3), { nBits: 2, outputBits: 3, backend: 'tfhe' });
h.saveAndClearPrivateInfo(path.join(root, 'models', 'seed'));

interface Server {
  url: string;
  rss(): number;
  kill(): void;
}
async function startServer(): Promise<Server> {
  const child = spawn(process.execPath, ['--import', 'tsx', new URL(import.meta.url).pathname, '--serve', path.join(root, 'models'), path.join(root, 'keys')], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const m = /PORT (\d+)/.exec(buf);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (c) => reject(new Error(`server exited ${c}`)));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    rss: () => {
      const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${child.pid}/status`, 'utf8'));
      return m ? Number(m[1]) * 1024 : 0;
    },
    kill: () => child.kill('SIGKILL'),
  };
}

let server = await startServer();
try {
  let http = new RemoteClient(server.url);
  const client = FHEModelClient.fromArtefact(await http.getClient('seed', 'seq.0', '10'));
  await client.generatePrivateAndEvaluationKeysAsync();
  const uid = await http.addKey('seed', 'seq.0', '10', client.getSerializedEvaluationKeys());
  const one = client.quantizeEncryptSerialize(Float32Array.from({ length: 10 }, (_, i) => Math.sin(i)), 1);
  const frame = decodeTfheCiphertexts(one);
  const ctBytes = frame.cts[0]!.length;
  console.log(`ciphertext ${ctBytes} B; cap ${capMs / 1000} s; ${concurrent} concurrent request(s) per size; load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')} on ${os.cpus().length} cores`);
  console.log('| body MiB | ciphertexts | idle RSS MiB | legit 1-sample ms | status | request s | peak RSS − idle MiB | /health probes | /health max ms | /health p50 ms |');
  console.log('|---|---|---|---|---|---|---|---|---|---|');
  for (const mb of sizes) {
    server.kill();
    server = await startServer(); // a fresh process per size
    http = new RemoteClient(server.url);
    const t0 = performance.now();
    await http.compute(uid, 'seed', 'seq.0', '10', one); // reloads the key: what follows is the hostile part only
    const legitMs = performance.now() - t0;
    await new Promise((r) => setTimeout(r, 500));
    const idle = server.rss();
    const samples = Math.max(1, Math.floor((mb * 2 ** 20) / (10 * (ctBytes + 4))));
    const cts = Array.from({ length: samples * 10 }, (_, i) => frame.cts[i % 10]!);
    const body = encodeTfheCiphertexts(1, frame.keyId, frame.circuitId, cts, samples);
    let peak = server.rss();
    const sampler = setInterval(() => (peak = Math.max(peak, server.rss())), 10);
    const health: number[] = [];
    let done = false;
    let open: number | undefined;
    const url = server.url;
    const prober = (async () => {
      while (!done) {
        const p0 = performance.now();
        open = p0;
        await fetch(`${url}/health`, { signal: AbortSignal.timeout(capMs + 5000) }).then((r) => r.text(), () => undefined);
        open = undefined;
        health.push(performance.now() - p0);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const r0 = performance.now();
    const statuses = await Promise.all(
      Array.from({ length: concurrent }, () =>
        fetch(`${url}/compute?uid=${uid}&model_name=seed&module_name=seq.0&input_shape=10`, {
          method: 'POST',
          headers: { 'content-type': 'application/octet-stream' },
          body,
          signal: AbortSignal.timeout(capMs),
        }).then(
          async (r) => {
            await r.arrayBuffer();
            return String(r.status);
          },
          (e: Error & { cause?: { code?: string } }) => (e.name === 'TimeoutError' ? `none in ${capMs / 1000} s` : `connection closed (${e.cause?.code ?? e.name})`),
        ),
      ),
    );
    const reqS = (performance.now() - r0) / 1000;
    done = true;
    if (open !== undefined) health.push(performance.now() - open);
    clearInterval(sampler);
    const sorted = [...health].sort((a, b) => a - b);
    console.log(
      `| ${(body.length / 2 ** 20).toFixed(2)} | ${cts.length} | ${(idle / 2 ** 20).toFixed(0)} | ${legitMs.toFixed(0)} | ${[...new Set(statuses)].join(',')} | ${reqS.toFixed(2)} | ${((peak - idle) / 2 ** 20).toFixed(0)} | ${health.length} | ${sorted.at(-1)!.toFixed(0)} | ${sorted[Math.floor(sorted.length / 2)]!.toFixed(0)} |`,
    );
    server.kill();
    await prober;
  }
  client.dispose();
} finally {
  server.kill();
  fs.rmSync(root, { recursive: true, force: true });
}
process.exit(0);
