/*
 * Native kernel of the packed GLWE matrix-vector product (src/glwe/server.ts has the TypeScript oracle and the
 * algorithm's description; docs/glwe.md the noise model). One call = one encrypted vector times one transformed
 * matrix:
 *   1. input spectra (2 FFTs per input GLWE);
 *   2. per block of R output rows, Σ_c FFT(A_c)·W_gc and Σ_c FFT(B_c)·W_gc, the mask's inverse FFT (FFTW, after
 *      reordering the spectrum), the balanced digits of the whole product mask polynomial and the R extracted bodies
 *      (dot products with the spectra of X^p, no inverse FFT) — threads split the blocks;
 *   3. the transposed packing keyswitch: for key coefficient j and level l, the polynomial of digit l of a'_j over
 *      the outputs is FFT'd and multiplied with the packing GLWE K_{j,l} — threads split j, each with its own
 *      Fourier accumulators, summed at the end; up to HB result GLWEs share one pass over the key (so a large
 *      matrix reads the 256 MiB key once per HB results, not once per result);
 *   4. inverse FFTs and the modulus switch to outputBits.
 * Arithmetic: signed torus values in double, as the TFHE kernel; the FFT is src/tfhe/native/negacyclic_fft.h with
 * the TypeScript twiddle tables. Built with -march=native (AVX-512/AVX2 on this CPU, portable code elsewhere).
 */
#include <node_api.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <fftw3.h>


#include "../../tfhe/native/negacyclic_fft.h"
#include "../../tfhe/native/napi_typed.h"
#include "../../tfhe/native/fftw_order.h"

/*
 * The packing keyswitch's transforms use FFTW (libfftw3, Debian libfftw3-dev): ≈ 1.3 µs per 1,024-point complex
 * transform here against ≈ 4.9 µs for the shared radix-2 FFT, and the packing pass is 8,192 transforms per result
 * GLWE. Its spectra are in FFTW's natural frequency order, so the packing key is transformed by this kernel too
 * (keySpectra); the products keep the shared FFT, whose spectra (the transformed weights) TypeScript computes.
 * Negacyclic wrapping as in negacyclic_fft.h: fold N reals into M = N/2 complex values, twist by e^{iπj/N}.
 */
static fftw_plan fwd_plan = NULL;
static int fwd_m = 0;
static pthread_mutex_t plan_lock = PTHREAD_MUTEX_INITIALIZER;

/* Plan creation is not thread-safe in FFTW: done once, under a lock, before any worker starts. */
static int ensure_plan(int M) {
  pthread_mutex_lock(&plan_lock);
  if (fwd_m != M) {
    double *a = fftw_malloc(sizeof(double) * 4 * (size_t)M);
    if (!a) {
      pthread_mutex_unlock(&plan_lock);
      return -1;
    }
    fftw_iodim dim = {M, 1, 1};
    if (fwd_plan) fftw_destroy_plan(fwd_plan);
    fwd_plan = fftw_plan_guru_split_dft(1, &dim, 0, NULL, a, a + M, a + 2 * M, a + 3 * M, FFTW_ESTIMATE);
    fftw_free(a);
    fwd_m = fwd_plan ? M : 0;
  }
  pthread_mutex_unlock(&plan_lock);
  return fwd_plan ? 0 : -1;
}

/*
 * The products' spectra are in the shared FFT's (bit-reversed) order, FFTW's in natural order; both transforms fold
 * and twist alike, so one is a permutation of the other. fftw_index[x] = FFTW index of shared index x, found once
 * by transforming a test polynomial both ways (and checked: if no exact permutation is found, the products keep
 * the shared inverse FFT). This lets the products' inverse transforms use FFTW (docs/glwe.md: 1.3 µs against 4.9 µs
 * per transform on an idle core). The table is rebuilt only if N changes (one parameter set exists).
 */
static const int *fftw_index = NULL;

static void nfft_forward(const Fft *f, const double *src, double *yr, double *yi, double *re, double *im);

/* The permutation is the TFHE kernel's (fftw_order.h: found once per process for each size, under its lock). */
static int ensure_permutation(const Fft *f) {
  const FftwOrder *o = fftw_order_get(f);
  fftw_index = o ? o->perm : NULL;
  return fftw_index != NULL;
}

