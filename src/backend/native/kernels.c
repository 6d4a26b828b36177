/*
 * fhenet native kernels for the tfjs WASM backend (optional accelerator, see src/backend/native/index.ts).
 *
 * Every function works in place on the WASM backend's heap: the caller passes a typed array (or ArrayBuffer) over the
 * whole WASM memory and byte offsets of the tensors' data, already allocated by the backend. Nothing here allocates
 * on that heap.
 *
 *   conv2d(heap, xOff, wOff, yOff, g…)                 y[B,OH,OW,Co] = conv(x[B,H,W,Ci], w[kH,kW,Ci,Co])
 *   conv2dBackpropFilter(heap, xOff, dyOff, dwOff, g…) dw[kH,kW,Ci,Co] = Σ im2col(x)ᵀ · dy
 *   conv2dBackpropInput(heap, dyOff, wOff, dxOff, g…)  dx = col2im(dy · wᵀ)
 *   matmul(heap, aOff, bOff, cOff, batchA, batchB, M, N, K, transA, transB)
 *   setThreads(n), threads(), info()
 *
 * with g… = B, H, W, Ci, OH, OW, Co, kH, kW, strideH, strideW, padTop, padLeft, dilationH, dilationW (NHWC).
 *
 * Convolutions are im2col in chunks of output rows + OpenBLAS cblas_sgemm. fhenet runs its own threads (one chunk
 * range per thread, each calling a single-threaded sgemm), so im2col/col2im run in parallel too; OpenBLAS's own
 * threading is set to 1.
 */
#include <node_api.h>
#include <cblas.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* OpenBLAS extensions (declared here too in case the cblas.h found is not OpenBLAS's). */
void openblas_set_num_threads(int num_threads);
char *openblas_get_config(void);
char *openblas_get_corename(void);

static int g_threads = 1;
/* Target size of one thread's im2col buffer, in floats. */
static size_t g_chunk_floats = 1 << 18;

typedef struct {
  int B, H, W, Ci, OH, OW, Co, kH, kW, sh, sw, pt, pl, dh, dw;
} geom_t;

/* ─── threads ─────────────────────────────────────────────────────────────────────────────────────────────────── */

typedef void (*task_fn)(void *ctx, int tid, int nthreads);
typedef struct {
  task_fn fn;
  void *ctx;
  int tid, n;
} thread_arg_t;

static void *thread_main(void *p) {
  thread_arg_t *a = (thread_arg_t *)p;
  a->fn(a->ctx, a->tid, a->n);
  return NULL;
}

static void parallel(int n, task_fn fn, void *ctx) {
  if (n <= 1) {
    fn(ctx, 0, 1);
    return;
  }
  pthread_t th[64];
  thread_arg_t args[64];
  if (n > 64) n = 64;
  int started = 0;
  for (int t = 1; t < n; t++) {
    args[t] = (thread_arg_t){fn, ctx, t, n};
    if (pthread_create(&th[t], NULL, thread_main, &args[t]) != 0) break;
    started = t;
  }
  if (started < n - 1) {
    /* Could not start every thread: join those started, then run all parts here. */
    for (int t = 1; t <= started; t++) pthread_join(th[t], NULL);
    for (int t = 0; t < n; t++) {
      if (t == 0 || t > started) fn(ctx, t, n);
    }
    return;
  }
  fn(ctx, 0, n);
  for (int t = 1; t < n; t++) pthread_join(th[t], NULL);
}

/* Threads worth using for `flops` of work split into `units` independent parts. */
static int threads_for(double flops, long units) {
  int n = g_threads;
  if (flops < 4e6) n = 1;
  if (units < n) n = (int)(units > 0 ? units : 1);
  return n;
}

/* ─── im2col / col2im (NHWC, rows = output positions, columns = (kh, kw, ci)) ─────────────────────────────────── */

