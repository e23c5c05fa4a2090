"""The benchmark runner's demonstrations of the seed's claims (benchmarks/modes.py), its
second-order section (benchmarks/second.py) and its charts (benchmarks/plots.py), at small
sizes."""
import argparse
import gc
import math

import numpy as np
import pytest

import revad

# The benchmarks live beside the tests in a source checkout, not in the wheel: a wheel's test
# run (from outside the source tree) has nothing of them to check.
pytest.importorskip("benchmarks", reason="the benchmark runner is not installed with the wheel")
from benchmarks import __main__ as runner
from benchmarks import modes, plots, scalar_args


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
        {"workload": "product", "n": 10_000, "impl": "micrograd", "stage": "record",
         "seconds": 0.1},
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


def test_summary_table_of_the_headline_ratios():
    from benchmarks import summary

    rows = [
        {"workload": "rosenbrock", "n": 1000, "impl": "revad", "ratio_to_plain": 1.5,
         "check": "ok"},
        {"workload": "rosenbrock", "n": 10000, "impl": "revad", "ratio_to_plain": 1.7,
         "check": "ok"},
        {"workload": "rosenbrock", "n": 100000, "impl": "revad", "ratio_to_plain": 1.6,
         "check": "ok"},
        {"workload": "rosenbrock", "n": 10000, "impl": "micrograd", "stage": "",
         "ratio_to_revad": 839.4, "check": "ok"},
        {"workload": "rosenbrock", "n": 100000, "impl": "micrograd", "note": "skipped"},
        {"workload": "rosenbrock", "n": 1000, "impl": "jax (eager)", "stage": "",
         "ratio_to_revad": 18600.0, "check": "ok"},
        {"workload": "rosenbrock", "n": 10000, "impl": "jax (eager)", "note": "skipped: > 10 s"},
        {"workload": "rosenbrock", "n": 10000, "impl": "casadi SX", "stage": "build",
         "ratio_to_revad": 471.0, "check": "-"},
        {"workload": "rosenbrock", "n": 10000, "impl": "casadi SX", "stage": "eval",
         "ratio_to_revad": 1.7, "check": "ok"},
        {"workload": "rosenbrock", "n": 10000, "impl": "autograd", "stage": "",
         "ratio_to_revad": 1570.0, "check": "!!! MISMATCH: rel err value 1, grad 1"},
        {"workload": "gmm", "impl": "revad", "seconds": 0.01, "ratio": 0.6, "check": "ok"},
        {"workload": "gmm", "impl": "autograd", "seconds": 0.05, "ratio": 3.0, "check": "ok",
         "revad_over_peer": 0.2},
        {"workload": "gmm", "impl": "mygrad", "seconds": 0.05, "ratio": 2.7, "check": "ok"},
        {"workload": "gmm", "impl": "torch eager", "note": "not installed"},
        {"workload": "gmm", "impl": "jax jit", "seconds": 0.02, "ratio": 2.4, "check": "ok"},
        {"workload": "tape_cost", "impl": "revad", "bytes_per_element_unary": 9.0, "check": "ok"},
    ]
    info = {"revad_version": "0.1.0", "python": "3.11.7", "numpy": "2.4.6", "cores": 2,
            "cpu": "AMD EPYC"}
    text = summary.summary_markdown(rows, info=info, wall_s=185.0,
                                    unavailable={"torch (0-d tensors)", "torch eager"})
    lines = text.splitlines()
    assert lines[0] == "### revad benchmark summary"
    assert "revad 0.1.0" in lines[2] and "full run, 3 min 05 s" in lines[2]
    table = [line for line in lines if line.startswith("|")]
    assert table[0] == ("| workload | revad vs plain | micrograd | autograd | mygrad | PyTorch | "
                        "JAX | CasADi |")
    assert table[1] == "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    # The loop's row is at the largest n a peer ran; a peer skipped there shows its largest n;
    # CasADi adds its build and its evaluation; a wrong gradient is never a ratio.
    assert table[2] == ("| Rosenbrock loop, n = 10,000 | 1.7x | 839x | MISMATCH | – | "
                        "not installed | 18,600x (n = 1,000) | 473x |")
    # Arrays: the paired head-to-head ratio where there is one, else the two ratios to NumPy.
    assert table[3] == "| GMM log-likelihood | 0.6x | – | 5x | 4.5x | not installed | 4x | – |"
    assert len(table) == 4
    assert "pip install torch --index-url https://download.pytorch.org/whl/cpu" in text