/* Spectrum (re[M], im[M]; FFTW-aligned) of the real polynomial src[N]; yr, yi: aligned scratch of M. */
static void nfft_forward(const Fft *f, const double *src, double *yr, double *yi, double *re, double *im) {
  const int m = f->m;
  for (int j = 0; j < m; j++) {
    const double x = src[j], y = src[j + m], c = f->twRe[j], s = f->twIm[j];
    yr[j] = x * c - y * s;
    yi[j] = x * s + y * c;
  }
  fftw_execute_split_dft(fwd_plan, yr, yi, re, im);
}

/* dst[N] = inverse of (re, im): a forward DFT of the swapped parts is the unnormalized inverse, swapped back. */
static void nfft_inverse(const Fft *f, const double *re, const double *im, double *yr, double *yi, double *dst) {
  const int m = f->m;
  fftw_execute_split_dft(fwd_plan, (double *)im, (double *)re, yi, yr);
  const double scale = 1.0 / m;
  for (int j = 0; j < m; j++) {
    const double x = yr[j] * scale, y = yi[j] * scale, c = f->twRe[j], s = f->twIm[j];
    dst[j] = x * c + y * s;
    dst[j + m] = y * c - x * s;
  }
}

#define TWO_64 18446744073709551616.0
#ifndef HB
#define HB 4 /* result GLWEs packed per pass over the key */
#endif

static inline double reduce64(double v) { return v - TWO_64 * rint(v / TWO_64); }

/*
 * Packing digits are balanced base-2^baseLog digits in [−2^(baseLog−1), 2^(baseLog−1)): int8 for baseLog ≤ 8 (the
 * parameter set's 8; the kernel refuses larger bases). T is read twice per packing pass (once per output row of a
 * block), so its width is memory traffic: int8 halves it against the first version's int16.
 */
typedef int8_t digit_t;
#define MAX_BASE_LOG 8

typedef struct {
  const double *a, *b, *W, *K, *biasT;
  uint32_t *masks, *bodies;
  int N, dIn, dOut, L, C, R, baseLog, level, outBits, threads;
  Fft f;
  double *inSpec;
  /* current batch of result GLWEs [h0, h0 + hb) */
  int h0, hb, first, count, g0, g1, nb;
  /*
   * Digits of the product masks, transposed: T[(t·N + k)·nb + (g − g0)] = digit t of coefficient k of block g's
   * mask. The packing pass reads, for one (j, t) and one row r of the blocks, nb consecutive values — a sequential
   * stream instead of one cache miss per output (the first version's layout, 5× slower on lm_head).
   */
  digit_t *T;
  const int *perm;  /* shared → FFTW spectrum index (ensure_permutation), or NULL: shared inverse FFT */
  double *bodyProbe; /* R × N: spectra (re, im) of X^{p_r}, for the direct extraction of the R bodies, or NULL */
  double *bPrime;  /* count */
  double *acc;     /* threads × hb × 2N Fourier accumulators (mask, body) */
} Ctx;

typedef struct {
  Ctx *ctx;
  int t;
} Job;

#define GB 64 /* blocks per thread task in the product phase: one 64-byte line of T per (t, k) */

static void fft_inverse_set(const Fft *f, double *re, double *im, double *dst, int N) {
  memset(dst, 0, sizeof(double) * (size_t)N);
  fft_inverse_add(f, re, im, dst);
}

/*
 * Digits of one product mask, balanced base 2^baseLog, top level·baseLog bits: dg[t·N + i] = digit t of
 * coefficient i. Level-major with a q[] scratch so that every loop is a plain vector loop (rint, floor and the int8
 * conversion vectorize; the coefficient-major form with the level loop inside ran scalar).
 */
static void mask_digits(const double *restrict pa, double *restrict q, digit_t *restrict dg, int N, int level, double toTop,
                        double base, double invBase) {
  for (int i = 0; i < N; i++) q[i] = rint(reduce64(pa[i]) * toTop);
  for (int t = 0; t < level; t++) {
    digit_t *restrict row = dg + (size_t)t * N;
    for (int i = 0; i < N; i++) {
      /* floor(y) as rint(y) corrected down: floor() does not vectorize without -fno-trapping-math, rint() does */
      const double y = q[i] * invBase + 0.5, r = rint(y);
      const double d = q[i] - base * (r > y ? r - 1.0 : r); /* in [−base/2, base/2): fits digit_t */
      row[i] = (digit_t)(int32_t)d;
      q[i] = (q[i] - d) * invBase;
    }
  }
}

