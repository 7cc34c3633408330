"""The errors kernelkit raises on purpose.

Every error raised because of what a user passed (a parameter value, a data
array, a file) is an :class:`InputError`; it also derives from the built-in
class a Python user expects (``ValueError`` for a wrong value,
``TypeError`` for a wrong type), so ``except ValueError`` keeps working. The
message has one shape, "The 'x' parameter of owner must be <what is
accepted>. Got <value>.", built by :func:`kernelkit._validation.param_error`
(see docs/conventions.md). The command line turns an :class:`InputError`
into a one-line message with exit status 2; any other exception is a bug and
keeps its traceback.
"""

from __future__ import annotations

__all__ = ["InputError", "InvalidValueError", "InvalidTypeError", "NotFittedError", "NotSupportedError",
           "BudgetExceededError"]


class InputError(Exception):
    """Base class of every error caused by the user's input."""


class InvalidValueError(InputError, ValueError):
    """A parameter or data value outside what is accepted (the message says what is)."""


class InvalidTypeError(InputError, TypeError):
    """A parameter of the wrong type (the message says which types are accepted)."""


class NotFittedError(InputError, ValueError, AttributeError):
    """An estimator or released structure was used before ``fit``."""


class NotSupportedError(InputError, NotImplementedError):
    """A valid request that this kernel or method cannot serve exactly (the message says what can)."""


class BudgetExceededError(InvalidValueError):
    """A private release would spend more than the accountant's budget."""
