/** GET /health (cheap, never authenticated: load balancers poll it) and GET /metrics (Prometheus text). */
import type { FastifyInstance } from 'fastify';
import type { ServerContext } from './context.js';

export function statusRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get('/health', async () => ({ status: 'ok', models: ctx.catalogue.models().length, computeInFlight: ctx.slots.inFlight }));
  app.get('/metrics', async (_req, reply) => {
    const { text, contentType } = await ctx.metrics.scrape();
    void reply.type(contentType).send(text);
  });
}
