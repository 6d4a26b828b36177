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
 *   binary(heap, op, aOff, bOff, outOff, n, mode, inner)  element-wise arithmetic / comparison / logical-and with
 *                                                       scalar or last-axis broadcasting
 *   unary(heap, op, xOff, outOff, n, p0, p1)          round (half to even) / clip / square / abs / neg / relu
 *   select(heap, condOff, tOff, eOff, outOff, n)      sum(heap, xOff, outOff, rows, cols, leading)
 *   avgPoolGrad(heap, dyOff, dxOff, B, H, W, C, OH, OW, fh, fw, sh, sw)   (no padding)
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
  if (m->M == 1 && !m->ta) {
    /* A row vector times a matrix (one token through a linear layer while generating): sgemv on a slice of the
     * output columns. sgemm would pack B into panels first, a copy of the whole weight for one row of output. */
    const long c0 = m->N * tid / n, c1 = m->N * (tid + 1) / n;
    if (c1 <= c0) return;
    if (m->tb) /* B is [N, K]: y = B[c0:c1] · a */
      cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)(c1 - c0), (int)m->K, 1.0f, m->b + c0 * m->K, (int)m->K, m->a, 1, 0.0f,
                  m->c + c0, 1);
    else /* B is [K, N]: y = B[:, c0:c1]ᵀ · a */
      cblas_sgemv(CblasRowMajor, CblasTrans, (int)m->K, (int)(c1 - c0), 1.0f, m->b + c0, (int)m->N, m->a, 1, 0.0f, m->c + c0, 1);
    return;
  }
  /* One matrix: split the rows of C. */
  const long r0 = m->M * tid / n, r1 = m->M * (tid + 1) / n;
  if (r1 <= r0) return;
  const float *A = m->ta ? m->a + r0 : m->a + r0 * lda;
  cblas_sgemm(CblasRowMajor, m->ta ? CblasTrans : CblasNoTrans, m->tb ? CblasTrans : CblasNoTrans, (int)(r1 - r0), (int)m->N,
              (int)m->K, 1.0f, A, (int)lda, m->b, (int)ldb, 0.0f, m->c + r0 * m->N, (int)m->N);
}

/* ─── element-wise ops and reductions (memory-bound; threads split the elements) ──────────────────────────────── */

enum { OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_GE, OP_LE, OP_GT, OP_LT, OP_AND, OP_MAX, OP_MIN };
/* Broadcast modes: a and b the same shape; b a scalar; a a scalar; b repeats along the last `inner` elements of a;
 * a repeats along b. */
enum { BC_SAME, BC_B_SCALAR, BC_A_SCALAR, BC_B_INNER, BC_A_INNER };

typedef struct {
  int op, mode;
  const void *a, *b;
  void *out;
  long n, inner;
} ew_ctx_t;

#define EW_LOOP(T_OUT, EXPR)                                                                                          \
  do {                                                                                                                \
    T_OUT *o = (T_OUT *)c->out;                                                                                       \
    switch (c->mode) {                                                                                                \
      case BC_SAME: for (long i = i0; i < i1; i++) { float x = A[i], y = B[i]; o[i] = (EXPR); } break;               \
      case BC_B_SCALAR: { float y = B[0]; for (long i = i0; i < i1; i++) { float x = A[i]; o[i] = (EXPR); } } break; \
      case BC_A_SCALAR: { float x = A[0]; for (long i = i0; i < i1; i++) { float y = B[i]; o[i] = (EXPR); } } break; \
      case BC_B_INNER:                                                                                                \
        for (long i = i0; i < i1;) {                                                                                  \
          long j = i % c->inner, e = i - j + c->inner; if (e > i1) e = i1;                                           \
          for (; i < e; i++, j++) { float x = A[i], y = B[j]; o[i] = (EXPR); }                                       \
        }                                                                                                             \
        break;                                                                                                        \
      default:                                                                                                        \
        for (long i = i0; i < i1;) {                                                                                  \
          long j = i % c->inner, e = i - j + c->inner; if (e > i1) e = i1;                                           \
          for (; i < e; i++, j++) { float x = A[j], y = B[i]; o[i] = (EXPR); }                                       \
        }                                                                                                             \
    }                                                                                                                 \
  } while (0)

