/* One precision of the fused engine; included twice by _fused_ext.c with
 *
 *   R       float / double          (element type of X, Y, weights, tiles)
 *   IT      int32_t / int64_t       (integer of the same width, for bit tricks)
 *   FN(x)   x##_f32 / x##_f64
 *   VLEN    KK_VBYTES / sizeof(R)   (elements per vector: 8 / 4 with 256-bit vectors)
 *   SQRT    sqrtf / sqrt
 * and the kernel definitions of ../_include/kk_kernels.h (kexp, kk_values, ...).
 *
 * Everything below is written as plain loops over short rows plus one
 * register-blocked micro-kernel in GCC vector extensions; the whole file is
 * compiled for baseline x86-64, x86-64-v3 (AVX2 + FMA) and x86-64-v4
 * (AVX-512), and the engine imports the build the CPU supports.
 */

typedef R FN(vec) __attribute__((vector_size(KK_VBYTES)));
typedef IT FN(ivec) __attribute__((vector_size(KK_VBYTES)));
#define VT FN(vec)
#define VIT FN(ivec)
/* |v| lane by lane: clear the sign bits (the integer view of the same bits) */
KK_INLINE VT FN(vabs)(VT v) {
    const IT nosign = (IT)(~(uint64_t)0 >> (65 - 8 * sizeof(R)));
    return (VT)((VIT)v & nosign);
}
#define NR (2 * VLEN)        /* points per micro-tile: two vectors */
#define NVR 2

KK_INLINE VT FN(vload)(const R *p) { VT v; memcpy(&v, p, sizeof v); return v; }
KK_INLINE void FN(vstore)(R *p, VT v) { memcpy(p, &v, sizeof v); }

/* ---- packing: tiles in the layouts the micro-kernel reads ---------------- */

/* Panels of NR points: Xt[(i / NR) * d * NR + k * NR + i % NR] = X[i0 + i, k] - c[k]
 * for i < len, zero padding up to nb; nx[i] = |x_i - c|^2. */
KK_INLINE void FN(pack_x)(const R *X, int64_t i0, int len, int d, int nb, const R *c, R *Xt, R *nx) {
    for (int i = 0; i < nb; i++) {
        R *dst = Xt + (int64_t)(i / NR) * d * NR + i % NR;
        const R *src = X + (i0 + i) * d;
        R s = 0;
        for (int k = 0; k < d; k++) {
            R v = i < len ? src[k] - (c ? c[k] : (R)0) : (R)0;
            dst[k * NR] = v;
            s += v * v;
        }
        nx[i] = s;
    }
}

/* Wt[q * nb + i] = W[i0 + i, q]; padding with `pad` (0 for weights, -inf for log weights). */
KK_INLINE void FN(pack_w)(const R *W, int64_t i0, int len, int p, int nb, R pad, R *Wt) {
    for (int q = 0; q < p; q++) {
        R *row = Wt + (int64_t)q * nb;
        for (int i = 0; i < len; i++) row[i] = W[(i0 + i) * p + q];
        for (int i = len; i < nb; i++) row[i] = pad;
    }
}

/* Panels of MR queries: Yb[(a / MR) * d * MR + k * MR + a % MR] = Y[j0 + a, k] - c[k]
 * for a < len, zero rows up to jb; ny[a] = |y_a - c|^2. */
KK_INLINE void FN(pack_y)(const R *Y, int64_t j0, int len, int d, int jb, const R *c, R *Yb, R *ny) {
    for (int a = 0; a < jb; a++) {
        R *dst = Yb + (int64_t)(a / MR) * d * MR + a % MR;
        R s = 0;
        for (int k = 0; k < d; k++) {
            R v = a < len ? Y[(j0 + a) * d + k] - (c ? c[k] : (R)0) : (R)0;
            dst[k * MR] = v;
            s += v * v;
        }
        ny[a] = s;
    }
}

/* pack_y for the rows j0 + rows[a], a < len (no centring), zero rows up to jb. */
KK_INLINE void FN(pack_y_rows)(const R *Y, int64_t j0, const int *rows, int len, int d, int jb, R *Yb, R *ny) {
    for (int a = 0; a < jb; a++) {
        R *dst = Yb + (int64_t)(a / MR) * d * MR + a % MR;
        const R *src = a < len ? Y + (j0 + rows[a]) * d : NULL;
        R s = 0;
        for (int k = 0; k < d; k++) {
            R v = src ? src[k] : (R)0;
            dst[k * MR] = v;
            s += v * v;
        }
        ny[a] = s;
    }
}

/* ---- micro-kernel: T[a, i] for a < jb (multiple of MR), i < nb (multiple of NR) ----
 * gram = 0, direct: T = sum_k (x_ik - y_ak)^2   (exact, for small d)
 * gram = 1, gram:   T = sum_k x_ik y_ak         (the GEMM part of |x|^2 + |y|^2 - 2 x.y)
 * gram = 2, L1:     T = (sum_k |x_ik - y_ak|)^2 (the squared L1 distance, for kernels of it) */
