/*
 * Optional native kernel for the two hot loops of KS-PBS: the keyswitch and the blind rotation.
 * It mirrors the TypeScript implementation (src/tfhe/keyswitch.ts, pbs.ts, fft.ts) operation for
 * operation — same data layouts, same FFT algorithm and twiddle tables (passed in from TypeScript,
 * so the bit-reversed frequency order of the Fourier bootstrapping key matches) — so the TypeScript
 * path stays the reference and the fallback. Built at first use by native.ts with the system C
 * compiler; if that fails, fhenet runs the TypeScript path.
 */
#include <node_api.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define TWO_32 4294967296.0
#define TWO_64 18446744073709551616.0

#include "negacyclic_fft.h"
#include "napi_typed.h"
#ifdef FHENET_FFTW
/*
 * FFTW transforms in the blind rotation, chosen per call (ServerKey's `transform`; the default where this kernel was
 * built with FFTW). Faster, but not bit-identical to the TypeScript reference: FFTW rounds in another order (within
 * the noise model's FFT term, docs/tfhe.md). The shared FFT stays available and bit-identical to the reference.
 */
#include "fftw_order.h"
#endif


static inline double reduce64(double v) { return v - TWO_64 * rint(v / TWO_64); }

/* dst = X^a·src − src (negacyclic, a in [1, 2N)). */
static void rotate_sub(const double *src, int a, double *dst, int N) {
  double sign = 1.0;
  if (a >= N) { a -= N; sign = -1.0; }
  for (int j = 0; j < N - a; j++) dst[j + a] = sign * src[j] - src[j + a];
  for (int j = N - a; j < N; j++) dst[j + a - N] = -sign * src[j] - src[j + a - N];
}

typedef struct {
  double *diff, *digit, *digF, *outF;
#ifdef FHENET_FFTW
  const FftwOrder *fftw; /* FFTW transforms (the key in FFTW's natural order), else NULL: the shared FFT */
  double *fold;          /* FFTW-aligned scratch: the folded, twisted polynomial (N) */
#endif
} Scratch;

/*
 * With FFTW the spectra (digF, outF) are FFTW's own input/output arrays: allocated with fftw_malloc, every N-slot and
 * its imaginary half (M = N/2 doubles, a multiple of 8 when FFTW is used) keep the alignment the plan was made for.
 */
#ifdef FHENET_FFTW
#define SPECTRUM_ALLOC(bytes) fftw_malloc(bytes)
#define SPECTRUM_FREE(p) fftw_free(p)
#else
#define SPECTRUM_ALLOC(bytes) malloc(bytes)
#define SPECTRUM_FREE(p) free(p)
#endif

static int scratch_alloc(Scratch *s, int k1, int N, int Q) {
  s->diff = malloc(sizeof(double) * (size_t)k1 * N);
  s->digit = malloc(sizeof(double) * (size_t)N);
  s->digF = SPECTRUM_ALLOC(sizeof(double) * (size_t)Q * N);
  s->outF = SPECTRUM_ALLOC(sizeof(double) * (size_t)k1 * N);
#ifdef FHENET_FFTW
  s->fold = fftw_malloc(sizeof(double) * (size_t)N);
  if (!s->fold) return -1;
#endif
  return s->diff && s->digit && s->digF && s->outF ? 0 : -1;
}

static void scratch_free(Scratch *s) {
  free(s->diff);
  free(s->digit);
  SPECTRUM_FREE(s->digF);
  SPECTRUM_FREE(s->outF);
#ifdef FHENET_FFTW
  fftw_free(s->fold);
#endif
}

/* Spectrum of digit[N] into slot (re, im), in the Fourier key's order (FFTW's natural order or the shared FFT's). */
static void digit_spectrum(const Fft *f, const double *digit, double *restrict re, double *restrict im, Scratch *sc) {
#ifdef FHENET_FFTW
  if (sc->fftw) {
    fftw_order_forward(f, sc->fftw->plan, digit, sc->fold, sc->fold + f->m, re, im);
    return;
  }
#endif
  (void)sc;
  fft_forward(f, digit, re, im);
}