def test_summary_keeps_only_columns_that_hold_something():
    from benchmarks import summary

    rows = [{"workload": "mlp", "impl": "revad", "seconds": 0.01, "ratio": 2.2, "check": "ok"}]
    text = summary.summary_markdown(rows, info={}, peers_run=False, quick=True)
    table = [line for line in text.splitlines() if line.startswith("|")]
    assert table[0] == "| workload | revad vs plain |"  # --no-peers
    assert table[2] == "| MLP, batch 256 | 2.2x |"
    assert "quick run" in text
    assert summary.summary_markdown([], info={}) == ""
    # A peer too slow for the run's time budget at every size: the estimate that kept it out.
    rows = [
        {"workload": "rosenbrock", "n": 1000, "impl": "revad", "ratio_to_plain": 1.5,
         "check": "ok"},
        {"workload": "rosenbrock", "n": 1000, "impl": "jax (eager)", "estimate_s": 16.4,
         "note": "skipped: would take > 10 s (~16.4 s per call)"},
    ]
    table = [line for line in summary.summary_markdown(rows, info={}).splitlines()
             if line.startswith("|")]
    assert table[2] == ("| Rosenbrock loop, n = 1,000 | 1.5x | - | - | - | "
                        "not run: ~16 s a call at n = 1,000 | - |")


def test_progress_names_each_step_and_long_ones_say_how_long(capsys):
    import io

    from benchmarks import progress

    log = io.StringIO()
    p = progress.Progress(stream=log, live=False)
    p.step("rosenbrock n=10,000: autograd", 5.2)
    p.step("rosenbrock n=1,000: revad", 0.3)
    lines = log.getvalue().splitlines()
    assert lines[0].endswith("rosenbrock n=10,000: autograd (about 5 s)")
    assert lines[1].endswith("rosenbrock n=1,000: revad")
    # On a terminal, one status line, erased before a result row is written under it.
    screen = io.StringIO()
    live = progress.Progress(stream=screen, live=True)
    out = progress.ClearingStream(io.StringIO(), live)
    live.step("gmm: mygrad")
    out.write("row\n")
    assert screen.getvalue().endswith("gmm: mygrad ...\r\x1b[K")
    # Quiet unless the runner turned it on.
    progress.step("nothing")
    assert capsys.readouterr().err == ""