KK_INLINE void FN(tile)(int gram, const R *Xt, int nb, const R *Yb, int d, int jb, R *T) {
    /* point panels outside, query panels inside: one point panel (d * NR values)
     * stays in L1 while every query panel of the block passes over it */
    for (int i0 = 0; i0 < nb; i0 += NR) {
        const R *xpanel = Xt + (int64_t)(i0 / NR) * d * NR;
        for (int a0 = 0; a0 < jb; a0 += MR) {
            VT acc[MR][NVR];
            for (int a = 0; a < MR; a++)
                for (int b = 0; b < NVR; b++) acc[a][b] = (VT){0};
            const R *xp = xpanel;
            const R *yp = Yb + (int64_t)(a0 / MR) * d * MR;
            if (gram == 1) {
                for (int k = 0; k < d; k++, xp += NR, yp += MR) {
                    VT x0 = FN(vload)(xp), x1 = FN(vload)(xp + VLEN);
                    for (int a = 0; a < MR; a++) {
                        acc[a][0] += x0 * yp[a];
                        acc[a][1] += x1 * yp[a];
                    }
                }
            } else if (gram == 2) {
                for (int k = 0; k < d; k++, xp += NR, yp += MR) {
                    VT x0 = FN(vload)(xp), x1 = FN(vload)(xp + VLEN);
                    for (int a = 0; a < MR; a++) {
                        acc[a][0] += FN(vabs)(x0 - yp[a]);
                        acc[a][1] += FN(vabs)(x1 - yp[a]);
                    }
                }
                for (int a = 0; a < MR; a++) {
                    acc[a][0] *= acc[a][0];
                    acc[a][1] *= acc[a][1];
                }
            } else {
                for (int k = 0; k < d; k++, xp += NR, yp += MR) {
                    VT x0 = FN(vload)(xp), x1 = FN(vload)(xp + VLEN);
                    for (int a = 0; a < MR; a++) {
                        VT t0 = x0 - yp[a], t1 = x1 - yp[a];
                        acc[a][0] += t0 * t0;
                        acc[a][1] += t1 * t1;
                    }
                }
            }
            for (int a = 0; a < MR; a++) {
                FN(vstore)(T + (int64_t)(a0 + a) * nb + i0, acc[a][0]);
                FN(vstore)(T + (int64_t)(a0 + a) * nb + i0 + VLEN, acc[a][1]);
            }
        }
    }
}

/* squared distances of one row: direct (and L1) rows already hold r^2 (returned as
 * is); gram rows hold x.y, turned into r^2 in `buf` */
KK_INLINE const R *FN(row_r2)(int gram, const R *t, const R *nx, R ny, R *buf, int nb) {
    if (gram != 1) return t;
#pragma omp simd
    for (int i = 0; i < nb; i++) {
        R v = nx[i] + ny - (R)2 * t[i];
        buf[i] = v > 0 ? v : (R)0;
    }
    return buf;
}

/* val[i] = sum_c w_c phi_c for one row (t: the tile row; gram: t is x.y); the
 * formulas are kernelkit's one compiled definition (_include/kk_kernels_body.h) */
KK_INLINE void FN(row_values)(const kspec *ks, int gram, const R *t, const R *nx, R ny,
                                  R *r2buf, R *val, R *tmp, R *pw, int nb) {
    const R *r2 = ks->need_r2 ? FN(row_r2)(gram, t, nx, ny, r2buf, nb) : t;
    FN(kk_values)(ks, r2, t, val, tmp, pw, nb);
}

/* log k for one row of a single-component radial kernel, plus log w */
KK_INLINE void FN(row_log_values)(const kspec *ks, int gram, const R *t, const R *nx, R ny,
                                      R *r2buf, R *val, int nb) {
    FN(kk_log_values)(ks, FN(row_r2)(gram, t, nx, ny, r2buf, nb), val, nb);
}

/* reductions over a row (nb is a multiple of NR) with explicit vector accumulators */
typedef IT FN(ivec) __attribute__((vector_size(KK_VBYTES)));

KK_INLINE R FN(hsum)(VT v) {
    R s = 0;
    for (int l = 0; l < VLEN; l++) s += v[l];
    return s;
}

KK_INLINE R FN(row_dot)(const R *a, const R *b, int nb) {
    VT s0 = (VT){0}, s1 = (VT){0};
    for (int i = 0; i < nb; i += NR) {
        s0 += FN(vload)(a + i) * FN(vload)(b + i);
        s1 += FN(vload)(a + i + VLEN) * FN(vload)(b + i + VLEN);
    }
    return FN(hsum)(s0 + s1);
}

KK_INLINE R FN(row_sum)(const R *a, int nb) {
    VT s0 = (VT){0}, s1 = (VT){0};
    for (int i = 0; i < nb; i += NR) {
        s0 += FN(vload)(a + i);
        s1 += FN(vload)(a + i + VLEN);
    }
    return FN(hsum)(s0 + s1);
}

KK_INLINE VT FN(vmax)(VT a, VT b) {
    FN(ivec) gt = a > b;
    return (VT)(((FN(ivec))a & gt) | ((FN(ivec))b & ~gt));
}

KK_INLINE R FN(row_max)(const R *a, int nb) {
    VT m0 = FN(vload)(a), m1 = FN(vload)(a + VLEN);
    for (int i = NR; i < nb; i += NR) {
        m0 = FN(vmax)(FN(vload)(a + i), m0);
        m1 = FN(vmax)(FN(vload)(a + i + VLEN), m1);
    }
    m0 = FN(vmax)(m0, m1);
    R m = m0[0];
    for (int l = 1; l < VLEN; l++) m = m0[l] > m ? m0[l] : m;
    return m;
}

/* ---- heaps for top-k: root = the worst kept entry ------------------------ */
KK_INLINE int FN(worse)(double va, int64_t ia, double vb, int64_t ib) {
    return va < vb || (va == vb && ia > ib);
}