/* dst[N] += inverse transform of (re, im) (the key's order; re and im may be overwritten). */
static void spectrum_inverse_add(const Fft *f, double *restrict re, double *restrict im, double *dst, Scratch *sc) {
#ifdef FHENET_FFTW
  if (sc->fftw) {
    fftw_order_inverse_add(f, sc->fftw->plan, re, im, sc->fold, sc->fold + f->m, dst);
    return;
  }
#endif
  (void)sc;
  fft_inverse_add(f, re, im, dst);
}

/* acc = T·X^{−body} (mask polynomials zero). */
static void acc_init(double *acc, const double *lut, int body, int k, int N) {
  int a = (2 * N - body) % (2 * N);
  double sign = 1.0;
  double *dst = acc + (size_t)k * N;
  memset(acc, 0, sizeof(double) * (size_t)k * N);
  if (a >= N) { a -= N; sign = -1.0; }
  for (int j = 0; j < N - a; j++) dst[j + a] = sign * lut[j];
  for (int j = N - a; j < N; j++) dst[j + a - N] = -sign * lut[j];
}

/* acc += ExtProd(key, X^a·acc − acc): one CMUX with the GGSW `key`. */
static void cmux(double *acc, int a, const double *key, int k, int N, int baseLog, int level, const Fft *f, Scratch *sc) {
  const int k1 = k + 1, M = N / 2, Q = level * k1;
  double *diff = sc->diff, *digit = sc->digit, *digF = sc->digF, *outF = sc->outF;
  for (int r = 0; r < k1; r++) rotate_sub(acc + (size_t)r * N, a, diff + (size_t)r * N, N);
  const double toTop = ldexp(1.0, baseLog * level - 64), base = ldexp(1.0, baseLog), invBase = 1.0 / base;
  for (int r = 0; r < k1; r++) {
    double *d = diff + (size_t)r * N;
    for (int li = 0; li < level; li++) {
      for (int j = 0; j < N; j++) {
        double q = li == 0 ? rint(d[j] * toTop) : d[j];
        double dg = q - base * rint(q * invBase);
        digit[j] = dg;
        d[j] = (q - dg) * invBase;
      }
      double *slot = digF + (size_t)(li * k1 + r) * N;
      digit_spectrum(f, digit, slot, slot + M, sc);
    }
  }
  for (int c = 0; c < k1; c++) {
    double *ore = outF + (size_t)c * N, *oim = ore + M;
    for (int q = 0; q < Q; q++) {
      const double *dre = digF + (size_t)q * N, *dim = dre + M;
      const double *kre = key + (size_t)(q * k1 + c) * N, *kim = kre + M;
      if (q == 0) {
        for (int j = 0; j < M; j++) {
          ore[j] = dre[j] * kre[j] - dim[j] * kim[j];
          oim[j] = dre[j] * kim[j] + dim[j] * kre[j];
        }
      } else {
        for (int j = 0; j < M; j++) {
          ore[j] += dre[j] * kre[j] - dim[j] * kim[j];
          oim[j] += dre[j] * kim[j] + dim[j] * kre[j];
        }
      }
    }
    spectrum_inverse_add(f, ore, oim, acc + (size_t)c * N, sc);
  }
  for (int j = 0; j < k1 * N; j++) acc[j] = reduce64(acc[j]);
}

/*
 * Blind rotation of `batch` ciphertexts at once: GGSW i is applied to every ciphertext before moving
 * to GGSW i+1, so each slice of the Fourier key is read from memory once per batch instead of once
 * per ciphertext. Per ciphertext the operations are exactly those of a single rotation.
 */