/* Phase 2: products of the groups of GB blocks t, t + threads, … (group index from g0). */
static void *products(void *arg) {
  Job *job = arg;
  Ctx *c = job->ctx;
  const int N = c->N, M = N / 2, level = c->level;
  /*
   * Per-block stride of `local`, padded by one cache line: with the unpadded level·N (a multiple of 4 KiB) the
   * transpose's GB read streams all fell in one L1 set and missed on every read.
   */
  const size_t LS = (size_t)level * N + 64 / sizeof(digit_t);
  double *accA = malloc(sizeof(double) * 5 * (size_t)N);
  digit_t *local = malloc(sizeof(digit_t) * (size_t)GB * LS);
  double *accB = accA + N, *pa = accB + N, *pb = pa + N, *q = pb + N;
  double *nat = fftw_malloc(sizeof(double) * 2 * (size_t)N), *yr = nat + N, *yi = yr + M; /* FFTW inverse scratch */
  const double toTop = ldexp(1.0, c->baseLog * level - 64), base = ldexp(1.0, c->baseLog), invBase = 1.0 / base;
  for (int grp = job->t; grp * GB < c->nb; grp += c->threads) {
    const int gs = c->g0 + grp * GB, ge = gs + GB - 1 < c->g1 ? gs + GB - 1 : c->g1;
    for (int g = gs; g <= ge; g++) {
      memset(accA, 0, sizeof(double) * 2 * (size_t)N);
      for (int ch = 0; ch < c->C; ch++) {
        const double *w = c->W + ((size_t)g * c->C + ch) * N, *wi = w + M;
        const double *xa = c->inSpec + (size_t)2 * ch * N, *xai = xa + M, *xb = xa + N, *xbi = xb + M;
        for (int j = 0; j < M; j++) {
          accA[j] += xa[j] * w[j] - xai[j] * wi[j];
          accA[M + j] += xa[j] * wi[j] + xai[j] * w[j];
          accB[j] += xb[j] * w[j] - xbi[j] * wi[j];
          accB[M + j] += xb[j] * wi[j] + xbi[j] * w[j];
        }
      }
      if (c->perm) {
        for (int x = 0; x < M; x++) {
          nat[c->perm[x]] = accA[x];
          nat[M + c->perm[x]] = accA[M + x];
        }
        nfft_inverse(&c->f, nat, nat + M, yr, yi, pa);
      } else {
        fft_inverse_set(&c->f, accA, accA + M, pa, N);
      }
      if (c->bodyProbe) {
        /* only R coefficients of the body product are used: coefficient p = Re Σ_x S[x]·conj(F(X^p)[x]) / M */
        for (int r = 0; r < c->R; r++) {
          const double *pr = c->bodyProbe + (size_t)r * N, *pi = pr + M;
          double sum = 0;
          for (int x = 0; x < M; x++) sum += accB[x] * pr[x] + accB[M + x] * pi[x];
          pb[r * c->L + c->L - 1] = sum / M;
        }
      } else {
        fft_inverse_set(&c->f, accB, accB + M, pb, N);
      }
      mask_digits(pa, q, local + (size_t)(g - gs) * LS, N, level, toTop, base, invBase);
      for (int r = 0; r < c->R; r++) {
        int o = g * c->R + r;
        if (o < c->first || o >= c->first + c->count) continue;
        c->bPrime[o - c->first] = reduce64(pb[r * c->L + c->L - 1] + c->biasT[o]);
      }
    }
    const int width = ge - gs + 1;
    for (int tk = 0; tk < level * N; tk++) {
      digit_t *dst = c->T + (size_t)tk * c->nb + (gs - c->g0);
      for (int x = 0; x < width; x++) dst[x] = local[(size_t)x * LS + tk];
    }
  }
  free(accA);
  free(local);
  fftw_free(nat);
  return NULL;
}

/*
 * acc += D·K for one packing GLWE: (oar, oai) += D·K_mask, (obr, obi) += D·K_body, M complex values each. A function
 * of its own with restrict arguments so that it vectorizes (inlined in the loop over the batch it ran scalar).
 */
static void mac_key(int M, const double *restrict dr, const double *restrict di, const double *restrict ar, const double *restrict ai,
                    const double *restrict br, const double *restrict bi, double *restrict oar, double *restrict oai,
                    double *restrict obr, double *restrict obi) {
  for (int x = 0; x < M; x++) {
    const double u = dr[x], v = di[x];
    oar[x] += u * ar[x] - v * ai[x];
    oai[x] += u * ai[x] + v * ar[x];
    obr[x] += u * br[x] - v * bi[x];
    obi[x] += u * bi[x] + v * br[x];
  }
}

