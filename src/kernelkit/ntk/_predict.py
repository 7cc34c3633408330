r"""Predictions of infinitely wide networks trained by gradient descent on the MSE loss.

An infinitely wide network trained by full-batch gradient flow on
:math:`L = \frac{1}{2N}\sum_{i,c} (f_c(x_i) - y_{ic})^2` (:math:`N` = the number
of entries of ``y_train``) evolves as a linear model in its tangent kernel
(Jacot et al. 2018; Lee et al. 2019, "Wide neural networks of any depth evolve
as linear models under gradient descent"). Its outputs on test points, over
random initialisations, are Gaussian with the mean and covariance computed
here, as neural-tangents' ``predict.gradient_descent_mse_ensemble``.
"""

from __future__ import annotations

import numpy as np

from .._options import get_options
from .._validation import InstanceOf, OneOf, Real, check_pair, check_param, check_weights, param_error
from ..kernels import Kernel

__all__ = ["gradient_descent_mse"]

_OWNER = "gradient_descent_mse"
#: eigenvalues below this times the largest are treated as 0 at t = infinity (pseudo-inverse)
_RCOND = 1e-13


def _times(t):
    """(array of times >= 0, inf allowed; shape of t or None for a scalar); None stays None."""
    if t is None:
        return None, None
    if Real(low=0, finite=False).type_ok(t) and np.ndim(t) == 0:
        return np.array([check_param(t, "t", _OWNER, Real(low=0, finite=False))]), ()
    try:
        arr = np.asarray(t, dtype=np.float64)
    except (TypeError, ValueError):
        raise param_error("t", _OWNER, "None, a float >= 0 (inf allowed) or an array of them", t,
                          kind="type") from None
    if arr.size == 0 or np.isnan(arr).any() or (arr < 0).any():
        raise param_error("t", _OWNER, "None, a float >= 0 (inf allowed) or a non-empty array of them", t)
    return arr.reshape(-1), arr.shape


def _block(kernel, X, Y, memory):
    from ..engine import kernel_block
    return np.asarray(kernel_block(kernel, X, Y, memory=memory), dtype=np.float64)


