/* Compiled inner loops of kernel thinning (kernelkit.compress).
 *
 * halve_level: one KT-SPLIT halving round applied to every coreset of a level
 *   (coresets in parallel with OpenMP; inside a large coreset the kernel sums
 *   of one pair are split over the threads instead).
 * add_rows: out[i] += sum_t coef[t] * k(X[rows[t]], X[i])  (KT-SWAP refinement
 *   and herding are sequential in the rows, parallel over i).
 * refine: the whole KT-SWAP greedy pass (sequential over coreset slots; each slot's
 *   sweep over the points is split over the threads).
 *
 * Kernels: sums of radial components sum_c w_c phi_c(r^2), defined once for
 *   every compiled path in ../_include/kk_kernels.h (codes, formulas, exp, log).
 * All arithmetic in double precision, evaluated strictly (no FMA contraction;
 *   see setup.py), so the coresets match the NumPy reference walk.
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

#include "kk_kernels.h"
#define BLK 256

/* val[i] = sum_c w_c phi_c(r2[i]) for i < len */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
/* the hot loops are cloned for x86-64-v4 (AVX-512), x86-64-v3 (AVX2) and baseline, picked at load
 * time by the CPU; strict evaluation (no contraction, no reassociation) gives every clone the
 * same results, so the coresets do not depend on the CPU */
#define KK_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define KK_CLONES
#endif

KK_CLONES static void apply_profile(const kspec *ks, const double *restrict r2, double *restrict val, int len) {
    kk_values_f64(ks, r2, NULL, val, NULL, NULL, len);
}

static double kval(const kspec *ks, double r2) {
    double v;
    apply_profile(ks, &r2, &v, 1);
    return v;
}

/* Sums s1 = sum_i k(x1, Y_i), s2 = sum_i k(x2, Y_i) over points Y stored column-major
 * (Y[k * ld + i]) for i in [lo, hi). If col is not NULL, col[i] += colscale (k(x1, Y_i) + k(x2, Y_i))
 * (the walk's by-product row sums of the kernel matrix). */
KK_CLONES static void pair_sums_range(const kspec *ks, const double *x1, const double *x2, const double *Y,
                                      int64_t ld, int d, int64_t lo, int64_t hi, double *s1, double *s2,
                                      double *col, double colscale) {
    double r1[BLK], r2[BLK], v[BLK], v2[BLK];
    double a1 = 0.0, a2 = 0.0;
    for (int64_t b = lo; b < hi; b += BLK) {
        int len = (int)((hi - b) < BLK ? (hi - b) : BLK);
        for (int i = 0; i < len; i++) { r1[i] = 0.0; r2[i] = 0.0; }
        for (int k = 0; k < d; k++) {
            const double *cl = Y + k * ld + b;
            const double c1 = x1[k], c2 = x2[k];
            for (int i = 0; i < len; i++) {
                double e1 = cl[i] - c1, e2 = cl[i] - c2;
                r1[i] += e1 * e1;
                r2[i] += e2 * e2;
            }
        }
        apply_profile(ks, r1, v, len);
        apply_profile(ks, r2, v2, len);
        for (int i = 0; i < len; i++) { a1 += v[i]; a2 += v2[i]; }
        if (col) {
            double *cb = col + b;
            for (int i = 0; i < len; i++) cb[i] += colscale * (v[i] + v2[i]);
        }
    }
    *s1 = a1;
    *s2 = a2;
}

#define PAR_MIN 4096