static void im2col(const float *x, const geom_t *g, long r0, long rc, float *cols) {
  const long K = (long)g->kH * g->kW * g->Ci;
  const int Ci = g->Ci;
  for (long r = 0; r < rc; r++) {
    long rr = r0 + r;
    int ow = (int)(rr % g->OW);
    long t = rr / g->OW;
    int oh = (int)(t % g->OH);
    int b = (int)(t / g->OH);
    float *dst = cols + r * K;
    const int ih0 = oh * g->sh - g->pt, iw0 = ow * g->sw - g->pl;
    const float *xb = x + (long)b * g->H * g->W * Ci;
    for (int kh = 0; kh < g->kH; kh++) {
      int ih = ih0 + kh * g->dh;
      float *d = dst + (long)kh * g->kW * Ci;
      if (ih < 0 || ih >= g->H) {
        memset(d, 0, sizeof(float) * g->kW * Ci);
        continue;
      }
      const float *row = xb + (long)ih * g->W * Ci;
      if (g->dw == 1 && iw0 >= 0 && iw0 + g->kW <= g->W) {
        memcpy(d, row + (long)iw0 * Ci, sizeof(float) * g->kW * Ci);
        continue;
      }
      for (int kw = 0; kw < g->kW; kw++) {
        int iw = iw0 + kw * g->dw;
        if (iw < 0 || iw >= g->W) memset(d + kw * Ci, 0, sizeof(float) * Ci);
        else memcpy(d + kw * Ci, row + (long)iw * Ci, sizeof(float) * Ci);
      }
    }
  }
}

static void col2im_add(const float *cols, const geom_t *g, long r0, long rc, float *dx) {
  const long K = (long)g->kH * g->kW * g->Ci;
  const int Ci = g->Ci;
  for (long r = 0; r < rc; r++) {
    long rr = r0 + r;
    int ow = (int)(rr % g->OW);
    long t = rr / g->OW;
    int oh = (int)(t % g->OH);
    int b = (int)(t / g->OH);
    const float *src = cols + r * K;
    const int ih0 = oh * g->sh - g->pt, iw0 = ow * g->sw - g->pl;
    float *xb = dx + (long)b * g->H * g->W * Ci;
    for (int kh = 0; kh < g->kH; kh++) {
      int ih = ih0 + kh * g->dh;
      if (ih < 0 || ih >= g->H) continue;
      float *row = xb + (long)ih * g->W * Ci;
      const float *s = src + (long)kh * g->kW * Ci;
      if (g->dw == 1 && iw0 >= 0 && iw0 + g->kW <= g->W) {
        float *d = row + (long)iw0 * Ci;
        const long n = (long)g->kW * Ci;
        for (long i = 0; i < n; i++) d[i] += s[i];
        continue;
      }
      for (int kw = 0; kw < g->kW; kw++) {
        int iw = iw0 + kw * g->dw;
        if (iw < 0 || iw >= g->W) continue;
        float *d = row + (long)iw * Ci;
        const float *sk = s + kw * Ci;
        for (int i = 0; i < Ci; i++) d[i] += sk[i];
      }
    }
  }
}

/* 1×1, stride 1, no padding: the input rows are the im2col rows. */
static int is_pointwise(const geom_t *g) {
  return g->kH == 1 && g->kW == 1 && g->sh == 1 && g->sw == 1 && g->pt == 0 && g->pl == 0 && g->OH == g->H && g->OW == g->W;
}

static long chunk_rows(long K) {
  long r = (long)(g_chunk_floats / (size_t)(K > 0 ? K : 1));
  if (r < 16) r = 16;
  if (r > 8192) r = 8192;
  return r;
}

/* ─── convolution kernels ─────────────────────────────────────────────────────────────────────────────────────── */

typedef struct {
  const geom_t *g;
  const float *a, *b; /* conv2d: x, w. filter: x, dy. input: dy, w. */
  float *out;
  float **partials; /* filter gradient: one K×Co buffer per thread (thread 0 writes `out`). */
  long units;       /* rows (forward, filter) or images (input) */
  int failed;
} conv_ctx_t;

