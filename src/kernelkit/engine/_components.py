"""Kernels flattened into the closed-form components compiled loops evaluate.

Both compiled pieces of kernelkit, the fused engine (``_fused_ext``) and the
kernel-thinning walk (``compress/_kt_ext``), evaluate a kernel as a positive
combination ``k = sum_c w_c phi_c`` of closed-form profiles; each maps the
names below to its own codes.

=========  ==========================================  ==================
name       phi                                         p, q
=========  ==========================================  ==================
gauss      exp(-p r^2)                                 p = 1 / (2 sigma^2)
laplace    exp(-p r)                                   p = 1 / ell
matern32   (1 + s) exp(-s), s = p r                    p = sqrt(3) / ell
matern52   (1 + s + s^2 / 3) exp(-s), s = p r          p = sqrt(5) / ell
rq         (1 + r^2 / q)^(-p)                          p = exponent, q = scale^2
poly       (p x.y + q)^deg                             p = gamma, q = offset
=========  ==========================================  ==================

(r = ||x - y||). Matern with nu = 1/2 is "laplace".
"""

from __future__ import annotations

from ..kernels import (Gaussian, IMQ, Laplace, Linear, Matern, Polynomial, RationalQuadratic,
                       ScaledKernel, SumKernel)

_MATERN = {0.5: "laplace", 1.5: "matern32", 2.5: "matern52"}


def kernel_components(kernel, scale=1.0):
    """``[(name, w, p, q, deg), ...]`` with ``kernel = sum w * phi_name``, or None.

    None when some part of the kernel has no closed-form component here
    (Matern with another nu, products, user-defined kernels). ``deg`` is the
    degree of a "poly" component and 0 otherwise.
    """
    if isinstance(kernel, ScaledKernel):
        return kernel_components(kernel.base, scale * kernel.scale)
    if isinstance(kernel, SumKernel):
        out = []
        for k in kernel.kernels:
            sub = kernel_components(k, scale)
            if sub is None:
                return None
            out.extend(sub)
        return out
    if type(kernel) is Gaussian:
        return [("gauss", scale, 0.5 / kernel.bandwidth ** 2, 0.0, 0)]
    if type(kernel) is Laplace:
        return [("laplace", scale, 1.0 / kernel.bandwidth, 0.0, 0)]
    if type(kernel) is Matern and kernel.nu in _MATERN:
        return [(_MATERN[kernel.nu], scale, kernel._lambda, 0.0, 0)]
    if type(kernel) in (IMQ, RationalQuadratic):
        return [("rq", scale, kernel._exponent, kernel._c2, 0)]
    if type(kernel) is Linear:
        return [("poly", scale, 1.0, kernel.c, 1)]
    if type(kernel) is Polynomial:
        return [("poly", scale, kernel.gamma, kernel.c, kernel.degree)]
    return None