static int blind_rotate_batch(const double *bsk, const double *luts, const int32_t *masks, const int32_t *bodies,
                              double *accs, int batch, int n, int k, int N, int baseLog, int level, const Fft *f,
                              int useFftw) {
  const int k1 = k + 1, Q = level * k1;
  Scratch sc;
  if (scratch_alloc(&sc, k1, N, Q) != 0) {
    scratch_free(&sc);
    return -1;
  }
#ifdef FHENET_FFTW
  sc.fftw = useFftw ? fftw_order_get(f) : NULL;
  if (useFftw && !sc.fftw) {
    scratch_free(&sc);
    return -2; /* the key is in FFTW's order: no fallback to the shared FFT */
  }
#else
  if (useFftw) {
    scratch_free(&sc);
    return -2;
  }
#endif
  for (int b = 0; b < batch; b++) acc_init(accs + (size_t)b * k1 * N, luts + (size_t)b * N, bodies[b], k, N);
  for (int i = 0; i < n; i++) {
    const double *key = bsk + (size_t)i * Q * k1 * N;
    for (int b = 0; b < batch; b++) {
      const int a = masks[(size_t)b * n + i];
      if (a != 0) cmux(accs + (size_t)b * k1 * N, a, key, k, N, baseLog, level, f, &sc);
    }
  }
  scratch_free(&sc);
  return 0;
}

/* keyswitch.ts in C: rows are the keyswitching key's top 32 bits; the sums are exact integers in double. */
static void keyswitch(const int32_t *rows, const uint32_t *input, double *out, int inputDim, int outputSize, int baseLog,
                      int level) {
  const int n = outputSize - 1;
  memset(out, 0, sizeof(double) * (size_t)outputSize);
  const int kept = baseLog * level;
  const double scale = ldexp(1.0, kept - 64), base = ldexp(1.0, baseLog), invBase = 1.0 / base, wrap = ldexp(1.0, kept);
  for (int i = 0; i < inputDim; i++) {
    double a = (double)input[2 * i + 1] * TWO_32 + input[2 * i];
    double q = rint(a * scale);
    q -= wrap * rint(q / wrap);
    for (int j = 0; j < level; j++) {
      double d = q - base * rint(q * invBase);
      q = (q - d) * invBase;
      if (d == 0) continue;
      const int32_t *restrict row = rows + ((size_t)i * level + j) * outputSize;
      for (int t = 0; t <= n; t++) out[t] -= d * (double)row[t];
    }
  }
  for (int t = 0; t <= n; t++) out[t] = (out[t] - TWO_32 * rint(out[t] / TWO_32)) * TWO_32;
  {
    uint32_t lo = input[2 * inputDim], hi = input[2 * inputDim + 1];
    out[n] += hi >= 0x80000000u ? ((double)hi - TWO_32) * TWO_32 + lo : (double)hi * TWO_32 + lo;
  }
  out[n] = reduce64(out[n]);
}

/* ---------------------------------------------------------------- Node-API glue */

static int32_t i32(napi_env env, napi_value v) {
  int32_t x = 0;
  napi_get_value_int32(env, v, &x);
  return x;
}

/*
 * blindRotate(bsk, luts, masks, bodies, accs, batch, n, k, N, baseLog, level, twRe, twIm, stRe, stIm, useFftw):
 * luts batch×N, masks batch×n (Int32Array), bodies Int32Array(batch), accs batch×(k+1)N; useFftw 1 runs the
 * transforms through FFTW on a key in FFTW's order (fftwKeyOrder; an error where FFTW is not usable for N), 0
 * through the shared FFT on a key in its order. Sizes are
 * checked here too (the caller checks them first; a kernel must never trust its arguments).
 */
