/* Compiled query of kernelkit's stratified tree KDE (kernelkit.density._tree).
 *
 * tree_kde: for each query y (rows of Y, in the bandwidth-scaled frame; the kernel is
 *   g(t) = exp(-a t) of the squared distance t, a = 1/2 for the Gaussian) estimates
 *   S(y) = sum_i g(|y - x_i|^2) over points stored in the leaves of a binary tree:
 *   1. stratified sample: two points drawn (beforehand, shared by the queries) from every leaf l
 *      of c_l points give est_l = c_l (g_1 + g_2) / 2 and var_l = c_l^2 (g_1 - g_2)^2 / 4
 *      (unbiased for the leaf's sum and for the variance of est_l);
 *      S_hat = sum_l est_l, V = sum_l var_l. This pass runs in float32, four queries at a time
 *      against the draws (distances and exp; values below e^-80 of the largest draw are dropped);
 *      the sums are accumulated in double precision.
 *   2. nodes are opened best first by the upper bound c g(t_lo) of their sum (t_lo the larger of
 *      the squared distances from y to the node's bounding box and to its ball, (|y - mu| - r)_+^2
 *      from its mean mu and radius r; kept as a logarithm): an inner
 *      node is replaced by its two children, a leaf's sampled estimate by its exact sum in double
 *      precision (S_hat += exact_l - est_l, V -= var_l), while z sqrt(V) > rtol S_hat or some node
 *      not yet opened could hold more than cap S_hat.
 *   The result is log S_hat and the relative error estimate z sqrt(V) / S_hat (0 when every leaf
 *   was summed), with the draws' effective number (sum of terms)^2 / sum of squared terms. With every leaf opened the sum is exact, so the loop always ends.
 * Scale: kernel values are relative to g(t0), t0 the smallest squared distance to a drawn point,
 *   so every draw's value is <= 1 and one is exactly 1: nothing underflows.
 * Handed back (flag True in the output, log_sum NaN): a query whose exact leaf is so much closer
 *   than the nearest draw that the ratio could overflow, and a query whose opened leaves pass n / 16
 *   points (the exact engine is then the faster way); the caller sums those exactly.
 * Points are stored column-major in tree order (XT[k * n + i], double): a leaf is a contiguous
 *   range; the draws likewise (SX[k * 2L + l] and SX[k * 2L + L + l] for leaf l, float32).
 * Queries in parallel with OpenMP.
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
#endif

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include "kk_kernels.h"
#pragma GCC diagnostic pop

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define KK_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define KK_CLONES
#endif

#define BLK 256
#define MAX_EXPONENT 650.0   /* exp(650) is far from overflow, with room for a leaf's count */

typedef struct {
    const double *XT, *mean, *box, *rad, *logc, *cnt;
    const float *SX;
    const int64_t *start, *stop, *left, *leaf_id, *leaf_node;
    int64_t n, nn, nl;
    int d;
    double a;
} tree_t;

/* squared distances t[i] = |y - x_(lo+i)|^2 for lo <= lo + i < hi (hi - lo <= BLK), columns of ld */
KK_CLONES static void dists(const double *P, int64_t ld, int d, const double *y, int64_t lo, int64_t hi, double *t) {
    int len = (int)(hi - lo);
    for (int i = 0; i < len; i++) t[i] = 0.0;
    for (int k = 0; k < d; k++) {
        const double *col = P + k * ld + lo;
        double yk = y[k];
#pragma omp simd
        for (int i = 0; i < len; i++) {
            double u = yk - col[i];
            t[i] += u * u;
        }
    }
}

/* g[i] = exp(-a (t[i] - ref)) for t[i] >= ref; 0 below e^-700 (no subnormals, which are slow) */
KK_CLONES static void gvals(const double *t, double ref, double a, double *g, int64_t len) {
#pragma omp simd
    for (int64_t i = 0; i < len; i++) {
        double x = -a * (t[i] - ref);
        x = x > 0.0 ? 0.0 : x;
        double v = kexp_normal_f64(x < KK_EXP_FAST_LO_F64 ? KK_EXP_FAST_LO_F64 : x);
        g[i] = x < -700.0 ? 0.0 : v;
    }
}

/* squared distances of QB queries (yq, QB x d, float32) to the ns draws (SX, d x ns, float32):
 * t[q * ns + i]; LANES draws at a time, the QB x LANES sums held in registers */
