"""``kernelkit private-sum build / query`` end to end."""

import json

import numpy as np
import pytest

import kernelkit as kk
from kernelkit.cli import main


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3000, 3))
    Y = rng.standard_normal((25, 3))
    np.save(tmp_path / "x.npy", X)
    np.savetxt(tmp_path / "y.csv", Y, delimiter=",")
    return tmp_path, X, Y


def test_build_and_query_kernel_sum(files, capsys):
    tmp, X, Y = files
    sketch = tmp / "sketch.npz"
    assert main(["private-sum", "build", str(tmp / "x.npy"), "--epsilon", "1", "--delta", "1e-6",
                 "--bandwidth", "1.5", "--radius", "6", "--seed", "3", "--out", str(sketch)]) == 0
    assert "rounded-gaussian" in capsys.readouterr().out
    with np.load(sketch, allow_pickle=False) as z:  # sanitized state only, no pickle, no data rows
        assert all(z[k].dtype != object for k in z.files)
        assert all(z[k].shape[0] != X.shape[0] for k in z.files)
        meta = json.loads(bytes(z["__meta__"]).decode())
    assert meta["privacy"]["epsilon"] == 1.0 and meta["privacy"]["neighbouring"] == "add-remove"
    out = tmp / "answers.csv"
    assert main(["private-sum", "query", str(sketch), str(tmp / "y.csv"), "--out", str(out)]) == 0
    table = np.loadtxt(out, delimiter=",", skiprows=1)
    assert table.shape == (25, 3)  # value, noise std, estimated total std
    exact = kk.kernel_sum(kk.Gaussian(1.5), X, Y)
    assert np.median(np.abs(table[:, 0] - exact) / exact) < 0.05
    assert np.all(table[:, 1] > 0)


def test_build_and_query_distance_sum(files, capsys):
    tmp, X, Y = files
    sketch = tmp / "d.npz"
    assert main(["private-sum", "build", str(tmp / "x.npy"), "--epsilon", "1", "--kernel", "l1",
                 "--radius", "5", "--out", str(sketch)]) == 0
    assert main(["private-sum", "query", str(sketch), str(tmp / "y.csv")]) == 0
    assert "error bar" in capsys.readouterr().out


def _one_line_error(capsys):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("kernelkit private-sum: error:"), err
    return err


@pytest.mark.parametrize("extra, message", [
    ([], "The 'radius' parameter of PrivateKernelSum must be a float > 0 (it is required). Got None."),
    (["--radius", "3", "--epsilon", "0"], "The 'epsilon' parameter of PrivateKernelSum must be a finite float > 0. "
                                          "Got 0.0."),
    (["--radius", "3", "--delta", "1"], "The 'delta' parameter of PrivateKernelSum must be a float in [0, 1). "
                                        "Got 1.0."),
    (["--radius", "3", "--kernel", "nope"], "The '--kernel' option must be one of {"),
    (["--radius", "3", "--center", "0,a"], "The '--center' option must be comma-separated numbers"),
    (["--radius", "3", "--neighbouring", "swap"], "The 'neighbouring' parameter of PrivateKernelSum must be one of "
                                                  "{'add-remove', 'replace-one'}. Got 'swap'."),
])
def test_build_bad_input(files, capsys, extra, message):
    tmp, _, _ = files
    argv = ["private-sum", "build", str(tmp / "x.npy"), "--epsilon", "1", "--bandwidth", "1",
            "--out", str(tmp / "s.npz")]
    assert main(argv + extra) == 2
    assert message in _one_line_error(capsys)
    assert not (tmp / "s.npz").exists()


def test_build_requires_public_bandwidth(files, capsys):
    tmp, _, _ = files
    assert main(["private-sum", "build", str(tmp / "x.npy"), "--epsilon", "1", "--radius", "3",
                 "--out", str(tmp / "s.npz")]) == 2
    err = _one_line_error(capsys)
    assert "The '--bandwidth' option must be a float > 0 with --kernel gaussian. Got none." in err
    assert "never estimated from the private data" in err


def test_query_rejects_other_files(files, capsys):
    tmp, _, _ = files
    np.savez(tmp / "other.npz", data=np.zeros(3))
    assert main(["private-sum", "query", str(tmp / "other.npz"), str(tmp / "y.csv")]) == 2
    assert "other.npz' is not a kernelkit private sketch (no metadata)" in _one_line_error(capsys)


def test_demo_step_runs(capsys):
    from types import SimpleNamespace
    from kernelkit.cli._private import demo_step
    demo_step(SimpleNamespace(seed=0, quick=True, quiet=True))
    out = capsys.readouterr().out
    assert "mean relative error" in out and "epsilon=1" in out


def _labelled_csv(path, X, sep=","):
    names = [f"f{j}" for j in range(X.shape[1])]
    path.write_text(sep.join(["label"] + names) + "\n"
                    + "".join(sep.join([f"p{i}"] + [f"{v:.17g}" for v in row]) + "\n" for i, row in enumerate(X)))


def test_build_and_query_with_columns(files, capsys):
    tmp, X, Y = files
    _labelled_csv(tmp / "x.csv", X, sep=";")
    _labelled_csv(tmp / "y.csv", Y)
    sketch = tmp / "s.npz"
    assert main(["private-sum", "build", str(tmp / "x.csv"), "--epsilon", "1", "--kernel", "l2", "--radius", "5",
                 "--out", str(sketch)]) == 0
    text = capsys.readouterr().out
    assert "ignored non-numeric columns of DATA: label" in text and "3,000 records x 3 features" in text
    assert main(["private-sum", "build", str(tmp / "x.csv"), "--columns", "f2,f0", "--epsilon", "1",
                 "--bandwidth", "1.5", "--radius", "6", "--seed", "0", "--out", str(sketch)]) == 0
    text = capsys.readouterr().out
    assert "ignored" not in text and "3,000 records x 2 features" in text
    out = tmp / "answers.csv"
    assert main(["private-sum", "query", str(sketch), str(tmp / "y.csv"), "--columns", "3,1",
                 "--out", str(out)]) == 0
    table = np.loadtxt(out, delimiter=",", skiprows=1)
    exact = kk.kernel_sum(kk.Gaussian(1.5), X[:, [2, 0]], Y[:, [2, 0]])
    assert np.median(np.abs(table[:, 0] - exact) / exact) < 0.05


@pytest.mark.parametrize("verb", ["build", "query"])
def test_bad_columns_message(files, capsys, verb):
    tmp, X, Y = files
    _labelled_csv(tmp / "y.csv", Y)
    if verb == "build":
        argv = ["build", str(tmp / "y.csv"), "--columns", "f9", "--epsilon", "1", "--kernel", "l1",
                "--radius", "3", "--out", str(tmp / "s.npz")]
        what = "DATA"
    else:
        assert main(["private-sum", "build", str(tmp / "x.npy"), "--epsilon", "1", "--kernel", "l1",
                     "--radius", "3", "--out", str(tmp / "s.npz")]) == 0
        capsys.readouterr()
        argv = ["query", str(tmp / "s.npz"), str(tmp / "y.csv"), "--columns", "f9"]
        what = "QUERIES"
    assert main(["private-sum", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"The '--columns' option must name columns of {what}" in err
    assert "names label, f0, f1, f2 or 0-based indices 0 to 3. Got 'f9'." in err
