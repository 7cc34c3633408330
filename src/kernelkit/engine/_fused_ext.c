/* Fused CPU backend of the kernel-sum engine (kernelkit.engine._fused).
 *
 * One pass over the n x m kernel matrix in small tiles that live in cache:
 * pack a tile of points and a block of queries, compute the tile's squared
 * distances (exact differences for small d, or the x.y part of
 * |x|^2 + |y|^2 - 2 x.y with a register-blocked micro-kernel for larger d),
 * apply the kernel profile with a vectorised exp, and reduce at once into
 * the output (weighted sums, log-sum-exp, or top-k heaps). No n x m buffer
 * is ever formed; per-thread workspace is a few tiles. OpenMP threads take
 * query blocks (or point ranges when there are few queries).
 *
 * Kernels are sums of components sum_c w_c phi_c, defined once for every
 * compiled path in ../_include/kk_kernels.h (codes, formulas, exp and log).
 * The log-sum-exp takes a single positive radial component with w = log(scale).
 *
 * Accumulation: within a tile row in the input precision (at most nb terms
 * per row, split over vector lanes), across tiles in float64.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#else
static int omp_get_thread_num(void) { return 0; }
#endif

#pragma GCC diagnostic ignored "-Wpsabi"
#include "kk_kernels.h"
#define MR 6 /* queries per micro-tile */

enum { OP_SUM = 0, OP_LSE = 1, OP_TOPK = 2 };

/* Instruction-set builds: this file is compiled three times (setup.py): as is for
 * baseline x86-64 (any CPU), and included by _fused_v3_ext.c (-march=x86-64-v3:
 * AVX2 + FMA, 256-bit vectors) and _fused_v4_ext.c (-march=x86-64-v4:
 * AVX-512F/BW/DQ/VL, 512-bit vectors). kernelkit/engine/_fused.py imports the
 * best one the CPU supports (cpu_features() below). */
#ifndef KK_VBYTES
#define KK_VBYTES 32                 /* bytes per vector of the micro-kernel */
#endif
#ifndef KK_MODULE
#define KK_MODULE _fused_ext
#define KK_CLONE_NAME "baseline"
#endif
#define KK_STR2(x) #x
#define KK_STR(x) KK_STR2(x)
#define KK_CAT2(a, b) a##b
#define KK_CAT(a, b) KK_CAT2(a, b)
#define KK_TILE_MULT (2 * KK_VBYTES / 4)   /* nb must be a multiple of the float32 panel width */
#define KK_CLONES

/* ---- float32 ---- */
#define R float
#define IT int32_t
#define FN(x) x##_f32
#define VLEN (KK_VBYTES / 4)
#define SQRT sqrtf
#define EXP_FAST_LO KK_EXP_FAST_LO_F32
#include "_fused_impl.h"
#undef R
#undef IT
#undef FN
#undef VLEN
#undef SQRT
#undef EXP_FAST_LO

/* ---- float64 ---- */
#define R double
#define IT int64_t
#define FN(x) x##_f64
#define VLEN (KK_VBYTES / 8)
#define SQRT sqrt
#define EXP_FAST_LO KK_EXP_FAST_LO_F64
#include "_fused_impl.h"

/* ---- Python bindings ------------------------------------------------------ */

static int parse_spec(PyObject *codes_o, PyObject *params_o, kspec *ks) {
    return kk_parse_spec(codes_o, params_o, ks, 0);
}

static int check_arr(PyObject *o, int typenum, int ndim, const char *what) {
    if (!PyArray_Check(o) || PyArray_TYPE((PyArrayObject *)o) != typenum || PyArray_NDIM((PyArrayObject *)o) != ndim
        || !PyArray_IS_C_CONTIGUOUS((PyArrayObject *)o)) {
        PyErr_Format(PyExc_TypeError, "fused engine: %s must be a C-contiguous %d-D array of the right dtype", what, ndim);
        return -1;
    }
    return 0;
}

/* run(op, X, Y, W, center, codes, params, gram, nb, jb, k, nthreads, prepack, out, out_aux)
 *   op 0 sum:  W (n, p) weights; out (m, p) float64 zeros on entry
 *   op 1 lse:  W (n, p) log weights; out (m, p) float64 zeros (sums), out_aux (m, p) float64 -inf (maxima)
 *   op 2 topk: W ignored; out (m, k) float64 values, out_aux (m, k) int64 indices (unsorted)
 * center: (d,) array subtracted from X and Y, or None.
 * prepack: pack all of X (and W) into tiles first (memory (d + p + 1) n values) rather than per block. */