#define QB 4
#define LANES 16
KK_CLONES static void sample_dists(const float *SX, int64_t ns, int d, const float *yq, int nq, float *t) {
    int64_t i0 = 0;
    for (; i0 + LANES <= ns; i0 += LANES) {
        float acc[QB][LANES];
        for (int q = 0; q < QB; q++)
            for (int j = 0; j < LANES; j++) acc[q][j] = 0.0f;
        for (int k = 0; k < d; k++) {
            const float *col = SX + k * ns + i0;
            for (int q = 0; q < QB; q++) {
                float yk = yq[q * d + k];
#pragma omp simd
                for (int j = 0; j < LANES; j++) {
                    float u = yk - col[j];
                    acc[q][j] += u * u;
                }
            }
        }
        for (int q = 0; q < nq; q++)
            for (int j = 0; j < LANES; j++) t[q * ns + i0 + j] = acc[q][j];
    }
    for (int q = 0; q < nq; q++)
        for (int64_t i = i0; i < ns; i++) {
            float acc = 0.0f;
            for (int k = 0; k < d; k++) {
                float u = yq[q * d + k] - SX[k * ns + i];
                acc += u * u;
            }
            t[q * ns + i] = acc;
        }
}

/* t0 = min t; g[i] = exp(-a (t[i] - t0)) in float32 (at least one g is 1), 0 below e^SAMPLE_EXP_LO; returns t0 */
#define SAMPLE_EXP_LO (-80.0f)
KK_CLONES static float sample_vals(float *t, int64_t ns, float a) {
    float best = INFINITY;
#pragma omp simd reduction(min : best)
    for (int64_t i = 0; i < ns; i++) best = t[i] < best ? t[i] : best;
#pragma omp simd
    for (int64_t i = 0; i < ns; i++) {
        float x = -a * (t[i] - best);
        x = x > 0.0f ? 0.0f : x;
        float v = kexp_normal_f32(x < KK_EXP_FAST_LO_F32 ? KK_EXP_FAST_LO_F32 : x);
        t[i] = x < SAMPLE_EXP_LO ? 0.0f : v;   /* no subnormals (slow): < e^-80 of the largest draw */
    }
    return best;
}

/* smallest of t[0..len) */
KK_CLONES static double vmin(const double *t, int64_t len) {
    double best = INFINITY;
#pragma omp simd reduction(min : best)
    for (int64_t i = 0; i < len; i++) best = t[i] < best ? t[i] : best;
    return best;
}

/* sum of g[0..len) */
KK_CLONES static double vsum(const double *g, int64_t len) {
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < len; i++) s += g[i];
    return s;
}

/* est_l = c_l (g1_l + g2_l) / 2, var_l = c_l^2 (g1_l - g2_l)^2 / 4; their sums into *S, *V, and the
 * sum of the squared draw terms (c_l g / 2)^2 into *Q (S^2 / Q: the draws' effective number) */
KK_CLONES static void leaf_stats(const double *c, const float *g1, const float *g2, double *est, double *var,
                                 int64_t nl, double *S, double *V, double *Q) {
    double s = 0.0, v = 0.0, q = 0.0;
#pragma omp simd reduction(+ : s, v, q)
    for (int64_t l = 0; l < nl; l++) {
        double a1 = 0.5 * c[l] * (double)g1[l], a2 = 0.5 * c[l] * (double)g2[l];
        double e = a1 + a2, h = a1 - a2;
        est[l] = e;
        var[l] = h * h;
        s += e;
        v += h * h;
        q += a1 * a1 + a2 * a2;
    }
    *S = s;
    *V = v;
    *Q = q;
}

/* log sum_i g(|y - x_i|^2) over lo <= i < hi, and the smallest t into *tmin (two passes) */
static double range_sum(const tree_t *T, const double *y, int64_t lo, int64_t hi, double *tmin) {
    double t[BLK], g[BLK];
    double best = INFINITY;
    for (int64_t b = lo; b < hi; b += BLK) {
        int64_t e = hi - b < BLK ? hi : b + BLK;
        dists(T->XT, T->n, T->d, y, b, e, t);
        double bm = vmin(t, e - b);
        best = bm < best ? bm : best;
    }
    double acc = 0.0;
    for (int64_t b = lo; b < hi; b += BLK) {
        int64_t e = hi - b < BLK ? hi : b + BLK;
        dists(T->XT, T->n, T->d, y, b, e, t);
        gvals(t, best, T->a, g, e - b);
        acc += vsum(g, e - b);
    }
    *tmin = best;
    return acc;   /* relative to exp(-a best) */
}

