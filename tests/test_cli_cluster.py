"""The command line's --scheduler / --local-cluster options (kernelkit.cli._cluster) with ``kernelkit kde``."""

import sys

import numpy as np
import pytest

from kernelkit.cli import build_parser, main
from kernelkit.density import KernelDensity


def _data(tmp_path, n=300, d=2):
    X = np.random.default_rng(0).standard_normal((n, d))
    path = tmp_path / "x.npy"
    np.save(path, X)
    return X, path


def test_help_names_the_options_and_the_verbs_that_use_them():
    text = build_parser().format_help()
    assert "--scheduler ADDRESS" in text and "--local-cluster N" in text
    assert "Used by: kde" in text and "kernelkit[dask]" in text


def test_without_dask_one_line_error_naming_the_extra(tmp_path, capsys, monkeypatch):
    _, path = _data(tmp_path)
    monkeypatch.setitem(sys.modules, "distributed", None)   # import distributed -> ImportError
    rc = main(["--local-cluster", "2", "kde", str(path), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1 and "pip install 'kernelkit[dask]'" in err and err.startswith("kernelkit kde: error:")


def test_verb_that_does_not_use_a_cluster_is_refused(tmp_path, capsys):
    _, path = _data(tmp_path)
    rc = main(["--scheduler", "tcp://127.0.0.1:1", "thin", str(path), "--out", str(tmp_path / "c.npy")])
    err = capsys.readouterr().err
    assert rc == 2 and "not used by 'thin'" in err and "kde" in err
    assert not (tmp_path / "c.npy").exists()


@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_local_cluster_needs_a_positive_int(value, capsys):
    with pytest.raises(SystemExit) as e:
        main(["--local-cluster", value, "kde", "x.npy"])
    assert e.value.code == 2
    assert "The '--local-cluster' option must be an int >= 1." in capsys.readouterr().err


def test_scheduler_and_local_cluster_are_exclusive(capsys):
    with pytest.raises(SystemExit):
        main(["--scheduler", "tcp://x:1", "--local-cluster", "1", "kde", "x.npy"])
    assert "not allowed with" in capsys.readouterr().err


@pytest.mark.slow
def test_kde_on_local_cluster_and_on_scheduler_match_local(tmp_path, capsys):
    distributed = pytest.importorskip("distributed")
    X, path = _data(tmp_path)
    ref = KernelDensity(bandwidth=0.5).fit(X).score_samples(X)
    out = tmp_path / "a.npy"
    assert main(["--local-cluster", "2", "kde", str(path), "--bandwidth", "0.5", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "queries scored on the dask cluster" in text and "(2 workers)" in text
    np.testing.assert_allclose(np.load(out).ravel(), ref, rtol=1e-12)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        out = tmp_path / "b.npy"
        assert main(["--scheduler", cluster.scheduler_address, "kde", str(path), "--bandwidth", "0.5",
                     "--out", str(out), "--quiet"]) == 0
        np.testing.assert_allclose(np.load(out).ravel(), ref, rtol=1e-12)
    assert distributed.client._get_global_client() is None   # the command's client is closed
