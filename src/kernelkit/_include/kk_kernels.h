/* kernelkit's compiled kernel definitions: the one place in C where a kernel
 * family's formula is written. Included by the fused engine
 * (engine/_fused_ext.c) and the kernel-thinning walk (compress/_kt_ext.c).
 *
 * A kernel reaches C as a positive combination of components
 *     k(x, y) = sum_c w_c phi_c            (at most KK_MAXC components)
 * each with a code, two parameters p, q and an integer `deg` (r = ||x - y||):
 *
 *   K_GAUSS      exp(-p r^2)                                 p = 1 / (2 sigma^2)
 *   K_LAPLACE    exp(-p r)                                   p = 1 / ell
 *   K_MATERN32   (1 + s) exp(-s), s = p r                    p = sqrt(3) / ell
 *   K_MATERN52   (1 + s + s^2 / 3) exp(-s), s = p r          p = sqrt(5) / ell
 *   K_RQ         (1 + r^2 / q)^(-p)                          p = exponent, q = scale^2
 *   K_RQ_HALF    K_RQ with p = 1/2 (a square root)   K_RQ_ONE  K_RQ with p = 1 (a division)
 *                deg = 1: r^2 / q may overflow, log(1 + u) = log r^2 - log q there
 *   K_POLY       (p x.y + q)^deg                             (needs the dot product x.y)
 *   K_PERIODIC   exp(-q sin^2(pi p r))                       p = 1 / period, q = 2 / ell^2
 *   K_GAUSS_COS  exp(-p r^2) cos(2 pi q r)                   one spectral-mixture component (d = 1)
 *   compactly supported (0 outside the support, log k = -inf there; no exp):
 *   K_EPAN       (1 - p r^2)^deg for p r^2 < 1               p = 1 / h^2; deg 1, 2, 3: Epanechnikov, biweight, triweight
 *   K_TOPHAT     1 for p r^2 < 1                             p = 1 / h^2
 *   K_TRIANGULAR 1 - p r for p r < 1                         p = 1 / h
 *   K_COSINE     cos(pi p r / 2) for p r < 1                 p = 1 / h
 *
 * The Python side (kernelkit/engine/_components.py) maps kernel objects to
 * these components by name; the names are read from KK_CODE_NAMES, so the
 * codes are defined here only. Adding a closed form: a code and its name
 * below, one case in kk_values (and kk_log_values if log k is needed), one
 * entry in the Python table.
 *
 * Elementary functions (vectorisable, branch-free selects; no libm calls in
 * the hot loops): kexp for x <= 0 (Cody-Waite reduction, Estrin polynomial,
 * 2^n applied as two exact power-of-two factors so gradual underflow gives
 * the right subnormals, exactly 0 below the subnormal range); klog for
 * x >= 1; ksinpi2(t) = sin^2(pi t) with t reduced to [-1/2, 1/2] first.
 */
#ifndef KK_KERNELS_H
#define KK_KERNELS_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#define KK_INLINE static inline __attribute__((always_inline))
#define KK_MAXC 8

enum {
    K_GAUSS = 0, K_LAPLACE = 1, K_MATERN32 = 2, K_MATERN52 = 3, K_RQ = 4, K_RQ_HALF = 5, K_RQ_ONE = 6,
    K_POLY = 7, K_PERIODIC = 8, K_GAUSS_COS = 9, K_EPAN = 10, K_TOPHAT = 11, K_TRIANGULAR = 12, K_COSINE = 13,
    K_NCODES = 14
};
/* names of the codes, in code order (read by kernelkit/engine/_components.py) */
#define KK_CODE_NAMES "gauss laplace matern32 matern52 rq rq_half rq_one poly periodic gauss_cos " \
    "epanechnikov tophat triangular cosine"

typedef struct {
    int n, need_r2;
    int code[KK_MAXC], deg[KK_MAXC];                  /* deg: polynomial degree; K_RQ*: overflow flag */
    double w[KK_MAXC], p[KK_MAXC], q[KK_MAXC], lq[KK_MAXC];   /* lq = log q (K_RQ*) */
} kspec;