static void ew_task(void *p, int tid, int n) {
  ew_ctx_t *c = (ew_ctx_t *)p;
  const long i0 = c->n * tid / n, i1 = c->n * (tid + 1) / n;
  if (c->op == OP_AND) {
    const uint8_t *A = (const uint8_t *)c->a, *B = (const uint8_t *)c->b;
    uint8_t *o = (uint8_t *)c->out;
    if (c->mode == BC_SAME) for (long i = i0; i < i1; i++) o[i] = (A[i] != 0) & (B[i] != 0);
    else if (c->mode == BC_B_SCALAR) for (long i = i0; i < i1; i++) o[i] = (A[i] != 0) & (B[0] != 0);
    else if (c->mode == BC_A_SCALAR) for (long i = i0; i < i1; i++) o[i] = (A[0] != 0) & (B[i] != 0);
    else if (c->mode == BC_B_INNER) for (long i = i0; i < i1; i++) o[i] = (A[i] != 0) & (B[i % c->inner] != 0);
    else for (long i = i0; i < i1; i++) o[i] = (A[i % c->inner] != 0) & (B[i] != 0);
    return;
  }
  const float *A = (const float *)c->a, *B = (const float *)c->b;
  switch (c->op) {
    case OP_ADD: EW_LOOP(float, x + y); break;
    case OP_SUB: EW_LOOP(float, x - y); break;
    case OP_MUL: EW_LOOP(float, x * y); break;
    case OP_DIV: EW_LOOP(float, x / y); break;
    case OP_MAX: EW_LOOP(float, (x != x || y != y) ? (x + y) : (x > y ? x : y)); break;
    case OP_MIN: EW_LOOP(float, (x != x || y != y) ? (x + y) : (x < y ? x : y)); break;
    case OP_GE: EW_LOOP(uint8_t, x >= y); break;
    case OP_LE: EW_LOOP(uint8_t, x <= y); break;
    case OP_GT: EW_LOOP(uint8_t, x > y); break;
    case OP_LT: EW_LOOP(uint8_t, x < y); break;
  }
}

/* Memory-bound work: a thread per 1 Mi elements at most (below that, starting and joining a thread — slow when the
 * cores are shared — costs more than the second thread saves). */
static int ew_threads(long n) {
  long t = n / (1 << 20);
  if (t < 1) t = 1;
  return t < g_threads ? (int)t : g_threads;
}

/* Unary element-wise ops on float32: round (half to even, as tfjs), clip to [p0, p1], square, abs, neg, relu. */
enum { U_ROUND, U_CLIP, U_SQUARE, U_ABS, U_NEG, U_RELU };

typedef struct {
  int op;
  const float *x;
  float *out;
  long n;
  float p0, p1;
} un_ctx_t;

static void unary_task(void *p, int tid, int n) {
  un_ctx_t *c = (un_ctx_t *)p;
  const long i0 = c->n * tid / n, i1 = c->n * (tid + 1) / n;
  const float *x = c->x;
  float *o = c->out;
  const float lo = c->p0, hi = c->p1;
  switch (c->op) {
    case U_ROUND: for (long i = i0; i < i1; i++) o[i] = __builtin_rintf(x[i]); break;
    case U_CLIP:
      for (long i = i0; i < i1; i++) { float v = x[i]; o[i] = v != v ? v : (v < lo ? lo : (v > hi ? hi : v)); }
      break;
    case U_SQUARE: for (long i = i0; i < i1; i++) o[i] = x[i] * x[i]; break;
    case U_ABS: for (long i = i0; i < i1; i++) o[i] = __builtin_fabsf(x[i]); break;
    case U_NEG: for (long i = i0; i < i1; i++) o[i] = -x[i]; break;
    default: for (long i = i0; i < i1; i++) { float v = x[i]; o[i] = v < 0 ? 0 : v; }
  }
}

typedef struct {
  const uint8_t *cond;
  const float *t, *e;
  float *out;
  long n;
} sel_ctx_t;

static void select_task(void *p, int tid, int n) {
  sel_ctx_t *c = (sel_ctx_t *)p;
  const long i0 = c->n * tid / n, i1 = c->n * (tid + 1) / n;
  /* Branch-free (random masks would mispredict every other element) and vectorisable: blend the bit patterns. */
  const uint32_t *t = (const uint32_t *)c->t, *e = (const uint32_t *)c->e;
  uint32_t *o = (uint32_t *)c->out;
  const uint8_t *m = c->cond;
  for (long i = i0; i < i1; i++) {
    uint32_t k = (uint32_t)0 - (uint32_t)(m[i] != 0);
    o[i] = (t[i] & k) | (e[i] & ~k);
  }
}