static void conv2d_task(void *p, int tid, int n) {
  conv_ctx_t *c = (conv_ctx_t *)p;
  const geom_t *g = c->g;
  const long K = (long)g->kH * g->kW * g->Ci;
  const long begin = c->units * tid / n, end = c->units * (tid + 1) / n;
  const int direct = is_pointwise(g);
  const long R = chunk_rows(K);
  float *cols = direct ? NULL : (float *)malloc(sizeof(float) * R * K);
  if (!direct && !cols) {
    c->failed = 1;
    return;
  }
  for (long r0 = begin; r0 < end; r0 += R) {
    long rc = end - r0 < R ? end - r0 : R;
    const float *A = direct ? c->a + r0 * K : cols;
    if (!direct) im2col(c->a, g, r0, rc, cols);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rc, g->Co, (int)K, 1.0f, A, (int)K, c->b, g->Co, 0.0f,
                c->out + r0 * g->Co, g->Co);
  }
  free(cols);
}

static void filter_task(void *p, int tid, int n) {
  conv_ctx_t *c = (conv_ctx_t *)p;
  const geom_t *g = c->g;
  const long K = (long)g->kH * g->kW * g->Ci;
  const long begin = c->units * tid / n, end = c->units * (tid + 1) / n;
  const int direct = is_pointwise(g);
  const long R = chunk_rows(K);
  float *dw = tid == 0 ? c->out : c->partials[tid];
  if (!dw) {
    c->failed = 1;
    return;
  }
  float *cols = direct ? NULL : (float *)malloc(sizeof(float) * R * K);
  if (!direct && !cols) {
    c->failed = 1;
    return;
  }
  float beta = 0.0f;
  if (begin >= end) memset(dw, 0, sizeof(float) * K * g->Co);
  for (long r0 = begin; r0 < end; r0 += R) {
    long rc = end - r0 < R ? end - r0 : R;
    const float *A = direct ? c->a + r0 * K : cols;
    if (!direct) im2col(c->a, g, r0, rc, cols);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)K, g->Co, (int)rc, 1.0f, A, (int)K, c->b + r0 * g->Co, g->Co,
                beta, dw, g->Co);
    beta = 1.0f;
  }
  free(cols);
}

static void input_task(void *p, int tid, int n) {
  conv_ctx_t *c = (conv_ctx_t *)p;
  const geom_t *g = c->g;
  const long K = (long)g->kH * g->kW * g->Ci;
  /* Whole images per thread: col2im of different threads never touches the same dx element. */
  const long b0 = c->units * tid / n, b1 = c->units * (tid + 1) / n;
  const long per = (long)g->OH * g->OW;
  const long begin = b0 * per, end = b1 * per;
  const int direct = is_pointwise(g);
  const long R = chunk_rows(K);
  if (direct) {
    /* dx rows = dy rows · wᵀ. */
    if (end > begin)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(end - begin), (int)K, g->Co, 1.0f, c->a + begin * g->Co,
                  g->Co, c->b, g->Co, 0.0f, c->out + begin * K, (int)K);
    return;
  }
  memset(c->out + b0 * (long)g->H * g->W * g->Ci, 0, sizeof(float) * (b1 - b0) * g->H * g->W * g->Ci);
  float *cols = (float *)malloc(sizeof(float) * R * K);
  if (!cols) {
    c->failed = 1;
    return;
  }
  for (long r0 = begin; r0 < end; r0 += R) {
    long rc = end - r0 < R ? end - r0 : R;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rc, (int)K, g->Co, 1.0f, c->a + r0 * g->Co, g->Co, c->b,
                g->Co, 0.0f, cols, (int)K);
    col2im_add(cols, g, r0, rc, c->out);
  }
  free(cols);
}

/* ─── matmul ──────────────────────────────────────────────────────────────────────────────────────────────────── */

typedef struct {
  const float *a, *b;
  float *c;
  long batchA, batchB, batch, M, N, K;
  int ta, tb;
  int by_batch;
} mm_ctx_t;

