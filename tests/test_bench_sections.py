"""The benchmark runner's demonstrations of the seed's claims (benchmarks/modes.py) and its
charts (benchmarks/plots.py), at small sizes."""
import argparse
import gc

import pytest

import revad

# The benchmarks live beside the tests in a source checkout, not in the wheel: a wheel's test
# run (from outside the source tree) has nothing of them to check.
pytest.importorskip("benchmarks", reason="the benchmark runner is not installed with the wheel")
from benchmarks import __main__ as runner  # noqa: E402
from benchmarks import modes, plots, scalar_args  # noqa: E402


def collect():
    rows = []
    return rows, lambda **row: rows.append(row)


def test_forward_needs_n_sweeps_and_agrees_with_reverse(capsys):
    rows, record = collect()
    modes.forward_vs_reverse(revad, (10, 40), repeat=1, record=record)
    out = capsys.readouterr().out
    assert "[modes]" in out and "MISMATCH" not in out
    assert [r["n"] for r in rows] == [10, 40] and all(r["check"] == "ok" for r in rows)
    # n tangent sweeps cost more than one reverse sweep, increasingly so with n.
    assert all(r["tangent_sweeps_s"] > r["reverse_sweep_s"] for r in rows)


def test_accuracy_revad_at_rounding_level_and_differences_not(capsys):
    rows, record = collect()
    modes.accuracy(revad, record)
    out = capsys.readouterr().out
    assert "[accuracy]" in out and "best fd" in out
    assert len(rows) == 4
    for r in rows:
        assert r["revad_rel_error"] < 1e-15
        assert min(r["fd_rel_errors"]) > 1e-10  # no step size gets near revad
        assert len(r["fd_rel_errors"]) == len(r["steps"]) == 15


def test_runner_accepts_the_sections_and_writes_plots(tmp_path, capsys):
    try:
        status = runner.main(["--quick", "--no-peers", "--only", "seed1,modes,accuracy",
                              "--plots", str(tmp_path)])
    finally:
        gc.unfreeze()  # main() freezes what exists for its timings; this process goes on
    assert status == 0
    out = capsys.readouterr().out
    assert "[seed1]" in out and "[modes]" in out and "[accuracy]" in out
    assert "[rosenbrock]" not in out
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "matplotlib is not installed" in out and not list(tmp_path.iterdir())
        return
    for name in ("benchmark_peers.png", "benchmark_modes.png", "benchmark_accuracy.png"):
        with open(tmp_path / name, "rb") as fh:
            assert fh.read(8) == b"\x89PNG\r\n\x1a\n"


def test_plots_are_optional(tmp_path, monkeypatch):
    def no_matplotlib():
        raise ImportError("No module named 'matplotlib'")

    monkeypatch.setattr(plots, "_pyplot", no_matplotlib)
    notes = []
    assert plots.write_all([], str(tmp_path), log=notes.append) == []
    assert "pip install matplotlib" in notes[0]


def test_plots_default_to_docs_only_when_asked():
    assert runner.parse_args([]).plots is None
    assert runner.parse_args(["--plots"]).plots == "docs"
    assert runner.parse_args(["--plots", "out"]).plots == "out"
    assert runner.parse_args(["--only", "modes"]).only == {"modes"}


def test_peer_groups_from_runner_rows():
    rows = [
        {"workload": "seed1", "n": 2, "impl": "revad", "value_and_grad_s": 1e-6},
        {"workload": "seed1", "n": 2, "impl": "casadi SX", "stage": "build", "seconds": 3e-4},
        {"workload": "seed1", "n": 2, "impl": "casadi SX", "stage": "eval", "seconds": 1e-4},
        {"workload": "seed1", "n": 2, "impl": "jax", "note": "skipped"},
        {"workload": "product", "n": 1_000_000, "impl": "revad", "record_s": 0.3},
        {"workload": "product", "n": 10_000, "impl": "micrograd", "stage": "record", "seconds": 0.1},
        {"workload": "modes", "n": 10, "impl": "revad", "reverse_s": 1.0},
    ]
    groups = plots.peer_groups(rows)
    assert list(groups) == ["seed1\nn=2", "product\n(per 10,000 ops)"]
    assert groups["seed1\nn=2"] == {"revad": 1e-6, "casadi SX": pytest.approx(4e-4)}
    assert groups["product\n(per 10,000 ops)"] == {"revad": pytest.approx(3e-3),
                                                   "micrograd": pytest.approx(0.1)}


def test_sections_run_selection():
    rows, record = collect()
    args = argparse.Namespace(only={"accuracy"}, quick=True, repeat=1)
    modes.run(revad, args, record)
    assert {r["workload"] for r in rows} == {"accuracy"}


def test_scalar_args_section_pairs_lists_with_ndarrays(capsys):
    rows, record = collect()
    scalar_args.run(revad, argparse.Namespace(only={"scalar_args"}, quick=True, repeat=1), record)
    out = capsys.readouterr().out
    assert "[scalar_args]" in out and "MISMATCH" not in out
    assert [r["loop"] for r in rows] == [name for name, _ in scalar_args.LOOPS] + ["neuron"]
    assert all(r["check"] == "ok" for r in rows)
    assert all(r["list_to_plain"] > 0 and r["ndarray_to_list"] > 0 for r in rows[:-1])
    assert rows[-1]["list_s"] > 0 and rows[-1]["ndarray_s"] > 0
    assert plots.peer_groups(rows) == {}  # figures of their own, not bars in the peer chart
    rows.clear()
    scalar_args.run(revad, argparse.Namespace(only={"modes"}, quick=True, repeat=1), record)
    assert rows == []


def test_peer_chart_groups_array_workloads_and_skips_figures():
    records = [
        {"workload": "rosenbrock", "impl": "revad", "n": 1000, "value_and_grad_s": 1e-3},
        {"workload": "gmm", "impl": "revad", "seconds": 0.02, "numpy_seconds": 0.015},
        {"workload": "gmm", "impl": "autograd", "seconds": 0.05, "numpy_seconds": 0.015},
        {"workload": "tape_cost", "impl": "revad", "bytes_per_element_unary": 9.0},
    ]
    groups = plots.peer_groups(records)
    assert groups == {"rosenbrock\nn=1,000": {"revad": 1e-3},
                      "gmm": {"revad": 0.02, "autograd": 0.05}}
