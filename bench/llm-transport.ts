/**
 * Transport of the hybrid LLM's per-token protocol: one GPT-2-small token is 49 `/llm/linear` calls in sequence
 * (12 × c_attn, attn.c_proj, mlp.c_fc, mlp.c_proj, then lm_head), each carrying that layer's real ciphertext sizes
 * (bench/RESULTS.md, "GLWE linear layers": 10.5–31.5 KiB up, 11–396 KiB down; 0.79 MB up + 1.33 MB down per token).
 * The same token over three transports, each one long-lived connection per client:
 *   http1         keep-alive HTTP/1.1: Node's fetch (undici), exactly as src/hybrid/remote-client.ts sends it
 *   http1-node    keep-alive HTTP/1.1: node:http.request with a keep-alive Agent (one socket)
 *   http2         HTTP/2 over cleartext TCP (h2c): a node:http2 client session, default settings (64 KiB windows);
 *                 fastify with `http2: true`
 *   http2-window  the same with 16 MiB stream and connection windows on the client (answers up to 396 KiB)
 *   ws            a WebSocket (ws client; fastify + @fastify/websocket), one binary message each way per call
 * with 0, 20 and 50 ms of added round-trip time: a delaying TCP proxy (its own process) holds every chunk RTT/2 in
 * each direction (`tc qdisc netem` is not available in this container's kernel). The server answers with bytes of
 * the right size without computing (this measures the transport, not the GLWE kernel). Transports are interleaved
 * within each repetition, so machine noise hits them alike. Prints one JSON line per (transport, RTT): median,
 * min and max wall time per token, the overhead beyond 49 × RTT, and the client's CPU time per token.
 *
 *   npx tsx bench/llm-transport.ts [--rtt 0,20,50] [--tokens 15] [--warmup 2]
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { Command } from 'commander';
import Fastify, { type FastifyInstance } from 'fastify';
import WebSocket from 'ws';
import { intListOption, intOption } from '../src/cli/options.js';

/** One GPT-2-small token's calls: [layer, bytes up, bytes down] (bench/RESULTS.md per-matrix wire sizes). */
const KIB = 1024;
const BLOCK: [string, number, number][] = [
  ['attn.c_attn', 10.5 * KIB, 25.0 * KIB],
  ['attn.c_proj', 10.5 * KIB, 11.0 * KIB],
  ['mlp.c_fc', 10.5 * KIB, 28.0 * KIB],
  ['mlp.c_proj', 31.5 * KIB, 11.0 * KIB],
];
const CALLS: { layer: string; up: number; down: number }[] = [
  ...Array.from({ length: 12 }, (_, b) => BLOCK.map(([l, up, down]) => ({ layer: `transformer.h.${b}.${l}`, up: Math.round(up), down: Math.round(down) }))).flat(),
  { layer: 'lm_head', up: Math.round(10.5 * KIB), down: Math.round(396.3 * KIB) },
];
const downOf = new Map(CALLS.map((c) => [c.layer, Buffer.alloc(c.down, 0x5a)]));
const upOf = new Map(CALLS.map((c) => [c.layer, c.up]));

const o = new Command('bench/llm-transport.ts')
  .option('--rtt <ms,...>', 'added round-trip times (ms)', intListOption('--rtt', 0), [0, 20, 50])
  .option('--tokens <n>', 'measured tokens per transport and RTT', intOption('--tokens', 1), 15)
  .option('--warmup <n>', 'tokens before measuring (connection set-up, JIT)', intOption('--warmup', 0), 2)
  .option('--role <role>', '(internal) server | proxy')
  .option('--routes <json>', '(internal) proxy: [[listenPort, targetPort, delayMs], …]')
  .parse()
  .opts<{ rtt: number[]; tokens: number; warmup: number; role?: string; routes?: string }>();

// ---------------------------------------------------------------------------------------------- server process ---

/** POST /llm/linear?layer=L: checks the body has the layer's size, answers the layer's result size. */
function linearRoute(app: FastifyInstance): void {
  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer', bodyLimit: 64 * 2 ** 20 }, (_req, b, done) => done(null, b));
  app.post('/llm/linear', async (req, reply) => {
    const layer = (req.query as { layer?: string }).layer ?? '';
    const body = req.body as Buffer;
    if (body.length !== upOf.get(layer)) return reply.status(400).send({ message: `layer ${layer}: ${body.length} bytes` });
    void reply.type('application/octet-stream');
    return downOf.get(layer);
  });
}