static void FN(heap_push)(double *hv, int64_t *hi, int *size, int k, double v, int64_t idx) {
    int pos;
    if (*size < k) {
        pos = (*size)++;
        while (pos > 0) {   /* sift up: parents are worse than children */
            int par = (pos - 1) / 2;
            if (!FN(worse)(v, idx, hv[par], hi[par])) break;
            hv[pos] = hv[par]; hi[pos] = hi[par]; pos = par;
        }
        hv[pos] = v; hi[pos] = idx;
        return;
    }
    if (!FN(worse)(hv[0], hi[0], v, idx)) return;   /* not better than the worst kept */
    pos = 0;
    for (;;) {              /* sift down from the root */
        int l = 2 * pos + 1, r = l + 1, w = pos;
        double wv = v; int64_t wi = idx;
        if (l < k && FN(worse)(hv[l], hi[l], wv, wi)) { w = l; wv = hv[l]; wi = hi[l]; }
        if (r < k && FN(worse)(hv[r], hi[r], wv, wi)) { w = r; }
        if (w == pos) break;
        hv[pos] = hv[w]; hi[pos] = hi[w]; pos = w;
    }
    hv[pos] = v; hi[pos] = idx;
}

/* ---- the per-block worker ------------------------------------------------
 * Queries [j0, j0 + jlen) (jlen <= jb) against points [ilo, ihi).
 * op OP_SUM:  acc[a * p + q] += sum_i k(x_i, y_a) W[i, q]              (double)
 * op OP_LSE:  running (mx, acc) of log sum_i exp(log k + LW[i, q])      (double)
 * op OP_TOPK: heaps hv/hi of size k per query                          */
typedef struct {
    const R *X, *Y, *W, *c;
    int64_t n, m;
    int d, p, nb, jb, gram, op, k;
    const kspec *ks;
    /* optional whole-input packing (tile t at Xp + t * d * nb, ...), else per block */
    R *Xp, *nxp, *Wp;
} FN(job);

typedef struct {
    R *Xt, *nx, *Wt, *Yb, *ny, *T, *r2, *val, *tmp, *pw;
} FN(work);

static int FN(work_alloc)(FN(work) *w, const FN(job) *J) {
    int64_t nb = J->nb, jb = J->jb, d = J->d, p = J->p;
    size_t total = (size_t)(d * nb + nb + p * nb + jb * d + jb + jb * nb + 4 * nb);
    R *buf = (R *)malloc(total * sizeof(R) + 64);
    w->Xt = buf;
    if (!buf) return -1;
    w->Xt = buf; w->nx = w->Xt + d * nb; w->Wt = w->nx + nb; w->Yb = w->Wt + p * nb;
    w->ny = w->Yb + jb * d; w->T = w->ny + jb; w->r2 = w->T + jb * nb; w->val = w->r2 + nb;
    w->tmp = w->val + nb; w->pw = w->tmp + nb;
    return 0;
}

/* One packed tile of nb points (len real ones, starting at point i0) against the packed query block
 * w->Yb (jb rows, jlen real): distances, then every row a < jlen reduced into output row ra = rows[a]
 * (rows == NULL: ra = a) of acc / mx (sums, log-sum-exps) or of the heaps (top-k). */