/* Sum over the leading (columns = 1) or trailing (columns = 0) axes of a [rows, cols] matrix, double accumulators. */
typedef struct {
  const float *x;
  float *out;
  double **partials;
  long rows, cols;
  int leading;
  int failed;
} sum_ctx_t;

static void sum_task(void *p, int tid, int n) {
  sum_ctx_t *c = (sum_ctx_t *)p;
  if (c->leading) {
    const long r0 = c->rows * tid / n, r1 = c->rows * (tid + 1) / n;
    double *acc = c->partials[tid];
    if (!acc) { c->failed = 1; return; }
    for (long j = 0; j < c->cols; j++) acc[j] = 0;
    for (long r = r0; r < r1; r++) {
      const float *row = c->x + r * c->cols;
      for (long j = 0; j < c->cols; j++) acc[j] += row[j];
    }
    return;
  }
  const long r0 = c->rows * tid / n, r1 = c->rows * (tid + 1) / n;
  for (long r = r0; r < r1; r++) {
    const float *row = c->x + r * c->cols;
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    long j = 0;
    for (; j + 4 <= c->cols; j += 4) { s0 += row[j]; s1 += row[j + 1]; s2 += row[j + 2]; s3 += row[j + 3]; }
    for (; j < c->cols; j++) s0 += row[j];
    c->out[r] = (float)(s0 + s1 + s2 + s3);
  }
}

/* Average-pool gradient, NHWC, no padding: dx[b, oh·sh + i, ow·sw + j, :] += dy[b, oh, ow, :] / (fh·fw). */
typedef struct {
  const float *dy;
  float *dx;
  int B, H, W, C, OH, OW, fh, fw, sh, sw;
} pool_ctx_t;

static void avgpoolgrad_task(void *p, int tid, int n) {
  pool_ctx_t *c = (pool_ctx_t *)p;
  const long b0 = (long)c->B * tid / n, b1 = (long)c->B * (tid + 1) / n;
  const float m = 1.0f / (float)(c->fh * c->fw);
  const long img = (long)c->H * c->W * c->C;
  memset(c->dx + b0 * img, 0, sizeof(float) * (b1 - b0) * img);
  for (long b = b0; b < b1; b++) {
    for (int oh = 0; oh < c->OH; oh++) {
      for (int ow = 0; ow < c->OW; ow++) {
        const float *g = c->dy + (((b * c->OH + oh) * c->OW) + ow) * c->C;
        for (int i = 0; i < c->fh; i++) {
          int ih = oh * c->sh + i;
          if (ih >= c->H) continue;
          for (int j = 0; j < c->fw; j++) {
            int iw = ow * c->sw + j;
            if (iw >= c->W) continue;
            float *d = c->dx + ((b * c->H + ih) * (long)c->W + iw) * c->C;
            for (int k = 0; k < c->C; k++) d[k] += g[k] * m;
          }
        }
      }
    }
  }
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
  const int vector = m.M == 1 && !m.ta && !m.by_batch;
  parallel(threads_for(flops, m.by_batch ? m.batch : vector ? m.N / 1024 : m.M / 16), mm_task, &m);
  return NULL;
}

/* Pointer to `count` elements of `elem` bytes at byte offset `off`, or NULL when out of bounds. */
static void *at_bytes(uint8_t *base, size_t len, int64_t off, int64_t count, int64_t elem) {
  if (off < 0 || count < 0 || (off % elem) != 0) return NULL;
  if ((uint64_t)off + (uint64_t)count * (uint64_t)elem > len) return NULL;
  return base + off;
}

/* binary(heap, op, aOff, bOff, outOff, n, mode, inner): element-wise op (enums above); comparisons and logical-and
 * write bytes (tfjs bool); logical-and reads bytes. */
