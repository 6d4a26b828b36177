/*
 * Node-API helper shared by fhenet's TFHE and GLWE kernels (kernel.c, src/glwe/native/glwe.c): the data pointer and
 * element count of a typed-array argument, or NULL when the argument is not a typed array.
 */
#ifndef FHENET_NAPI_TYPED_H
#define FHENET_NAPI_TYPED_H
#include <node_api.h>

static void *typed(napi_env env, napi_value v, size_t *len) {
  napi_typedarray_type t;
  void *data = NULL;
  napi_value ab;
  size_t off;
  if (napi_get_typedarray_info(env, v, &t, len, &data, &ab, &off) != napi_ok) return NULL;
  return data;
}
#endif