/* log of an upper bound on a node's sum relative to exp(-a t0): log c - a (t_lo - t0), t_lo the
 * larger of the squared distances from y to the node's bounding box and to its ball (mean, radius) */
static double node_log_ub(const tree_t *T, const double *y, int64_t v, double t0) {
    const double *mu = T->mean + v * T->d, *lo = T->box + 2 * v * T->d, *hi = lo + T->d;
    double tm = 0.0, tb = 0.0;
    for (int k = 0; k < T->d; k++) {
        double u = y[k] - mu[k];
        double w = lo[k] - y[k] > 0 ? lo[k] - y[k] : (y[k] - hi[k] > 0 ? y[k] - hi[k] : 0.0);
        tm += u * u;
        tb += w * w;
    }
    double s = sqrt(tm) - T->rad[v];
    double tl = s > 0 ? s * s : 0.0;
    tl = tb > tl ? tb : tl;
    return T->logc[v] - T->a * (tl - t0);
}

/* max-heap of nodes keyed by the log of their upper bound */
typedef struct {
    double *key;
    int64_t *node;
    int64_t size;
} heap_t;

static void heap_push(heap_t *H, double key, int64_t node) {
    int64_t i = H->size++;
    while (i > 0) {
        int64_t p = (i - 1) / 2;
        if (H->key[p] >= key) break;
        H->key[i] = H->key[p]; H->node[i] = H->node[p];
        i = p;
    }
    H->key[i] = key; H->node[i] = node;
}

static void heap_pop(heap_t *H) {
    int64_t n = --H->size;
    if (n == 0) return;
    double key = H->key[n];
    int64_t node = H->node[n], i = 0;
    for (;;) {
        int64_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && H->key[c + 1] > H->key[c]) c++;
        if (H->key[c] <= key) break;
        H->key[i] = H->key[c]; H->node[i] = H->node[c];
        i = c;
    }
    H->key[i] = key; H->node[i] = node;
}

typedef struct {
    heap_t H;                    /* nodes by upper bound */
    double *est, *var;           /* L leaf estimates and variances */
    char *opened;                /* L flags: leaf summed exactly */
} work_t;

/* replace leaf node v's sampled estimate by its exact sum; 1 when the ratio to g(t0) would overflow */
static int open_leaf(const tree_t *T, const double *y, work_t *W, int64_t v, double t0, double *S, double *V,
                     int64_t *exact) {
    int64_t l = T->leaf_id[v];
    double tl, sl = range_sum(T, y, T->start[v], T->stop[v], &tl);
    double x = T->a * (t0 - tl);
    if (x > MAX_EXPONENT) return 1;
    *S += sl * exp(x) - W->est[l];
    *exact += T->stop[v] - T->start[v];
    W->opened[l] = 1;
    if (W->var[l] > 0.5 * *V) {   /* the subtraction would cancel: sum the rest afresh */
        double acc = 0.0;
        for (int64_t k = 0; k < T->nl; k++) acc += W->opened[k] ? 0.0 : W->var[k];
        *V = acc;
    } else {
        *V -= W->var[l];
    }
    return 0;
}