static void mm_task(void *p, int tid, int n) {
  mm_ctx_t *m = (mm_ctx_t *)p;
  const long lda = m->ta ? m->M : m->K, ldb = m->tb ? m->K : m->N;
  const long sa = m->M * m->K, sb = m->K * m->N, sc = m->M * m->N;
  if (m->by_batch) {
    const long i0 = m->batch * tid / n, i1 = m->batch * (tid + 1) / n;
    for (long i = i0; i < i1; i++) {
      const float *A = m->a + (m->batchA == 1 ? 0 : i) * sa;
      const float *B = m->b + (m->batchB == 1 ? 0 : i) * sb;
      cblas_sgemm(CblasRowMajor, m->ta ? CblasTrans : CblasNoTrans, m->tb ? CblasTrans : CblasNoTrans, (int)m->M, (int)m->N,
                  (int)m->K, 1.0f, A, (int)lda, B, (int)ldb, 0.0f, m->c + i * sc, (int)m->N);
    }
    return;
  }
  /* One matrix: split the rows of C. */
  const long r0 = m->M * tid / n, r1 = m->M * (tid + 1) / n;
  if (r1 <= r0) return;
  const float *A = m->ta ? m->a + r0 : m->a + r0 * lda;
  cblas_sgemm(CblasRowMajor, m->ta ? CblasTrans : CblasNoTrans, m->tb ? CblasTrans : CblasNoTrans, (int)(r1 - r0), (int)m->N,
              (int)m->K, 1.0f, A, (int)lda, m->b, (int)ldb, 0.0f, m->c + r0 * m->N, (int)m->N);
}

/* ─── Node-API glue ───────────────────────────────────────────────────────────────────────────────────────────── */