static napi_value BlindRotate(napi_env env, napi_callback_info info) {
  size_t argc = 16;
  napi_value argv[16];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != 16) {
    napi_throw_type_error(env, NULL, "blindRotate: 16 arguments expected");
    return NULL;
  }
  size_t lBsk, lLut, lMask, lBody, lAcc, lTw, lTw2, lSt, lSt2;
  Fft f;
  const double *bsk = typed(env, argv[0], &lBsk), *luts = typed(env, argv[1], &lLut);
  const int32_t *masks = typed(env, argv[2], &lMask), *bodies = typed(env, argv[3], &lBody);
  double *accs = typed(env, argv[4], &lAcc);
  const int batch = i32(env, argv[5]), n = i32(env, argv[6]), k = i32(env, argv[7]), N = i32(env, argv[8]);
  const int baseLog = i32(env, argv[9]), level = i32(env, argv[10]), useFftw = i32(env, argv[15]);
  f.twRe = typed(env, argv[11], &lTw);
  f.twIm = typed(env, argv[12], &lTw2);
  f.stRe = typed(env, argv[13], &lSt);
  f.stIm = typed(env, argv[14], &lSt2);
  f.m = N / 2;
  if (!bsk || !luts || !masks || !bodies || !accs || !f.twRe || !f.twIm || !f.stRe || !f.stIm) {
    napi_throw_type_error(env, NULL, "blindRotate: typed arrays expected");
    return NULL;
  }
  const size_t k1 = (size_t)k + 1;
  if (batch < 1 || n < 1 || k < 1 || N < 4 || (N & (N - 1)) || level < 1 || baseLog < 1 || baseLog * level > 53 ||
      lBsk < (size_t)n * level * k1 * k1 * N || lLut < (size_t)batch * N || lMask < (size_t)batch * n ||
      lBody < (size_t)batch || lAcc < (size_t)batch * k1 * N || lTw < (size_t)N / 2 || lTw2 < (size_t)N / 2 ||
      lSt < (size_t)N / 2 || lSt2 < (size_t)N / 2) {
    napi_throw_range_error(env, NULL, "blindRotate: inconsistent sizes");
    return NULL;
  }
  for (size_t t = 0; t < (size_t)batch * n; t++)
    if (masks[t] < 0 || masks[t] >= 2 * N) {
      napi_throw_range_error(env, NULL, "blindRotate: mask index out of range");
      return NULL;
    }
  for (int b = 0; b < batch; b++)
    if (bodies[b] < 0 || bodies[b] >= 2 * N) {
      napi_throw_range_error(env, NULL, "blindRotate: body index out of range");
      return NULL;
    }
  const int rc = blind_rotate_batch(bsk, luts, masks, bodies, accs, batch, n, k, N, baseLog, level, &f, useFftw);
  if (rc == -2) napi_throw_error(env, NULL, "blindRotate: FFTW transform unavailable for this size (see fftwUsable)");
  else if (rc != 0) napi_throw_error(env, NULL, "blindRotate: out of memory");
  return NULL;
}

/* keyswitch(rows, input, out, inputDim, outputSize, baseLog, level) */
static napi_value Keyswitch(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != 7) {
    napi_throw_type_error(env, NULL, "keyswitch: 7 arguments expected");
    return NULL;
  }
  size_t lRows, lIn, lOut;
  const int32_t *rows = typed(env, argv[0], &lRows);
  const uint32_t *input = typed(env, argv[1], &lIn);
  double *out = typed(env, argv[2], &lOut);
  if (!rows || !input || !out) {
    napi_throw_type_error(env, NULL, "keyswitch: typed arrays expected");
    return NULL;
  }
  const int inputDim = i32(env, argv[3]), outputSize = i32(env, argv[4]), baseLog = i32(env, argv[5]), level = i32(env, argv[6]);
  if (inputDim < 1 || outputSize < 2 || level < 1 || baseLog < 1 || baseLog * level > 32 ||
      lRows < (size_t)inputDim * level * outputSize || lIn < 2 * ((size_t)inputDim + 1) || lOut < (size_t)outputSize) {
    napi_throw_range_error(env, NULL, "keyswitch: inconsistent sizes");
    return NULL;
  }
  keyswitch(rows, input, out, inputDim, outputSize, baseLog, level);
  return NULL;
}