/* one query; returns 1 when the query is handed back for an exact sum (see the top of the file) */
static int query(const tree_t *T, const double *y, float *g, double rtol, double z, double cap, work_t *W,
                 double *out_log, double *out_rel, double *out_neff, int64_t *out_exact, int64_t *out_nodes) {
    int64_t nl = T->nl;
    double t0 = (double)sample_vals(g, 2 * nl, (float)T->a);   /* g: this query's row of sample_dists */
    double S, V, Q;
    leaf_stats(T->cnt, g, g + nl, W->est, W->var, nl, &S, &V, &Q);
    *out_neff = S * S / Q;
    memset(W->opened, 0, (size_t)nl);
    int64_t exact = 0, nodes = 1;
    /* open, by upper bound, every node that could hold more than cap * S_hat, and leaves in that
     * order while the error estimate exceeds rtol */
    heap_t *H = &W->H;
    H->size = 0;
    heap_push(H, node_log_ub(T, y, 0, t0), 0);
    double log_cap = log(cap * S), S_cap = S;
    while (H->size > 0) {
        if (S != S_cap) { log_cap = log(cap * S); S_cap = S; }
        if (z * sqrt(V > 0 ? V : 0.0) <= rtol * S && H->key[0] <= log_cap) break;
        int64_t v = H->node[0];
        heap_pop(H);
        if (T->left[v] >= 0) {
            heap_push(H, node_log_ub(T, y, T->left[v], t0), T->left[v]);
            heap_push(H, node_log_ub(T, y, T->left[v] + 1, t0), T->left[v] + 1);
            nodes += 2;
        } else if (!W->opened[T->leaf_id[v]]) {
            if (open_leaf(T, y, W, v, t0, &S, &V, &exact) || exact > T->n / 16) {
                *out_exact = exact;
                *out_nodes = nodes;
                return 1;
            }
        }
    }
    if (H->size == 0) V = 0.0;   /* every leaf is exact */
    *out_log = log(S) - T->a * t0;
    *out_rel = V > 0 ? z * sqrt(V) / S : 0.0;
    *out_exact = exact;
    *out_nodes = nodes;
    return 0;
}

#define GET(obj, type, nd) (PyArrayObject *)PyArray_FROMANY(obj, type, nd, nd, NPY_ARRAY_CARRAY_RO)
#define NIN 12

static PyObject *py_tree_kde(PyObject *self, PyObject *args) {
    PyObject *o[NIN];
    double a, rtol, z, cap;
    int nthreads;
    if (!PyArg_ParseTuple(args, "OOOOOOOOOOOOddddi", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5], &o[6], &o[7], &o[8],
                          &o[9], &o[10], &o[11], &a, &rtol, &z, &cap, &nthreads))
        return NULL;
    /* Y, XT, SX, mean, rad, cnt (per leaf), start, stop, left, leaf_id, leaf_node, box (nn, 2, d) */
    static const int types[NIN] = {NPY_FLOAT64, NPY_FLOAT64, NPY_FLOAT32, NPY_FLOAT64, NPY_FLOAT64, NPY_FLOAT64,
                                   NPY_INT64, NPY_INT64, NPY_INT64, NPY_INT64, NPY_INT64, NPY_FLOAT64};
    static const int dims[NIN] = {2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 3};
    PyArrayObject *in[NIN] = {NULL};
    PyArrayObject *outs[6] = {NULL};
    PyObject *res = NULL;
    double *logc = NULL;
    int ok = 1;
    for (int i = 0; i < NIN && ok; i++) ok = (in[i] = GET(o[i], types[i], dims[i])) != NULL;
    if (!ok) goto done;
    tree_t T;
    T.d = (int)PyArray_DIM(in[1], 0);
    T.n = PyArray_DIM(in[1], 1);
    T.nn = PyArray_DIM(in[4], 0);
    T.nl = PyArray_DIM(in[5], 0);
    if (PyArray_DIM(in[0], 1) != T.d || PyArray_DIM(in[2], 0) != T.d || PyArray_DIM(in[2], 1) != 2 * T.nl
        || PyArray_DIM(in[3], 0) != T.nn || PyArray_DIM(in[3], 1) != T.d || PyArray_DIM(in[6], 0) != T.nn
        || PyArray_DIM(in[7], 0) != T.nn || PyArray_DIM(in[8], 0) != T.nn || PyArray_DIM(in[9], 0) != T.nn
        || PyArray_DIM(in[10], 0) != T.nl || PyArray_DIM(in[11], 0) != T.nn || PyArray_DIM(in[11], 1) != 2
        || PyArray_DIM(in[11], 2) != T.d
        || T.nn < 1 || T.n < 1 || T.nl < 1) {
        PyErr_SetString(PyExc_ValueError, "tree_kde: inconsistent tree arrays");
        goto done;
    }
    T.XT = PyArray_DATA(in[1]); T.SX = PyArray_DATA(in[2]); T.mean = PyArray_DATA(in[3]);
    T.rad = PyArray_DATA(in[4]); T.cnt = PyArray_DATA(in[5]); T.start = PyArray_DATA(in[6]);
    T.stop = PyArray_DATA(in[7]); T.left = PyArray_DATA(in[8]); T.leaf_id = PyArray_DATA(in[9]);
    T.leaf_node = PyArray_DATA(in[10]);
    T.box = PyArray_DATA(in[11]);
    T.a = a;
    logc = malloc(sizeof(double) * T.nn);
    if (!logc) {
        PyErr_NoMemory();
        goto done;
    }
    for (int64_t v = 0; v < T.nn; v++) logc[v] = log((double)(T.stop[v] - T.start[v]));
    T.logc = logc;
    npy_intp m = PyArray_DIM(in[0], 0);
    for (int i = 0; i < 6; i++) {
        outs[i] = (PyArrayObject *)PyArray_SimpleNew(1, &m, i < 2 || i == 5 ? NPY_FLOAT64 : (i < 4 ? NPY_INT64 : NPY_BOOL));
        if (!outs[i]) goto done;
    }
    const double *Yd = PyArray_DATA(in[0]);
    double *olog = PyArray_DATA(outs[0]), *orel = PyArray_DATA(outs[1]);
    int64_t *oex = PyArray_DATA(outs[2]), *ond = PyArray_DATA(outs[3]);
    npy_bool *ofb = PyArray_DATA(outs[4]);
    double *oneff = PyArray_DATA(outs[5]);
    int failed = 0;
    if (nthreads < 1) nthreads = 1;
    Py_BEGIN_ALLOW_THREADS
