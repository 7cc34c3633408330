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

/* log(x) for finite x >= 1 (kernels only need log(1 + u), u >= 0):
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

/* val[i] = sum_c w_c phi_c for i < nb: r2 the squared distances (NULL when no
 * component needs them), t the dot products x.y (only for K_POLY; tmp and pw
 * are nb-long scratch rows then). */
KK_INLINE void FN(kk_values)(const kspec *ks, const R *r2, const R *t, R *val, R *tmp, R *pw, int nb) {
#pragma omp simd
    for (int i = 0; i < nb; i++) val[i] = 0;
    for (int c = 0; c < ks->n; c++) {
        const R w = (R)ks->w[c], p = (R)ks->p[c], q = (R)ks->q[c];
        switch (ks->code[c]) {
        case K_GAUSS:
#pragma omp simd
            for (int i = 0; i < nb; i++) val[i] += w * FN(kexp)(-p * r2[i]);
            break;
        case K_LAPLACE:
#pragma omp simd
            for (int i = 0; i < nb; i++) val[i] += w * FN(kexp)(-p * SQRT(r2[i]));
            break;
        /* the polynomial factor takes s capped at 1e15 (exp(-s) is 0 there): no inf * 0 = NaN
         * when s or s^2 overflows (tiny bandwidths, huge data) */
        case K_MATERN32:
#pragma omp simd
            for (int i = 0; i < nb; i++) {
                R s = p * SQRT(r2[i]);
                R sc = s < (R)1e15 ? s : (R)1e15;
                val[i] += w * ((R)1 + sc) * FN(kexp)(-s);
            }
            break;
        case K_MATERN52:
#pragma omp simd
            for (int i = 0; i < nb; i++) {
                R s = p * SQRT(r2[i]);
                R sc = s < (R)1e15 ? s : (R)1e15;
                val[i] += w * ((R)1 + sc + sc * sc * (R)(1.0 / 3.0)) * FN(kexp)(-s);
            }
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
#pragma omp simd
                for (int i = 0; i < nb; i++) val[i] += w * FN(kexp)(-p * FN(klog)((R)1 + r2[i] / q));
            }
            break;
        case K_PERIODIC:
#pragma omp simd
            for (int i = 0; i < nb; i++) val[i] += w * FN(kexp)(-q * FN(ksinpi2)(p * SQRT(r2[i])));
            break;
        case K_GAUSS_COS:   /* cos(2 pi u) = 1 - 2 sin^2(pi u) */
#pragma omp simd
            for (int i = 0; i < nb; i++)
                val[i] += w * FN(kexp)(-p * r2[i]) * ((R)1 - (R)2 * FN(ksinpi2)(q * SQRT(r2[i])));
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

/* val[i] = log w + log phi(r2[i]) for a single positive radial component
 * (w holds log w): K_GAUSS, K_LAPLACE, K_MATERN*, K_RQ*, K_PERIODIC. */
KK_INLINE void FN(kk_log_values)(const kspec *ks, const R *r2, R *val, int nb) {
    const R lw = (R)ks->w[0], p = (R)ks->p[0], q = (R)ks->q[0];
    switch (ks->code[0]) {
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