static void pair_sums(const kspec *ks, const double *x1, const double *x2, const double *Y, int64_t ld, int d,
                      int64_t count, int nthreads, double *s1, double *s2) {
#ifdef _OPENMP
    if (nthreads > 1 && count >= PAR_MIN && !omp_in_parallel()) {
        double t1 = 0.0, t2 = 0.0;
        int64_t nb = (count + BLK - 1) / BLK;
#pragma omp parallel for num_threads(nthreads) reduction(+ : t1, t2) schedule(static)
        for (int64_t b = 0; b < nb; b++) {
            double u1, u2;
            int64_t lo = b * BLK, hi = lo + BLK < count ? lo + BLK : count;
            pair_sums_range(ks, x1, x2, Y, ld, d, lo, hi, &u1, &u2, NULL, 0.0);
            t1 += u1;
            t2 += u2;
        }
        *s1 = t1;
        *s2 = t2;
        return;
    }
#endif
    (void)nthreads;
    pair_sums_range(ks, x1, x2, Y, ld, d, 0, count, s1, s2, NULL, 0.0);
}

static void push_point(double *buf, int64_t ld, int d, int64_t pos, const double *x) {
    for (int k = 0; k < d; k++) buf[k * ld + pos] = x[k];
}

/* State of one halving walk. */
typedef struct {
    const kspec *ks;
    const double *X;
    int d;
    const int64_t *seq;
    int64_t L, LA, cap, na, nb;
    const double *kc_in;
    int have_kc;
    const double *u;
    double log_mult, kdiag, sig2;
    int64_t *out;
    double *kc_out, *bufA, *bufB;
    double *rowsum, *colA, *colB; /* optional: row sums of the kernel matrix (level 0 only) */
} walk;

/* Decide the pair at position t given its sums over A (a1, a2) and, without kc, over B (b1, b2). */
static void walk_step(walk *w, int64_t t, double a1, double a2, double b1, double b2) {
    const int d = w->d;
    const int64_t i1 = w->seq[t], i2 = w->seq[t + 1];
    const double *x1 = w->X + i1 * d, *x2 = w->X + i2 * d;
    double r12 = 0.0;
    for (int k = 0; k < d; k++) { double e = x1[k] - x2[k]; r12 += e * e; }
    const double k12 = kval(w->ks, r12);
    if (w->have_kc) {
        b1 = w->kc_in[t] - a1;
        b2 = w->kc_in[t + 1] - k12 - a2;
    }
    double bsq = 2.0 * w->kdiag - 2.0 * k12;
    if (bsq < 0.0) bsq = 0.0;
    double thresh = sqrt(w->sig2 * bsq * w->log_mult);
    if (thresh < bsq) thresh = bsq;
    if (w->sig2 == 0.0) {
        w->sig2 = bsq;
    } else if (thresh != 0.0) {
        double upd = 0.5 + (bsq / (2.0 * thresh) - 1.0) * w->sig2 / thresh;
        if (upd > 0.0) w->sig2 += 2.0 * bsq * upd;
    }
    if (thresh == 0.0) thresh = 1.0;
    /* alpha = < sum_B k(y,.) - sum_A k(y,.), k(x1,.) - k(x2,.) > */
    const double alpha = (b1 - b2) - (a1 - a2);
    const double prob2 = 0.5 * (1.0 - alpha / thresh);
    const int swap = w->u[t] <= prob2; /* x2 joins A */
    const int64_t ia = swap ? i2 : i1, ib = swap ? i1 : i2;
    w->out[w->na] = ia;
    w->out[w->LA + w->nb] = ib;
    if (w->kc_out) {
        w->kc_out[w->na] = swap ? a2 : a1;
        w->kc_out[w->LA + w->nb] = swap ? b1 : b2;
    }
    if (w->rowsum) {
        /* prior sums: x1 over A and B; x2 over A, B and x1. x1's later partner x2 adds k12 to x1's column */
        const double row1 = a1 + b1 + k12, row2 = a2 + b2 + k12;
        w->rowsum[w->na] = swap ? row2 : row1;
        w->rowsum[w->LA + w->nb] = swap ? row1 : row2;
    }
    push_point(w->bufA, w->cap, d, w->na, w->X + ia * d);
    if (!w->have_kc) push_point(w->bufB, w->cap, d, w->nb, w->X + ib * d);
    w->na++;
    w->nb++;
}

