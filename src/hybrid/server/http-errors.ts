/**
 * Error answers: JSON `{ statusCode, error, code, message }`. A HybridError carries its status and code; another
 * FhenetError is a 400; fastify's own 4xx (body too large, bad content type) keep their status; anything else is a
 * 500 whose message says nothing of the server. 401 adds WWW-Authenticate, 429 Retry-After.
 */
import { STATUS_CODES } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { FhenetError } from '../../util/errors.js';
import { HybridError } from '../errors.js';
import { TooManyRequests } from './limits.js';
import type { ServerMetrics } from './metrics.js';

/** fastify's error codes for client mistakes, as fhenet codes. */
const FASTIFY_CODES: Record<string, string> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'bad_content_type',
  FST_ERR_CTP_BODY_TOO_LARGE: 'too_large',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'empty_body',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'bad_request',
};

export function installErrorHandlers(app: FastifyInstance, metrics: ServerMetrics): void {
  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, req, reply) => {
    let status = 500;
    let code = 'internal';
    if (err instanceof HybridError) {
      status = err.statusCode;
      code = err.code;
    } else if (err instanceof FhenetError) {
      status = 400;
      code = 'bad_request';
    } else if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
      status = err.statusCode;
      code = (err.code && FASTIFY_CODES[err.code]) ?? 'bad_request';
    }
    if (status >= 500 && !(err instanceof HybridError)) req.log.error({ err }, 'request failed');
    else req.log.warn({ code, reason: err.message }, 'request rejected');
    metrics.errors.inc({ code });
    const deliberate = err instanceof HybridError; // a 507 says why; an unexpected fault says nothing of the server
    if (status === 401) void reply.header('www-authenticate', 'Bearer realm="fhenet"');
    if (err instanceof TooManyRequests) void reply.header('retry-after', String(err.retryAfterSeconds));
    // refused before its body was read (413, a bad key header, 429…): close the connection after the answer rather
    // than read the rest of a body nobody wants
    if (!req.raw.complete) void reply.header('connection', 'close');
    void reply.status(status).send({ statusCode: status, error: STATUS_CODES[status] ?? 'Error', code, message: status >= 500 && !deliberate ? 'internal error' : err.message });
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.status(404).send({ statusCode: 404, error: 'Not Found', code: 'no_route', message: `no route ${req.method} ${req.url.split('?')[0]!.slice(0, 200)}` });
  });
}