static napi_value binary(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint8_t *base;
  size_t len;
  int64_t v[7];
  if (argc != 8 || !heap_of(env, argv[0], &base, &len) || !get_i64s(env, argv + 1, 7, v)) {
    napi_throw_type_error(env, NULL, "fhenet native binary: bad arguments");
    return NULL;
  }
  ew_ctx_t c;
  c.op = (int)v[0];
  c.n = v[4];
  c.mode = (int)v[5];
  c.inner = v[6] > 0 ? v[6] : 1;
  if (c.op < OP_ADD || c.op > OP_MIN || c.mode < BC_SAME || c.mode > BC_A_INNER || c.n < 0 ||
      ((c.mode == BC_B_INNER || c.mode == BC_A_INNER) && c.n % c.inner != 0)) {
    napi_throw_range_error(env, NULL, "fhenet native binary: bad op, mode or shape");
    return NULL;
  }
  const int64_t in_elem = c.op == OP_AND ? 1 : 4;
  const int64_t out_elem = (c.op >= OP_GE && c.op <= OP_AND) ? 1 : 4;
  const int64_t na = c.mode == BC_A_SCALAR ? 1 : c.mode == BC_A_INNER ? c.inner : c.n;
  const int64_t nb = c.mode == BC_B_SCALAR ? 1 : c.mode == BC_B_INNER ? c.inner : c.n;
  c.a = at_bytes(base, len, v[1], na, in_elem);
  c.b = at_bytes(base, len, v[2], nb, in_elem);
  c.out = at_bytes(base, len, v[3], c.n, out_elem);
  if (!c.a || !c.b || !c.out) {
    napi_throw_range_error(env, NULL, "fhenet native binary: tensor outside the heap or misaligned");
    return NULL;
  }
  parallel(ew_threads(c.n), ew_task, &c);
  return NULL;
}

/* unary(heap, op, xOff, outOff, n, p0, p1). */
static napi_value unary(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint8_t *base;
  size_t len;
  int64_t v[4];
  double p0 = 0, p1 = 0;
  if (argc != 7 || !heap_of(env, argv[0], &base, &len) || !get_i64s(env, argv + 1, 4, v) ||
      napi_get_value_double(env, argv[5], &p0) != napi_ok || napi_get_value_double(env, argv[6], &p1) != napi_ok) {
    napi_throw_type_error(env, NULL, "fhenet native unary: bad arguments");
    return NULL;
  }
  un_ctx_t c = {(int)v[0], NULL, NULL, v[3], (float)p0, (float)p1};
  if (c.op < U_ROUND || c.op > U_RELU || c.n < 0) {
    napi_throw_range_error(env, NULL, "fhenet native unary: bad op");
    return NULL;
  }
  c.x = (const float *)at_bytes(base, len, v[1], c.n, 4);
  c.out = (float *)at_bytes(base, len, v[2], c.n, 4);
  if (!c.x || !c.out) {
    napi_throw_range_error(env, NULL, "fhenet native unary: tensor outside the heap or misaligned");
    return NULL;
  }
  parallel(ew_threads(c.n), unary_task, &c);
  return NULL;
}

/* select(heap, condOff, tOff, eOff, outOff, n): out = cond ? t : e (float32, same shapes). */
static napi_value select_(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint8_t *base;
  size_t len;
  int64_t v[5];
  if (argc != 6 || !heap_of(env, argv[0], &base, &len) || !get_i64s(env, argv + 1, 5, v)) {
    napi_throw_type_error(env, NULL, "fhenet native select: bad arguments");
    return NULL;
  }
  sel_ctx_t c;
  c.n = v[4];
  c.cond = (const uint8_t *)at_bytes(base, len, v[0], c.n, 1);
  c.t = (const float *)at_bytes(base, len, v[1], c.n, 4);
  c.e = (const float *)at_bytes(base, len, v[2], c.n, 4);
  c.out = (float *)at_bytes(base, len, v[3], c.n, 4);
  if (!c.cond || !c.t || !c.e || !c.out) {
    napi_throw_range_error(env, NULL, "fhenet native select: tensor outside the heap or misaligned");
    return NULL;
  }
  parallel(ew_threads(c.n), select_task, &c);
  return NULL;
}

/* sum(heap, xOff, outOff, rows, cols, leading): leading ? out[c] = Σ_r x[r, c] : out[r] = Σ_c x[r, c]. */
static napi_value sum(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint8_t *base;
  size_t len;
  int64_t v[5];
  if (argc != 6 || !heap_of(env, argv[0], &base, &len) || !get_i64s(env, argv + 1, 5, v) || v[2] < 1 || v[3] < 1) {
    napi_throw_type_error(env, NULL, "fhenet native sum: bad arguments");
    return NULL;
  }
  sum_ctx_t c = {NULL, NULL, NULL, v[2], v[3], v[4] != 0, 0};
  c.x = (const float *)at_bytes(base, len, v[0], c.rows * c.cols, 4);
  c.out = (float *)at_bytes(base, len, v[1], c.leading ? c.cols : c.rows, 4);
  if (!c.x || !c.out) {
    napi_throw_range_error(env, NULL, "fhenet native sum: tensor outside the heap or misaligned");
    return NULL;
  }
  int n = ew_threads(c.rows * c.cols);
  if (n > c.rows) n = (int)c.rows;
  if (n < 1) n = 1;
  if (c.leading) {
    double *partials[64] = {0};
    c.partials = partials;
    for (int t = 0; t < n; t++) partials[t] = (double *)malloc(sizeof(double) * c.cols);
    parallel(n, sum_task, &c);
    if (!c.failed) {
      for (long j = 0; j < c.cols; j++) {
        double s = 0;
        for (int t = 0; t < n; t++) s += partials[t][j];
        c.out[j] = (float)s;
      }
    }
    for (int t = 0; t < n; t++) free(partials[t]);
    if (c.failed) {
      napi_throw_error(env, NULL, "fhenet native sum: out of memory");
      return NULL;
    }
  } else {
    parallel(n, sum_task, &c);
  }
  return NULL;
}

