"""``kernelkit demo`` and the command's entry points: steps, summary, exit codes, python -m."""

import subprocess
import sys

import pytest

from kernelkit.cli import _demo, main
from kernelkit.exceptions import InvalidValueError


def test_demo_list_names_every_step(capsys):
    assert main(["demo", "--list"]) == 0
    out = capsys.readouterr().out
    for name, title, _, _ in _demo.STEPS:
        assert name in out and title in out


def test_demo_one_step_ends_with_summary(capsys):
    assert main(["demo", "engine", "--quick"]) == 0
    out = capsys.readouterr().out
    assert "== Kernel sums (engine) ==" in out
    assert "Kernel density" not in out
    last = out.strip().splitlines()[-1]
    assert last.startswith("summary: engine ") and " ok" in last and "FAILED" not in last


def test_demo_unknown_step_is_a_user_error(capsys):
    assert main(["demo", "nosuchstep"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("kernelkit demo: error: The 'STEP' argument of kernelkit demo must be among engine, ")
    assert err.endswith("Got nosuchstep.") and len(err.splitlines()) == 1


def test_failing_step_is_reported_and_exits_nonzero(monkeypatch, capsys):
    """A step that raises (a bug, a missing import) is never skipped silently."""
    steps = [("boom", "A broken step", "kernelkit.cli._demo_nonexistent_module", "demo_step"),
             ("engine", "Kernel sums (engine)", "kernelkit.cli._demo_steps", "engine_step")]
    monkeypatch.setattr(_demo, "STEPS", steps)
    assert main(["demo", "--quick"]) == 1
    captured = capsys.readouterr()
    assert "ModuleNotFoundError" in captured.err  # its traceback is shown
    last = captured.out.strip().splitlines()[-1]
    assert "boom" in last and "FAILED" in last and "engine" in last and "1 failed" in last


def test_bug_in_a_verb_keeps_its_traceback(monkeypatch):
    """Only user-input errors become one-line exits; a TypeError from a bug propagates."""
    def buggy(args):
        raise TypeError("unsupported operand (a bug)")
    monkeypatch.setattr(_demo, "run", buggy)
    with pytest.raises(TypeError, match="a bug"):
        main(["demo"])


def test_user_error_in_a_verb_is_one_line(monkeypatch, capsys):
    def bad(args):
        raise InvalidValueError("The 'x' parameter of f must be > 0. Got -1.")
    monkeypatch.setattr(_demo, "run", bad)
    assert main(["demo"]) == 2
    assert capsys.readouterr().err.strip() == "kernelkit demo: error: The 'x' parameter of f must be > 0. Got -1."


def test_python_dash_m_runs_the_cli():
    res = subprocess.run([sys.executable, "-m", "kernelkit", "--help"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "usage: kernelkit" in res.stdout and "demo" in res.stdout
    res = subprocess.run([sys.executable, "-m", "kernelkit", "demo", "--list"], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0 and "engine" in res.stdout


def test_regression_step_fits_and_reports_its_error(capsys):
    from kernelkit.cli import main
    assert main(["demo", "regression", "--quick", "--quiet"]) == 0
    out = capsys.readouterr().out
    line = next(l for l in out.splitlines() if "test MSE / Var(y)" in l)
    falkon = float(line.split("Falkon ")[1].split(";")[0])
    assert 0 < falkon < 0.3, line   # the constant predictor scores 1.0


def test_ntk_step_predicts_the_toy_function(capsys):
    from kernelkit.cli import main
    assert main(["demo", "ntk", "--quiet"]) == 0
    out = capsys.readouterr().out
    rmse = [float(l.split("RMSE against sin(x) ")[1].split(",")[0]) for l in out.splitlines() if "RMSE" in l]
    assert len(rmse) == 3 and all(0 < r < 0.2 for r in rmse), out   # noise sd 0.05; sin itself has RMSE 0.7