#define MAXT 64

/* Halve one coreset seq[0:L] (indices into X) into A = out[0:LA], B = out[LA:L].
 * kc_in[t]: sum of k(seq[t], seq[u]) over u < t (if have_kc), kc_out likewise for the children.
 * u[t]: uniforms; the pair at positions (t, t+1) uses u[t], a leftover last point uses u[L-1]
 * (to A when < 0.5). With nthreads > 1 the sums of each pair are split over the threads of one
 * parallel region that lives for the whole walk (two barriers per pair). Returns LA. */
static int64_t halve_one(const kspec *ks, const double *X, int d, const int64_t *seq, int64_t L,
                         const double *kc_in, int have_kc, const double *u, double log_mult,
                         int64_t *out, double *kc_out, double *rowsum_out, int nthreads, int *fail) {
    walk w;
    int64_t npair = L / 2, odd = L % 2;
    int left_to_a = odd && u[L - 1] < 0.5;
    w.ks = ks; w.X = X; w.d = d; w.seq = seq; w.L = L;
    w.LA = npair + (left_to_a ? 1 : 0);
    w.cap = npair + 1;
    w.na = w.nb = 0;
    w.kc_in = kc_in; w.have_kc = have_kc; w.u = u; w.log_mult = log_mult;
    w.kdiag = kval(ks, 0.0);
    w.sig2 = 0.0;
    w.out = out; w.kc_out = kc_out;
    w.bufA = (double *)malloc(sizeof(double) * w.cap * d);
    w.bufB = have_kc ? NULL : (double *)malloc(sizeof(double) * w.cap * d);
    w.rowsum = (rowsum_out && !have_kc) ? rowsum_out : NULL;
    w.colA = w.rowsum ? (double *)calloc((size_t)w.cap, sizeof(double)) : NULL;
    w.colB = w.rowsum ? (double *)calloc((size_t)w.cap, sizeof(double)) : NULL;
    if (!w.bufA || (!have_kc && !w.bufB) || (w.rowsum && (!w.colA || !w.colB))) {
        free(w.bufA); free(w.bufB); free(w.colA); free(w.colB);
        *fail = 1;
        return 0;
    }
    if (nthreads > MAXT) nthreads = MAXT;
#ifdef _OPENMP
    if (nthreads > 1 && npair >= 2 * PAR_MIN && !omp_in_parallel()) {
        /* serial while the children are small, then one parallel region */
        int64_t t = 0;
        for (; t + 1 < L && w.na < PAR_MIN; t += 2) {
            double a1, a2, b1 = 0.0, b2 = 0.0;
            const double *x1 = X + seq[t] * d, *x2 = X + seq[t + 1] * d;
            pair_sums_range(ks, x1, x2, w.bufA, w.cap, d, 0, w.na, &a1, &a2, w.colA, 1.0);
            if (!have_kc) pair_sums_range(ks, x1, x2, w.bufB, w.cap, d, 0, w.nb, &b1, &b2, w.colB, 1.0);
            walk_step(&w, t, a1, a2, b1, b2);
        }
        double part[MAXT][4];
        const int64_t t0 = t;
#pragma omp parallel num_threads(nthreads)
        {
            const int tid = omp_get_thread_num(), nt = omp_get_num_threads();
            for (int64_t tt = t0; tt + 1 < L; tt += 2) {
                const double *x1 = X + seq[tt] * d, *x2 = X + seq[tt + 1] * d;
                int64_t nblk = (w.na + BLK - 1) / BLK;
                int64_t lo = (nblk * tid / nt) * BLK, hi = (nblk * (tid + 1) / nt) * BLK;
                if (hi > w.na) hi = w.na;
                if (lo > hi) lo = hi;
                pair_sums_range(ks, x1, x2, w.bufA, w.cap, d, lo, hi, &part[tid][0], &part[tid][1], w.colA, 1.0);
                part[tid][2] = part[tid][3] = 0.0;
                if (!have_kc) {
                    int64_t nbb = (w.nb + BLK - 1) / BLK;
                    int64_t lb = (nbb * tid / nt) * BLK, hb = (nbb * (tid + 1) / nt) * BLK;
                    if (hb > w.nb) hb = w.nb;
                    if (lb > hb) lb = hb;
                    pair_sums_range(ks, x1, x2, w.bufB, w.cap, d, lb, hb, &part[tid][2], &part[tid][3], w.colB, 1.0);
                }
#pragma omp barrier
#pragma omp single
                {
                    double s[4] = {0.0, 0.0, 0.0, 0.0};
                    for (int q = 0; q < nt; q++)
                        for (int r = 0; r < 4; r++) s[r] += part[q][r];
                    walk_step(&w, tt, s[0], s[1], s[2], s[3]);
                }
            }
        }
    } else
#endif
    {
        (void)nthreads;
        for (int64_t t = 0; t + 1 < L; t += 2) {
            double a1, a2, b1 = 0.0, b2 = 0.0;
            const double *x1 = X + seq[t] * d, *x2 = X + seq[t + 1] * d;
            pair_sums_range(ks, x1, x2, w.bufA, w.cap, d, 0, w.na, &a1, &a2, w.colA, 1.0);
            if (!have_kc) pair_sums_range(ks, x1, x2, w.bufB, w.cap, d, 0, w.nb, &b1, &b2, w.colB, 1.0);
            walk_step(&w, t, a1, a2, b1, b2);
        }
    }
    if (odd) {
        const int64_t i = seq[L - 1];
        const double *x = X + i * d;
        double sa, sb, dummy;
        if (w.rowsum) { /* serial, with the column sums (each k(x, y) counted once: scale 1/2) */
            pair_sums_range(ks, x, x, w.bufA, w.cap, d, 0, w.na, &sa, &dummy, w.colA, 0.5);
            pair_sums_range(ks, x, x, w.bufB, w.cap, d, 0, w.nb, &sb, &dummy, w.colB, 0.5);
        } else {
            pair_sums(ks, x, x, w.bufA, w.cap, d, w.na, nthreads, &sa, &dummy);
            if (have_kc) sb = kc_in[L - 1] - sa;
            else pair_sums(ks, x, x, w.bufB, w.cap, d, w.nb, nthreads, &sb, &dummy);
        }
        const int64_t pos = left_to_a ? w.na : w.LA + w.nb;
        out[pos] = i;
        if (kc_out) kc_out[pos] = left_to_a ? sa : sb;
        if (w.rowsum) w.rowsum[pos] = sa + sb;
    }
    if (w.rowsum) {
        for (int64_t q = 0; q < w.LA; q++) w.rowsum[q] += w.colA[q] + w.kdiag;
        for (int64_t q = 0; q < L - w.LA; q++) w.rowsum[w.LA + q] += w.colB[q] + w.kdiag;
    }
    free(w.bufA);
    free(w.bufB);
    free(w.colA);
    free(w.colB);
    return w.LA;
}