KK_INLINE void FN(reduce_tile)(const FN(job) *J, FN(work) *w, const R *Xt, const R *nx, const R *Wt, int nb, int jb,
                               int len, int64_t i0, int jlen, const int *rows, double *acc, double *mx,
                               double *hv, int64_t *hi, int *hsize) {
    const int d = J->d, p = J->p, gram = J->gram, op = J->op;
    FN(tile)(gram, Xt, nb, w->Yb, d, jb, w->T);
    /* (the one-pass Gaussian bounds r by |x| + |y|: Euclidean distances only) */
    const int gauss1 = op == OP_SUM && p == 1 && J->ks->n == 1 && J->ks->code[0] == K_GAUSS && gram != 2;
    /* |x - c| <= rx for every point of the tile: |x - y|^2 <= (rx + |y - c|)^2 bounds a row */
    const R rx = gauss1 ? SQRT(FN(kk_row_max)(nx, nb)) : (R)0;
    for (int a = 0; a < jlen; a++) {
        const int64_t ra = rows ? rows[a] : a;
        const R *t = w->T + (int64_t)a * nb;
        if (gauss1) {
            /* the common case in one pass: sum_i w_i exp(-g r_i^2) */
            const R g = (R)J->ks->p[0], ny = w->ny[a], ry = rx + SQRT(ny);
            R s = 0;
            if (-g * (ry * ry) >= EXP_FAST_LO) {   /* every result normal: the one-factor exp */
                if (gram == 1) {
#pragma omp simd reduction(+ : s)
                    for (int i = 0; i < nb; i++) {
                        R v = nx[i] + ny - (R)2 * t[i];
                        s += Wt[i] * FN(kexp_normal)(-g * (v > 0 ? v : (R)0));
                    }
                } else {
#pragma omp simd reduction(+ : s)
                    for (int i = 0; i < nb; i++) s += Wt[i] * FN(kexp_normal)(-g * t[i]);
                }
            } else {
                const R *r2 = FN(row_r2)(gram, t, nx, ny, w->r2, nb);
                if (-g * FN(kk_row_max)(r2, nb) >= EXP_FAST_LO) {
#pragma omp simd reduction(+ : s)
                    for (int i = 0; i < nb; i++) s += Wt[i] * FN(kexp_normal)(-g * r2[i]);
                } else {
#pragma omp simd reduction(+ : s)
                    for (int i = 0; i < nb; i++) s += Wt[i] * FN(kexp)(-g * r2[i]);
                }
            }
            acc[ra] += (double)s * J->ks->w[0];
        } else if (op == OP_SUM) {
            FN(row_values)(J->ks, gram, t, nx, w->ny[a], w->r2, w->val, w->tmp, w->pw, nb);
            /* padding points have weight 0: drop their values (an overflowing polynomial
             * value there would make inf * 0 = NaN) */
            for (int i = len; i < nb; i++) w->val[i] = 0;
            for (int q = 0; q < p; q++) acc[ra * p + q] += (double)FN(row_dot)(w->val, Wt + (int64_t)q * nb, nb);
        } else if (op == OP_LSE) {
            const int gauss = J->ks->code[0] == K_GAUSS;
            const R *r2 = gauss ? FN(row_r2)(gram, t, nx, w->ny[a], w->r2, nb) : NULL;
            const R g = (R)J->ks->p[0], lw0 = (R)J->ks->w[0];
            if (!gauss) FN(row_log_values)(J->ks, gram, t, nx, w->ny[a], w->r2, w->val, nb);
            for (int q = 0; q < p; q++) {
                const R *lw = Wt + (int64_t)q * nb;
                if (gauss) {   /* log k + log w in one pass */
#pragma omp simd
                    for (int i = 0; i < nb; i++) w->tmp[i] = (lw0 - g * r2[i]) + lw[i];
                } else {
#pragma omp simd
                    for (int i = 0; i < nb; i++) w->tmp[i] = w->val[i] + lw[i];
                }
                const R bmax = FN(row_max)(w->tmp, nb);
                if (!(bmax > -INFINITY)) continue;   /* every weight zero in this tile */
                double *M = mx + ra * p + q, *S = acc + ra * p + q;
                if ((double)bmax > *M) {
                    *S *= exp(*M - (double)bmax);    /* exp(-inf) = 0 on the first tile */
                    *M = (double)bmax;
                }
                const R Mr = (R)*M;
                R s = 0;
#pragma omp simd reduction(+ : s)
                for (int i = 0; i < nb; i++) s += FN(kexp)(w->tmp[i] - Mr);
                *S += (double)s;
            }
        } else {
            FN(row_values)(J->ks, gram, t, nx, w->ny[a], w->r2, w->val, w->tmp, w->pw, nb);
            double *v = hv + ra * J->k;
            int64_t *ix = hi + ra * J->k;
            for (int i = 0; i < len; i++) {
                double x = (double)w->val[i];
                if (hsize[ra] < J->k || x > v[0]) FN(heap_push)(v, ix, hsize + ra, J->k, x, i0 + i);
            }
        }
    }
}

KK_CLONES static void FN(block)(const FN(job) *J, FN(work) *w, int64_t j0, int jlen, int64_t ilo, int64_t ihi,
                                double *acc, double *mx, double *hv, int64_t *hi, int *hsize) {
    const int nb = J->nb, jb = J->jb, d = J->d, p = J->p, op = J->op;
    FN(pack_y)(J->Y, j0, jlen, d, jb, J->c, w->Yb, w->ny);
    for (int64_t i0 = ilo; i0 < ihi; i0 += nb) {
        const int len = (int)(ihi - i0 < nb ? ihi - i0 : nb);
        const R *Xt = w->Xt, *nx = w->nx, *Wt = w->Wt;
        if (J->Xp) {   /* packed once for the whole call (i0 is a multiple of nb) */
            const int64_t tix = i0 / nb;
            Xt = J->Xp + tix * d * nb;
            nx = J->nxp + tix * nb;
            if (J->Wp) Wt = J->Wp + tix * p * nb;
        } else {
            FN(pack_x)(J->X, i0, len, d, nb, J->c, w->Xt, w->nx);
            if (op != OP_TOPK) FN(pack_w)(J->W, i0, len, p, nb, op == OP_LSE ? (R)(-INFINITY) : (R)0, w->Wt);
        }
        FN(reduce_tile)(J, w, Xt, nx, Wt, nb, jb, len, i0, jlen, NULL, acc, mx, hv, hi, hsize);
    }
}

/* Distance from each of the jlen queries Y[j0 + a] to the box [lo, hi] of the points
 * X[i0, i0 + len) (squared Euclidean, or L1 when l1), in double: the queries within thr are listed in
 * rows (a, ascending); returns how many. */
KK_INLINE int FN(rows_near)(const R *X, int64_t i0, int len, const R *Y, int64_t j0, int jlen, int d, int l1,
                            double thr, double *lo, double *hi, int *rows) {
    for (int k = 0; k < d; k++) { lo[k] = INFINITY; hi[k] = -INFINITY; }
    for (int i = 0; i < len; i++) {
        const R *x = X + (i0 + i) * d;
        for (int k = 0; k < d; k++) {
            const double v = (double)x[k];
            lo[k] = v < lo[k] ? v : lo[k];
            hi[k] = v > hi[k] ? v : hi[k];
        }
    }
    int kept = 0;
    for (int a = 0; a < jlen; a++) {
        const R *y = Y + (j0 + a) * d;
        double s = 0;
        for (int k = 0; k < d; k++) {
            const double v = (double)y[k];
            const double g = v < lo[k] ? lo[k] - v : (v > hi[k] ? v - hi[k] : 0.0);
            s += l1 ? g : g * g;
        }
        if (s <= thr) rows[kept++] = a;
    }
    return kept;
}

