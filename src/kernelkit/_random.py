"""One convention for randomness: ``random_state``.

Every public function and estimator that draws random numbers takes
``random_state``: None (fresh entropy), an int >= 0, a
:class:`numpy.random.SeedSequence` or a :class:`numpy.random.Generator`.
Independent streams come from ``SeedSequence(...).spawn(k)``. Functions that
took ``seed`` (or ``rng``) before keep it as a deprecated alias (a ``DeprecationWarning``;
passing both is an error).
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np

from .exceptions import InvalidTypeError, InvalidValueError

__all__ = ["seed_sequence", "generator", "resolve_seed_alias", "UNSET"]


class _Unset:
    def __repr__(self):
        return "<unset>"


#: default of a deprecated ``seed`` keyword: tells "not passed" from None
UNSET = _Unset()


def resolve_seed_alias(random_state, seed, owner, alias="seed"):
    """``random_state``, or the value of the deprecated alias (``seed``, or ``alias``) when only that was passed."""
    if seed is UNSET:
        return random_state
    if random_state is not None:
        raise InvalidValueError(f"The {alias!r} parameter of {owner} is a deprecated alias of 'random_state'; pass "
                                f"only one of them. Got random_state={random_state!r} and {alias}={seed!r}.")
    warnings.warn(f"The {alias!r} parameter of {owner} is deprecated; use 'random_state' (same values).",
                  DeprecationWarning, stacklevel=3)
    return seed


def seed_sequence(random_state, owner, name="random_state"):
    """A :class:`numpy.random.SeedSequence` from None, an int >= 0, a SeedSequence or a Generator."""
    if isinstance(random_state, np.random.SeedSequence):
        return random_state
    if isinstance(random_state, np.random.Generator):
        return np.random.SeedSequence(int(random_state.integers(2 ** 63)))
    if random_state is None:
        return np.random.SeedSequence()
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        if random_state < 0:
            raise InvalidValueError(f"The {name!r} parameter of {owner} must be an int >= 0. Got {random_state}.")
        return np.random.SeedSequence(int(random_state))
    raise InvalidTypeError(f"The {name!r} parameter of {owner} must be None, an int >= 0, a numpy SeedSequence "
                           f"or Generator. Got {random_state!r}.")


def generator(random_state, owner, name="random_state"):
    """A :class:`numpy.random.Generator`: a Generator is used as is (its stream continues), anything
    else accepted by :func:`seed_sequence` seeds a new one."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    return np.random.default_rng(seed_sequence(random_state, owner, name))
