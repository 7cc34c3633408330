"""Differentially private kernel sums and similarity queries.

Released structures answer any number of queries from one noisy, sanitized
state (queries are post-processing and cost no privacy):

* :class:`PrivateKernelSum`: ``sum_x k(x, y)`` for shift-invariant kernels
  (random Fourier features, orthogonal features, JL-reduced features, and the
  LSQ-RFF baseline), pure epsilon-DP or (epsilon, delta)-DP.
* :class:`PrivateDistanceSum`: ``sum_x ||x - y||_1`` or ``||x - y||_2`` through
  the one-dimensional decomposition into noisy prefix-sum trees.
* :class:`PrivateSimilarityClassifier`: the class with the highest noisy mean
  similarity.
* :class:`PrivacyAccountant`: budget under sequential composition; spending
  past it raises :class:`BudgetExceededError`.

Semantics are explicit and stored on every fitted object (``privacy_``):
neighbouring relation (``'add-remove'``: n private; ``'replace-one'``: n
public), the user-declared input domain (``radius`` around ``center``; data
are clipped to it, never bounded from the private data), epsilon, delta and
the budget split. ``random_state`` seeds only public randomness (feature
maps, projections); the noise comes from a CSPRNG-keyed generator and is
snapped to an integer grid (see :mod:`kernelkit.privacy._noise`).
"""

from ._accountant import PrivacyAccountant, BudgetExceededError
from ._kernel_sum import PrivateKernelSum
from ._distance import PrivateDistanceSum
from ._classify import PrivateSimilarityClassifier

__all__ = ["PrivateKernelSum", "PrivateDistanceSum", "PrivateSimilarityClassifier", "PrivacyAccountant",
           "BudgetExceededError"]