/* Pruned reduction (kernelkit.engine._pruned): queries in nblk blocks [qlo[b], qhi[b]), each against its
 * point ranges [rlo[r], rhi[r]) for r in [rbeg[b], rend[b]) (sums, log-sum-exps); blocks must not overlap.
 * Points and queries are in the caller's order (no centring: J->c must be NULL). Each block's queries
 * are split into runs of at most jb; each range into tiles of at most nb points, a partial tile
 * narrowed to a multiple of the panel width. With thr >= 0, a query whose distance to a tile's box
 * exceeds thr skips that tile (its kernel values there are exactly 0: the caller's thr keeps a margin
 * for rounding), and a tile no query is near is not computed. Blocks run in parallel (dynamic); each
 * query's sum is the same whatever the thread count. Returns 0 or -1 (allocation failure). */
KK_CLONES static int FN(run_ranges)(const FN(job) *J, int nthreads, int64_t nblk, const int64_t *qlo,
                                    const int64_t *qhi, const int64_t *rbeg, const int64_t *rend, const int64_t *rlo,
                                    const int64_t *rhi, double thr, int l1, double *out, double *out_mx) {
    const int nb = J->nb, jb = J->jb, d = J->d, p = J->p, op = J->op;
    int failed = 0;
#pragma omp parallel num_threads(nthreads) reduction(| : failed)
    {
        FN(work) w;
        int *rows = (int *)malloc(sizeof(int) * (size_t)jb);
        double *box = (double *)malloc(sizeof(double) * 2 * (size_t)d);
        if (FN(work_alloc)(&w, J) || !rows || !box) failed = 1;
#pragma omp for schedule(dynamic, 1)
        for (int64_t b = 0; b < nblk; b++) {
            if (failed) continue;
            for (int64_t j0 = qlo[b]; j0 < qhi[b]; j0 += jb) {
                const int jlen = (int)(qhi[b] - j0 < jb ? qhi[b] - j0 : jb);
                double *acc = out + j0 * p, *mx = op == OP_LSE ? out_mx + j0 * p : NULL;
                if (thr < 0) FN(pack_y)(J->Y, j0, jlen, d, (jlen + MR - 1) / MR * MR, NULL, w.Yb, w.ny);
                for (int64_t r = rbeg[b]; r < rend[b]; r++) {
                    for (int64_t i0 = rlo[r]; i0 < rhi[r]; i0 += nb) {
                        const int len = (int)(rhi[r] - i0 < nb ? rhi[r] - i0 : nb);
                        const int nbe = (len + NR - 1) / NR * NR;
                        int cnt = jlen;
                        const int *map = NULL;
                        if (thr >= 0) {   /* only the queries near this tile's box, packed together */
                            cnt = FN(rows_near)(J->X, i0, len, J->Y, j0, jlen, d, l1, thr, box, box + d, rows);
                            if (!cnt) continue;
                            FN(pack_y_rows)(J->Y, j0, rows, cnt, d, (cnt + MR - 1) / MR * MR, w.Yb, w.ny);
                            map = rows;
                        }
                        FN(pack_x)(J->X, i0, len, d, nbe, NULL, w.Xt, w.nx);
                        FN(pack_w)(J->W, i0, len, p, nbe, op == OP_LSE ? (R)(-INFINITY) : (R)0, w.Wt);
                        FN(reduce_tile)(J, &w, w.Xt, w.nx, w.Wt, nbe, (cnt + MR - 1) / MR * MR, len, i0, cnt, map, acc,
                                        mx, NULL, NULL, NULL);
                    }
                }
            }
        }
        free(rows); free(box); free(w.Xt);
    }
    return failed ? -1 : 0;
}

/* Whole reduction; returns 0 or -1 (allocation failure). Parallel over query
 * blocks, or over point ranges when there are too few query blocks. */
static int FN(run_packed)(const FN(job) *J, int nthreads, double *out, double *out_mx, int64_t *out_idx);

/* Pack X (and W) once into tiles when asked (prepack != 0), then reduce. */
static int FN(run)(FN(job) *J, int nthreads, int prepack, double *out, double *out_mx, int64_t *out_idx) {
    J->Xp = J->nxp = J->Wp = NULL;
    if (prepack) {
        const int64_t ntiles = (J->n + J->nb - 1) / J->nb, nb = J->nb, d = J->d, p = J->p;
        J->Xp = (R *)malloc(sizeof(R) * ntiles * nb * d);
        J->nxp = (R *)malloc(sizeof(R) * ntiles * nb);
        if (J->op != OP_TOPK) J->Wp = (R *)malloc(sizeof(R) * ntiles * nb * p);
        if (!J->Xp || !J->nxp || (J->op != OP_TOPK && !J->Wp)) {
            free(J->Xp); free(J->nxp); free(J->Wp);
            return -1;
        }
#pragma omp parallel for num_threads(nthreads) schedule(static)
        for (int64_t t = 0; t < ntiles; t++) {
            const int64_t i0 = t * nb;
            const int len = (int)(J->n - i0 < nb ? J->n - i0 : nb);
            FN(pack_x)(J->X, i0, len, (int)d, (int)nb, J->c, J->Xp + t * d * nb, J->nxp + t * nb);
            if (J->Wp) FN(pack_w)(J->W, i0, len, (int)p, (int)nb, J->op == OP_LSE ? (R)(-INFINITY) : (R)0, J->Wp + t * p * nb);
        }
    }
    int rc = FN(run_packed)(J, nthreads, out, out_mx, out_idx);
    free(J->Xp); free(J->nxp); free(J->Wp);
    return rc;
}