/* avgPoolGrad(heap, dyOff, dxOff, B, H, W, C, OH, OW, fh, fw, sh, sw): no padding. */
static napi_value avg_pool_grad(napi_env env, napi_callback_info info) {
  size_t argc = 13;
  napi_value argv[13];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint8_t *base;
  size_t len;
  int64_t v[12];
  if (argc != 13 || !heap_of(env, argv[0], &base, &len) || !get_i64s(env, argv + 1, 12, v)) {
    napi_throw_type_error(env, NULL, "fhenet native avgPoolGrad: bad arguments");
    return NULL;
  }
  for (int i = 2; i < 12; i++) {
    if (v[i] < 1 || v[i] > (1 << 30)) {
      napi_throw_range_error(env, NULL, "fhenet native avgPoolGrad: bad geometry");
      return NULL;
    }
  }
  pool_ctx_t c = {NULL, NULL, (int)v[2], (int)v[3], (int)v[4], (int)v[5], (int)v[6], (int)v[7], (int)v[8], (int)v[9], (int)v[10], (int)v[11]};
  c.dy = (const float *)at_bytes(base, len, v[0], (int64_t)c.B * c.OH * c.OW * c.C, 4);
  c.dx = (float *)at_bytes(base, len, v[1], (int64_t)c.B * c.H * c.W * c.C, 4);
  if (!c.dy || !c.dx) {
    napi_throw_range_error(env, NULL, "fhenet native avgPoolGrad: tensor outside the heap or misaligned");
    return NULL;
  }
  int n = ew_threads((long)c.B * c.H * c.W * c.C);
  if (n > c.B) n = c.B;
  parallel(n, avgpoolgrad_task, &c);
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
  snprintf(buf, sizeof buf, "%s (core %s)", openblas_get_config(), openblas_get_corename());
  napi_value r;
  CHECK(napi_create_string_utf8(env, buf, NAPI_AUTO_LENGTH, &r));
  return r;
}

static napi_value init(napi_env env, napi_value exports) {
  /* fhenet's threads each call a single-threaded sgemm. */
  static int initialised = 0; /* worker threads load the module again: keep the process-wide setting */
  if (!initialised) {
    initialised = 1;
    openblas_set_num_threads(1);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    g_threads = cores > 0 ? (int)(cores > 64 ? 64 : cores) : 1;
  }
  napi_property_descriptor props[] = {
      {"conv2d", NULL, conv2d, NULL, NULL, NULL, napi_default, NULL},
      {"conv2dBackpropFilter", NULL, conv2d_filter, NULL, NULL, NULL, napi_default, NULL},
      {"conv2dBackpropInput", NULL, conv2d_input, NULL, NULL, NULL, napi_default, NULL},
      {"matmul", NULL, matmul, NULL, NULL, NULL, napi_default, NULL},
      {"binary", NULL, binary, NULL, NULL, NULL, napi_default, NULL},
      {"select", NULL, select_, NULL, NULL, NULL, napi_default, NULL},
      {"unary", NULL, unary, NULL, NULL, NULL, napi_default, NULL},
      {"sum", NULL, sum, NULL, NULL, NULL, napi_default, NULL},
      {"avgPoolGrad", NULL, avg_pool_grad, NULL, NULL, NULL, napi_default, NULL},
      {"setThreads", NULL, set_threads, NULL, NULL, NULL, napi_default, NULL},
      {"threads", NULL, get_threads, NULL, NULL, NULL, napi_default, NULL},
      {"setChunk", NULL, set_chunk, NULL, NULL, NULL, napi_default, NULL},
      {"info", NULL, get_info, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE_INIT() { return init(env, exports); }