#pragma omp parallel num_threads(nthreads)
    {
        work_t W;
        int64_t ns = 2 * T.nl;
        W.H.key = malloc(sizeof(double) * T.nn);
        W.H.node = malloc(sizeof(int64_t) * T.nn);

        float *tq = malloc(sizeof(float) * QB * ns), *yq = malloc(sizeof(float) * QB * T.d);
        W.est = malloc(sizeof(double) * T.nl);
        W.var = malloc(sizeof(double) * T.nl);
        W.opened = malloc(T.nl);
        if (!W.H.key || !W.H.node || !tq || !yq || !W.est || !W.var || !W.opened) {
#pragma omp atomic write
            failed = 1;
        } else {
#pragma omp for schedule(dynamic, 4)
            for (npy_intp j0 = 0; j0 < m; j0 += QB) {
                int nq = m - j0 < QB ? (int)(m - j0) : QB;
                for (int q = 0; q < QB; q++)
                    for (int k = 0; k < T.d; k++) yq[q * T.d + k] = (float)Yd[(j0 + (q < nq ? q : 0)) * T.d + k];
                sample_dists(T.SX, ns, T.d, yq, nq, tq);
                for (int q = 0; q < nq; q++) {
                    npy_intp j = j0 + q;
                    const double *y = Yd + j * T.d;
                    ofb[j] = (npy_bool)query(&T, y, tq + q * ns, rtol, z, cap, &W, olog + j, orel + j, oneff + j,
                                             oex + j, ond + j);
                    if (ofb[j]) {   /* left to the caller's exact engine */
                        olog[j] = NAN;
                        orel[j] = 0.0;
                    }
                }
            }
        }
        free(tq); free(yq);
        free(W.H.key); free(W.H.node); free(W.est); free(W.var); free(W.opened);
    }
    Py_END_ALLOW_THREADS
    if (failed) {
        PyErr_NoMemory();
        goto done;
    }
    res = Py_BuildValue("OOOOOO", outs[0], outs[1], outs[2], outs[3], outs[4], outs[5]);
done:
    free(logc);
    for (int i = 0; i < NIN; i++) Py_XDECREF(in[i]);
    for (int i = 0; i < 6; i++) Py_XDECREF(outs[i]);
    return res;
}

static PyMethodDef methods[] = {
    {"tree_kde", py_tree_kde, METH_VARARGS,
     "tree_kde(Y, XT, SX, mean, radius, leaf_count, start, stop, left, leaf_id, leaf_node, box, a, rtol, z, cap, threads)"
     " -> (log_sum, rel_error, n_exact, n_nodes, handed_back, draw_n_eff)"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef moddef = {PyModuleDef_HEAD_INIT, "_kdtree_ext", "Compiled stratified tree KDE.", -1,
                                    methods};

PyMODINIT_FUNC PyInit__kdtree_ext(void) {
    import_array();
    return PyModule_Create(&moddef);
}