static int FN(run_packed)(const FN(job) *J, int nthreads, double *out, double *out_mx, int64_t *out_idx) {
    const int64_t m = J->m, n = J->n, jb = J->jb;
    const int p = J->p, k = J->k;
    const int64_t nqb = (m + jb - 1) / jb;
    int failed = 0;
    const int point_parallel = nthreads > 1 && nqb < 2 * nthreads && n >= 4 * (int64_t)J->nb * nthreads;
    if (!point_parallel) {
#pragma omp parallel num_threads(nthreads) reduction(| : failed)
        {
            FN(work) w;
            double *hv = NULL; int64_t *hi = NULL; int *hs = NULL;
            if (FN(work_alloc)(&w, J)) failed = 1;
            if (!failed && J->op == OP_TOPK) {
                hv = (double *)malloc(sizeof(double) * jb * k);
                hi = (int64_t *)malloc(sizeof(int64_t) * jb * k);
                hs = (int *)malloc(sizeof(int) * jb);
                if (!hv || !hi || !hs) failed = 1;
            }
#pragma omp for schedule(dynamic, 1)
            for (int64_t b = 0; b < nqb; b++) {
                if (failed) continue;
                const int64_t j0 = b * jb;
                const int jlen = (int)(m - j0 < jb ? m - j0 : jb);
                if (J->op == OP_TOPK) {
                    for (int a = 0; a < jlen; a++) hs[a] = 0;
                    FN(block)(J, &w, j0, jlen, 0, n, NULL, NULL, hv, hi, hs);
                    for (int a = 0; a < jlen; a++)
                        for (int t = 0; t < k; t++) {
                            out[(j0 + a) * k + t] = hv[a * k + t];
                            out_idx[(j0 + a) * k + t] = hi[a * k + t];
                        }
                } else {
                    double *acc = out + j0 * p, *mxp = J->op == OP_LSE ? out_mx + j0 * p : NULL;
                    FN(block)(J, &w, j0, jlen, 0, n, acc, mxp, NULL, NULL, NULL);
                }
            }
            if (hv) free(hv);
            if (hi) free(hi);
            if (hs) free(hs);
            free(w.Xt);
        }
        return failed ? -1 : 0;
    }
    /* point-parallel: thread t reduces all queries over its own range of points */
    const int64_t mp = m * p;
    double *part = (double *)calloc((size_t)nthreads * (J->op == OP_TOPK ? (size_t)(m * k) : (size_t)mp), sizeof(double));
    double *partm = J->op == OP_LSE ? (double *)malloc(sizeof(double) * nthreads * mp) : NULL;
    int64_t *parti = J->op == OP_TOPK ? (int64_t *)malloc(sizeof(int64_t) * nthreads * m * k) : NULL;
    int *parts = J->op == OP_TOPK ? (int *)calloc((size_t)nthreads * m, sizeof(int)) : NULL;
    if (!part || (J->op == OP_LSE && !partm) || (J->op == OP_TOPK && (!parti || !parts))) {
        free(part); free(partm); free(parti); free(parts);
        return -1;
    }
    if (partm) for (int64_t t = 0; t < nthreads * mp; t++) partm[t] = -INFINITY;
    const int64_t chunk = ((n + nthreads - 1) / nthreads + J->nb - 1) / J->nb * J->nb;
#pragma omp parallel num_threads(nthreads) reduction(| : failed)
    {
        const int tid = omp_get_thread_num();
        FN(work) w;
        if (FN(work_alloc)(&w, J)) failed = 1;
        const int64_t ilo = tid * chunk, ihi = ilo + chunk < n ? ilo + chunk : n;
        for (int64_t j0 = 0; !failed && j0 < m && ilo < ihi; j0 += jb) {
            const int jlen = (int)(m - j0 < jb ? m - j0 : jb);
            if (J->op == OP_TOPK)
                FN(block)(J, &w, j0, jlen, ilo, ihi, NULL, NULL, part + (tid * m + j0) * k,
                          parti + (tid * m + j0) * k, parts + tid * m + j0);
            else
                FN(block)(J, &w, j0, jlen, ilo, ihi, part + tid * mp + j0 * p,
                          partm ? partm + tid * mp + j0 * p : NULL, NULL, NULL, NULL);
        }
        free(w.Xt);
    }
    if (!failed) {
        if (J->op == OP_SUM) {
            for (int64_t e = 0; e < mp; e++) {
                double s = 0;
                for (int t = 0; t < nthreads; t++) s += part[t * mp + e];
                out[e] = s;
            }
        } else if (J->op == OP_LSE) {
            for (int64_t e = 0; e < mp; e++) {
                double M = -INFINITY, S = 0;
                for (int t = 0; t < nthreads; t++) M = partm[t * mp + e] > M ? partm[t * mp + e] : M;
                if (M > -INFINITY)
                    for (int t = 0; t < nthreads; t++) S += part[t * mp + e] * exp(partm[t * mp + e] - M);
                out[e] = S;
                out_mx[e] = M;
            }
        } else {
            for (int64_t j = 0; j < m; j++) {
                double *hv = out + j * k;
                int64_t *hi = out_idx + j * k;
                int hs = 0;
                for (int t = 0; t < nthreads; t++)
                    for (int e = 0; e < parts[t * m + j]; e++)
                        FN(heap_push)(hv, hi, &hs, k, part[(t * m + j) * k + e], parti[(t * m + j) * k + e]);
            }
        }
    }
    free(part); free(partm); free(parti); free(parts);
    return failed ? -1 : 0;
}