async function runServers(): Promise<void> {
  const h1 = Fastify({ logger: false });
  linearRoute(h1);
  const h2 = Fastify({ logger: false, http2: true });
  linearRoute(h2 as unknown as FastifyInstance); // the same route code; only the raw request/reply types differ
  const ws = Fastify({ logger: false });
  await ws.register((await import('@fastify/websocket')).default, { options: { maxPayload: 64 * 2 ** 20 } });
  ws.register(async (scope) => {
    // one binary message per call: u16 name length, the layer name, the ciphertext
    scope.get('/llm/ws', { websocket: true }, (socket) => {
      socket.on('message', (data: Buffer) => {
        const n = data.readUInt16LE(0);
        const layer = data.subarray(2, 2 + n).toString('utf8');
        if (data.length - 2 - n !== upOf.get(layer)) return socket.close(1008, 'bad size');
        socket.send(downOf.get(layer)!);
      });
    });
  });
  const ports: Record<string, number> = {};
  for (const [name, app] of [['http1', h1], ['http2', h2], ['ws', ws]] as const) {
    await app.listen({ port: 0, host: '127.0.0.1' });
    ports[name] = (app.server.address() as net.AddressInfo).port;
  }
  process.stdout.write(`${JSON.stringify(ports)}\n`);
}

// ----------------------------------------------------------------------------------------------- proxy process ---

/** Forwards TCP to `target`, holding every chunk `delayMs` in each direction (so a round trip gains 2 × delayMs). */
function delayProxy(listenPort: number, target: number, delayMs: number): Promise<number> {
  const server = net.createServer((down) => {
    const up = net.connect(target, '127.0.0.1');
    down.setNoDelay(true);
    up.setNoDelay(true);
    const relay = (from: net.Socket, to: net.Socket) => {
      from.on('data', (d) => setTimeout(() => to.writable && to.write(d), delayMs));
      from.on('end', () => setTimeout(() => to.end(), delayMs));
      from.on('error', () => to.destroy());
      from.on('close', () => setTimeout(() => to.destroy(), delayMs + 1));
    };
    relay(down, up);
    relay(up, down);
  });
  return new Promise((resolve) => server.listen(listenPort, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));
}

async function runProxies(routes: [number, number, number][]): Promise<void> {
  const ports = await Promise.all(routes.map(([, target, delay]) => delayProxy(0, target, delay)));
  process.stdout.write(`${JSON.stringify(ports)}\n`);
}

// ---------------------------------------------------------------------------------------------------- clients ---

interface Transport {
  name: string;
  call(layer: string, body: Buffer): Promise<number>;
  close(): Promise<void>;
}

function http1Client(port: number): Transport {
  const base = `http://127.0.0.1:${port}`;
  return {
    name: 'http1',
    async call(layer, body) {
      const res = await fetch(`${base}/llm/linear?${new URLSearchParams({ uid: '00000000-0000-4000-8000-000000000000', model_name: 'gpt2', layer, tokens: '1' })}`, {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream' },
        body,
      });
      const bytes = await res.arrayBuffer();
      if (!res.ok) throw new Error(`http1 ${layer}: ${res.status}`);
      return bytes.byteLength;
    },
    async close() {},
  };
}

function http1NodeClient(port: number): Transport {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  return {
    name: 'http1-node',
    call(layer, body) {
      return new Promise((resolve, reject) => {
        const path = `/llm/linear?${new URLSearchParams({ uid: '00000000-0000-4000-8000-000000000000', model_name: 'gpt2', layer, tokens: '1' })}`;
        const req = http.request({ host: '127.0.0.1', port, path, method: 'POST', agent, headers: { 'content-type': 'application/octet-stream', 'content-length': body.length } }, (res) => {
          let n = 0;
          res.on('data', (d: Buffer) => (n += d.length));
          res.on('end', () => (res.statusCode === 200 ? resolve(n) : reject(new Error(`http1-node ${layer}: ${res.statusCode}`))));
          res.on('error', reject);
        });
        req.on('error', reject);
        req.end(body);
      });
    },
    async close() {
      agent.destroy();
    },
  };
}

const WINDOW = 16 * 2 ** 20;

function http2Client(port: number, bigWindow: boolean): Transport {
  const session = http2.connect(`http://127.0.0.1:${port}`, bigWindow ? { settings: { initialWindowSize: WINDOW } } : {});
  if (bigWindow) session.on('connect', () => session.setLocalWindowSize(WINDOW));
  session.on('error', () => undefined); // a failed call rejects its own promise
  return {
    name: bigWindow ? 'http2-window' : 'http2',
    call(layer, body) {
      return new Promise((resolve, reject) => {
        const path = `/llm/linear?${new URLSearchParams({ uid: '00000000-0000-4000-8000-000000000000', model_name: 'gpt2', layer, tokens: '1' })}`;
        const req = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/octet-stream', 'content-length': String(body.length) });
        let status = 0;
        let n = 0;
        req.on('response', (h) => (status = Number(h[':status'])));
        req.on('data', (d: Buffer) => (n += d.length));
        req.on('end', () => (status === 200 ? resolve(n) : reject(new Error(`http2 ${layer}: ${status}`))));
        req.on('error', reject);
        req.end(body);
      });
    },
    close: () => new Promise((r) => session.close(() => r())),
  };
}