/* Phase 3: packing-key pass over j = t, t + threads, … into this thread's accumulators. */
static void *packing(void *arg) {
  Job *job = arg;
  Ctx *c = job->ctx;
  const int N = c->N, M = N / 2, level = c->level, R = c->R, L = c->L, nb = c->nb;
  double *poly = malloc(sizeof(double) * (size_t)N * c->hb);
  double *spec = fftw_malloc(sizeof(double) * 2 * (size_t)N); /* re, im, then the fold scratch */
  double *yr = fftw_malloc(sizeof(double) * (size_t)N), *yi = yr + M;
  double *acc = c->acc + (size_t)job->t * c->hb * 2 * N;
  memset(acc, 0, sizeof(double) * (size_t)c->hb * 2 * N);
  for (int j = job->t; j < N; j += c->threads) {
    for (int t = 0; t < level; t++) {
      /* D_{j,t} for every result GLWE of the batch: slot s = g·R + r − first */
      /* every slot below count is written below (one (block, row) each): only the tail needs zeros */
      memset(poly + c->count, 0, sizeof(double) * ((size_t)N * c->hb - c->count));
      for (int r = 0; r < R; r++) {
        const int p = r * L + L - 1;
        const digit_t *src = j <= p ? c->T + ((size_t)t * N + p - j) * nb : c->T + ((size_t)t * N + N + p - j) * nb;
        const double sign = j <= p ? 1.0 : -1.0;
        /* slots s = (g0 + x)·R + r − first inside [0, count): x in [xlo, xhi) */
        const long base = (long)c->g0 * R + r - c->first;
        const long last = c->count - 1 - base;
        if (last < 0) continue;
        const long xlo = base >= 0 ? 0 : (-base + R - 1) / R;
        const long xhi = last / R + 1 < nb ? last / R + 1 : nb;
        for (long x = xlo; x < xhi; x++) poly[base + x * R] = sign * src[x];
      }
      const double *k = c->K + (size_t)2 * N * ((size_t)j * level + t);
      for (int hh = 0; hh < c->hb; hh++) {
        nfft_forward(&c->f, poly + (size_t)hh * N, yr, yi, spec, spec + M);
        double *oar = acc + (size_t)hh * 2 * N;
        mac_key(M, spec, spec + M, k, k + M, k + N, k + N + M, oar, oar + M, oar + N, oar + N + M);
      }
    }
  }
  free(poly);
  fftw_free(spec);
  fftw_free(yr);
  return NULL;
}

static void run_threads(Ctx *c, void *(*fn)(void *)) {
  Job jobs[64];
  pthread_t tid[64];
  for (int t = 0; t < c->threads; t++) {
    jobs[t].ctx = c;
    jobs[t].t = t;
  }
  for (int t = 1; t < c->threads; t++) pthread_create(&tid[t], NULL, fn, &jobs[t]);
  fn(&jobs[0]);
  for (int t = 1; t < c->threads; t++) pthread_join(tid[t], NULL);
}

static inline uint32_t mod_switch(double v, double scale, double mod) {
  double r = fmod(rint(reduce64(v) / scale), mod);
  if (r < 0) r += mod;
  return (uint32_t)r;
}