static int parse_spec(PyObject *codes, PyObject *params, kspec *ks) {
    return kk_parse_spec(codes, params, ks, 1);
}

#define GET(obj, type, nd) (PyArrayObject *)PyArray_FROMANY(obj, type, nd, nd, NPY_ARRAY_IN_ARRAY)

/* halve_level(X, seq, starts, kc_in or None, codes, params, u, log_mult, nthreads, want_rows)
 *   -> (seq_out, starts_out, kc_out, rows_out or None); rows_out[t] = sum over the coreset of
 *   k(seq_out[t], .) (only without kc_in: the walk then evaluates every pair of the coreset) */
static PyObject *py_halve_level(PyObject *self, PyObject *args) {
    PyObject *Xo, *seqo, *starto, *kco, *codes, *params, *uo;
    double log_mult;
    int nthreads, want_rows;
    if (!PyArg_ParseTuple(args, "OOOOOOOdii", &Xo, &seqo, &starto, &kco, &codes, &params, &uo, &log_mult,
                          &nthreads, &want_rows))
        return NULL;
    kspec ks;
    if (parse_spec(codes, params, &ks) < 0) return NULL;
    PyArrayObject *X = GET(Xo, NPY_DOUBLE, 2), *seq = GET(seqo, NPY_INT64, 1), *st = GET(starto, NPY_INT64, 1);
    PyArrayObject *u = GET(uo, NPY_DOUBLE, 1);
    PyArrayObject *kc = kco == Py_None ? NULL : GET(kco, NPY_DOUBLE, 1);
    PyArrayObject *sout = NULL, *stout = NULL, *kcout = NULL, *rows = NULL;
    PyObject *res = NULL;
    if (!X || !seq || !st || !u || (kco != Py_None && !kc)) goto done;
    npy_intp N = PyArray_DIM(seq, 0), ncs = PyArray_DIM(st, 0) - 1;
    if (PyArray_DIM(u, 0) != N || (kc && PyArray_DIM(kc, 0) != N) || ncs < 1) {
        PyErr_SetString(PyExc_ValueError, "halve_level: inconsistent sizes");
        goto done;
    }
    npy_intp dims1[1] = {N}, dims2[1] = {2 * ncs + 1};
    sout = (PyArrayObject *)PyArray_SimpleNew(1, dims1, NPY_INT64);
    stout = (PyArrayObject *)PyArray_SimpleNew(1, dims2, NPY_INT64);
    kcout = (PyArrayObject *)PyArray_SimpleNew(1, dims1, NPY_DOUBLE);
    if (!sout || !stout || !kcout) goto done;
    if (want_rows && !kc) {
        rows = (PyArrayObject *)PyArray_SimpleNew(1, dims1, NPY_DOUBLE);
        if (!rows) goto done;
    }
    {
        const double *Xd = (const double *)PyArray_DATA(X);
        const int d = (int)PyArray_DIM(X, 1);
        const int64_t *sq = (const int64_t *)PyArray_DATA(seq), *sd = (const int64_t *)PyArray_DATA(st);
        const double *ud = (const double *)PyArray_DATA(u);
        const double *kcd = kc ? (const double *)PyArray_DATA(kc) : NULL;
        int64_t *so = (int64_t *)PyArray_DATA(sout), *sto = (int64_t *)PyArray_DATA(stout);
        double *kco2 = (double *)PyArray_DATA(kcout);
        double *rws = rows ? (double *)PyArray_DATA(rows) : NULL;
        int fail = 0;
        Py_BEGIN_ALLOW_THREADS
        int outer = nthreads > 1 && ncs > 1;
#pragma omp parallel for num_threads(nthreads) schedule(dynamic, 1) if (outer)
        for (npy_intp c = 0; c < ncs; c++) {
            int64_t s = sd[c], L = sd[c + 1] - sd[c];
            int f = 0;
            int64_t LA = halve_one(&ks, Xd, d, sq + s, L, kcd ? kcd + s : NULL, kcd != NULL, ud + s, log_mult,
                                   so + s, kco2 + s, rws ? rws + s : NULL, outer ? 1 : nthreads, &f);
            sto[2 * c] = s;
            sto[2 * c + 1] = s + LA;
            if (f) {
#pragma omp atomic write
                fail = 1;
            }
        }
        sto[2 * ncs] = sd[ncs];
        Py_END_ALLOW_THREADS
        if (fail) { PyErr_NoMemory(); goto done; }
    }
    res = Py_BuildValue("OOOO", sout, stout, kcout, rows ? (PyObject *)rows : Py_None);
done:
    Py_XDECREF(X); Py_XDECREF(seq); Py_XDECREF(st); Py_XDECREF(u); Py_XDECREF(kc);
    Py_XDECREF(sout); Py_XDECREF(stout); Py_XDECREF(kcout); Py_XDECREF(rows);
    return res;
}

