/* One precision of kernelkit's compiled kernel definitions; included twice by
 * kk_kernels.h with R (float / double), IT (int32_t / int64_t), FN(x)
 * (x##_f32 / x##_f64) and the precision's constants. */

/* exp(x) for x <= 0 (or -inf): x = n ln2 + r (Cody-Waite), polynomial in r,
 * 2^n applied as two exact power-of-two factors (gradual underflow gives the
 * right subnormals); exactly 0 below EXP_LO. */
KK_INLINE R FN(kexp)(R x) {
    const R shifter = (R)1.5 * (R)((IT)1 << MBITS);
    /* no clamping: the kernels only need x <= 0, and below EXP_LO (or for
     * x = -inf, where the arithmetic gives NaN) the final select returns 0 */
    R t = x * (R)1.44269504088896340736 + shifter;
    R nf = t - shifter;
    R r = x - nf * LN2_HI - nf * LN2_LO;
    R p = TAYLOR_EXP(r);
    /* n = n1 + n2 with n1 = floor(n / 2), each turned into bits by the same
     * shifter trick (AVX2 has no 64-bit arithmetic shift or double->int64) */
    R n1f = FLOOR(nf * (R)0.5), n2f = nf - n1f;
    R t1 = n1f + shifter, t2 = n2f + shifter;
    IT i1, i2, si;
    memcpy(&i1, &t1, sizeof(R));
    memcpy(&i2, &t2, sizeof(R));
    memcpy(&si, &shifter, sizeof(R));
    IT b1 = (i1 - si + BIAS) << MBITS, b2 = (i2 - si + BIAS) << MBITS;
    R s1, s2;
    memcpy(&s1, &b1, sizeof(R));
    memcpy(&s2, &b2, sizeof(R));
    R v = p * s1 * s2;
    return x < EXP_LO ? (R)0 : v;
}

/* exp(x) for EXP_FAST_LO <= x <= 0, where every result is a normal number: kexp with 2^n
 * added to the exponent bits of the polynomial (one integer add instead of kexp's two
 * exact factors). The rows whose smallest argument allows it take this one (kk_values). */
KK_INLINE R FN(kexp_normal)(R x) {
    const R shifter = (R)1.5 * (R)((IT)1 << MBITS);
    R t = x * (R)1.44269504088896340736 + shifter;
    R nf = t - shifter;
    R r = x - nf * LN2_HI - nf * LN2_LO;
    R p = TAYLOR_EXP(r);
    IT ti, si, pb;
    memcpy(&ti, &t, sizeof(R));
    memcpy(&si, &shifter, sizeof(R));
    memcpy(&pb, &p, sizeof(R));
    pb += (ti - si) << MBITS;
    R v;
    memcpy(&v, &pb, sizeof(R));
    return v;
}

/* both loops of one component: the fast exp when the row's smallest argument is >= EXP_FAST_LO */
#define KK_ROW_LOOP(fast, BODY)                                                  \
    if (fast) {                                                                  \
        _Pragma("omp simd") for (int i = 0; i < nb; i++) { BODY(FN(kexp_normal)) } \
    } else {                                                                     \
        _Pragma("omp simd") for (int i = 0; i < nb; i++) { BODY(FN(kexp)) }      \
    }

/* largest entry of a row (0 for an empty one) */
KK_INLINE R FN(kk_row_max)(const R *a, int nb) {
    R m = 0;
#pragma omp simd reduction(max : m)
    for (int i = 0; i < nb; i++) m = a[i] > m ? a[i] : m;
    return m;
}

/* log(x) for finite normal x > 0 (the smooth kernels need log(1 + u), u >= 0; the compact ones
 * log u for u = 1 - p r^2 in [2^-MBITS, 1], always normal):
 * x = 2^e m with m in [sqrt(1/2), sqrt(2)), log m = 2 atanh((m-1)/(m+1)). */