/* Fill `ks` from codes (1-D int) and params (n, 4: w, p, q, deg); 0 or -1 with a Python error. */
static int kk_parse_spec(PyObject *codes_o, PyObject *params_o, kspec *ks, int radial_only) {
    PyArrayObject *codes = (PyArrayObject *)PyArray_FROMANY(codes_o, NPY_INT32, 1, 1, NPY_ARRAY_CARRAY_RO | NPY_ARRAY_FORCECAST);
    PyArrayObject *params = (PyArrayObject *)PyArray_FROMANY(params_o, NPY_FLOAT64, 2, 2, NPY_ARRAY_CARRAY_RO);
    int ok = codes && params;
    if (ok) {
        npy_intp nc = PyArray_DIM(codes, 0);
        ok = nc >= 1 && nc <= KK_MAXC && PyArray_DIM(params, 0) == nc && PyArray_DIM(params, 1) == 4;
        if (ok) {
            const int32_t *c = (const int32_t *)PyArray_DATA(codes);
            const double *p = (const double *)PyArray_DATA(params);
            ks->n = (int)nc;
            ks->need_r2 = 0;
            for (int i = 0; i < nc; i++) {
                ks->code[i] = c[i];
                ks->w[i] = p[4 * i];
                ks->p[i] = p[4 * i + 1];
                ks->q[i] = p[4 * i + 2];
                ks->deg[i] = (int)p[4 * i + 3];
                ks->lq[i] = ks->q[i] > 0 ? log(ks->q[i]) : 0.0;
                if (c[i] < 0 || c[i] >= K_NCODES || (radial_only && c[i] == K_POLY)) ok = 0;
                if (c[i] != K_POLY) ks->need_r2 = 1;
            }
        }
        if (!ok)
            PyErr_Format(PyExc_ValueError, "kernel spec: 1-%d components with codes 0-%d%s, params of shape (n, 4)",
                         KK_MAXC, K_NCODES - 1, radial_only ? " (radial only)" : "");
    }
    Py_XDECREF(codes);
    Py_XDECREF(params);
    return ok ? 0 : -1;
}

/* smallest argument of kexp_normal: n >= -124 (float32) / -1020 (float64), results >= 2^-125 / 2^-1021 */
#define KK_EXP_FAST_LO_F32 (-86.0f)
#define KK_EXP_FAST_LO_F64 (-707.0)

/* ---- polynomials, per precision ------------------------------------------ */
/* exp on |r| <= ln2 / 2, Estrin's scheme (short dependency chains).
 * float32, degree 7: truncation error below r^8 / 8! = 5.3e-9 relative. */
KK_INLINE float kk_taylor_exp_f32(float r) {
    float r2 = r * r, r4 = r2 * r2;
    float a0 = 1.0f + r, a1 = 0.5f + r * (1.0f / 6), a2 = 1.0f / 24 + r * (1.0f / 120), a3 = 1.0f / 720 + r * (1.0f / 5040);
    return (a0 + a1 * r2) + (a2 + a3 * r2) * r4;
}
/* float64, degree 11: truncation error below r^12 / 12! = 6.4e-15 relative. */
KK_INLINE double kk_taylor_exp_f64(double r) {
    double r2 = r * r, r4 = r2 * r2, r8 = r4 * r4;
    double a0 = 1.0 + r, a1 = 0.5 + r * (1.0 / 6), a2 = 1.0 / 24 + r * (1.0 / 120), a3 = 1.0 / 720 + r * (1.0 / 5040);
    double a4 = 1.0 / 40320 + r * (1.0 / 362880), a5 = 1.0 / 3628800 + r * (1.0 / 39916800);
    return ((a0 + a1 * r2) + (a2 + a3 * r2) * r4) + (a4 + a5 * r2) * r8;
}
/* 2 atanh(s) / (2 s) = sum_k s^2k / (2k + 1), s^2 <= 0.0295 (m in [sqrt(1/2), sqrt(2))) */
#define KK_LOG_SERIES_F32(z) (1.0f + (z) * (1.0f / 3 + (z) * (1.0f / 5 + (z) * (1.0f / 7 + (z) * (1.0f / 9 + (z) * (1.0f / 11))))))
#define KK_LOG_SERIES_F64(z) (1.0 + (z) * (1.0 / 3 + (z) * (1.0 / 5 + (z) * (1.0 / 7 + (z) * (1.0 / 9 + (z) * (1.0 / 11 \
    + (z) * (1.0 / 13 + (z) * (1.0 / 15 + (z) * (1.0 / 17 + (z) * (1.0 / 19 + (z) * (1.0 / 21 + (z) * (1.0 / 23))))))))))))
