"""RSS representations for fingerprinting (Torres-Sospedra et al., Expert Syst. Appl. 42, 2015)."""

from __future__ import annotations

import math

import numpy as np

from .._validation import OneOf, Real, check_param, param_error

__all__ = ["REPRESENTATIONS", "rss_representation", "heard_mask"]

#: the representations :func:`rss_representation` computes
REPRESENTATIONS = ("raw", "positive", "exponential", "powed")


def heard_mask(rss, not_heard="auto", fill=-110.0):
    """Which readings were heard: True where ``rss`` holds a received signal strength.

    Parameters
    ----------
    rss : ndarray of shape (n, n_beacons)
        RSS in dBm (finite; checked by the caller).
    not_heard : float or "auto"
        The marker of "not heard" in ``rss``. ``"auto"``: any value > 0 dBm
        (UJIIndoorLoc writes +100) or <= ``fill`` (the iBeacon set writes
        -200). A float: exactly that value (and, as always, values <= ``fill``).
    fill : float
        Weakest RSS kept, dBm: readings at or below it count as not heard.

    Returns
    -------
    ndarray of bool, same shape as ``rss``
    """
    low = rss > fill
    if isinstance(not_heard, str):
        return low & (rss <= 0)
    return low & (rss != not_heard)


def rss_representation(rss, representation="powed", *, not_heard="auto", fill=-110.0, beta=math.e, alpha=24.0):
    r"""Map RSS readings (dBm) to a representation for similarity search.

    With :math:`m` = ``fill`` (the weakest RSS, given to every "not heard"
    reading) and :math:`p = \text{rss} - m \ge 0` ("positive", 0 = not heard):

    * ``"raw"``: the RSS in dBm, ``fill`` where not heard;
    * ``"positive"``: :math:`p` (dB);
    * ``"exponential"``: :math:`\exp(p/\alpha) / \exp(-m/\alpha)`;
    * ``"powed"``: :math:`p^\beta / (-m)^\beta` (0 where not heard, 1 at 0 dBm).

    Readings below ``fill`` are raised to it (they count as not heard).

    Parameters
    ----------
    rss : array of shape (n, n_beacons)
        Finite RSS values in dBm, with a marker for "not heard".
    representation : {"raw", "positive", "exponential", "powed"}
    not_heard : float or "auto"
        The marker of "not heard" (see :func:`heard_mask`; default: any value
        > 0 or <= ``fill``).
    fill : float < 0
        dBm given to "not heard" and the floor of every reading (default -110).
    beta : float > 0
        Exponent of ``"powed"`` (default e, as in Torres-Sospedra et al.).
    alpha : float > 0
        Scale of ``"exponential"``, dB (default 24).

    Returns
    -------
    ndarray of shape (n, n_beacons), float64
        A new array (the input is not modified).
    """
    owner = "rss_representation"
    representation = check_param(representation, "representation", owner, OneOf(*REPRESENTATIONS))
    fill = check_param(fill, "fill", owner, Real(high=0, high_open=True))
    beta = check_param(beta, "beta", owner, Real(low=0, low_open=True))
    alpha = check_param(alpha, "alpha", owner, Real(low=0, low_open=True))
    if not isinstance(not_heard, str):
        not_heard = check_param(not_heard, "not_heard", owner, Real())
    elif not_heard != "auto":
        raise param_error("not_heard", owner, "a float or 'auto'", not_heard)
    rss = np.asarray(rss, dtype=np.float64)
    heard = heard_mask(rss, not_heard, fill)
    # a heard reading above 0 dBm (only with an explicit marker) is kept as 0 dBm: the scale's top
    dbm = np.where(heard, np.minimum(rss, 0.0), fill)
    if representation == "raw":
        return dbm
    p = dbm - fill
    if representation == "positive":
        return p
    if representation == "exponential":
        return np.exp((p + fill) / alpha)
    return (p / -fill) ** beta
