/*
 * The negacyclic f64 FFT of fhenet's TFHE kernel (src/tfhe/fft.ts in C, operation for operation, so spectra are
 * bit-identical to the TypeScript plan's when compiled with -ffp-contract=off). Shared by the KS-PBS kernel
 * (kernel.c) and the packed GLWE matrix-product kernel (src/glwe/native/glwe.c); header-only, all functions static.
 * The twiddle tables come from TypeScript (NegacyclicFft), so both kernels and the TypeScript oracle use one
 * bit-reversed frequency order.
 */
#ifndef FHENET_NEGACYCLIC_FFT_H
#define FHENET_NEGACYCLIC_FFT_H
#include <math.h>

typedef struct {
  int m;
  const double *twRe, *twIm, *stRe, *stIm;
} Fft;

/*
 * Radix-2 stages, two at a time: each pass loads four points and applies the butterflies of stage
 * `len` and then of stage `len/2` in registers. Every point goes through exactly the same
 * floating-point operations in the same order as in the one-stage-per-pass TypeScript FFT, so the
 * results are bit-identical; only the memory traffic halves.
 */
static void dif_pair(double *restrict re, double *restrict im, int m, int len, const double *stRe, const double *stIm) {
  const int half = len >> 1, q = len >> 2;
  const double *w1r = stRe + half, *w1i = stIm + half; /* stage len: W_len^j, j < half */
  const double *w2r = stRe + q, *w2i = stIm + q;       /* stage len/2: W_{len/2}^j, j < q */
  for (int s = 0; s < m; s += len) {
    double *r0 = re + s, *r1 = r0 + q, *r2 = r0 + 2 * q, *r3 = r0 + 3 * q;
    double *i0 = im + s, *i1 = i0 + q, *i2 = i0 + 2 * q, *i3 = i0 + 3 * q;
    /* The four quarters never overlap: tell GCC so it vectorizes without alias checks. */
#pragma GCC ivdep
    for (int j = 0; j < q; j++) {
      /* stage len: (0,2) with W^j, (1,3) with W^{j+q} */
      double ar = r0[j], ai = i0[j], br = r2[j], bi = i2[j];
      double x0r = ar + br, x0i = ai + bi, dr = ar - br, di = ai - bi;
      double x2r = dr * w1r[j] - di * w1i[j], x2i = dr * w1i[j] + di * w1r[j];
      ar = r1[j]; ai = i1[j]; br = r3[j]; bi = i3[j];
      double x1r = ar + br, x1i = ai + bi;
      dr = ar - br; di = ai - bi;
      double x3r = dr * w1r[j + q] - di * w1i[j + q], x3i = dr * w1i[j + q] + di * w1r[j + q];
      /* stage len/2: (0,1) and (2,3) with W_{len/2}^j */
      r0[j] = x0r + x1r; i0[j] = x0i + x1i;
      dr = x0r - x1r; di = x0i - x1i;
      r1[j] = dr * w2r[j] - di * w2i[j]; i1[j] = dr * w2i[j] + di * w2r[j];
      r2[j] = x2r + x3r; i2[j] = x2i + x3i;
      dr = x2r - x3r; di = x2i - x3i;
      r3[j] = dr * w2r[j] - di * w2i[j]; i3[j] = dr * w2i[j] + di * w2r[j];
    }
  }
}

static void dif_single(double *restrict re, double *restrict im, int m, int len, const double *stRe, const double *stIm) {
  const int half = len >> 1;
  const double *wr = stRe + half, *wi = stIm + half;
  for (int s = 0; s < m; s += len) {
    double *ar = re + s, *ai = im + s, *br = re + s + half, *bi = im + s + half;
    for (int j = 0; j < half; j++) {
      double xr = ar[j], xi = ai[j], yr = br[j], yi = bi[j];
      ar[j] = xr + yr;
      ai[j] = xi + yi;
      double dr = xr - yr, di = xi - yi;
      br[j] = dr * wr[j] - di * wi[j];
      bi[j] = dr * wi[j] + di * wr[j];
    }
  }
}