def test_the_installed_revad_when_the_source_tree_is_not_built(tmp_path):
    """After `pip install .` the source tree's revad/ has no compiled modules, and it comes first
    on sys.path when `python -m benchmarks` runs from the repository root: the runner takes the
    installed revad instead of failing (issue 14)."""
    import os
    import subprocess
    import sys

    (tmp_path / "revad").mkdir()
    (tmp_path / "revad" / "__init__.py").write_text(
        "raise ImportError(\"No module named 'revad._core'\")\n")
    root = os.path.dirname(os.path.dirname(os.path.abspath(runner.__file__)))
    code = ("import sys; sys.path.insert(0, sys.argv[1])\n"
            "from benchmarks.__main__ import import_revad\n"
            "print(import_revad(root=sys.argv[1]).__file__)\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in [root, os.environ.get("PYTHONPATH")] if p))
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert not out.stdout.strip().startswith(str(tmp_path))
    assert out.stdout.strip().endswith("__init__.py")


def test_against_pairs_the_timed_quantities_of_two_runs(tmp_path, monkeypatch, capsys):
    """benchmarks.against: one row per timed quantity, the ratio this / other of each round."""
    from benchmarks import against

    def fake_run(tree, args, out):
        scale = 2.0 if tree else 1.0  # the other tree takes twice as long
        return f"revad at {tree or 'here'}", [
            {"workload": "seed1", "impl": "revad", "n": 2, "record_s": 1e-6 * scale,
             "n_ops": 6, "check": "ok"},
            {"workload": "scalar_args", "impl": "revad", "loop": "neuron", "list_s": 3e-6 * scale,
             "ndarray_to_list": 1.1}]

    monkeypatch.setattr(against, "run_once", fake_run)
    assert against.main([str(tmp_path), "--rounds", "3"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| s")]
    assert rows == ["| scalar_args | revad | neuron | list_s | 0.500 | 0.500-0.500 |",
                    "| seed1 | revad | 2 | record_s | 0.500 | 0.500-0.500 |"]


def test_against_keys_only_times():
    from benchmarks import against
    rows = [{"workload": "w", "impl": "revad", "n": 5, "record_s": 2e-6, "n_ops": 9,
             "ratio_to_plain": 3.0, "check": "ok"}]
    assert against.keyed(rows) == {("w", "revad", "5", "record_s"): 2e-6}


# --- second order (benchmarks/second.py) -----------------------------------------------------

def _second_args(**kw):
    return argparse.Namespace(**{"only": {"second"}, "quick": True, "repeat": 1,
                                 "no_peers": True, **kw})


def test_second_order_closed_forms_against_central_differences():
    """The section's references are what a wrong result is caught by: each is checked here
    against central differences of the next lower derivative."""
    from benchmarks import second
    from benchmarks.workloads import _rosenbrock_grad

    rng = np.random.default_rng(3)
    x, v, h = rng.normal(size=7), rng.normal(size=7), 1e-6
    fd = (_rosenbrock_grad(x + h * v)[1] - _rosenbrock_grad(x - h * v)[1]) / (2 * h)
    np.testing.assert_allclose(second._rosenbrock_hvp(x, v), fd, rtol=1e-6, atol=1e-6)
    d, off = second._rosenbrock_bands(x)
    H = np.diag(d) + np.diag(off, 1) + np.diag(off, -1)
    np.testing.assert_allclose(H @ v, second._rosenbrock_hvp(x, v), rtol=1e-12)

    A, Bm, x = second._dense_data(6)

    def grad(x):  # of x'Ax/2 + log(sum(exp(Bx))), A symmetric
        p = np.exp(Bm @ x)
        return A @ x + Bm.T @ (p / p.sum())

    fd = np.stack([(grad(x + h * e) - grad(x - h * e)) / (2 * h) for e in np.eye(6)])
    np.testing.assert_allclose(second._dense_hessian(A, Bm, x), fd, rtol=1e-6, atol=1e-8)

    def f(x):
        return second.chain(x, math, 30)

    d1, d2 = second._chain_derivatives(0.7, 30)
    assert d1 == pytest.approx((f(0.7 + h) - f(0.7 - h)) / (2 * h), rel=1e-6)
    h = 1e-4
    assert d2 == pytest.approx((f(0.7 + h) - 2 * f(0.7) + f(0.7 - h)) / h ** 2, rel=1e-5)


def test_second_order_section_runs_quick_and_prints_its_table(capsys):
    from benchmarks import second

    rows, record = collect()
    second.run(revad, _second_args(), record)
    out = capsys.readouterr().out
    assert "[second]" in out and "MISMATCH" not in out
    for title in second.TITLES.values():
        assert title in out
    by_case = {r["case"]: r for r in rows}
    assert set(by_case) == set(second.TITLES) and all(r["impl"] == "revad" for r in rows)
    for case, r in by_case.items():
        if r.get("note") == second.NOT_AVAILABLE:  # a revad without hessian(f, sparse=True)
            assert case == "sparse" and "not available in this revad" in out
            continue
        assert r["check"] == "ok" and r["time_s"] > 0 and r["base_s"] > 0 and r["ratio"] > 0
        assert r["n"] == second.QUICK_SIZES[case]
        assert r.get("target") == second.TARGETS.get(case)
    gg = by_case["gradgrad"]
    # The leaf, f's 4 ops a step, and the recorded reverse sweep: more than twice f's ops.
    assert gg["entries"] > 2 * 4 * second.QUICK_SIZES["gradgrad"]
    assert gg["ns_per_entry"] == pytest.approx(gg["time_s"] / gg["entries"] * 1e9)
    assert plots.peer_groups(rows) == {}  # a table of its own, not bars in the peer chart
    rows.clear()
    second.run(revad, _second_args(only={"modes"}), record)
    assert rows == []


def test_second_order_flags_a_wrong_result(monkeypatch, capsys):
    """An HVP that is off by one part in a million is a MISMATCH, not a fast row, and the
    runner's exit status says so."""
    from benchmarks import second

    right = revad.hvp

    def off(f, argnums=0):
        h = right(f, argnums)
        return lambda *args: h(*args) * (1 + 1e-6)

    monkeypatch.setattr(revad, "hvp", off)
    rows, record = collect()
    second.run(revad, _second_args(), record)
    bad = {r["case"] for r in rows if str(r.get("check", "")).startswith("!!! MISMATCH")}
    assert bad == {"hvp_loop", "hvp_vec", "dense"}  # dense: its n HVPs are the denominator
    assert "!!! MISMATCH" in capsys.readouterr().out
    try:
        status = runner.main(["--quick", "--no-peers", "--only", "second"])
    finally:
        gc.unfreeze()
    assert status == 1
    out = capsys.readouterr().out
    assert "| HVP / gradient, Rosenbrock loop, n = 100 | ≤ 4 | MISMATCH |" in out


def _sparse_hessian(broken=False, colours=3, on_result=True):
    """revad.hessian with a sparse=True made from the dense one, as the sparse route's result
    (a CSR matrix), optionally one entry outside the three bands; the colours it used on the
    result, or in an ``info`` dict on the function."""
    sp = pytest.importorskip("scipy.sparse")
    dense = revad.hessian

    def hessian(f, argnums=0, sparse=False):
        h = dense(f, argnums)
        if not sparse:
            return h

        def hs(x):
            H = h(x)
            if broken:
                H[0, -1] = H[-1, 0] = 1.0
            out = sp.csr_matrix(H)
            if on_result:
                out.n_colors = colours
            return out
        hs.info = {} if on_result else {"colors": np.arange(100) % colours}
        return hs
    return hessian


def test_second_order_sparse_row_reports_colours_and_checks_the_bands(monkeypatch, capsys):
    from benchmarks import second

    monkeypatch.setattr(revad, "hessian", _sparse_hessian())
    rows, record = collect()
    second.Section(revad, _second_args(), record).case("sparse", [])
    sparse, = [r for r in rows if r["case"] == "sparse"]
    assert sparse["check"] == "ok" and sparse["colours"] == 3 and sparse["ratio"] > 0
    assert sparse["nnz"] == 3 * 100 - 2
    assert "3 colours" in capsys.readouterr().out

    monkeypatch.setattr(revad, "hessian", _sparse_hessian(colours=2, on_result=False))
    rows.clear()
    second.Section(revad, _second_args(), record).case("sparse", [])
    sparse, = [r for r in rows if r["case"] == "sparse"]
    assert sparse["check"] == "ok" and sparse["colours"] == 2  # a colour per column, counted

    monkeypatch.setattr(revad, "hessian", _sparse_hessian(broken=True))
    rows.clear()
    second.Section(revad, _second_args(), record).case("sparse", [])
    sparse, = [r for r in rows if r["case"] == "sparse"]
    assert sparse["check"].startswith("!!! MISMATCH")


def test_second_order_sparse_row_without_the_keyword(monkeypatch, capsys):
    from benchmarks import second

    dense = revad.hessian
    monkeypatch.setattr(revad, "hessian", lambda f, argnums=0: dense(f, argnums))
    rows, record = collect()
    second.Section(revad, _second_args(), record).case("sparse", [])
    sparse, = [r for r in rows if r["case"] == "sparse"]
    assert sparse["note"] == second.NOT_AVAILABLE and sparse["target"] == 10.0
    assert "not available in this revad" in capsys.readouterr().out


@pytest.mark.parametrize("peer, cases", [
    ("torch", ("hvp_loop", "hvp_vec", "dense", "gradgrad")),
    # jit and eager share every method but the compile; eager alone runs the loop.
    ("jax jit", ("hvp_vec", "dense", "gradgrad")),
    ("jax eager", ("hvp_loop",))])
def test_second_order_peers_compute_the_same_derivatives(peer, cases):
    """Each peer's second-order calls, at tiny sizes, against the same closed forms."""
    from benchmarks import second

    pytest.importorskip("torch" if peer == "torch" else "jax")
    lib = second.TorchPeer() if peer == "torch" else second.JaxPeer(peer == "jax jit")
    sizes = {"hvp_loop": 4, "hvp_vec": 5, "dense": 3, "gradgrad": 3}
    for case in cases:
        base, other = getattr(lib, case)(sizes[case])
        assert second.check(case, sizes[case], base(), other()) == "ok", (peer, case)
    if peer == "jax jit":
        assert lib.hvp_loop is None  # not run: XLA would compile every op of the loop


def test_second_order_peer_not_installed_says_how_to_install(monkeypatch):
    from benchmarks import second

    def missing(*args):
        raise ImportError("No module named 'torch'")

    monkeypatch.setattr(second, "TorchPeer", missing)
    notes = []
    peers = second.load_peers(log=notes.append)
    assert "torch" in peers  # a name alone: a "not installed" row
    assert "download.pytorch.org/whl/cpu" in notes[0]


def test_second_order_summary_table():
    from benchmarks import summary

    def r(case, impl, n, **kw):
        return {"workload": f"second:{case}", "case": case, "impl": impl, "n": n, **kw}

    rows = [
        r("hvp_loop", "revad", 10_000, time_s=0.08, base_s=0.009, ratio=9.4, target=4.0,
          check="ok"),
        r("hvp_loop", "torch", 1_000, time_s=2.4, base_s=0.9, ratio=2.7, check="ok"),
        r("hvp_loop", "jax jit", 10_000, note="not run: jit compiles each op of the loop"),
        r("hvp_loop", "jax eager", 100, time_s=2.0, base_s=1.7, ratio=1.2, check="ok"),
        r("hvp_vec", "revad", 10**6, time_s=1.4, base_s=0.04, ratio=34.0, target=4.0,
          check="ok"),
        r("hvp_vec", "torch", 10**6, note="not installed"),
        r("hvp_vec", "jax jit", 10**6, time_s=0.004, base_s=0.004, ratio=1.0,
          check="!!! MISMATCH: rel err 1"),
        r("sparse", "revad", 10_000, note="not available in this revad", target=10.0),
        r("dense", "revad", 100, time_s=0.1, base_s=0.1, ratio=1.02, target=1.2, check="ok"),
        r("gradgrad", "revad", 100, time_s=1e-4, base_s=1e-5, ratio=11.0, check="ok",
          ns_per_entry=110.0, entries=903),
    ]
    lines = summary.second_order_lines(rows)
    assert lines[:2] == ["| second order | target | revad | PyTorch | JAX |",
                         "| --- | ---: | ---: | ---: | ---: |"]
    assert lines[2] == ("| HVP / gradient, Rosenbrock loop, n = 10,000 | ≤ 4 | 9.4x (80 ms) | "
                        "2.7x (2.4 s), n = 1,000 | 1.2x (2 s), eager, n = 100 |")
    # Neither of JAX's ran on the loop: why (eager's note, which has the time, before jit's).
    loop = [r("hvp_loop", "revad", 100, time_s=1e-3, base_s=1e-4, ratio=10.0, target=4.0,
              check="ok"),
            r("hvp_loop", "jax jit", 100, note="not run: jit compiles each op of the loop")]
    assert summary.second_order_lines(loop)[2].endswith(
        "| not run: jit compiles each op of the loop |")
    loop.append(r("hvp_loop", "jax eager", 10, note="not run: ~7 s a call at n = 10 (budget 1 s)"))
    assert summary.second_order_lines(loop)[2].endswith(
        "| not run: ~7 s a call at n = 10, eager |")
    assert lines[3] == ("| HVP / gradient, Rosenbrock NumPy, n = 1,000,000 | ≤ 4 | 34x (1.4 s) | "
                        "not installed | MISMATCH |")
    assert lines[4] == ("| sparse Hessian / gradient, Rosenbrock loop, n = 10,000 | ≤ 10 | "
                        "not available in this revad | – | – |")
    assert lines[5].startswith("| dense Hessian / n HVPs, x'Ax/2 + log-sum-exp, n = 100 | ≤ 1.2 "
                               "| 1x (100 ms) |")
    assert lines[6] == ("| grad(grad(f)), chain of scalar ops, 400 ops | – | "
                        "110 ns/entry (11x grad) | – | – |")
    text = summary.summary_markdown(rows, info={})
    assert "| second order |" in text and summary.SECOND_LEGEND in text
    assert "| workload |" not in text  # no first-order rows in this run: no empty table
    assert summary.second_order_lines([]) == []


def test_paired_times_each_side_over_the_same_rounds():
    from benchmarks import timing

    calls = {"base": 0, "other": 0}

    def base():
        calls["base"] += 1

    def other():
        calls["other"] += 1
        timing.settle(2e-4)

    p = timing.paired(base, other, repeat=3, batch_s=1e-9, first=(1e-4, 1e-4))
    assert calls == {"base": 3, "other": 3}  # `first` given: no warm-up, no sizing calls
    assert p.other >= 2e-4 and p.other > p.base and p.ratio > 1
    timing.paired(base, other, repeat=3, batch_s=1e-9, first=(1e-4, 1e-4), warm_each=True)
    assert calls == {"base": 9, "other": 9}  # one untimed call before each batch
    assert timing.paired_ratio(base, other, repeat=3) > 1


def test_compiled_section_checks_every_row_and_runs_without_its_peers(capsys, monkeypatch):
    """--only replay (benchmarks/compiled.py): every row's gradient is checked, and a missing
    peer (CasADi, JAX) is a note in its cell, not a failure."""
    from benchmarks import compiled

    monkeypatch.setattr(compiled, "_casadi_eval", lambda n: None)
    monkeypatch.setattr(compiled, "_jax_neuron", lambda: None)
    rows, record = collect()
    compiled.run(revad, argparse.Namespace(only={"replay"}, quick=True, repeat=1), record)
    out = capsys.readouterr().out
    assert "[replay]" in out and "MISMATCH" not in out and "not installed" in out
    assert [r["case"] for r in rows] == ["rosenbrock", "rosenbrock_hvp", "rosenbrock_np_hvp",
                                         "neuron", "rosenbrock_vec", "logreg", "mlp",
                                         "mlp, batch 32", "gmm", "batch"]
    assert all(r["check"] == "ok" for r in rows)
    first = rows[0]
    assert first["casadi_eval_to_plain"] is None and first["compiled_to_plain"] > 0
    assert first["forward_ns_per_entry"] > 0 and first["bytes_per_entry"] > 16
    assert rows[1]["hvp_to_eager"] > 0 and rows[2]["hvp_to_grad"] > 0
    assert rows[3]["jax_jit_s"] is None and rows[3]["compiled_s"] > 0
    assert plots.peer_groups(rows) == {}
    rows.clear()
    compiled.run(revad, argparse.Namespace(only={"modes"}, quick=True, repeat=1), record)
    assert rows == []
