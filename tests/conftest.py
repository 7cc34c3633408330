import os
import sys
from typing import NamedTuple

import numpy as np
import pytest

# the shared test helpers (tests/_reference.py) import as `_reference` under every import mode
_TESTS = os.path.dirname(os.path.abspath(__file__))
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

import kernelkit as kk  # noqa: E402

SHARED_DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")


@pytest.fixture(params=[np.float32, np.float64], ids=["float32", "float64"])
def dtype(request):
    return request.param


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture
def restore_clone():
    """Put back the fused engine's instruction-set build after a test that selects another."""
    if not kk.fused_available():
        yield
        return
    from kernelkit.engine import _fused
    before = _fused.clone()
    yield
    _fused.select_clone(before)


# --------------------------------------------------------------------------------------------
# kernel cases: each kernelkit kernel under test beside the same kernel written as a
# tests/_reference.py spec (independently of kernelkit). Every test that takes the
# `kernel_case` fixture runs on all of them, or on those chosen by
#     @pytest.mark.kernel_cases("gauss", "poly3")        (ids)
#     @pytest.mark.kernel_cases(where=predicate)          (predicate(case) -> bool)
# Adding a family: add its cases here (and its formula to _reference.py).
# --------------------------------------------------------------------------------------------
class KernelCase(NamedTuple):
    id: str
    kernel: object  # the kernelkit kernel
    ref: tuple      # the same kernel as a _reference spec

    def __repr__(self):
        return f"KernelCase({self.id})"


KERNEL_CASES = (
    # radial families (closed forms)
    KernelCase("gauss", kk.Gaussian(0.8), ("gauss", 0.8)),
    KernelCase("laplace", kk.Laplace(1.3), ("laplace", 1.3)),
    KernelCase("matern05", kk.Matern(nu=0.5, bandwidth=0.9), ("matern", 0.5, 0.9)),
    KernelCase("matern15", kk.Matern(nu=1.5, bandwidth=0.9), ("matern", 1.5, 0.9)),
    KernelCase("matern25", kk.Matern(nu=2.5, bandwidth=1.1), ("matern", 2.5, 1.1)),
    KernelCase("imq05", kk.IMQ(bandwidth=1.2, beta=0.5), ("imq", 1.2, 0.5)),
    KernelCase("imq10", kk.IMQ(bandwidth=0.7, beta=1.0), ("imq", 0.7, 1.0)),
    KernelCase("imq07", kk.IMQ(bandwidth=0.9, beta=0.7), ("imq", 0.9, 0.7)),
    KernelCase("rq2", kk.RationalQuadratic(bandwidth=0.7, alpha=2.0), ("rq", 0.7, 2.0)),
    KernelCase("periodic", kk.Periodic(bandwidth=0.8, period=1.7), ("periodic", 0.8, 1.7)),
    # general-nu Matern (Bessel functions)
    KernelCase("matern07", kk.Matern(nu=0.7, bandwidth=0.8), ("matern", 0.7, 0.8)),
    KernelCase("matern08", kk.Matern(nu=0.8, bandwidth=1.1), ("matern", 0.8, 1.1)),
    # dot-product families
    KernelCase("linear", kk.Linear(0.5), ("linear", 0.5)),
    KernelCase("poly3", kk.Polynomial(degree=3, gamma=0.5, c=1.0), ("poly", 3, 0.5, 1.0)),
    # combinators
    KernelCase("scaled_gauss", 2.5 * kk.Gaussian(1.1), ("scaled", 2.5, ("gauss", 1.1))),
    KernelCase("scaled_matern15", 0.3 * kk.Matern(nu=1.5, bandwidth=0.6), ("scaled", 0.3, ("matern", 1.5, 0.6))),
    KernelCase("scaled_linear", 1.5 * kk.Linear(0.0), ("scaled", 1.5, ("linear", 0.0))),
    KernelCase("sum_g_l_lin", 2 * kk.Gaussian(0.8) + kk.Laplace(1.3) + kk.Linear(0.5),
               ("sum", (("scaled", 2.0, ("gauss", 0.8)), ("laplace", 1.3), ("linear", 0.5)))),
    KernelCase("sum_radial", kk.IMQ(bandwidth=0.9, beta=0.7) + 0.5 * kk.Matern(nu=2.5, bandwidth=0.5)
               + kk.RationalQuadratic(bandwidth=1.0, alpha=0.5),
               ("sum", (("imq", 0.9, 0.7), ("scaled", 0.5, ("matern", 2.5, 0.5)), ("rq", 1.0, 0.5)))),
    KernelCase("sum_poly_imq", kk.Polynomial(degree=3, gamma=0.5, c=1.0) + 3 * kk.IMQ(bandwidth=1.2, beta=0.5),
               ("sum", (("poly", 3, 0.5, 1.0), ("scaled", 3.0, ("imq", 1.2, 0.5))))),
    KernelCase("sum_with_matern07", kk.Gaussian(1.0) + kk.Matern(nu=0.7, bandwidth=0.8),
               ("sum", (("gauss", 1.0), ("matern", 0.7, 0.8)))),
    KernelCase("product", kk.Gaussian(1.0) * kk.Laplace(0.7), ("prod", (("gauss", 1.0), ("laplace", 0.7)))),
    KernelCase("sum_periodic", kk.Gaussian(1.2) + 0.5 * kk.Periodic(bandwidth=1.1, period=0.6),
               ("sum", (("gauss", 1.2), ("scaled", 0.5, ("periodic", 1.1, 0.6))))),
)
KERNEL_CASE_IDS = {c.id: c for c in KERNEL_CASES}
assert len(KERNEL_CASE_IDS) == len(KERNEL_CASES), "kernel case ids must be unique"


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "kernel_cases(*ids, where=None): run a test that takes the kernel_case fixture on the "
                   "kernel cases with these ids, or on those for which where(case) is true (default: all)")


def _selected_cases(marker):
    if marker is None:
        return list(KERNEL_CASES)
    ids, where = marker.args, marker.kwargs.get("where")
    unknown = [i for i in ids if i not in KERNEL_CASE_IDS]
    if unknown:
        raise ValueError(f"kernel_cases: unknown case ids {unknown}; known: {sorted(KERNEL_CASE_IDS)}")
    cases = [KERNEL_CASE_IDS[i] for i in ids] if ids else list(KERNEL_CASES)
    if where is not None:
        cases = [c for c in cases if where(c)]
    if not cases:
        raise ValueError("kernel_cases: the selection is empty")
    return cases


def pytest_generate_tests(metafunc):
    if "kernel_case" in metafunc.fixturenames:
        cases = _selected_cases(metafunc.definition.get_closest_marker("kernel_cases"))
        metafunc.parametrize("kernel_case", cases, ids=[c.id for c in cases], indirect=True)


@pytest.fixture
def kernel_case(request):
    """A KernelCase (id, kernel, ref): see KERNEL_CASES and the kernel_cases marker."""
    return request.param