/* out[i] += sum_t coef[t] k(X[rows[t]], X[i]) for all i, X row-major. */
static void add_rows_c(const kspec *ks, const double *X, int64_t n, int d, const int64_t *rows,
                       const double *coef, int64_t nrows, double *out, int nthreads) {
    int64_t nb = (n + BLK - 1) / BLK;
    (void)nthreads;
#pragma omp parallel for num_threads(nthreads) schedule(static) if (nthreads > 1 && n * nrows >= PAR_MIN)
    for (int64_t b = 0; b < nb; b++) {
        double r2[BLK], v[BLK];
        int64_t lo = b * BLK;
        int len = (int)(n - lo < BLK ? n - lo : BLK);
        for (int64_t t = 0; t < nrows; t++) {
            const double *y = X + rows[t] * d;
            for (int i = 0; i < len; i++) {
                const double *x = X + (lo + i) * d;
                double s = 0.0;
                for (int k = 0; k < d; k++) { double e = x[k] - y[k]; s += e * e; }
                r2[i] = s;
            }
            apply_profile(ks, r2, v, len);
            const double c = coef[t];
            for (int i = 0; i < len; i++) out[lo + i] += c * v[i];
        }
    }
}

/* add_rows(X, rows, coef, out, codes, params, nthreads): out modified in place */
static PyObject *py_add_rows(PyObject *self, PyObject *args) {
    PyObject *Xo, *ro, *co, *oo, *codes, *params;
    int nthreads;
    if (!PyArg_ParseTuple(args, "OOOOOOi", &Xo, &ro, &co, &oo, &codes, &params, &nthreads)) return NULL;
    kspec ks;
    if (parse_spec(codes, params, &ks) < 0) return NULL;
    PyArrayObject *X = GET(Xo, NPY_DOUBLE, 2), *r = GET(ro, NPY_INT64, 1), *c = GET(co, NPY_DOUBLE, 1);
    PyObject *res = NULL;
    if (!X || !r || !c) goto done;
    if (!PyArray_Check(oo) || PyArray_TYPE((PyArrayObject *)oo) != NPY_DOUBLE ||
        !PyArray_IS_C_CONTIGUOUS((PyArrayObject *)oo) || PyArray_NDIM((PyArrayObject *)oo) != 1 ||
        PyArray_DIM((PyArrayObject *)oo, 0) != PyArray_DIM(X, 0) || PyArray_DIM(r, 0) != PyArray_DIM(c, 0)) {
        PyErr_SetString(PyExc_ValueError, "add_rows: out must be a contiguous float64 vector of length n");
        goto done;
    }
    {
        const double *Xd = (const double *)PyArray_DATA(X);
        int64_t n = PyArray_DIM(X, 0), nr = PyArray_DIM(r, 0);
        int d = (int)PyArray_DIM(X, 1);
        Py_BEGIN_ALLOW_THREADS
        add_rows_c(&ks, Xd, n, d, (const int64_t *)PyArray_DATA(r), (const double *)PyArray_DATA(c), nr,
                   (double *)PyArray_DATA((PyArrayObject *)oo), nthreads);
        Py_END_ALLOW_THREADS
    }
    Py_INCREF(Py_None);
    res = Py_None;
done:
    Py_XDECREF(X); Py_XDECREF(r); Py_XDECREF(c);
    return res;
}

