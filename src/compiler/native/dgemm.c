/*
 * fhenet's circuit simulator kernel: C = A · op(B) in float64 through OpenBLAS, for the linear ops of a circuit.
 *
 * Why float64 BLAS is exact here: every operand is an integer and every partial sum of a circuit's accumulators
 * stays far below 2^53 (the compiler bounds them; the caller checks the worst case), so each product and each
 * addition — fused or not, in any order — is exact. The result equals the integer dot products bit for bit.
 */
#include <node_api.h>
#include <cblas.h>
#include <stdint.h>

static void *typed(napi_env env, napi_value v, napi_typedarray_type want, size_t *len) {
  napi_typedarray_type t;
  void *data = NULL;
  napi_value ab;
  size_t off;
  if (napi_get_typedarray_info(env, v, &t, len, &data, &ab, &off) != napi_ok || t != want) return NULL;
  return data;
}

/* dgemm(A, B, C, M, N, K, transB): C[M×N] = A[M×K] · (transB ? B[N×K]ᵀ : B[K×N]), row-major Float64Arrays. */
static napi_value Dgemm(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != 7) {
    napi_throw_type_error(env, NULL, "dgemm: 7 arguments expected");
    return NULL;
  }
  size_t la, lb, lc;
  double *a = typed(env, argv[0], napi_float64_array, &la);
  double *b = typed(env, argv[1], napi_float64_array, &lb);
  double *c = typed(env, argv[2], napi_float64_array, &lc);
  int32_t m = 0, n = 0, k = 0, tb = 0;
  napi_get_value_int32(env, argv[3], &m);
  napi_get_value_int32(env, argv[4], &n);
  napi_get_value_int32(env, argv[5], &k);
  napi_get_value_int32(env, argv[6], &tb);
  if (!a || !b || !c || m <= 0 || n <= 0 || k <= 0 || la < (size_t)m * k || lb < (size_t)k * n || lc < (size_t)m * n) {
    napi_throw_range_error(env, NULL, "dgemm: arrays must be Float64Arrays of at least M·K, K·N and M·N values");
    return NULL;
  }
  cblas_dgemm(CblasRowMajor, CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, 1.0, a, k, b, tb ? k : n, 0.0, c, n);
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "dgemm", NAPI_AUTO_LENGTH, Dgemm, NULL, &fn);
  napi_set_named_property(env, exports, "dgemm", fn);
  return exports;
}
