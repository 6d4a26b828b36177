/** GET /list_models, /list_modules, /list_shapes, /get_client: what the server serves (no key needed). */
import type { FastifyInstance } from 'fastify';
import type { ServerContext } from './context.js';
import { moduleParams, nameParam } from './query.js';

export function catalogueRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get('/list_models', async () => ({ models: ctx.catalogue.models() }));
  app.get('/list_modules', async (req) => ({ modules: ctx.catalogue.modules(nameParam(req.query, 'model_name')) }));
  app.get('/list_shapes', async (req) => ({ shapes: ctx.catalogue.shapes(nameParam(req.query, 'model_name'), nameParam(req.query, 'module_name')) }));
  app.get('/get_client', async (req, reply) => {
    const { model, module, shape } = moduleParams(req.query);
    void reply.type('application/json').send(ctx.catalogue.get(model, module, shape).clientBytes);
  });
}