/* Inverse pair: stage len then stage 2·len (conjugate twiddles), block 2·len. */
static void dit_pair(double *restrict re, double *restrict im, int m, int len, const double *stRe, const double *stIm) {
  const int q = len >> 1, blk = len << 1;
  const double *w1r = stRe + q, *w1i = stIm + q;     /* stage len: W_len^j, j < q */
  const double *w2r = stRe + len, *w2i = stIm + len; /* stage 2len: W_{2len}^j, j < len */
  for (int s = 0; s < m; s += blk) {
    double *r0 = re + s, *r1 = r0 + q, *r2 = r0 + 2 * q, *r3 = r0 + 3 * q;
    double *i0 = im + s, *i1 = i0 + q, *i2 = i0 + 2 * q, *i3 = i0 + 3 * q;
    /* The four quarters never overlap: tell GCC so it vectorizes without alias checks. */
#pragma GCC ivdep
    for (int j = 0; j < q; j++) {
      double cr = w1r[j], ci = -w1i[j];
      double yr = r1[j] * cr - i1[j] * ci, yi = r1[j] * ci + i1[j] * cr;
      double a0r = r0[j] + yr, a0i = i0[j] + yi, a1r = r0[j] - yr, a1i = i0[j] - yi;
      yr = r3[j] * cr - i3[j] * ci;
      yi = r3[j] * ci + i3[j] * cr;
      double a2r = r2[j] + yr, a2i = i2[j] + yi, a3r = r2[j] - yr, a3i = i2[j] - yi;
      /* stage 2len: (0,2) with conj W^j, (1,3) with conj W^{j+q} */
      cr = w2r[j]; ci = -w2i[j];
      yr = a2r * cr - a2i * ci; yi = a2r * ci + a2i * cr;
      r0[j] = a0r + yr; i0[j] = a0i + yi; r2[j] = a0r - yr; i2[j] = a0i - yi;
      cr = w2r[j + q]; ci = -w2i[j + q];
      yr = a3r * cr - a3i * ci; yi = a3r * ci + a3i * cr;
      r1[j] = a1r + yr; i1[j] = a1i + yi; r3[j] = a1r - yr; i3[j] = a1i - yi;
    }
  }
}

static void dit_single(double *restrict re, double *restrict im, int m, int len, const double *stRe, const double *stIm) {
  const int half = len >> 1;
  const double *wr = stRe + half, *wi = stIm + half;
  for (int s = 0; s < m; s += len) {
    double *ar = re + s, *ai = im + s, *br = re + s + half, *bi = im + s + half;
    for (int j = 0; j < half; j++) {
      double cr = wr[j], ci = -wi[j];
      double yr = br[j] * cr - bi[j] * ci;
      double yi = br[j] * ci + bi[j] * cr;
      double xr = ar[j], xi = ai[j];
      ar[j] = xr + yr;
      ai[j] = xi + yi;
      br[j] = xr - yr;
      bi[j] = xi - yi;
    }
  }
}

/* Fold N reals into M complex, twist by e^{iπj/N}, decimation-in-frequency FFT (bit-reversed out). */
static void fft_forward(const Fft *f, const double *src, double *restrict re, double *restrict im) {
  const int m = f->m;
  for (int j = 0; j < m; j++) {
    double x = src[j], y = src[j + m], c = f->twRe[j], s = f->twIm[j];
    re[j] = x * c - y * s;
    im[j] = x * s + y * c;
  }
  int len = m;
  while (len >= 4) {
    if (len >= 8) {
      dif_pair(re, im, m, len, f->stRe, f->stIm);
      len >>= 2;
    } else {
      dif_single(re, im, m, len, f->stRe, f->stIm);
      len >>= 1;
    }
  }
  for (int a = 0; a < m; a += 2) {
    double xr = re[a], xi = im[a], yr = re[a + 1], yi = im[a + 1];
    re[a] = xr + yr;
    im[a] = xi + yi;
    re[a + 1] = xr - yr;
    im[a + 1] = xi - yi;
  }
}

/* Decimation-in-time inverse (bit-reversed in), scale 1/M, untwist, unfold, ADD into dst. */
static void fft_inverse_add(const Fft *f, double *restrict re, double *restrict im, double *restrict dst) {
  const int m = f->m;
  for (int a = 0; a < m; a += 2) {
    double xr = re[a], xi = im[a], yr = re[a + 1], yi = im[a + 1];
    re[a] = xr + yr;
    im[a] = xi + yi;
    re[a + 1] = xr - yr;
    im[a + 1] = xi - yi;
  }
  int len = 4;
  while (len <= m) {
    if (2 * len <= m) {
      dit_pair(re, im, m, len, f->stRe, f->stIm);
      len <<= 2;
    } else {
      dit_single(re, im, m, len, f->stRe, f->stIm);
      len <<= 1;
    }
  }
  const double scale = 1.0 / m;
  for (int j = 0; j < m; j++) {
    double x = re[j] * scale, y = im[j] * scale, c = f->twRe[j], s = f->twIm[j];
    dst[j] += x * c + y * s;
    dst[j + m] += y * c - x * s;
  }
}
#endif