/* sin(x) / x = sum_k (-1)^k x^2k / (2k + 1)! for x^2 = z <= (pi / 2)^2: truncation error below
 * x^15 / 15! = 6.7e-10 (float32, 7 terms) and x^23 / 23! = 1.2e-18 (float64, 11 terms) */
#define KK_SIN_SERIES_F32(z) (1.0f - (z) * (1.0f / 6 - (z) * (1.0f / 120 - (z) * (1.0f / 5040 - (z) * (1.0f / 362880 \
    - (z) * (1.0f / 39916800 - (z) * (1.0f / 6227020800.0f)))))))
#define KK_SIN_SERIES_F64(z) (1.0 - (z) * (1.0 / 6 - (z) * (1.0 / 120 - (z) * (1.0 / 5040 - (z) * (1.0 / 362880 \
    - (z) * (1.0 / 39916800 - (z) * (1.0 / 6227020800.0 - (z) * (1.0 / 1307674368000.0 - (z) * (1.0 / 355687428096000.0 \
    - (z) * (1.0 / 121645100408832000.0 - (z) * (1.0 / 51090942171709440000.0)))))))))))

/* ---- float32 ---- */
#define R float
#define IT int32_t
#define FN(x) x##_f32
#define MBITS 23
#define BIAS 127
#define EXP_LO (-104.0f)
#define EXP_FAST_LO KK_EXP_FAST_LO_F32
#define LN2_HI 0.693359375f
#define LN2_LO (-2.12194440e-4f)
#define SQRT sqrtf
#define FLOOR floorf
#define TAYLOR_EXP kk_taylor_exp_f32
#define LOG_SERIES KK_LOG_SERIES_F32
#define SIN_SERIES KK_SIN_SERIES_F32
#include "kk_kernels_body.h"
#undef R
#undef IT
#undef FN
#undef MBITS
#undef BIAS
#undef EXP_LO
#undef EXP_FAST_LO
#undef LN2_HI
#undef LN2_LO
#undef SQRT
#undef FLOOR
#undef TAYLOR_EXP
#undef LOG_SERIES
#undef SIN_SERIES

/* ---- float64 ---- */
#define R double
#define IT int64_t
#define FN(x) x##_f64
#define MBITS 52
#define BIAS 1023
#define EXP_LO (-746.0)
#define EXP_FAST_LO KK_EXP_FAST_LO_F64
#define LN2_HI 6.93147180369123816490e-01
#define LN2_LO 1.90821492927058770002e-10
#define SQRT sqrt
#define FLOOR floor
#define TAYLOR_EXP kk_taylor_exp_f64
#define LOG_SERIES KK_LOG_SERIES_F64
#define SIN_SERIES KK_SIN_SERIES_F64
#include "kk_kernels_body.h"
#undef R
#undef IT
#undef FN
#undef MBITS
#undef BIAS
#undef EXP_LO
#undef EXP_FAST_LO
#undef LN2_HI
#undef LN2_LO
#undef SQRT
#undef FLOOR
#undef TAYLOR_EXP
#undef LOG_SERIES
#undef SIN_SERIES

#endif /* KK_KERNELS_H */