KK_INLINE R FN(klog)(R x) {
    IT bits, ebits, mbits, magic_i;
    memcpy(&bits, &x, sizeof(R));
    ebits = (bits >> MBITS) & (IT)(2 * BIAS + 1);
    mbits = (bits & (((IT)1 << MBITS) - 1)) | ((IT)BIAS << MBITS);
    R m, magic;
    memcpy(&m, &mbits, sizeof(R));
    /* exponent as a float without an int->float conversion (none for int64 in AVX2) */
    const R two_mb = (R)((IT)1 << MBITS);
    memcpy(&magic, &two_mb, sizeof(R));
    memcpy(&magic_i, &magic, sizeof(R));
    magic_i |= ebits;
    memcpy(&magic, &magic_i, sizeof(R));
    R e = (magic - two_mb) - (R)BIAS;
    int big = m > (R)1.41421356237309504880;
    m = big ? m * (R)0.5 : m;
    e = big ? e + (R)1 : e;
    R s = (m - (R)1) / (m + (R)1);
    R s2 = s * s;
    R ser = LOG_SERIES(s2);
    return e * LN2_HI + (e * LN2_LO + (R)2 * s * ser);
}

/* sin^2(pi t) for finite t >= 0: f = t - rint(t) in [-1/2, 1/2] (exact), then
 * the series of sin(pi f). For t >= 2^(MBITS-1) t is an integer: 0. */
KK_INLINE R FN(ksinpi2)(R t) {
    const R shifter = (R)1.5 * (R)((IT)1 << MBITS);
    R f = t - ((t + shifter) - shifter);
    f = t < (R)((IT)1 << (MBITS - 1)) ? f : (R)0;
    R x = f * (R)3.14159265358979323846;
    R s = x * SIN_SERIES(x * x);
    return s * s;
}

#define KK_GAUSS_BODY(E) val[i] += w * E(-p * r2[i]);
#define KK_LAPLACE_BODY(E) val[i] += w * E(-p * SQRT(r2[i]));
/* the polynomial factor takes s capped at 1e15 (exp(-s) is 0 there): no inf * 0 = NaN
 * when s or s^2 overflows (tiny bandwidths, huge data) */
#define KK_MATERN32_BODY(E) { R s = p * SQRT(r2[i]); R sc = s < (R)1e15 ? s : (R)1e15; \
                              val[i] += w * ((R)1 + sc) * E(-s); }
#define KK_MATERN52_BODY(E) { R s = p * SQRT(r2[i]); R sc = s < (R)1e15 ? s : (R)1e15; \
                              val[i] += w * ((R)1 + sc + sc * sc * (R)(1.0 / 3.0)) * E(-s); }
#define KK_RQ_BODY(E) val[i] += w * E(-p * FN(klog)((R)1 + r2[i] / q));
#define KK_PERIODIC_BODY(E) val[i] += w * E(-q * FN(ksinpi2)(p * SQRT(r2[i])));
/* cos(2 pi u) = 1 - 2 sin^2(pi u) */
#define KK_GAUSS_COS_BODY(E) val[i] += w * E(-p * r2[i]) * ((R)1 - (R)2 * FN(ksinpi2)(q * SQRT(r2[i])));

/* val[i] = sum_c w_c phi_c for i < nb: r2 the squared distances (NULL when no
 * component needs them), t the dot products x.y (only for K_POLY; tmp and pw
 * are nb-long scratch rows then). Each component's loop uses kexp_normal when
 * its smallest exp argument over the row (from the row's largest r2) is above
 * EXP_FAST_LO, else kexp (subnormal results, exact 0 below them). */