/* One sweep of a KT-SWAP slot over points [lo, hi): row[i] = k(y, x_i) from the column-major copy
 * Xt (Xt[k * n + i]), stat[i] += coef * row[i], and (if best != NULL) the smallest stat[i] over the
 * points not held by another slot (cnt[i] == 0 when unique); ties go to the smaller index. */
KK_CLONES static void slot_sweep(const kspec *ks, const double *Xt, int64_t n, int d, const double *y,
                                 int64_t lo, int64_t hi, double coef, double *stat, double *row,
                                 const int32_t *cnt, int unique, int64_t *best, double *bv) {
    double r2[BLK];
    int64_t b_i = -1;
    double b_v = 0.0;
    for (int64_t b = lo; b < hi; b += BLK) {
        int len = (int)((hi - b) < BLK ? (hi - b) : BLK);
        for (int i = 0; i < len; i++) r2[i] = 0.0;
        for (int k = 0; k < d; k++) {
            const double *cl = Xt + k * n + b;
            const double c = y[k];
            for (int i = 0; i < len; i++) { double e = cl[i] - c; r2[i] += e * e; }
        }
        double *rb = row + b, *sb = stat + b;
        apply_profile(ks, r2, rb, len);
        for (int i = 0; i < len; i++) sb[i] += coef * rb[i];
        if (best) {
            for (int i = 0; i < len; i++) {
                if (unique && cnt[b + i]) continue;
                if (b_i < 0 || sb[i] < b_v) { b_v = sb[i]; b_i = b + i; }
            }
        }
    }
    if (best) { *best = b_i; *bv = b_v; }
}