async function wsClient(port: number): Promise<Transport> {
  const socket = new WebSocket(`ws://127.0.0.1:${port}/llm/ws`, { maxPayload: 64 * 2 ** 20 });
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  let waiting: { resolve: (n: number) => void; reject: (e: Error) => void } | undefined;
  socket.on('message', (d: Buffer) => waiting?.resolve(d.length));
  socket.on('close', (code) => waiting?.reject(new Error(`ws closed ${code}`)));
  return {
    name: 'ws',
    call(layer, body) {
      const name = Buffer.from(layer, 'utf8');
      const head = Buffer.alloc(2);
      head.writeUInt16LE(name.length);
      return new Promise((resolve, reject) => {
        waiting = { resolve, reject };
        socket.send(Buffer.concat([head, name, body]));
      });
    },
    close: async () => socket.close(),
  };
}

/** One token: the 49 calls in sequence (each needs the previous layer's decrypted output). */
async function token(t: Transport): Promise<{ ms: number; cpuMs: number }> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (const c of CALLS) {
    const n = await t.call(c.layer, Buffer.alloc(c.up, 0xa5));
    if (n !== c.down) throw new Error(`${t.name} ${c.layer}: ${n} bytes, expected ${c.down}`);
  }
  const cpu = process.cpuUsage(c0);
  return { ms: performance.now() - t0, cpuMs: (cpu.user + cpu.system) / 1000 };
}

/** A child process running this file in `role`; resolves with the JSON line it prints when ready. */
async function child<T>(args: string[]): Promise<{ proc: ChildProcess; ready: T }> {
  const proc = spawn(process.execPath, ['--import', 'tsx', new URL(import.meta.url).pathname, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const ready = await new Promise<T>((resolve, reject) => {
    let out = '';
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve(JSON.parse(out.slice(0, nl)) as T);
    });
    proc.once('exit', (code) => reject(new Error(`${args.join(' ')} exited ${code}`)));
  });
  return { proc, ready };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function main(): Promise<void> {
  const names = ['http1', 'http1-node', 'http2', 'http2-window', 'ws'] as const;
  const serverOf = { http1: 'http1', 'http1-node': 'http1', http2: 'http2', 'http2-window': 'http2', ws: 'ws' } as const;
  const servers = await child<Record<'http1' | 'http2' | 'ws', number>>(['--role', 'server']);
  const routes = o.rtt.flatMap((rtt) => names.map((n) => [0, servers.ready[serverOf[n]], rtt / 2] as [number, number, number]));
  const proxies = await child<number[]>(['--role', 'proxy', '--routes', JSON.stringify(routes)]);
  const up = CALLS.reduce((a, c) => a + c.up, 0);
  const down = CALLS.reduce((a, c) => a + c.down, 0);
  process.stderr.write(`one token: ${CALLS.length} calls, ${(up / 1e6).toFixed(3)} MB up, ${(down / 1e6).toFixed(3)} MB down; RTT ${o.rtt.join(', ')} ms; ${o.tokens} tokens each (+${o.warmup} warm-up)\n`);
  try {
    for (const [ri, rtt] of o.rtt.entries()) {
      const clients: Transport[] = [];
      for (const [ni, n] of names.entries()) {
        const port = proxies.ready[ri * names.length + ni]!;
        clients.push(
          n === 'http1' ? http1Client(port) : n === 'http1-node' ? http1NodeClient(port) : n === 'http2' || n === 'http2-window' ? http2Client(port, n === 'http2-window') : await wsClient(port),
        );
      }
      const res = new Map<string, { ms: number[]; cpuMs: number[] }>(names.map((n) => [n, { ms: [], cpuMs: [] }]));
      for (let i = 0; i < o.warmup + o.tokens; i++) {
        for (const c of i % 2 ? [...clients].reverse() : clients) {
          const r = await token(c);
          if (i < o.warmup) continue;
          res.get(c.name)!.ms.push(r.ms);
          res.get(c.name)!.cpuMs.push(r.cpuMs);
        }
      }
      for (const c of clients) {
        const r = res.get(c.name)!;
        const m = median(r.ms);
        console.log(
          JSON.stringify({
            transport: c.name,
            rttMs: rtt,
            tokens: r.ms.length,
            medianMsPerToken: +m.toFixed(1),
            minMs: +Math.min(...r.ms).toFixed(1),
            maxMs: +Math.max(...r.ms).toFixed(1),
            overheadMsPerToken: +(m - CALLS.length * rtt).toFixed(1),
            overheadMsPerCall: +((m - CALLS.length * rtt) / CALLS.length).toFixed(2),
            clientCpuMsPerToken: +median(r.cpuMs).toFixed(1),
          }),
        );
        await c.close();
      }
    }
  } finally {
    servers.proc.kill();
    proxies.proc.kill();
  }
}

if (o.role === 'server') await runServers();
else if (o.role === 'proxy') await runProxies(JSON.parse(o.routes!) as [number, number, number][]);
else {
  await main();
  process.exit(0);
}