static int matvec(Ctx *c) {
  const int N = c->N, M = N / 2, level = c->level;
  c->inSpec = malloc(sizeof(double) * 2 * (size_t)c->C * N);
  if (!c->inSpec) return -1;
  for (int ch = 0; ch < c->C; ch++) {
    double *sa = c->inSpec + (size_t)2 * ch * N, *sb = sa + N;
    fft_forward(&c->f, c->a + (size_t)ch * N, sa, sa + M);
    fft_forward(&c->f, c->b + (size_t)ch * N, sb, sb + M);
  }
  const int H = (c->dOut + N - 1) / N;
  /* T sized for this call's largest batch (a 768-row matrix needs 6 MiB, not the 64 MiB of a full batch) */
  int maxBlocks = 1;
  for (int h0 = 0; h0 < H; h0 += HB) {
    const int first = h0 * N, count = c->dOut - first < HB * N ? c->dOut - first : HB * N;
    const int nb = (first + count - 1) / c->R - first / c->R + 1;
    if (nb > maxBlocks) maxBlocks = nb;
  }
  c->T = malloc(sizeof(digit_t) * (size_t)maxBlocks * level * N);
  c->bPrime = malloc(sizeof(double) * (size_t)HB * N);
  c->acc = fftw_malloc(sizeof(double) * (size_t)c->threads * HB * 2 * N);
  double *tmp = malloc(sizeof(double) * 2 * (size_t)N);
  double *yr = fftw_malloc(sizeof(double) * (size_t)N), *yi = yr + M;
  if (!c->T || !c->bPrime || !c->acc || !tmp || !yr || ensure_plan(M) != 0) return -1;
  c->perm = ensure_permutation(&c->f) ? fftw_index : NULL;
  /* direct body extraction: R dot products of M instead of an inverse FFT, while R is small */
  c->bodyProbe = c->R <= 8 ? malloc(sizeof(double) * (size_t)c->R * N) : NULL;
  if (c->bodyProbe) {
    for (int r = 0; r < c->R; r++) {
      memset(tmp, 0, sizeof(double) * (size_t)N);
      tmp[r * c->L + c->L - 1] = 1.0;
      fft_forward(&c->f, tmp, c->bodyProbe + (size_t)r * N, c->bodyProbe + (size_t)r * N + M);
    }
  }
  const double scale = ldexp(1.0, 64 - c->outBits), mod = ldexp(1.0, c->outBits);
  for (c->h0 = 0; c->h0 < H; c->h0 += HB) {
    c->hb = H - c->h0 < HB ? H - c->h0 : HB;
    c->first = c->h0 * N;
    c->count = c->dOut - c->first < c->hb * N ? c->dOut - c->first : c->hb * N;
    c->g0 = c->first / c->R;
    c->g1 = (c->first + c->count - 1) / c->R;
    c->nb = c->g1 - c->g0 + 1;
    run_threads(c, products);
    run_threads(c, packing);
    for (int hh = 0; hh < c->hb; hh++) {
      double *sum = c->acc + (size_t)hh * 2 * N;
      for (int t = 1; t < c->threads; t++) {
        const double *o = c->acc + ((size_t)t * c->hb + hh) * 2 * N;
        for (int x = 0; x < 2 * N; x++) sum[x] += o[x];
      }
      for (int part = 0; part < 2; part++) nfft_inverse(&c->f, sum + part * N, sum + part * N + M, yr, yi, tmp + part * N);
      const int h = c->h0 + hh;
      for (int i = 0; i < N; i++) c->masks[(size_t)h * N + i] = mod_switch(-tmp[i], scale, mod);
      const int lo = hh * N, hi = (hh + 1) * N < c->count ? (hh + 1) * N : c->count;
      for (int s = lo; s < hi; s++) c->bodies[c->first + s] = mod_switch(c->bPrime[s] - tmp[N + s - lo], scale, mod);
    }
  }
  free(c->bodyProbe);
  free(c->inSpec);
  free(c->T);
  free(c->bPrime);
  fftw_free(c->acc);
  fftw_free(yr);
  free(tmp);
  return 0;
}

/* ---------------------------------------------------------------- Node-API glue */

/*
 * matvec(a, b, weightSpectra, keySpectra, biasTorus, masksOut, bodiesOut, dims, twRe, twIm, stRe, stIm)
 * dims = [N, dIn, dOut, chunkLen, chunks, packingBaseLog, packingLevel, outputBits, threads]. Sizes are checked
 * here too (the caller checks them first; a kernel never trusts its arguments).
 */