#define CHECK(call)                                                                                                   \
  do {                                                                                                                \
    if ((call) != napi_ok) {                                                                                          \
      napi_throw_error(env, NULL, "fhenet native: Node-API call failed: " #call);                                     \
      return NULL;                                                                                                    \
    }                                                                                                                 \
  } while (0)

/* The heap (typed array or ArrayBuffer) → base pointer and byte length. */
static int heap_of(napi_env env, napi_value v, uint8_t **base, size_t *len) {
  bool is;
  if (napi_is_typedarray(env, v, &is) == napi_ok && is) {
    napi_typedarray_type type;
    size_t length, offset;
    void *data;
    napi_value ab;
    if (napi_get_typedarray_info(env, v, &type, &length, &data, &ab, &offset) != napi_ok) return 0;
    size_t elem = 1;
    switch (type) {
      case napi_int16_array: case napi_uint16_array: elem = 2; break;
      case napi_int32_array: case napi_uint32_array: case napi_float32_array: elem = 4; break;
      case napi_float64_array: case napi_bigint64_array: case napi_biguint64_array: elem = 8; break;
      default: elem = 1;
    }
    *base = (uint8_t *)data;
    *len = length * elem;
    return 1;
  }
  if (napi_is_arraybuffer(env, v, &is) == napi_ok && is) {
    void *data;
    if (napi_get_arraybuffer_info(env, v, &data, len) != napi_ok) return 0;
    *base = (uint8_t *)data;
    return 1;
  }
  return 0;
}

static int get_i64s(napi_env env, napi_value *argv, size_t n, int64_t *out) {
  for (size_t i = 0; i < n; i++) {
    if (napi_get_value_int64(env, argv[i], &out[i]) != napi_ok) return 0;
  }
  return 1;
}

/* Pointer to `count` floats at byte offset `off`, or NULL when out of bounds or misaligned. */
static float *at(uint8_t *base, size_t len, int64_t off, int64_t count) {
  if (off < 0 || count < 0 || (off & 3) != 0) return NULL;
  if ((uint64_t)off + (uint64_t)count * 4 > len) return NULL;
  return (float *)(base + off);
}

static int read_geom(const int64_t *v, geom_t *g) {
  int *f = (int *)g;
  for (int i = 0; i < 15; i++) {
    if (v[i] < 0 || v[i] > (1 << 30)) return 0;
    f[i] = (int)v[i];
  }
  return g->sh > 0 && g->sw > 0 && g->dh > 0 && g->dw > 0;
}

enum { CONV_FWD, CONV_FILTER, CONV_INPUT };

static napi_value conv_entry(napi_env env, napi_callback_info info, int kind) {
  size_t argc = 19;
  napi_value argv[19];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 19) {
    napi_throw_type_error(env, NULL, "fhenet native conv: expected 19 arguments");
    return NULL;
  }
  uint8_t *base;
  size_t len;
  if (!heap_of(env, argv[0], &base, &len)) {
    napi_throw_type_error(env, NULL, "fhenet native conv: heap must be a typed array or ArrayBuffer");
    return NULL;
  }
  int64_t v[18];
  geom_t g;
  if (!get_i64s(env, argv + 1, 18, v) || !read_geom(v + 3, &g)) {
    napi_throw_type_error(env, NULL, "fhenet native conv: bad offsets or geometry");
    return NULL;
  }
  const int64_t nx = (int64_t)g.B * g.H * g.W * g.Ci, ny = (int64_t)g.B * g.OH * g.OW * g.Co;
  const int64_t K = (int64_t)g.kH * g.kW * g.Ci, nw = K * g.Co;
  const float *in0, *in1;
  float *out;
  int64_t n0, n1, n2;
  if (kind == CONV_FWD) { n0 = nx; n1 = nw; n2 = ny; }
  else if (kind == CONV_FILTER) { n0 = nx; n1 = ny; n2 = nw; }
  else { n0 = ny; n1 = nw; n2 = nx; }
  in0 = at(base, len, v[0], n0);
  in1 = at(base, len, v[1], n1);
  out = at(base, len, v[2], n2);
  if (!in0 || !in1 || !out) {
    napi_throw_range_error(env, NULL, "fhenet native conv: tensor outside the heap or misaligned");
    return NULL;
  }
  conv_ctx_t c = {&g, in0, in1, out, NULL, 0, 0};
  const double flops = 2.0 * (double)g.B * g.OH * g.OW * (double)K * g.Co;
  if (kind == CONV_FWD) {
    c.units = (long)g.B * g.OH * g.OW;
    parallel(threads_for(flops, c.units / 16), conv2d_task, &c);
  } else if (kind == CONV_FILTER) {
    c.units = (long)g.B * g.OH * g.OW;
    int n = threads_for(flops, c.units / 64);
    float *partials[64] = {0};
    c.partials = partials;
    for (int t = 1; t < n; t++) partials[t] = (float *)malloc(sizeof(float) * nw);
    parallel(n, filter_task, &c);
    for (int t = 1; t < n; t++) {
      if (partials[t]) {
        const float *p = partials[t];
        for (int64_t i = 0; i < nw; i++) out[i] += p[i];
      }
      free(partials[t]);
    }
  } else {
    c.units = g.B;
    parallel(threads_for(flops, c.units), input_task, &c);
  }
  if (c.failed) {
    napi_throw_error(env, NULL, "fhenet native conv: out of memory");
    return NULL;
  }
  return NULL;
}

static napi_value conv2d(napi_env env, napi_callback_info info) { return conv_entry(env, info, CONV_FWD); }
static napi_value conv2d_filter(napi_env env, napi_callback_info info) { return conv_entry(env, info, CONV_FILTER); }
static napi_value conv2d_input(napi_env env, napi_callback_info info) { return conv_entry(env, info, CONV_INPUT); }