static PyObject *py_run(PyObject *self, PyObject *args) {
    int op, gram, nb, jb, k, nthreads, prepack;
    PyObject *Xo, *Yo, *Wo, *Co, *codes, *params, *outo, *auxo;
    if (!PyArg_ParseTuple(args, "iOOOOOOiiiiiiOO", &op, &Xo, &Yo, &Wo, &Co, &codes, &params, &gram, &nb, &jb, &k,
                          &nthreads, &prepack, &outo, &auxo))
        return NULL;
    kspec ks;
    if (parse_spec(codes, params, &ks)) return NULL;
    if (!PyArray_Check(Xo)) { PyErr_SetString(PyExc_TypeError, "fused engine: X must be an array"); return NULL; }
    const int typenum = PyArray_TYPE((PyArrayObject *)Xo);
    if (typenum != NPY_FLOAT32 && typenum != NPY_FLOAT64) {
        PyErr_SetString(PyExc_TypeError, "fused engine: float32 or float64 only");
        return NULL;
    }
    if (check_arr(Xo, typenum, 2, "X") || check_arr(Yo, typenum, 2, "Y")) return NULL;
    if (op != OP_TOPK && check_arr(Wo, typenum, 2, "W")) return NULL;
    if (Co != Py_None && check_arr(Co, typenum, 1, "center")) return NULL;
    PyArrayObject *X = (PyArrayObject *)Xo, *Y = (PyArrayObject *)Yo;
    const int64_t n = PyArray_DIM(X, 0), m = PyArray_DIM(Y, 0);
    const int d = (int)PyArray_DIM(X, 1);
    if (PyArray_DIM(Y, 1) != d || n < 1 || m < 1 || d < 1) {
        PyErr_SetString(PyExc_ValueError, "fused engine: X and Y must be non-empty with the same number of columns");
        return NULL;
    }
    int p = 1;
    if (op != OP_TOPK) {
        if (PyArray_DIM((PyArrayObject *)Wo, 0) != n) { PyErr_SetString(PyExc_ValueError, "fused engine: W rows != n"); return NULL; }
        p = (int)PyArray_DIM((PyArrayObject *)Wo, 1);
    }
    if (Co != Py_None && PyArray_DIM((PyArrayObject *)Co, 0) != d) {
        PyErr_SetString(PyExc_ValueError, "fused engine: center must have d entries");
        return NULL;
    }
    if (nb < KK_TILE_MULT || nb % KK_TILE_MULT || jb < MR || jb % MR || nthreads < 1 || (op == OP_TOPK && (k < 1 || k > n))
        || (op == OP_LSE && ks.n != 1)) {
        PyErr_SetString(PyExc_ValueError, "fused engine: bad tile sizes, thread count, k or log-sum-exp spec");
        return NULL;
    }
    const int ncol = op == OP_TOPK ? k : p;
    if (check_arr(outo, NPY_FLOAT64, 2, "out")) return NULL;
    if (PyArray_DIM((PyArrayObject *)outo, 0) != m || PyArray_DIM((PyArrayObject *)outo, 1) != ncol) {
        PyErr_SetString(PyExc_ValueError, "fused engine: out has the wrong shape");
        return NULL;
    }
    if (op != OP_SUM) {
        if (check_arr(auxo, op == OP_TOPK ? NPY_INT64 : NPY_FLOAT64, 2, "out_aux")) return NULL;
        if (PyArray_DIM((PyArrayObject *)auxo, 0) != m || PyArray_DIM((PyArrayObject *)auxo, 1) != ncol) {
            PyErr_SetString(PyExc_ValueError, "fused engine: out_aux has the wrong shape");
            return NULL;
        }
    }
    double *out = (double *)PyArray_DATA((PyArrayObject *)outo);
    double *aux_d = op == OP_LSE ? (double *)PyArray_DATA((PyArrayObject *)auxo) : NULL;
    int64_t *aux_i = op == OP_TOPK ? (int64_t *)PyArray_DATA((PyArrayObject *)auxo) : NULL;
    const void *W = op == OP_TOPK ? NULL : PyArray_DATA((PyArrayObject *)Wo);
    const void *C = Co == Py_None ? NULL : PyArray_DATA((PyArrayObject *)Co);
    int rc;
    Py_BEGIN_ALLOW_THREADS
    if (typenum == NPY_FLOAT32) {
        job_f32 J = {(const float *)PyArray_DATA(X), (const float *)PyArray_DATA(Y), (const float *)W,
                     (const float *)C, n, m, d, p, nb, jb, gram, op, k, &ks, NULL, NULL, NULL};
        rc = run_f32(&J, nthreads, prepack, out, aux_d, aux_i);
    } else {
        job_f64 J = {(const double *)PyArray_DATA(X), (const double *)PyArray_DATA(Y), (const double *)W,
                     (const double *)C, n, m, d, p, nb, jb, gram, op, k, &ks, NULL, NULL, NULL};
        rc = run_f64(&J, nthreads, prepack, out, aux_d, aux_i);
    }
    Py_END_ALLOW_THREADS
    if (rc) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

/* block(X, Y, center, codes, params, gram, nb, jb, nthreads, out): out[a, i] = k(X[i], Y[a]),
 * out (m, n) C-contiguous of the dtype of X and Y. */
static PyObject *py_block(PyObject *self, PyObject *args) {
    int gram, nb, jb, nthreads;
    PyObject *Xo, *Yo, *Co, *codes, *params, *outo;
    if (!PyArg_ParseTuple(args, "OOOOOiiiiO", &Xo, &Yo, &Co, &codes, &params, &gram, &nb, &jb, &nthreads, &outo))
        return NULL;
    kspec ks;
    if (parse_spec(codes, params, &ks)) return NULL;
    if (!PyArray_Check(Xo)) { PyErr_SetString(PyExc_TypeError, "fused block: X must be an array"); return NULL; }
    const int typenum = PyArray_TYPE((PyArrayObject *)Xo);
    if (typenum != NPY_FLOAT32 && typenum != NPY_FLOAT64) {
        PyErr_SetString(PyExc_TypeError, "fused block: float32 or float64 only");
        return NULL;
    }
    if (check_arr(Xo, typenum, 2, "X") || check_arr(Yo, typenum, 2, "Y") || check_arr(outo, typenum, 2, "out"))
        return NULL;
    if (Co != Py_None && check_arr(Co, typenum, 1, "center")) return NULL;
    PyArrayObject *X = (PyArrayObject *)Xo, *Y = (PyArrayObject *)Yo, *O = (PyArrayObject *)outo;
    const int64_t n = PyArray_DIM(X, 0), m = PyArray_DIM(Y, 0);
    const int d = (int)PyArray_DIM(X, 1);
    if (PyArray_DIM(Y, 1) != d || n < 1 || m < 1 || d < 1 || PyArray_DIM(O, 0) != m || PyArray_DIM(O, 1) != n
        || (Co != Py_None && PyArray_DIM((PyArrayObject *)Co, 0) != d)) {
        PyErr_SetString(PyExc_ValueError, "fused block: shapes of X, Y, center and out do not agree");
        return NULL;
    }
    if (nb < KK_TILE_MULT || nb % KK_TILE_MULT || jb < MR || jb % MR || nthreads < 1) {
        PyErr_SetString(PyExc_ValueError, "fused block: bad tile sizes or thread count");
        return NULL;
    }
    const void *C = Co == Py_None ? NULL : PyArray_DATA((PyArrayObject *)Co);
    int rc;
    Py_BEGIN_ALLOW_THREADS
    if (typenum == NPY_FLOAT32) {
        job_f32 J = {(const float *)PyArray_DATA(X), (const float *)PyArray_DATA(Y), NULL, (const float *)C,
                     n, m, d, 0, nb, jb, gram, OP_SUM, 0, &ks, NULL, NULL, NULL};
        rc = run_block_f32(&J, nthreads, (float *)PyArray_DATA(O));
    } else {
        job_f64 J = {(const double *)PyArray_DATA(X), (const double *)PyArray_DATA(Y), NULL, (const double *)C,
                     n, m, d, 0, nb, jb, gram, OP_SUM, 0, &ks, NULL, NULL, NULL};
        rc = run_block_f64(&J, nthreads, (double *)PyArray_DATA(O));
    }
    Py_END_ALLOW_THREADS
    if (rc) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

/* normal(X, Y, V, Wq, center, codes, params, gram, nb, jb, nthreads, out):
 * out = K^T diag(Wq) K V with K[a, i] = k(Y[a], X[i]); X (n, d) points with weights V (n, p), Y (m, d)
 * queries with weights Wq (m, p) or None (ones), all of one dtype; out (n, p) float64 zeros on entry. */
static PyObject *py_normal(PyObject *self, PyObject *args) {
    int gram, nb, jb, nthreads;
    PyObject *Xo, *Yo, *Vo, *Qo, *Co, *codes, *params, *outo;
    if (!PyArg_ParseTuple(args, "OOOOOOOiiiiO", &Xo, &Yo, &Vo, &Qo, &Co, &codes, &params, &gram, &nb, &jb,
                          &nthreads, &outo))
        return NULL;
    kspec ks;
    if (parse_spec(codes, params, &ks)) return NULL;
    if (!PyArray_Check(Xo)) { PyErr_SetString(PyExc_TypeError, "fused normal: X must be an array"); return NULL; }
    const int typenum = PyArray_TYPE((PyArrayObject *)Xo);
    if (typenum != NPY_FLOAT32 && typenum != NPY_FLOAT64) {
        PyErr_SetString(PyExc_TypeError, "fused normal: float32 or float64 only");
        return NULL;
    }
    if (check_arr(Xo, typenum, 2, "X") || check_arr(Yo, typenum, 2, "Y") || check_arr(Vo, typenum, 2, "V")
        || (Qo != Py_None && check_arr(Qo, typenum, 2, "Wq")) || check_arr(outo, NPY_FLOAT64, 2, "out"))
        return NULL;
    if (Co != Py_None && check_arr(Co, typenum, 1, "center")) return NULL;
    PyArrayObject *X = (PyArrayObject *)Xo, *Y = (PyArrayObject *)Yo, *V = (PyArrayObject *)Vo, *O = (PyArrayObject *)outo;
    const int64_t n = PyArray_DIM(X, 0), m = PyArray_DIM(Y, 0);
    const int d = (int)PyArray_DIM(X, 1), p = (int)PyArray_DIM(V, 1);
    if (PyArray_DIM(Y, 1) != d || n < 1 || m < 1 || d < 1 || p < 1 || PyArray_DIM(V, 0) != n
        || (Qo != Py_None && (PyArray_DIM((PyArrayObject *)Qo, 0) != m || PyArray_DIM((PyArrayObject *)Qo, 1) != p))
        || PyArray_DIM(O, 0) != n || PyArray_DIM(O, 1) != p
        || (Co != Py_None && PyArray_DIM((PyArrayObject *)Co, 0) != d)) {
        PyErr_SetString(PyExc_ValueError, "fused normal: shapes of X, Y, V, Wq, center and out do not agree");
        return NULL;
    }
    if (nb < KK_TILE_MULT || nb % KK_TILE_MULT || jb < MR || jb % MR || nthreads < 1) {
        PyErr_SetString(PyExc_ValueError, "fused normal: bad tile sizes or thread count");
        return NULL;
    }
    const void *C = Co == Py_None ? NULL : PyArray_DATA((PyArrayObject *)Co);
    const void *Q = Qo == Py_None ? NULL : PyArray_DATA((PyArrayObject *)Qo);
    double *out = (double *)PyArray_DATA(O);
    int rc;
    Py_BEGIN_ALLOW_THREADS
    if (typenum == NPY_FLOAT32) {
        job_f32 J = {(const float *)PyArray_DATA(X), (const float *)PyArray_DATA(Y), (const float *)PyArray_DATA(V),
                     (const float *)C, n, m, d, p, nb, jb, gram, OP_SUM, 0, &ks, NULL, NULL, NULL};
        rc = run_normal_f32(&J, nthreads, (const float *)Q, out);
    } else {
        job_f64 J = {(const double *)PyArray_DATA(X), (const double *)PyArray_DATA(Y), (const double *)PyArray_DATA(V),
                     (const double *)C, n, m, d, p, nb, jb, gram, OP_SUM, 0, &ks, NULL, NULL, NULL};
        rc = run_normal_f64(&J, nthreads, (const double *)Q, out);
    }
    Py_END_ALLOW_THREADS
    if (rc) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

/* ranges(op, X, Y, W, codes, params, gram, nb, jb, nthreads, qlo, qhi, rbeg, rend, rlo, rhi, thr, l1, out, out_aux):
 * the pruned reduction (op 0 sum, 1 log-sum-exp; no centring): query blocks [qlo[b], qhi[b]) (not overlapping)
 * each against the point ranges [rlo[r], rhi[r]), r in [rbeg[b], rend[b]); 1-D int64 index arrays; thr < 0: no
 * per-tile test, else rows farther than thr from a tile's box skip it (l1: L1 distance, else squared
 * Euclidean). out (m, p) float64 zeros (sums); out_aux (m, p) float64 -inf (log-sum-exp maxima) or None. */
static int check_index(PyObject *o, int64_t len, const char *what) {
    if (!PyArray_Check(o) || PyArray_TYPE((PyArrayObject *)o) != NPY_INT64 || PyArray_NDIM((PyArrayObject *)o) != 1
        || !PyArray_IS_C_CONTIGUOUS((PyArrayObject *)o) || (len >= 0 && PyArray_DIM((PyArrayObject *)o, 0) != len)) {
        PyErr_Format(PyExc_TypeError, "fused ranges: %s must be a C-contiguous 1-D int64 array of the right length", what);
        return -1;
    }
    return 0;
}

static PyObject *py_ranges(PyObject *self, PyObject *args) {
    int op, gram, nb, jb, nthreads, l1;
    double thr;
    PyObject *Xo, *Yo, *Wo, *codes, *params, *qlo_o, *qhi_o, *rbeg_o, *rend_o, *rlo_o, *rhi_o, *outo, *auxo;
    if (!PyArg_ParseTuple(args, "iOOOOOiiiiOOOOOOdiOO", &op, &Xo, &Yo, &Wo, &codes, &params, &gram, &nb, &jb,
                          &nthreads, &qlo_o, &qhi_o, &rbeg_o, &rend_o, &rlo_o, &rhi_o, &thr, &l1, &outo, &auxo))
        return NULL;
    kspec ks;
    if (parse_spec(codes, params, &ks)) return NULL;
    if (!PyArray_Check(Xo)) { PyErr_SetString(PyExc_TypeError, "fused ranges: X must be an array"); return NULL; }
    const int typenum = PyArray_TYPE((PyArrayObject *)Xo);
    if ((typenum != NPY_FLOAT32 && typenum != NPY_FLOAT64) || (op != OP_SUM && op != OP_LSE)) {
        PyErr_SetString(PyExc_TypeError, "fused ranges: float32 or float64, sums or log-sum-exps only");
        return NULL;
    }
    if (check_arr(Xo, typenum, 2, "X") || check_arr(Yo, typenum, 2, "Y") || check_arr(Wo, typenum, 2, "W")
        || check_arr(outo, NPY_FLOAT64, 2, "out"))
        return NULL;
    PyArrayObject *X = (PyArrayObject *)Xo, *Y = (PyArrayObject *)Yo, *W = (PyArrayObject *)Wo, *O = (PyArrayObject *)outo;
    const int64_t n = PyArray_DIM(X, 0), m = PyArray_DIM(Y, 0);
    const int d = (int)PyArray_DIM(X, 1), p = (int)PyArray_DIM(W, 1);
    if (PyArray_DIM(Y, 1) != d || d < 1 || p < 1 || PyArray_DIM(W, 0) != n || PyArray_DIM(O, 0) != m
        || PyArray_DIM(O, 1) != p) {
        PyErr_SetString(PyExc_ValueError, "fused ranges: shapes of X, Y, W and out do not agree");
        return NULL;
    }
    if (op == OP_LSE && (check_arr(auxo, NPY_FLOAT64, 2, "out_aux") || PyArray_DIM((PyArrayObject *)auxo, 0) != m
                         || PyArray_DIM((PyArrayObject *)auxo, 1) != p)) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "fused ranges: out_aux has the wrong shape");
        return NULL;
    }
    if (nb < KK_TILE_MULT || nb % KK_TILE_MULT || jb < MR || jb % MR || nthreads < 1 || (op == OP_LSE && ks.n != 1)) {
        PyErr_SetString(PyExc_ValueError, "fused ranges: bad tile sizes, thread count or log-sum-exp spec");
        return NULL;
    }
    if (check_index(qlo_o, -1, "qlo")) return NULL;
    const int64_t nblk = PyArray_DIM((PyArrayObject *)qlo_o, 0);
    if (check_index(qhi_o, nblk, "qhi") || check_index(rbeg_o, nblk, "rbeg") || check_index(rend_o, nblk, "rend")
        || check_index(rlo_o, -1, "rlo") || check_index(rhi_o, PyArray_DIM((PyArrayObject *)rlo_o, 0), "rhi"))
        return NULL;
    const int64_t nr = PyArray_DIM((PyArrayObject *)rlo_o, 0);
    const int64_t *qlo = (const int64_t *)PyArray_DATA((PyArrayObject *)qlo_o);
    const int64_t *qhi = (const int64_t *)PyArray_DATA((PyArrayObject *)qhi_o);
    const int64_t *rbeg = (const int64_t *)PyArray_DATA((PyArrayObject *)rbeg_o);
    const int64_t *rend = (const int64_t *)PyArray_DATA((PyArrayObject *)rend_o);
    const int64_t *rlo = (const int64_t *)PyArray_DATA((PyArrayObject *)rlo_o);
    const int64_t *rhi = (const int64_t *)PyArray_DATA((PyArrayObject *)rhi_o);
    /* every index in range (a bad plan must be an error, not a read out of bounds); blocks are written by
     * different threads, so they must not overlap: checked as sorted and disjoint */
    for (int64_t b = 0; b < nblk; b++)
        if (qlo[b] < 0 || qlo[b] > qhi[b] || qhi[b] > m || (b && qlo[b] < qhi[b - 1]) || rbeg[b] < 0
            || rbeg[b] > rend[b] || rend[b] > nr) {
            PyErr_SetString(PyExc_ValueError, "fused ranges: query blocks not sorted and disjoint in [0, m], or "
                                              "range offsets outside [0, len(rlo)]");
            return NULL;
        }
    for (int64_t r = 0; r < nr; r++)
        if (rlo[r] < 0 || rlo[r] > rhi[r] || rhi[r] > n) {
            PyErr_SetString(PyExc_ValueError, "fused ranges: a point range outside [0, n]");
            return NULL;
        }
    double *out = (double *)PyArray_DATA(O);
    double *aux = op == OP_LSE ? (double *)PyArray_DATA((PyArrayObject *)auxo) : NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    if (typenum == NPY_FLOAT32) {
        job_f32 J = {(const float *)PyArray_DATA(X), (const float *)PyArray_DATA(Y), (const float *)PyArray_DATA(W),
                     NULL, n, m, d, p, nb, jb, gram, op, 0, &ks, NULL, NULL, NULL};
        rc = run_ranges_f32(&J, nthreads, nblk, qlo, qhi, rbeg, rend, rlo, rhi, thr, l1, out, aux);
    } else {
        job_f64 J = {(const double *)PyArray_DATA(X), (const double *)PyArray_DATA(Y), (const double *)PyArray_DATA(W),
                     NULL, n, m, d, p, nb, jb, gram, op, 0, &ks, NULL, NULL, NULL};
        rc = run_ranges_f64(&J, nthreads, nblk, qlo, qhi, rbeg, rend, rlo, rhi, thr, l1, out, aux);
    }
    Py_END_ALLOW_THREADS
    if (rc) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

/* near_pairs(qlo, qhi, dlo, dhi, thr, l1, group): the (block, leaf) pairs whose boxes are within thr
 * (box-to-box distance: squared Euclidean, or L1 when l1), as two int64 arrays sorted by block then
 * leaf. qlo/qhi (B, d) and dlo/dhi (P, d) float64 boxes. Two levels: each run of `group` consecutive
 * leaves is tested by its own bounding box first, then its leaves. The distance of a gap g_k per
 * coordinate is sum_k g_k^2 (or sum_k g_k), g_k = max(0, blo_k - ahi_k, alo_k - bhi_k), in double as
 * _pruned._box_dist computes it. */
static inline double box_gap(const double *alo, const double *ahi, const double *blo, const double *bhi, int d, int l1) {
    double s = 0;
    for (int k = 0; k < d; k++) {
        double g = blo[k] - ahi[k], h = alo[k] - bhi[k];
        g = g > h ? g : h;
        g = g > 0 ? g : 0;
        s += l1 ? g : g * g;
    }
    return s;
}

static PyObject *py_near_pairs(PyObject *self, PyObject *args) {
    PyObject *qlo_o, *qhi_o, *dlo_o, *dhi_o;
    double thr;
    int l1, group;
    if (!PyArg_ParseTuple(args, "OOOOdii", &qlo_o, &qhi_o, &dlo_o, &dhi_o, &thr, &l1, &group)) return NULL;
    if (check_arr(qlo_o, NPY_FLOAT64, 2, "qlo") || check_arr(qhi_o, NPY_FLOAT64, 2, "qhi")
        || check_arr(dlo_o, NPY_FLOAT64, 2, "dlo") || check_arr(dhi_o, NPY_FLOAT64, 2, "dhi"))
        return NULL;
    const int64_t B = PyArray_DIM((PyArrayObject *)qlo_o, 0), P = PyArray_DIM((PyArrayObject *)dlo_o, 0);
    const int d = (int)PyArray_DIM((PyArrayObject *)qlo_o, 1);
    if (PyArray_DIM((PyArrayObject *)qhi_o, 0) != B || PyArray_DIM((PyArrayObject *)dhi_o, 0) != P || d < 1
        || PyArray_DIM((PyArrayObject *)qhi_o, 1) != d || PyArray_DIM((PyArrayObject *)dlo_o, 1) != d
        || PyArray_DIM((PyArrayObject *)dhi_o, 1) != d || group < 1) {
        PyErr_SetString(PyExc_ValueError, "near_pairs: boxes of different shapes, or group < 1");
        return NULL;
    }
    const double *qlo = PyArray_DATA((PyArrayObject *)qlo_o), *qhi = PyArray_DATA((PyArrayObject *)qhi_o);
    const double *dlo = PyArray_DATA((PyArrayObject *)dlo_o), *dhi = PyArray_DATA((PyArrayObject *)dhi_o);
    const int64_t G = (P + group - 1) / group;
    double *glo = (double *)malloc(sizeof(double) * (size_t)(G * d + 1));
    double *ghi = (double *)malloc(sizeof(double) * (size_t)(G * d + 1));
    int64_t *count = (int64_t *)calloc((size_t)B + 1, sizeof(int64_t));
    if (!glo || !ghi || !count) { free(glo); free(ghi); free(count); return PyErr_NoMemory(); }
    for (int64_t g = 0; g < G; g++)
        for (int k = 0; k < d; k++) {
            double lo = INFINITY, hi = -INFINITY;
            for (int64_t l = g * group; l < P && l < (g + 1) * group; l++) {
                lo = dlo[l * d + k] < lo ? dlo[l * d + k] : lo;
                hi = dhi[l * d + k] > hi ? dhi[l * d + k] : hi;
            }
            glo[g * d + k] = lo;
            ghi[g * d + k] = hi;
        }
    /* pass 1 counts, pass 2 writes at the counted offsets */
    PyObject *res = NULL;
    for (int pass = 0; pass < 2; pass++) {
        int64_t *ob = NULL, *ol = NULL;
        PyArrayObject *ab = NULL, *al = NULL;
        if (pass == 1) {
            for (int64_t b = 0; b < B; b++) count[b + 1] += count[b];
            npy_intp len = (npy_intp)count[B];
            ab = (PyArrayObject *)PyArray_SimpleNew(1, &len, NPY_INT64);
            al = (PyArrayObject *)PyArray_SimpleNew(1, &len, NPY_INT64);
            if (!ab || !al) { Py_XDECREF(ab); Py_XDECREF(al); break; }
            ob = (int64_t *)PyArray_DATA(ab);
            ol = (int64_t *)PyArray_DATA(al);
        }
        Py_BEGIN_ALLOW_THREADS
        for (int64_t b = 0; b < B; b++) {
            const double *alo = qlo + b * d, *ahi = qhi + b * d;
            int64_t c = pass ? count[b] : 0;
            for (int64_t g = 0; g < G; g++) {
                if (box_gap(alo, ahi, glo + g * d, ghi + g * d, d, l1) > thr) continue;
                for (int64_t l = g * group; l < P && l < (g + 1) * group; l++)
                    if (box_gap(alo, ahi, dlo + l * d, dhi + l * d, d, l1) <= thr) {
                        if (pass) { ob[c] = b; ol[c] = l; }
                        c++;
                    }
            }
            if (!pass) count[b + 1] = c;
        }
        Py_END_ALLOW_THREADS
        if (pass == 1) res = Py_BuildValue("NN", (PyObject *)ab, (PyObject *)al);
    }
    free(glo); free(ghi); free(count);
    return res;
}

/* vexp(x, out): out = exp(x) elementwise with the engine's vectorised exp (x <= 0; same dtype, 1-D). */
static PyObject *py_vexp(PyObject *self, PyObject *args) {
    PyObject *xo, *oo;
    if (!PyArg_ParseTuple(args, "OO", &xo, &oo)) return NULL;
    if (!PyArray_Check(xo)) { PyErr_SetString(PyExc_TypeError, "vexp: x must be an array"); return NULL; }
    const int typenum = PyArray_TYPE((PyArrayObject *)xo);
    if ((typenum != NPY_FLOAT32 && typenum != NPY_FLOAT64) || check_arr(xo, typenum, 1, "x") || check_arr(oo, typenum, 1, "out"))
        return NULL;
    const int64_t len = PyArray_DIM((PyArrayObject *)xo, 0);
    if (PyArray_DIM((PyArrayObject *)oo, 0) != len) { PyErr_SetString(PyExc_ValueError, "vexp: shapes differ"); return NULL; }
    void *x = PyArray_DATA((PyArrayObject *)xo), *o = PyArray_DATA((PyArrayObject *)oo);
    Py_BEGIN_ALLOW_THREADS
    if (typenum == NPY_FLOAT32) vexp_f32((const float *)x, (float *)o, len);
    else vexp_f64((const double *)x, (double *)o, len);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

/* cpu_features(): the CPU's instruction-set features that decide which build runs (baseline code:
 * safe to call on any x86-64 CPU; GCC's checks include the OS's support of the vector state) */
static PyObject *py_cpu_features(PyObject *self, PyObject *args) {
    PyObject *d = PyDict_New();
    if (!d) return NULL;
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    __builtin_cpu_init();
    const char *names[] = {"avx", "avx2", "fma", "bmi", "bmi2", "f16c", "avx512f", "avx512bw", "avx512dq", "avx512vl"};
    const int have[] = {__builtin_cpu_supports("avx"), __builtin_cpu_supports("avx2"), __builtin_cpu_supports("fma"),
                        __builtin_cpu_supports("bmi"), __builtin_cpu_supports("bmi2"), __builtin_cpu_supports("f16c"),
                        __builtin_cpu_supports("avx512f"), __builtin_cpu_supports("avx512bw"),
                        __builtin_cpu_supports("avx512dq"), __builtin_cpu_supports("avx512vl")};
    for (int i = 0; i < (int)(sizeof have / sizeof have[0]); i++)
        if (PyDict_SetItemString(d, names[i], have[i] ? Py_True : Py_False) < 0) { Py_DECREF(d); return NULL; }
#endif
    return d;
}

static PyMethodDef methods[] = {
    {"cpu_features", py_cpu_features, METH_NOARGS, "Instruction-set features of this CPU (dict of bools)."},
    {"run", py_run, METH_VARARGS, "Fused kernel reduction (see kernelkit/engine/_fused.py)."},
    {"block", py_block, METH_VARARGS, "Dense kernel block (see kernelkit/engine/_fused.py)."},
    {"normal", py_normal, METH_VARARGS, "Normal product K^T diag(Wq) K V (see kernelkit/engine/_fused.py)."},
    {"ranges", py_ranges, METH_VARARGS, "Pruned reduction over point ranges (see kernelkit/engine/_pruned.py)."},
    {"near_pairs", py_near_pairs, METH_VARARGS, "(block, leaf) pairs of boxes within a distance (see kernelkit/engine/_pruned.py)."},
    {"vexp", py_vexp, METH_VARARGS, "Elementwise exp(x), x <= 0, with the engine's vectorised exp."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moddef = {PyModuleDef_HEAD_INIT, KK_STR(KK_MODULE), "Fused compiled kernel sums.", -1,
                                     methods};

PyMODINIT_FUNC KK_CAT(PyInit_, KK_MODULE)(void) {
    import_array();
    PyObject *mod = PyModule_Create(&moddef);
    if (mod && (PyModule_AddStringConstant(mod, "CODE_NAMES", KK_CODE_NAMES) < 0
                || PyModule_AddIntConstant(mod, "MAX_COMPONENTS", KK_MAXC) < 0
                || PyModule_AddIntConstant(mod, "TILE_MULTIPLE", KK_TILE_MULT) < 0
                || PyModule_AddIntConstant(mod, "VECTOR_BYTES", KK_VBYTES) < 0
                || PyModule_AddStringConstant(mod, "CLONE", KK_CLONE_NAME) < 0)) {
        Py_DECREF(mod);
        return NULL;
    }
    return mod;
}