def gradient_descent_mse(kernel, X_train, y_train, X_test, t=None, *, learning_rate=1.0, diag_reg=0.0,
                         diag_reg_absolute_scale=False, compute_cov=False, nngp=None, memory=None):
    r"""Mean (and covariance) of an infinitely wide network trained by gradient descent on the MSE loss.

    With :math:`\Theta` the train-train tangent kernel (plus the diagonal
    regulariser), :math:`\Theta_*` the test-train one, :math:`K`, :math:`K_*`,
    :math:`K_{**}` the NNGP (the output covariance at initialisation)
    train-train, test-train and test-test, and the gradient flow
    :math:`\dot f = -\eta\,\Theta (f - y) / N` of the loss
    :math:`\frac{1}{2N}\|f - y\|^2` (:math:`N` = ``y_train.size``), the
    outputs at time :math:`t` are Gaussian with

    .. math::

        \mu_t = \Theta_* A_t y, \qquad
        \Sigma_t = K_{**} - \Theta_* A_t K_*^T - K_* A_t \Theta_*^T + \Theta_* A_t K A_t \Theta_*^T,

        A_t = \Theta^{-1}\big(I - e^{-\eta t \Theta / N}\big) = V \operatorname{diag}\Big(\frac{1 - e^{-\eta t \lambda_i / N}}{\lambda_i}\Big) V^T,

    from one eigendecomposition :math:`\Theta = V \operatorname{diag}(\lambda) V^T`
    (eigenvalues clipped at 0; :math:`(1 - e^{-s\lambda})/\lambda = s` at
    :math:`\lambda = 0`). At :math:`t = \infty`, :math:`A = \Theta^{+}`, the
    pseudo-inverse (eigenvalues below 1e-13 times the largest dropped; on their
    eigenvectors a positive semi-definite kernel has no test-train component).
    With the NNGP as the training kernel (only the readout layer trained; at
    :math:`t = \infty`, Bayesian inference) and ``nngp`` the same kernel, the
    covariance is written as the Gaussian process posterior
    :math:`K_{**} - K_* (K + r I)^{-1} (I - e^{-2\eta t (K + rI)/N}) K_*^T` with the
    regulariser r as observation noise (equal to the formula above when r = 0;
    neural-tangents' ``get="nngp"``).
    Conventions of neural-tangents' ``gradient_descent_mse_ensemble``
    (``learning_rate``, ``diag_reg``, ``diag_reg_absolute_scale``; one output
    covariance shared by all columns of ``y_train``).

    Parameters
    ----------
    kernel : Kernel
        The tangent kernel of the training dynamics: an :class:`NTK` (all
        layers trained), an :class:`NNGP` (only the readout layer trained,
        neural-tangents' ``get="nngp"``), or any kernelkit Kernel.
    X_train : array of shape (n, d)
    y_train : array of shape (n,) or (n, k)
        Targets (units of the network's output).
    X_test : array of shape (m, d)
        Where to predict (pass X_train for the training points).
    t : None, float >= 0 or array of floats >= 0
        Training time(s), in units of steps of size ``learning_rate`` (the
        flow above at time ``t`` is ``t`` steps of gradient descent in the
        small-step limit). None or inf: the end of training.
    learning_rate : float > 0
        :math:`\eta` (dimensionless; the time scale is :math:`\eta t`).
    diag_reg : float >= 0
        Added to the diagonal of the train-train kernel: ``diag_reg`` times
        mean(diag) by default, in kernel units when
        ``diag_reg_absolute_scale``.
    diag_reg_absolute_scale : bool
        See ``diag_reg``.
    compute_cov : bool
        Also return the covariance.
    nngp : Kernel, optional
        The output covariance at initialisation (needed for ``compute_cov``).
        Default: the NNGP of the same architecture for NTK and NNGP kernels;
        required for other kernels.
    memory : int or str, optional
        Memory budget of the kernel blocks (:func:`kernelkit.kernel_block`).

    Returns
    -------
    mean : array of shape t.shape + (m,) or t.shape + (m, k)
        (no leading axes for a scalar t or None).
    cov : array of shape t.shape + (m, m)
        Only with ``compute_cov``: the covariance of the outputs (each column
        of y has the same).

    Examples
    --------
    >>> import numpy as np, kernelkit as kk
    >>> from kernelkit.ntk import gradient_descent_mse
    >>> rng = np.random.default_rng(0)
    >>> X, Xt = rng.standard_normal((20, 3)), rng.standard_normal((5, 3))
    >>> y = np.sin(X[:, 0])
    >>> mean, cov = gradient_descent_mse(kk.NTK("relu", depth=2), X, y, Xt, t=[10.0, np.inf],
    ...                                  compute_cov=True)
    >>> mean.shape, cov.shape
    ((2, 5), (2, 5, 5))
    """
    kernel = check_param(kernel, "kernel", _OWNER,
                         InstanceOf(Kernel, "a kernelkit Kernel (e.g. kernelkit.NTK(...))"))
    X_train, X_test = check_pair(X_train, X_test, owner=_OWNER, x_name="X_train", y_name="X_test")
    X_train = X_train.astype(np.float64, copy=False)
    X_test = X_test.astype(np.float64, copy=False)
    n = X_train.shape[0]
    y = check_weights(y_train, n, "y_train", _OWNER)
    if y is None:
        raise param_error("y_train", _OWNER, f"an array of shape ({n},) or ({n}, k)", None, kind="type")
    squeeze = y.ndim == 1
    Y = y.reshape(n, -1)
    ts, t_shape = _times(t)
    lr = check_param(learning_rate, "learning_rate", _OWNER, Real(low=0, low_open=True))
    reg = check_param(diag_reg, "diag_reg", _OWNER, Real(low=0))
    absolute = check_param(diag_reg_absolute_scale, "diag_reg_absolute_scale", _OWNER, OneOf(False, True))
    cov_wanted = check_param(compute_cov, "compute_cov", _OWNER, OneOf(False, True))
    if nngp is None and cov_wanted:
        from ._infinite import _InfiniteWidth
        if not isinstance(kernel, _InfiniteWidth):
            raise param_error("nngp", _OWNER, "a Kernel (the output covariance at initialisation) when "
                              "compute_cov=True and 'kernel' is not an NTK or NNGP", None, kind="type")
        nngp = kernel.as_nngp()
    if nngp is not None:
        nngp = check_param(nngp, "nngp", _OWNER, InstanceOf(Kernel, "a kernelkit Kernel or None"))
    memory = get_options(memory=memory).memory

    T = _block(kernel, X_train, None, memory)
    if reg:
        T[np.diag_indices(n)] += reg * (1.0 if absolute else float(np.trace(T)) / n)
    lam, V = np.linalg.eigh(T)
    lam = np.maximum(lam, 0.0)
    Ts = _block(kernel, X_test, X_train, memory)       # (m, n)
    TsV = Ts @ V
    VtY = V.T @ Y
    N = Y.size
    posterior = cov_wanted and nngp == kernel    # NNGP dynamics: the GP posterior form (see Notes)
    if cov_wanted:
        Kss = _block(nngp, X_test, None, memory)
        if not posterior:
            K = _block(nngp, X_train, None, memory)
            KsV = _block(nngp, X_test, X_train, memory) @ V
            VtKV = V.T @ K @ V

    def factors(time):
        time = float(time)
        if np.isinf(time):
            keep = lam > _RCOND * float(lam.max(initial=0.0))
            return np.where(keep, 1.0 / np.where(keep, lam, 1.0), 0.0)
        s = lr * time / N
        small = lam * s < 1e-300
        with np.errstate(divide="ignore", invalid="ignore"):
            f = np.where(small, s, -np.expm1(-lam * s) / np.where(small, 1.0, lam))
        return f

    means, covs = [], []
    for time in (np.array([np.inf]) if ts is None else ts):
        A = TsV * factors(time)                            # Theta_* V diag(f), (m, n)
        means.append(A @ VtY)
        if posterior:
            covs.append(Kss - (TsV * factors(2 * time)) @ TsV.T)
        elif cov_wanted:
            cross = A @ KsV.T                              # Theta_* A_t K_*^T
            covs.append(Kss - cross - cross.T + A @ VtKV @ A.T)
    mean = np.stack(means)
    if squeeze:
        mean = mean[..., 0]
    shape = () if t_shape is None else t_shape
    mean = mean.reshape(shape + mean.shape[1:])
    if not cov_wanted:
        return mean
    cov = np.stack(covs)
    return mean, cov.reshape(shape + cov.shape[1:])