/* Dense block K[a * n + i] = k(x_i, y_a) for all queries a < m and points i < n (R precision),
 * parallel over query blocks; tiles as in the reductions (no n x m intermediate besides K). */
KK_CLONES static int FN(run_block)(const FN(job) *J, int nthreads, R *K) {
    const int64_t m = J->m, n = J->n, jb = J->jb, nb = J->nb;
    const int64_t nqb = (m + jb - 1) / jb;
    int failed = 0;
#pragma omp parallel num_threads(nthreads) reduction(| : failed)
    {
        FN(work) w;
        if (FN(work_alloc)(&w, J)) failed = 1;
#pragma omp for schedule(dynamic, 1)
        for (int64_t b = 0; b < nqb; b++) {
            if (failed) continue;
            const int64_t j0 = b * jb;
            const int jlen = (int)(m - j0 < jb ? m - j0 : jb);
            FN(pack_y)(J->Y, j0, jlen, J->d, (int)jb, J->c, w.Yb, w.ny);
            for (int64_t i0 = 0; i0 < n; i0 += nb) {
                const int len = (int)(n - i0 < nb ? n - i0 : nb);
                FN(pack_x)(J->X, i0, len, J->d, (int)nb, J->c, w.Xt, w.nx);
                FN(tile)(J->gram, w.Xt, (int)nb, w.Yb, J->d, (int)jb, w.T);
                for (int a = 0; a < jlen; a++) {
                    FN(row_values)(J->ks, J->gram, w.T + (int64_t)a * nb, w.nx, w.ny[a], w.r2, w.val, w.tmp, w.pw,
                                   (int)nb);
                    memcpy(K + (j0 + a) * n + i0, w.val, sizeof(R) * (size_t)len);
                }
            }
        }
        free(w.Xt);
    }
    return failed ? -1 : 0;
}

/* Normal product out = K^T diag(Wq) K V for K[a, i] = k(y_a, x_i): points x_i = J->X (the centres,
 * packed once with V = J->W as their weights), queries y_a = J->Y (the data), data weights Wq (m, p)
 * or NULL (ones). Per block of jb queries: phase 1 computes the block's kernel rows against every
 * centre tile once, keeping them in `buf` (jb x Mp values, sized by the caller to stay in cache) while
 * reducing u_a = sum_i k(y_a, x_i) V[i]; phase 2 reuses the kept rows for g_i += k(y_a, x_i) Wq_a u_a.
 * Each kernel value is computed once (two kernel sums compute it twice). Accumulation: u in float64
 * across tiles; g in R over at most NORMAL_FLUSH rows, then into a per-thread float64 total.
 * out (n x p, float64) must be zero on entry. Returns 0 or -1 (allocation failure). */
