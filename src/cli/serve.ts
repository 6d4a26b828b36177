/**
 * `fhenet serve --models DIR --keys DIR --port N`: the hybrid model server (src/hybrid/server/app.ts). Imports no
 * TensorFlow.js: the server only loads circuits and runs the crypto backend.
 */
import { existsSync, readdirSync } from 'node:fs';
import { Command } from 'commander';
import { ConfigError } from '../util/errors.js';
import { intOption } from './options.js';

export function serveCommand(): Command {
  return new Command('serve')
    .description('serve compiled remote modules of hybrid models over HTTP (keys stored per uid)')
    .requiredOption('--models <dir>', 'folder of models: <dir>/<model>/<module>/<shape>/{server.fhe,client.json}')
    .option('--keys <dir>', 'folder where uploaded evaluation keys are stored (reloaded after a restart); or --store')
    .option('--store <url>', 'store evaluation keys in this Redis (redis://host:port[/db]), shared by every replica behind a load balancer')
    .option('--port <n>', 'TCP port', intOption('--port', 0, 65535), 8000)
    .option('--host <addr>', 'address to listen on', '127.0.0.1')
    .option('--max-key-mb <n>', 'largest evaluation-key upload (MiB)', intOption('--max-key-mb', 1, 65536), 512)
    .option('--max-stored-keys-mb <n>', 'byte budget of all stored evaluation keys (MiB); the least recently used make room', intOption('--max-stored-keys-mb', 1, 2 ** 30), 8192)
    .option('--key-ttl-hours <n>', 'delete evaluation keys unused for this many hours (default: never)', intOption('--key-ttl-hours', 1, 1_000_000))
    .option('--max-ciphertext-mb <n>', 'largest ciphertext upload (MiB); each module allows only a frame of its largest batch', intOption('--max-ciphertext-mb', 1, 65536), 64)
    .option('--max-batch <n>', 'largest batch (samples) of one /compute request', intOption('--max-batch', 1, 2 ** 20), 1024)
    .option('--max-compute-mb <n>', 'memory one computation may hold for its encrypted values (MiB); bounds each module\'s batch', intOption('--max-compute-mb', 1, 2 ** 20), 1024)
    .option('--max-compute-per-uid <n>', 'computations in flight per uid (past it: 429 with Retry-After)', intOption('--max-compute-per-uid', 1, 4096), 2)
    .option('--max-compute-total <n>', 'computations in flight in total (past it: 429 with Retry-After)', intOption('--max-compute-total', 1, 65536), 8)
    .option('--tfhe-threads <n>', 'PBS worker threads per loaded TFHE key', intOption('--tfhe-threads', 1, 256))
    .option('--tfhe-key-cache <n>', 'TFHE keys kept loaded in memory (≈ 270 MB each for the 2_2 set)', intOption('--tfhe-key-cache', 1, 1024))
    .option('--token-file <file>', 'require a bearer token from this file (one per line, ≥ 16 characters; # comments) on every route but /health; keys answer only to the token that uploaded them; re-read on SIGHUP')
    .option('--queue <url>', 'run the table lookups (KS-PBS) of TFHE requests on `fhenet worker` processes through this Redis (redis://host:port[/db])')
    .option('--pbs-per-job <n>', 'with --queue: table lookups per queue job', intOption('--pbs-per-job', 1, 4096), 16)
    .option('--llm-max-tokens-per-key <n>', 'hybrid LLM: tokens one client key may process (past it: 429 quota_exceeded; default unlimited)', intOption('--llm-max-tokens-per-key', 1))
    .option('--llm-max-keys <n>', 'hybrid LLM: client keys kept in memory (each ≈ 100 MB uploaded, ≈ 256 MiB prepared; least recently used evicted)', intOption('--llm-max-keys', 1, 65536))
    .option('--log-level <level>', 'pino log level (fatal, error, warn, info, debug)', 'info')
    .action(async (o: { models: string; keys?: string; store?: string; port: number; host: string; maxKeyMb: number; maxStoredKeysMb: number; keyTtlHours?: number; maxCiphertextMb: number; maxBatch: number; maxComputeMb: number; maxComputePerUid: number; maxComputeTotal: number; tfheThreads?: number; tfheKeyCache?: number; tokenFile?: string; queue?: string; pbsPerJob: number; llmMaxTokensPerKey?: number; llmMaxKeys?: number; logLevel: string }) => {
      const { serve } = await import('../hybrid/server/app.js');
      // A models folder without any model folder starts a server that can answer nothing: say so, and how to fix it.
      if (!existsSync(o.models) || !readdirSync(o.models, { withFileTypes: true }).some((d) => d.isDirectory())) {
        process.stderr.write(
          `fhenet serve: warning: ${o.models} holds no model (expected <model>/<module>/<shape>/{server.fhe,client.json} or <model>/llm/); ` +
            'build one with: fhenet hybrid build CHECKPOINT --modules NAMES -o ' + o.models + ' (or fhenet hybrid-llm build)\n',
        );
      }
      if ((o.keys === undefined) === (o.store === undefined)) throw new ConfigError('give exactly one of --keys DIR (this machine) and --store redis://… (shared by several replicas)');
      let keyStore: import('../hybrid/server/app.js').ServeOptions['keyStore'];
      if (o.store !== undefined) {
        const [{ checkRedis, parseRedisUrl }, { RedisKeyStore }] = await Promise.all([import('../scale/redis.js'), import('../scale/redis-key-store.js')]);
        const target = parseRedisUrl(o.store, '--store');
        await checkRedis(target, '--store');
        keyStore = (opts) => RedisKeyStore.open(target, opts);
      }
      if (o.queue !== undefined) {
        const [{ checkRedis, parseRedisUrl }, { PbsQueueClient }, { configureTfheServer }] = await Promise.all([import('../scale/redis.js'), import('../scale/pbs-queue.js'), import('../hybrid/tfhe-backend.js')]);
        const target = parseRedisUrl(o.queue, '--queue');
        await checkRedis(target, '--queue');
        const queue = await PbsQueueClient.connect(target, { chunk: o.pbsPerJob });
        configureTfheServer({ pbsRunner: queue.factory });
      }
      await serve({
        modelsDir: o.models,
        keysDir: o.keys ?? '',
        ...(keyStore ? { keyStore } : {}),
        port: o.port,
        host: o.host,
        maxKeyBytes: o.maxKeyMb * 2 ** 20,
        maxStoredKeyBytes: o.maxStoredKeysMb * 2 ** 20,
        ...(o.keyTtlHours !== undefined ? { keyTtlSeconds: o.keyTtlHours * 3600 } : {}),
        maxCiphertextBytes: o.maxCiphertextMb * 2 ** 20,
        maxBatch: o.maxBatch,
        maxComputeMemoryBytes: o.maxComputeMb * 2 ** 20,
        maxComputePerUid: o.maxComputePerUid,
        maxComputeTotal: o.maxComputeTotal,
        ...(o.tfheThreads !== undefined ? { tfheThreads: o.tfheThreads } : {}),
        ...(o.tfheKeyCache !== undefined ? { tfheKeyCacheSize: o.tfheKeyCache } : {}),
        ...(o.tokenFile !== undefined ? { tokenFile: o.tokenFile } : {}),
        ...(o.llmMaxTokensPerKey !== undefined ? { llmMaxTokensPerKey: o.llmMaxTokensPerKey } : {}),
        ...(o.llmMaxKeys !== undefined ? { llmMaxKeys: o.llmMaxKeys } : {}),
        logger: { level: o.logLevel },
      });
    });
}