/* The sweep over all n points, split over the threads by blocks when n is large. */
static void slot_sweep_all(const kspec *ks, const double *Xt, int64_t n, int d, const double *y, double coef,
                           double *stat, double *row, const int32_t *cnt, int unique, int64_t *best,
                           int nthreads) {
    double bv;
#ifdef _OPENMP
    if (nthreads > 1 && n >= PAR_MIN && !omp_in_parallel()) {
        if (nthreads > MAXT) nthreads = MAXT;
        int64_t tb[MAXT];
        double tv[MAXT];
        int used = 1;
        const int64_t nblk = (n + BLK - 1) / BLK;
#pragma omp parallel num_threads(nthreads)
        {
            const int tid = omp_get_thread_num(), nt = omp_get_num_threads();
            int64_t lo = (nblk * tid / nt) * BLK, hi = (nblk * (tid + 1) / nt) * BLK;
            if (hi > n) hi = n;
            if (lo > hi) lo = hi;
            tb[tid] = -1;
            slot_sweep(ks, Xt, n, d, y, lo, hi, coef, stat, row, cnt, unique, best ? &tb[tid] : NULL, &tv[tid]);
#pragma omp single
            used = nt;
        }
        if (best) { /* thread ranges are in index order: a strict < keeps the smaller index on ties */
            int64_t b_i = -1;
            double b_v = 0.0;
            for (int q = 0; q < used; q++)
                if (tb[q] >= 0 && (b_i < 0 || tv[q] < b_v)) { b_v = tv[q]; b_i = tb[q]; }
            *best = b_i;
        }
        return;
    }
#endif
    (void)nthreads;
    slot_sweep(ks, Xt, n, d, y, 0, n, coef, stat, row, cnt, unique, best, &bv);
}

/* refine(X, coreset, stat, codes, params, nthreads, unique): KT-SWAP greedy pass.
 * stat[i] = k(x_i,x_i)/s - 2 mu[i] + (2/s) sum_c k(x_i, x_c) on entry; coreset and stat updated in place.
 * unique: a slot may only take a point that no other slot holds.
 * Slot t: stat -= (2/s) k(x_old, .) while finding the minimiser; stat += (2/s) k(x_new, .), where the
 * row of x_old is reused when the slot keeps its point (the same numbers as evaluating it again). */