#define NORMAL_FLUSH 256
KK_CLONES static int FN(run_normal)(FN(job) *J, int nthreads, const R *Wq, double *out) {
    const int64_t n = J->n, m = J->m, nb = J->nb, jb = J->jb, d = J->d, p = J->p;
    const int64_t ntiles = (n + nb - 1) / nb, Mp = ntiles * nb, nqb = (m + jb - 1) / jb;
    J->Xp = (R *)malloc(sizeof(R) * Mp * d);
    J->nxp = (R *)malloc(sizeof(R) * Mp);
    J->Wp = (R *)malloc(sizeof(R) * Mp * p);
    if (!J->Xp || !J->nxp || !J->Wp) {
        free(J->Xp); free(J->nxp); free(J->Wp);
        J->Xp = J->nxp = J->Wp = NULL;
        return -1;
    }
    for (int64_t t = 0; t < ntiles; t++) {
        const int64_t i0 = t * nb;
        const int len = (int)(n - i0 < nb ? n - i0 : nb);
        FN(pack_x)(J->X, i0, len, (int)d, (int)nb, J->c, J->Xp + t * d * nb, J->nxp + t * nb);
        FN(pack_w)(J->W, i0, len, (int)p, (int)nb, (R)0, J->Wp + t * p * nb);
    }
    const kspec *ks = J->ks;
    const int gauss1 = ks->n == 1 && ks->code[0] == K_GAUSS && J->gram != 2;   /* (Euclidean bound on r) */
    const R g = gauss1 ? (R)ks->p[0] : (R)0;
    /* tile t: largest |x - c| of its centres, for the Gaussian's row bound */
    R *rx = (R *)malloc(sizeof(R) * ntiles);
    double *part = (double *)calloc((size_t)nthreads * (size_t)(Mp * p), sizeof(double));
    if (!rx || !part) {
        free(rx); free(part); free(J->Xp); free(J->nxp); free(J->Wp);
        J->Xp = J->nxp = J->Wp = NULL;
        return -1;
    }
    for (int64_t t = 0; t < ntiles; t++) rx[t] = gauss1 ? SQRT(FN(kk_row_max)(J->nxp + t * nb, (int)nb)) : (R)0;
    int failed = 0;
#pragma omp parallel num_threads(nthreads) reduction(| : failed)
    {
        const int tid = omp_get_thread_num();
        FN(work) w;
        R *buf = (R *)malloc(sizeof(R) * (size_t)(jb * Mp));
        R *gblk = (R *)calloc((size_t)(Mp * p), sizeof(R));
        double *u = (double *)malloc(sizeof(double) * (size_t)(jb * p));
        if (FN(work_alloc)(&w, J) || !buf || !gblk || !u) failed = 1;
        double *gacc = part + (int64_t)tid * Mp * p;
        int rows = 0;   /* rows accumulated in gblk since the last flush */
#pragma omp for schedule(static)   /* fixed blocks per thread: the same sums on every call */
        for (int64_t b = 0; b < nqb; b++) {
            if (failed) continue;
            const int64_t j0 = b * jb;
            const int jlen = (int)(m - j0 < jb ? m - j0 : jb);
            FN(pack_y)(J->Y, j0, jlen, (int)d, (int)jb, J->c, w.Yb, w.ny);
            for (int64_t e = 0; e < jb * p; e++) u[e] = 0;
            /* phase 1: kernel rows of this query block, kept in buf; u = K V */
            for (int64_t t = 0; t < ntiles; t++) {
                const int64_t i0 = t * nb;
                const int len = (int)(n - i0 < nb ? n - i0 : nb);
                const R *Xt = J->Xp + t * d * nb, *nx = J->nxp + t * nb, *Wt = J->Wp + t * p * nb;
                FN(tile)(J->gram, Xt, (int)nb, w.Yb, (int)d, (int)jb, w.T);
                for (int a = 0; a < jlen; a++) {
                    const R *tr = w.T + (int64_t)a * nb;
                    R *val = buf + (int64_t)a * Mp + i0;
                    const R ny = w.ny[a];
                    if (gauss1) {   /* exp(-g r^2) (the weight w_0 is applied to u and to the result) */
                        const R ry = rx[t] + SQRT(ny);
                        if (-g * (ry * ry) >= EXP_FAST_LO) {
                            if (J->gram == 1) {
#pragma omp simd
                                for (int i = 0; i < (int)nb; i++) {
                                    R v = nx[i] + ny - (R)2 * tr[i];
                                    val[i] = FN(kexp_normal)(-g * (v > 0 ? v : (R)0));
                                }
                            } else {
#pragma omp simd
                                for (int i = 0; i < (int)nb; i++) val[i] = FN(kexp_normal)(-g * tr[i]);
                            }
                        } else {
                            const R *r2 = FN(row_r2)(J->gram, tr, nx, ny, w.r2, (int)nb);
                            if (-g * FN(kk_row_max)(r2, (int)nb) >= EXP_FAST_LO) {
#pragma omp simd
                                for (int i = 0; i < (int)nb; i++) val[i] = FN(kexp_normal)(-g * r2[i]);
                            } else {
#pragma omp simd
                                for (int i = 0; i < (int)nb; i++) val[i] = FN(kexp)(-g * r2[i]);
                            }
                        }
                    } else {
                        FN(row_values)(ks, J->gram, tr, nx, ny, w.r2, val, w.tmp, w.pw, (int)nb);
                        for (int i = len; i < (int)nb; i++) val[i] = 0;   /* padding centres (inf * 0) */
                    }
                    for (int q = 0; q < (int)p; q++) u[a * p + q] += (double)FN(row_dot)(val, Wt + (int64_t)q * nb, (int)nb);
                }
            }
            /* phase 2: g += K_block^T (Wq u), from the kept rows */
            for (int a = 0; a < jlen; a++) {
                const R *row = buf + (int64_t)a * Mp;
                for (int q = 0; q < (int)p; q++) {
                    double sa = u[a * p + q] * (gauss1 ? ks->w[0] : 1.0);
                    if (Wq) sa *= (double)Wq[(j0 + a) * p + q];
                    const R s = (R)sa;
                    if (s == 0) continue;
                    R *gq = gblk + (int64_t)q * Mp;
#pragma omp simd
                    for (int64_t i = 0; i < Mp; i++) gq[i] += s * row[i];
                }
            }
            rows += jlen;
            if (rows >= NORMAL_FLUSH) {
                for (int64_t e = 0; e < Mp * p; e++) { gacc[e] += (double)gblk[e]; gblk[e] = 0; }
                rows = 0;
            }
        }
        if (!failed)
            for (int64_t e = 0; e < Mp * p; e++) gacc[e] += (double)gblk[e];
        free(buf); free(gblk); free(u); free(w.Xt);
    }
    if (!failed) {
        const double w0 = gauss1 ? ks->w[0] : 1.0;
        for (int64_t i = 0; i < n; i++)
            for (int64_t q = 0; q < p; q++) {
                double s = 0;
                for (int t = 0; t < nthreads; t++) s += part[(int64_t)t * Mp * p + q * Mp + i];
                out[i * p + q] = s * w0;
            }
    }
    free(rx); free(part); free(J->Xp); free(J->nxp); free(J->Wp);
    J->Xp = J->nxp = J->Wp = NULL;
    return failed ? -1 : 0;
}
#undef NORMAL_FLUSH

/* out[i] = exp(x[i]) for x <= 0 (the engine's exp, exposed for tests and the benchmark): in
 * chunks of 256, each with the one-factor exp when its smallest argument allows, as in the rows
 * of a kernel sum */
KK_CLONES static void FN(vexp)(const R *x, R *out, int64_t len) {
    for (int64_t c = 0; c < len; c += 256) {
        const int nb = (int)(len - c < 256 ? len - c : 256);
        const R *xc = x + c;
        R *oc = out + c;
        R lo = 0;
#pragma omp simd reduction(min : lo)
        for (int i = 0; i < nb; i++) lo = xc[i] < lo ? xc[i] : lo;
        if (lo >= EXP_FAST_LO) {
#pragma omp simd
            for (int i = 0; i < nb; i++) oc[i] = FN(kexp_normal)(xc[i]);
        } else {
#pragma omp simd
            for (int i = 0; i < nb; i++) oc[i] = FN(kexp)(xc[i]);
        }
    }
}

#undef VT
#undef NR
#undef NVR
