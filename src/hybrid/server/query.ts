/**
 * Query parameters of the server's routes: each present exactly once (a repeated one is named as such, not reported
 * missing), names checked before they reach a lookup, shapes parsed.
 */
import { parseShapeKey } from '../deployment.js';
import { HybridError } from '../errors.js';
import { NAME_RE } from './models.js';
import { UID_RE } from './key-store.js';


/** The one value of query parameter `name`. */
export function param(query: unknown, name: string): string {
  const v = (query as Record<string, unknown> | undefined)?.[name];
  if (Array.isArray(v)) throw new HybridError(`query parameter '${name}' is given ${v.length} times; give it once`, 400, 'duplicate_parameter');
  if (typeof v !== 'string' || v.length === 0) throw new HybridError(`query parameter '${name}' is required`, 400, 'missing_parameter');
  return v;
}

/** A model or module name parameter. */
export function nameParam(query: unknown, name: 'model_name' | 'module_name'): string {
  const v = param(query, name);
  if (!NAME_RE.test(v)) throw new HybridError(`${name} must match [A-Za-z0-9_.-]{1,200}`, 400, 'bad_name');
  return v;
}

/** model_name, module_name and input_shape. */
export function moduleParams(query: unknown): { model: string; module: string; shape: string } {
  const model = nameParam(query, 'model_name');
  const module = nameParam(query, 'module_name');
  const shape = param(query, 'input_shape');
  parseShapeKey(shape);
  return { model, module, shape };
}

/** The uid parameter, validated. */
export function uidParam(query: unknown): string {
  const uid = param(query, 'uid');
  if (!UID_RE.test(uid)) throw new HybridError(`uid '${uid.slice(0, 64)}' is not a uid returned by /add_key`, 400, 'bad_uid');
  return uid;
}