static napi_value Matvec(napi_env env, napi_callback_info info) {
  size_t argc = 12;
  napi_value argv[12];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != 12) {
    napi_throw_type_error(env, NULL, "matvec: 12 arguments expected");
    return NULL;
  }
  Ctx c;
  memset(&c, 0, sizeof c);
  int dims[9];
  for (int i = 0; i < 9; i++) {
    napi_value v;
    if (napi_get_element(env, argv[7], i, &v) != napi_ok || napi_get_value_int32(env, v, &dims[i]) != napi_ok) {
      napi_throw_type_error(env, NULL, "matvec: dims must hold 9 integers");
      return NULL;
    }
  }
  c.N = dims[0]; c.dIn = dims[1]; c.dOut = dims[2]; c.L = dims[3]; c.C = dims[4];
  c.baseLog = dims[5]; c.level = dims[6]; c.outBits = dims[7]; c.threads = dims[8];
  size_t la, lb, lw, lk, lbias, lm, lbo, l1, l2, l3, l4;
  c.a = typed(env, argv[0], &la);
  c.b = typed(env, argv[1], &lb);
  c.W = typed(env, argv[2], &lw);
  c.K = typed(env, argv[3], &lk);
  c.biasT = typed(env, argv[4], &lbias);
  c.masks = typed(env, argv[5], &lm);
  c.bodies = typed(env, argv[6], &lbo);
  c.f.twRe = typed(env, argv[8], &l1);
  c.f.twIm = typed(env, argv[9], &l2);
  c.f.stRe = typed(env, argv[10], &l3);
  c.f.stIm = typed(env, argv[11], &l4);
  c.f.m = c.N / 2;
  if (!c.a || !c.b || !c.W || !c.K || !c.biasT || !c.masks || !c.bodies || !c.f.twRe || !c.f.twIm || !c.f.stRe || !c.f.stIm) {
    napi_throw_type_error(env, NULL, "matvec: typed arrays expected");
    return NULL;
  }
  const int N = c.N;
  if (N < 8 || (N & (N - 1)) || c.L < 1 || c.L > N || c.C < 1 || c.dIn < 1 || c.dIn > c.L * c.C || c.dOut < 1 ||
      c.baseLog < 1 || c.level < 1 || c.baseLog > MAX_BASE_LOG || c.baseLog * c.level > 48 || c.outBits < 2 || c.outBits > 32 || c.threads < 1 ||
      c.threads > 64) {
    napi_throw_range_error(env, NULL, "matvec: dimensions out of range");
    return NULL;
  }
  c.R = N / c.L;
  const size_t blocks = ((size_t)c.dOut + c.R - 1) / c.R, H = ((size_t)c.dOut + N - 1) / N;
  if (la < (size_t)c.C * N || lb < (size_t)c.C * N || lw < blocks * c.C * N || lk < (size_t)2 * N * N * c.level ||
      lbias < (size_t)c.dOut || lm < H * N || lbo < (size_t)c.dOut || l1 < (size_t)N / 2 || l2 < (size_t)N / 2 ||
      l3 < (size_t)N / 2 || l4 < (size_t)N / 2) {
    napi_throw_range_error(env, NULL, "matvec: inconsistent sizes");
    return NULL;
  }
  if (matvec(&c) != 0) napi_throw_error(env, NULL, "matvec: out of memory");
  return NULL;
}

/* keySpectra(polys, out, N, twRe, twIm): FFTW spectra (re then im, N f64 each) of count = len/N real polynomials. */
static napi_value KeySpectra(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != 5) {
    napi_throw_type_error(env, NULL, "keySpectra: 5 arguments expected");
    return NULL;
  }
  size_t lp, lo, l1, l2;
  const double *polys = typed(env, argv[0], &lp);
  double *out = typed(env, argv[1], &lo);
  int N = 0;
  napi_get_value_int32(env, argv[2], &N);
  Fft f;
  f.twRe = typed(env, argv[3], &l1);
  f.twIm = typed(env, argv[4], &l2);
  f.m = N / 2;
  if (!polys || !out || !f.twRe || !f.twIm || N < 8 || (N & (N - 1)) || lp % N || lo < lp || l1 < (size_t)N / 2 || l2 < (size_t)N / 2) {
    napi_throw_range_error(env, NULL, "keySpectra: inconsistent sizes");
    return NULL;
  }
  const int M = N / 2;
  double *buf = fftw_malloc(sizeof(double) * 2 * (size_t)N);
  if (!buf || ensure_plan(M) != 0) {
    fftw_free(buf);
    napi_throw_error(env, NULL, "keySpectra: out of memory");
    return NULL;
  }
  for (size_t t = 0; t < lp / N; t++) {
    nfft_forward(&f, polys + t * N, buf, buf + M, buf + N, buf + N + M);
    memcpy(out + t * N, buf + N, sizeof(double) * (size_t)N);
  }
  fftw_free(buf);
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "keySpectra", NAPI_AUTO_LENGTH, KeySpectra, NULL, &fn);
  napi_set_named_property(env, exports, "keySpectra", fn);
  napi_create_function(env, "matvec", NAPI_AUTO_LENGTH, Matvec, NULL, &fn);
  napi_set_named_property(env, exports, "matvec", fn);
  return exports;
}