static napi_value matmul(napi_env env, napi_callback_info info) {
  size_t argc = 11;
  napi_value argv[11];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 11) {
    napi_throw_type_error(env, NULL, "fhenet native matmul: expected 11 arguments");
    return NULL;
  }
  uint8_t *base;
  size_t len;
  int64_t v[10];
  if (!heap_of(env, argv[0], &base, &len) || !get_i64s(env, argv + 1, 10, v)) {
    napi_throw_type_error(env, NULL, "fhenet native matmul: bad arguments");
    return NULL;
  }
  mm_ctx_t m;
  m.batchA = v[3];
  m.batchB = v[4];
  m.M = v[5];
  m.N = v[6];
  m.K = v[7];
  m.ta = v[8] != 0;
  m.tb = v[9] != 0;
  if (m.batchA < 1 || m.batchB < 1 || m.M < 1 || m.N < 1 || m.K < 1 || (m.batchA != m.batchB && m.batchA != 1 && m.batchB != 1) ||
      m.M > (1L << 30) || m.N > (1L << 30) || m.K > (1L << 30)) {
    napi_throw_range_error(env, NULL, "fhenet native matmul: bad shape");
    return NULL;
  }
  m.batch = m.batchA > m.batchB ? m.batchA : m.batchB;
  m.a = at(base, len, v[0], m.batchA * m.M * m.K);
  m.b = at(base, len, v[1], m.batchB * m.K * m.N);
  m.c = at(base, len, v[2], m.batch * m.M * m.N);
  if (!m.a || !m.b || !m.c) {
    napi_throw_range_error(env, NULL, "fhenet native matmul: tensor outside the heap or misaligned");
    return NULL;
  }
  const double flops = 2.0 * (double)m.batch * m.M * m.N * m.K;
  m.by_batch = m.batch >= g_threads;
  parallel(threads_for(flops, m.by_batch ? m.batch : m.M / 16), mm_task, &m);
  return NULL;
}

static napi_value set_threads(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t n = 0;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || napi_get_value_int32(env, argv[0], &n) != napi_ok || n < 1) {
    napi_throw_range_error(env, NULL, "fhenet native setThreads: expected a positive integer");
    return NULL;
  }
  g_threads = n > 64 ? 64 : n;
  return NULL;
}

static napi_value get_threads(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value r;
  CHECK(napi_create_int32(env, g_threads, &r));
  return r;
}

static napi_value set_chunk(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int64_t n = 0;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || napi_get_value_int64(env, argv[0], &n) != napi_ok || n < 1024) {
    napi_throw_range_error(env, NULL, "fhenet native setChunk: expected an integer ≥ 1024");
    return NULL;
  }
  g_chunk_floats = (size_t)n;
  return NULL;
}

static napi_value get_info(napi_env env, napi_callback_info info) {
  (void)info;
  char buf[512];
  snprintf(buf, sizeof buf, "OpenBLAS %s (core %s)", openblas_get_config(), openblas_get_corename());
  napi_value r;
  CHECK(napi_create_string_utf8(env, buf, NAPI_AUTO_LENGTH, &r));
  return r;
}

static napi_value init(napi_env env, napi_value exports) {
  /* fhenet's threads each call a single-threaded sgemm. */
  openblas_set_num_threads(1);
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  g_threads = cores > 0 ? (int)(cores > 64 ? 64 : cores) : 1;
  napi_property_descriptor props[] = {
      {"conv2d", NULL, conv2d, NULL, NULL, NULL, napi_default, NULL},
      {"conv2dBackpropFilter", NULL, conv2d_filter, NULL, NULL, NULL, napi_default, NULL},
      {"conv2dBackpropInput", NULL, conv2d_input, NULL, NULL, NULL, napi_default, NULL},
      {"matmul", NULL, matmul, NULL, NULL, NULL, napi_default, NULL},
      {"setThreads", NULL, set_threads, NULL, NULL, NULL, napi_default, NULL},
      {"threads", NULL, get_threads, NULL, NULL, NULL, napi_default, NULL},
      {"setChunk", NULL, set_chunk, NULL, NULL, NULL, napi_default, NULL},
      {"info", NULL, get_info, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE_INIT() { return init(env, exports); }
