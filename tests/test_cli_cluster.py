"""The command line's --scheduler / --local-cluster options (kernelkit.cli._cluster).

Served by ``kde`` (queries scored on the cluster), ``thin`` (Compress++ over
row chunks) and ``private-sum build`` (exact sums by tasks, noise on the
client); refused with one line by the other verbs. The runs on a cluster
are compared with the local command on the same data (slow tier).
"""

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
    assert "Used by: kde:" in text and "thin:" in text and "private-sum build:" in text
    assert "kernelkit[dask]" in text


def test_without_dask_one_line_error_naming_the_extra(tmp_path, capsys, monkeypatch):
    _, path = _data(tmp_path)
    monkeypatch.setitem(sys.modules, "distributed", None)   # import distributed -> ImportError
    rc = main(["--local-cluster", "2", "kde", str(path), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1 and "pip install 'kernelkit[dask]'" in err and err.startswith("kernelkit kde: error:")


@pytest.mark.parametrize("verb,extra,needle", [
    (["test", "mmd"], ["{path}", "{path}"], "not used by 'test' (the tests' permutations run locally"),
    (["private-sum", "query"], ["{path}", "{path}"], "not used by 'private-sum query' (answers are post-processing"),
    (["thin"], ["{path}", "--method", "kt", "--out", "{out}"], "serve 'thin' with --method auto, compress++, "
                                                               "compress only (got --method kt"),
])
def test_verb_or_method_without_a_dask_path_is_refused(tmp_path, capsys, verb, extra, needle):
    _, path = _data(tmp_path)
    out = tmp_path / "c.npy"
    argv = ["--scheduler", "tcp://127.0.0.1:1"] + verb + [a.format(path=path, out=out) for a in extra]
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2 and needle in err and err.count("\n") == 1, err
    assert not out.exists()   # refused before any connection or work


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


@pytest.mark.slow
def test_thin_and_private_build_on_local_cluster(tmp_path, capsys):
    pytest.importorskip("distributed")
    import kernelkit as kk
    X, path = _data(tmp_path, n=4000)
    idx_out, out = tmp_path / "i.npy", tmp_path / "c.npy"
    assert main(["--local-cluster", "2", "thin", str(path), "--size", "32", "--method", "compress++", "--seed", "1",
                 "--out", str(out), "--indices-out", str(idx_out)]) == 0
    text = capsys.readouterr().out
    assert "on the dask cluster" in text and "(2 workers)" in text
    idx = np.load(idx_out).ravel()
    assert idx.shape == (32,) and idx.min() >= 0 and idx.max() < 4000   # (KT-SWAP may repeat a point)
    np.testing.assert_array_equal(np.load(out), X[idx])
    # the coreset is a good one: MMD (on the standardised data, as the verb reports) well below standard thinning
    Z = (X - X.mean(0)) / X.std(0)
    bw = kk.median_bandwidth(Z)
    m_cluster = kk.mmd(Z, Z[idx], "gaussian", bandwidth=bw)
    m_std = kk.mmd(Z, Z[kk.standard_thin(Z, 32)], "gaussian", bandwidth=bw)
    assert m_cluster < 0.7 * m_std, (m_cluster, m_std)
    # private-sum build: exact sums by tasks, the noise drawn on the client (seeded here, for the test, as the
    # release noise is not reproducible by design): the same sketch as the local build
    from kernelkit.privacy._noise import _seeded_noise_for_tests
    sketches = []
    for cluster in (["--local-cluster", "2"], []):
        sk = tmp_path / f"s{len(sketches)}.npz"
        with _seeded_noise_for_tests(7):
            assert main(cluster + ["private-sum", "build", str(path), "--epsilon", "1", "--kernel", "l1",
                                   "--radius", "5", "--seed", "4", "--out", str(sk)]) == 0
        sketches.append(dict(np.load(sk, allow_pickle=False)))
    assert "exact sums on the dask cluster" in capsys.readouterr().out
    assert sketches[0].keys() == sketches[1].keys()
    for key in sketches[0]:
        np.testing.assert_array_equal(sketches[0][key], sketches[1][key], err_msg=key)