static PyObject *py_refine(PyObject *self, PyObject *args) {
    PyObject *Xo, *co, *so, *codes, *params;
    int nthreads, unique;
    if (!PyArg_ParseTuple(args, "OOOOOii", &Xo, &co, &so, &codes, &params, &nthreads, &unique)) return NULL;
    kspec ks;
    if (parse_spec(codes, params, &ks) < 0) return NULL;
    PyArrayObject *X = GET(Xo, NPY_DOUBLE, 2);
    if (!X) return NULL;
    PyArrayObject *cs = (PyArrayObject *)co, *st = (PyArrayObject *)so;
    if (!PyArray_Check(co) || PyArray_TYPE(cs) != NPY_INT64 || !PyArray_IS_C_CONTIGUOUS(cs) ||
        PyArray_NDIM(cs) != 1 || !PyArray_Check(so) || PyArray_TYPE(st) != NPY_DOUBLE ||
        !PyArray_IS_C_CONTIGUOUS(st) || PyArray_NDIM(st) != 1 || PyArray_DIM(st, 0) != PyArray_DIM(X, 0)) {
        PyErr_SetString(PyExc_ValueError, "refine: coreset int64 vector and stat float64 vector of length n");
        Py_DECREF(X);
        return NULL;
    }
    const double *Xd = (const double *)PyArray_DATA(X);
    int64_t n = PyArray_DIM(X, 0), s = PyArray_DIM(cs, 0);
    int d = (int)PyArray_DIM(X, 1);
    int64_t *cd = (int64_t *)PyArray_DATA(cs);
    double *sd = (double *)PyArray_DATA(st);
    int32_t *cnt = (int32_t *)calloc((size_t)n, sizeof(int32_t));
    double *Xt = (double *)malloc(sizeof(double) * (size_t)n * (size_t)d);
    double *row = (double *)malloc(sizeof(double) * (size_t)n);
    if (!cnt || !Xt || !row) {
        free(cnt); free(Xt); free(row);
        Py_DECREF(X);
        return PyErr_NoMemory();
    }
    for (int64_t t = 0; t < s; t++) cnt[cd[t]]++;
    Py_BEGIN_ALLOW_THREADS
    for (int64_t i = 0; i < n; i++)
        for (int k = 0; k < d; k++) Xt[(int64_t)k * n + i] = Xd[i * d + k];
    const double m2 = -2.0 / (double)s, p2 = 2.0 / (double)s;
    for (int64_t t = 0; t < s; t++) {
        const int64_t old = cd[t];
        cnt[old]--;
        int64_t best = -1;
        slot_sweep_all(&ks, Xt, n, d, Xd + old * d, m2, sd, row, cnt, unique, &best, nthreads);
        if (best < 0) best = old;
        cd[t] = best;
        cnt[best]++;
        if (best == old) {
            for (int64_t i = 0; i < n; i++) sd[i] += p2 * row[i];
        } else {
            slot_sweep_all(&ks, Xt, n, d, Xd + best * d, p2, sd, row, cnt, unique, NULL, nthreads);
        }
    }
    Py_END_ALLOW_THREADS
    free(cnt);
    free(Xt);
    free(row);
    Py_DECREF(X);
    Py_INCREF(Py_None);
    return Py_None;
}

static PyMethodDef methods[] = {
    {"halve_level", py_halve_level, METH_VARARGS, "One KT-SPLIT halving round over every coreset of a level."},
    {"add_rows", py_add_rows, METH_VARARGS, "out += sum_t coef[t] k(X[rows[t]], X)."},
    {"refine", py_refine, METH_VARARGS, "KT-SWAP greedy refinement pass (in place)."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef moddef = {PyModuleDef_HEAD_INIT, "_kt_ext", "Compiled kernel thinning loops.", -1,
                                    methods};

PyMODINIT_FUNC PyInit__kt_ext(void) {
    import_array();
    PyObject *mod = PyModule_Create(&moddef);
    if (mod && (PyModule_AddStringConstant(mod, "CODE_NAMES", KK_CODE_NAMES) < 0
                || PyModule_AddIntConstant(mod, "MAX_COMPONENTS", KK_MAXC) < 0)) {
        Py_DECREF(mod);
        return NULL;
    }
    return mod;
}
