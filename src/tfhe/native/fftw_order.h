/*
 * Optional FFTW transforms for the blind rotation's external products (compiled only with -DFHENET_FFTW, which
 * native.ts adds when fftw3.h is found; without it the kernel keeps the shared FFT of negacyclic_fft.h alone).
 *
 * FFTW's split-complex DFT gives the shared FFT's spectrum (both fold N reals into M = N/2 complex values and twist by
 * e^{iπj/N} alike) in natural instead of bit-reversed order, so one is a permutation of the other. The permutation is
 * found once per process by transforming a fixed test polynomial both ways and matching values; if no exact
 * permutation is found FFTW is not used. The TFHE kernel applies it once to the Fourier bootstrapping key
 * (fftwKeyOrder), so the blind rotation runs FFTW on the key's own order with no per-product reshuffle; the GLWE kernel
 * uses it for its packing key. Spectra differ from the shared FFT's only by float rounding (FFTW's algorithm orders
 * the operations differently), which the noise model's FFT term covers (docs/tfhe.md).
 *
 * Plan creation is not thread-safe in FFTW and PbsPool runs this kernel in several worker threads of one process:
 * plan and table are made under a lock; fftw_execute_split_dft on an existing plan is thread-safe.
 */
#ifndef FHENET_FFTW_ORDER_H
#define FHENET_FFTW_ORDER_H
#include <fftw3.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "negacyclic_fft.h"

typedef struct {
  int m;
  fftw_plan plan;
  int *perm; /* perm[x] = FFTW (natural) index of the shared FFT's index x */
} FftwOrder;

static FftwOrder fftw_order = {0, NULL, NULL};
static pthread_mutex_t fftw_order_lock = PTHREAD_MUTEX_INITIALIZER;

/* FFTW spectrum (re[M], im[M], natural order) of real src[N]; yr, yi: fold scratch of M each. */
static void fftw_order_forward(const Fft *f, fftw_plan plan, const double *src, double *yr, double *yi, double *re,
                               double *im) {
  const int m = f->m;
  for (int j = 0; j < m; j++) {
    const double x = src[j], y = src[j + m], c = f->twRe[j], s = f->twIm[j];
    yr[j] = x * c - y * s;
    yi[j] = x * s + y * c;
  }
  fftw_execute_split_dft(plan, yr, yi, re, im);
}

/* dst[N] += inverse of the natural-order spectrum (re, im): a DFT of the swapped parts is the unnormalized inverse. */
static void fftw_order_inverse_add(const Fft *f, fftw_plan plan, const double *re, const double *im, double *yr, double *yi,
                                   double *dst) {
  const int m = f->m;
  fftw_execute_split_dft(plan, (double *)im, (double *)re, yi, yr);
  const double scale = 1.0 / m;
  for (int j = 0; j < m; j++) {
    const double x = yr[j] * scale, y = yi[j] * scale, c = f->twRe[j], s = f->twIm[j];
    dst[j] += x * c + y * s;
    dst[j + m] += y * c - x * s;
  }
}

/* The plan and permutation for the size of `f`, or NULL (then the caller keeps the shared FFT). */
static const FftwOrder *fftw_order_get(const Fft *f) {
  const int M = f->m, N = 2 * M;
  /*
   * The inverse runs the plan on swapped arrays (im, re): every array must have the planned arrays' alignment, which
   * holds when M doubles are a multiple of 64 bytes (every TFHE-rs set: M ≥ 256).
   */
  if (M % 8 != 0) return NULL;
  pthread_mutex_lock(&fftw_order_lock);
  if (fftw_order.m != M) {
    if (fftw_order.plan) fftw_destroy_plan(fftw_order.plan);
    free(fftw_order.perm);
    fftw_order.plan = NULL;
    fftw_order.perm = NULL;
    fftw_order.m = M;
    double *src = malloc(sizeof(double) * N), *a = malloc(sizeof(double) * N);
    double *b = fftw_malloc(sizeof(double) * 2 * N);
    int *idx = malloc(sizeof(int) * M), *used = calloc(M, sizeof(int));
    int ok = src && a && b && idx && used;
    if (ok) {
      fftw_iodim dim = {M, 1, 1};
      /* FFTW_ESTIMATE: the same plan on every run (MEASURE may pick another algorithm per run: other rounding) */
      fftw_order.plan = fftw_plan_guru_split_dft(1, &dim, 0, NULL, b, b + M, b + N, b + N + M, FFTW_ESTIMATE);
      ok = fftw_order.plan != NULL;
    }
    if (ok) {
      uint64_t st = 0x9e3779b97f4a7c15ull; /* fixed test polynomial: distinct spectrum values */
      for (int i = 0; i < N; i++) {
        st = st * 6364136223846793005ull + 1442695040888963407ull;
        src[i] = (double)(int64_t)(st >> 11) / 9007199254740992.0;
      }
      fft_forward(f, src, a, a + M);
      fftw_order_forward(f, fftw_order.plan, src, b, b + M, b + N, b + N + M);
      double scale = 0;
      for (int y = 0; y < M; y++) scale = fmax(scale, fabs(b[N + y]) + fabs(b[N + M + y]));
      for (int x = 0; x < M && ok; x++) {
        int best = -1;
        double bestErr = 1e300;
        for (int y = 0; y < M; y++) {
          const double e = fabs(a[x] - b[N + y]) + fabs(a[M + x] - b[N + M + y]);
          if (e < bestErr) bestErr = e, best = y;
        }
        if (best < 0 || used[best] || bestErr > 1e-9 * scale) ok = 0;
        else used[best] = 1, idx[x] = best;
      }
    }
    free(src);
    free(a);
    fftw_free(b);
    free(used);
    if (ok) fftw_order.perm = idx;
    else free(idx);
  }
  const FftwOrder *r = fftw_order.perm ? &fftw_order : NULL;
  pthread_mutex_unlock(&fftw_order_lock);
  return r;
}
#endif