#ifdef FHENET_FFTW
/* The FFTW order (plan and permutation) for the arguments (N, twRe, twIm, stRe, stIm) at argv, or NULL. */
static const FftwOrder *fftw_order_from_args(napi_env env, napi_value *argv) {
  size_t l0, l1, l2, l3;
  Fft f;
  const int N = i32(env, argv[0]);
  f.m = N / 2;
  f.twRe = typed(env, argv[1], &l0);
  f.twIm = typed(env, argv[2], &l1);
  f.stRe = typed(env, argv[3], &l2);
  f.stIm = typed(env, argv[4], &l3);
  if (N < 4 || (N & (N - 1)) || !f.twRe || !f.twIm || !f.stRe || !f.stIm || l0 < (size_t)f.m || l1 < (size_t)f.m ||
      l2 < (size_t)f.m || l3 < (size_t)f.m)
    return NULL;
  return fftw_order_get(&f);
}
#endif

/*
 * fftwUsable(N, twRe, twIm, stRe, stIm): whether blindRotate(..., useFftw = 1) really runs FFTW for this size (built
 * with FFTW, M % 8 == 0 and the permutation to the shared FFT's order found); false: only the shared FFT runs here.
 */
static napi_value FftwUsable(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5], out;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int usable = 0;
#ifdef FHENET_FFTW
  usable = argc == 5 && fftw_order_from_args(env, argv) != NULL;
#else
  (void)argv;
#endif
  napi_get_boolean(env, usable, &out);
  return out;
}

/*
 * fftwKeyOrder(data, N, twRe, twIm, stRe, stIm): reorders in place every N-slot (M real parts, M imaginary parts) of
 * a Fourier key from the shared FFT's bit-reversed order into FFTW's natural order, the order blindRotate(...,
 * useFftw = 1) reads. Returns false (data untouched) where FFTW is not usable for N.
 */
static napi_value FftwKeyOrder(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6], out;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int done = 0;
#ifdef FHENET_FFTW
  size_t lData = 0;
  double *data = argc == 6 ? typed(env, argv[0], &lData) : NULL;
  const int N = data ? i32(env, argv[1]) : 0;
  const FftwOrder *o = data && N >= 4 && lData % (size_t)N == 0 ? fftw_order_from_args(env, argv + 1) : NULL;
  double *tmp = o ? malloc(sizeof(double) * (size_t)N) : NULL;
  if (tmp) {
    const int M = N / 2;
    for (size_t s = 0; s < lData; s += (size_t)N) {
      double *slot = data + s;
      memcpy(tmp, slot, sizeof(double) * (size_t)N);
      for (int x = 0; x < M; x++) {
        slot[o->perm[x]] = tmp[x];
        slot[M + o->perm[x]] = tmp[M + x];
      }
    }
    free(tmp);
    done = 1;
  }
#else
  (void)argv;
#endif
  napi_get_boolean(env, done, &out);
  return out;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  /* whether this build links FFTW (Debian libfftw3-dev found when it was compiled) */
#ifdef FHENET_FFTW
  napi_get_boolean(env, 1, &fn);
#else
  napi_get_boolean(env, 0, &fn);
#endif
  napi_set_named_property(env, exports, "fftwBuilt", fn);
  napi_create_function(env, "fftwUsable", NAPI_AUTO_LENGTH, FftwUsable, NULL, &fn);
  napi_set_named_property(env, exports, "fftwUsable", fn);
  napi_create_function(env, "fftwKeyOrder", NAPI_AUTO_LENGTH, FftwKeyOrder, NULL, &fn);
  napi_set_named_property(env, exports, "fftwKeyOrder", fn);
  napi_create_function(env, "blindRotate", NAPI_AUTO_LENGTH, BlindRotate, NULL, &fn);
  napi_set_named_property(env, exports, "blindRotate", fn);
  napi_create_function(env, "keyswitch", NAPI_AUTO_LENGTH, Keyswitch, NULL, &fn);
  napi_set_named_property(env, exports, "keyswitch", fn);
  return exports;
}