KK_INLINE void FN(kk_values)(const kspec *ks, const R *r2, const R *t, R *val, R *tmp, R *pw, int nb) {
#pragma omp simd
    for (int i = 0; i < nb; i++) val[i] = 0;
    const R r2max = r2 ? FN(kk_row_max)(r2, nb) : (R)0;
    for (int c = 0; c < ks->n; c++) {
        const R w = (R)ks->w[c], p = (R)ks->p[c], q = (R)ks->q[c];
        switch (ks->code[c]) {
        case K_GAUSS:
            KK_ROW_LOOP(-p * r2max >= EXP_FAST_LO, KK_GAUSS_BODY)
            break;
        case K_LAPLACE:
            KK_ROW_LOOP(-p * SQRT(r2max) >= EXP_FAST_LO, KK_LAPLACE_BODY)
            break;
        case K_MATERN32:
            KK_ROW_LOOP(-p * SQRT(r2max) >= EXP_FAST_LO, KK_MATERN32_BODY)
            break;
        case K_MATERN52:
            KK_ROW_LOOP(-p * SQRT(r2max) >= EXP_FAST_LO, KK_MATERN52_BODY)
            break;
        case K_RQ_HALF:
        case K_RQ_ONE:
        case K_RQ:
            if (ks->deg[c]) {   /* r^2 / q may overflow: log(1 + u) = log r^2 - log q there */
                const R lq = (R)ks->lq[c];
#pragma omp simd
                for (int i = 0; i < nb; i++) {
                    R u = r2[i] / q;   /* (r^2 itself infinite: log = inf, value 0) */
                    R l = u < (R)INFINITY ? FN(klog)((R)1 + u)
                                          : (r2[i] < (R)INFINITY ? FN(klog)(r2[i]) - lq : (R)INFINITY);
                    val[i] += w * FN(kexp)(-p * l);
                }
            } else if (ks->code[c] == K_RQ_HALF) {
#pragma omp simd
                for (int i = 0; i < nb; i++) val[i] += w / SQRT((R)1 + r2[i] / q);
            } else if (ks->code[c] == K_RQ_ONE) {
#pragma omp simd
                for (int i = 0; i < nb; i++) val[i] += w / ((R)1 + r2[i] / q);
            } else {
                KK_ROW_LOOP(-ks->p[c] * log1p((double)r2max / ks->q[c]) >= (double)EXP_FAST_LO, KK_RQ_BODY)
            }
            break;
        case K_PERIODIC:
            KK_ROW_LOOP(-q >= EXP_FAST_LO, KK_PERIODIC_BODY)
            break;
        case K_GAUSS_COS:
            KK_ROW_LOOP(-p * r2max >= EXP_FAST_LO, KK_GAUSS_COS_BODY)
            break;
        case K_EPAN: {   /* (1 - p r^2)_+^deg */
            const int deg = ks->deg[c];
            if (deg == 1) {
#pragma omp simd
                for (int i = 0; i < nb; i++) { R u = (R)1 - p * r2[i]; val[i] += u > 0 ? w * u : (R)0; }
            } else if (deg == 2) {
#pragma omp simd
                for (int i = 0; i < nb; i++) { R u = (R)1 - p * r2[i]; val[i] += u > 0 ? w * u * u : (R)0; }
            } else {
#pragma omp simd
                for (int i = 0; i < nb; i++) { R u = (R)1 - p * r2[i]; val[i] += u > 0 ? w * u * u * u : (R)0; }
            }
            break;
        }
        case K_TOPHAT:
#pragma omp simd
            for (int i = 0; i < nb; i++) val[i] += p * r2[i] < (R)1 ? w : (R)0;
            break;
        case K_TRIANGULAR:
#pragma omp simd
            for (int i = 0; i < nb; i++) { R u = (R)1 - p * SQRT(r2[i]); val[i] += u > 0 ? w * u : (R)0; }
            break;
        case K_COSINE:   /* cos(pi t / 2) = 1 - 2 sin^2(pi t / 4) */
#pragma omp simd
            for (int i = 0; i < nb; i++) {
                R t = p * SQRT(r2[i]);
                R v = (R)1 - (R)2 * FN(ksinpi2)(t * (R)0.25);
                val[i] += t < (R)1 ? w * v : (R)0;
            }
            break;
        case K_POLY: {   /* (p x.y + q)^deg by repeated multiplication, one pass per power */
            const int deg = ks->deg[c];
#pragma omp simd
            for (int i = 0; i < nb; i++) tmp[i] = p * t[i] + q;
#pragma omp simd
            for (int i = 0; i < nb; i++) pw[i] = w * tmp[i];
            for (int e = 1; e < deg; e++) {
#pragma omp simd
                for (int i = 0; i < nb; i++) pw[i] *= tmp[i];
            }
#pragma omp simd
            for (int i = 0; i < nb; i++) val[i] += pw[i];
            break;
        }
        }
    }
}
#undef KK_GAUSS_BODY
#undef KK_LAPLACE_BODY
#undef KK_MATERN32_BODY
#undef KK_MATERN52_BODY
#undef KK_RQ_BODY
#undef KK_PERIODIC_BODY
#undef KK_GAUSS_COS_BODY

/* val[i] = log w + log phi(r2[i]) for a single positive (or compact: -inf outside its support)
 * radial component (w holds log w): K_GAUSS, K_LAPLACE, K_MATERN*, K_RQ*, K_PERIODIC, the compact codes. */
KK_INLINE void FN(kk_log_values)(const kspec *ks, const R *r2, R *val, int nb) {
    const R lw = (R)ks->w[0], p = (R)ks->p[0], q = (R)ks->q[0];
    switch (ks->code[0]) {
    case K_EPAN: {
        const R e = (R)ks->deg[0];
#pragma omp simd
        for (int i = 0; i < nb; i++) {
            R u = (R)1 - p * r2[i];
            R l = lw + e * FN(klog)(u > 0 ? u : (R)1);
            val[i] = u > 0 ? l : (R)(-INFINITY);
        }
        break;
    }
    case K_TOPHAT:
#pragma omp simd
        for (int i = 0; i < nb; i++) val[i] = p * r2[i] < (R)1 ? lw : (R)(-INFINITY);
        break;
    case K_TRIANGULAR:
#pragma omp simd
        for (int i = 0; i < nb; i++) {
            R u = (R)1 - p * SQRT(r2[i]);
            R l = lw + FN(klog)(u > 0 ? u : (R)1);
            val[i] = u > 0 ? l : (R)(-INFINITY);
        }
        break;
    case K_COSINE:
#pragma omp simd
        for (int i = 0; i < nb; i++) {
            R t = p * SQRT(r2[i]);
            R v = (R)1 - (R)2 * FN(ksinpi2)(t * (R)0.25);
            R l = lw + FN(klog)(t < (R)1 && v > 0 ? v : (R)1);
            val[i] = t < (R)1 && v > 0 ? l : (R)(-INFINITY);
        }
        break;
    case K_GAUSS:
#pragma omp simd
        for (int i = 0; i < nb; i++) val[i] = lw - p * r2[i];
        break;
    case K_LAPLACE:
#pragma omp simd
        for (int i = 0; i < nb; i++) val[i] = lw - p * SQRT(r2[i]);
        break;
    case K_MATERN32:
#pragma omp simd
        for (int i = 0; i < nb; i++) {
            R s = p * SQRT(r2[i]);
            val[i] = lw + FN(klog)((R)1 + s) - s;
        }
        break;
    case K_MATERN52:
#pragma omp simd
        for (int i = 0; i < nb; i++) {
            R s = p * SQRT(r2[i]);
            val[i] = lw + FN(klog)((R)1 + s + s * s * (R)(1.0 / 3.0)) - s;
        }
        break;
    case K_PERIODIC:
#pragma omp simd
        for (int i = 0; i < nb; i++) val[i] = lw - q * FN(ksinpi2)(p * SQRT(r2[i]));
        break;
    default: /* K_RQ, K_RQ_HALF, K_RQ_ONE */
        if (ks->deg[0]) {   /* r^2 / q may overflow: log(1 + u) = log r^2 - log q there */
            const R lq = (R)ks->lq[0];
#pragma omp simd
            for (int i = 0; i < nb; i++) {
                R u = r2[i] / q;
                R l = u < (R)INFINITY ? FN(klog)((R)1 + u)
                                      : (r2[i] < (R)INFINITY ? FN(klog)(r2[i]) - lq : (R)INFINITY);
                val[i] = lw - p * l;
            }
        } else {
#pragma omp simd
            for (int i = 0; i < nb; i++) val[i] = lw - p * FN(klog)((R)1 + r2[i] / q);
        }
        break;
    }
}

#undef KK_ROW_LOOP
