"""The run's headline ratios as one short Markdown table, to paste into an issue.

One row for the scalar loop (extended Rosenbrock at the largest n the peers ran) and one per
array workload. The first column is revad's cost over the function alone; each peer's column
is that peer's time over revad's for the same value and gradient (above 1: revad is faster).
"""
import platform

from .modes import _fmt_time
from .peers import TORCH_CPU
from .progress import fmt_duration

SCALAR = "rosenbrock"

# (column header, the scalar-loop peer's name, the array library's name); None: not compared.
COLUMNS = [
    ("micrograd", "micrograd", None),
    ("autograd", "autograd", "autograd"),
    ("mygrad", None, "mygrad"),
    ("PyTorch", "torch (0-d tensors)", "torch eager"),
    ("JAX", "jax (eager)", "jax jit"),
    ("CasADi", "casadi SX", None),
]

ARRAY_TITLES = {
    "rosenbrock_vec": "Rosenbrock, NumPy code",
    "logreg": "logistic regression",
    "mlp": "MLP, batch 256",
    "gmm": "GMM log-likelihood",
}

LEGEND = (
    "revad vs plain: revad's value and gradient over the function alone (plain floats for the "
    "loop, NumPy for the array code). Peer columns: the peer's value and gradient over revad's "
    "(above 1: revad is faster); JAX is eager on the loop and jit-compiled on arrays, PyTorch "
    "uses 0-d tensors on the loop, CasADi's time is building its graph plus one evaluation.")

TORCH_HINT = ("PyTorch is not in the `bench` extra (PyPI's default torch on Linux is a "
              "multi-GB CUDA build); to compare it, install a CPU build: " + TORCH_CPU)


PEER_DISTRIBUTIONS = ("micrograd", "autograd", "mygrad", "torch", "jax", "jaxlib", "casadi")


def peer_versions():
    """{distribution: version} of the peers installed here."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for dist in PEER_DISTRIBUTIONS:
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            pass
    return out


def fmt_ratio(x):
    """1,570x / 46x / 3.4x / 0.67x."""
    if x >= 100:
        return f"{x:,.0f}x"
    if x >= 10:
        return f"{x:.0f}x"
    return f"{x:.2g}x"


def _bad(rows):
    return any(str(r.get("check", "")).startswith("!!!") for r in rows)


def scalar_row(records, unavailable, peers_run):
    """(title, cells) for the scalar loop, or None if it did not run."""
    revad = {r["n"]: r for r in records
             if r.get("workload") == SCALAR and r.get("impl") == "revad" and "n" in r}
    if not revad:
        return None
    stages = {}  # (library, n) -> its stage rows
    skipped = {}  # library -> (n, estimated seconds a call) of its smallest row skipped as slow
    for r in records:
        if r.get("workload") != SCALAR or r.get("impl") == "revad":
            continue
        if "ratio_to_revad" in r:
            stages.setdefault((r["impl"], r["n"]), []).append(r)
        elif r.get("estimate_s") is not None:
            skipped.setdefault(r["impl"], (r["n"], r["estimate_s"]))
    ran = [n for (_, n) in stages if n in revad]
    n = max(ran) if ran else max(revad)
    cells = [fmt_ratio(revad[n]["ratio_to_plain"]) + (" !!!" if _bad([revad[n]]) else "")]
    for _, name, _ in COLUMNS:
        if name is None:
            cells.append("")
            continue
        sizes = sorted(m for (lib, m) in stages if lib == name and m in revad)
        if n in sizes or sizes:
            m = n if n in sizes else sizes[-1]
            rows = stages[(name, m)]
            cell = fmt_ratio(sum(r["ratio_to_revad"] for r in rows))
            if m != n:
                cell += f" (n = {m:,})"
            if _bad(rows):
                cell = "MISMATCH"
            cells.append(cell)
        elif name in unavailable:
            cells.append("not installed")
        elif name in skipped:
            m, est = skipped[name]
            cells.append(f"not run: ~{est:.0f} s a call at n = {m:,}" if est >= 10 else
                         f"not run: ~{est:.2g} s a call at n = {m:,}")
        else:
            cells.append("" if not peers_run else "-")
    return f"Rosenbrock loop, n = {n:,}", cells


def array_rows(records, unavailable, peers_run):
    """[(title, cells)] for each array workload that ran."""
    out = []
    by_workload = {}
    for r in records:
        if r.get("workload") in ARRAY_TITLES and "impl" in r:
            by_workload.setdefault(r["workload"], {})[r["impl"]] = r
    for w, title in ARRAY_TITLES.items():
        libs = by_workload.get(w, {})
        revad = libs.get("revad")
        if revad is None or "ratio" not in revad:
            continue
        cells = [fmt_ratio(revad["ratio"]) + (" !!!" if _bad([revad]) else "")]
        for _, _, name in COLUMNS:
            peer = libs.get(name) if name else None
            if name is None:
                cells.append("")
            elif peer is not None and "ratio" in peer:
                if _bad([peer]):
                    cells.append("MISMATCH")
                elif peer.get("revad_over_peer"):  # revad and the peer timed in the same rounds
                    cells.append(fmt_ratio(1.0 / peer["revad_over_peer"]))
                else:
                    cells.append(fmt_ratio(peer["ratio"] / revad["ratio"]))
            elif name in unavailable:
                cells.append("not installed")
            else:
                cells.append("" if not peers_run else "-")
        out.append((title, cells))
    return out


SECOND_TITLES = {
    "hvp_loop": "HVP / gradient, Rosenbrock loop",
    "hvp_vec": "HVP / gradient, Rosenbrock NumPy",
    "sparse": "sparse Hessian / gradient, Rosenbrock loop",
    "dense": "dense Hessian / n HVPs, x'Ax/2 + log-sum-exp",
    "gradgrad": "grad(grad(f)), chain of scalar ops",
}

SECOND_LEGEND = (
    "Second order: each library's second-order call over its own first-order work, in paired "
    "rounds (time of the second-order call in brackets): an HVP (revad.hvp; PyTorch's double "
    "backward; JAX's jvp(grad(f))) over a gradient; revad.hessian(f, sparse=True) over a "
    "gradient (colours used); a dense Hessian (torch.func.hessian, jax.hessian) over n HVPs; "
    "grad(grad(f)) of a chain of scalar ops in ns per entry of revad's tape (every library's "
    "time over the same count) and over grad(f). Every result is checked against a closed form.")


def _second_cell(r, n):
    """'2.4x (82 ms)', with the size where it is not the row's, or the row's note."""
    if r is None:
        return ""
    where = [] if r["impl"] in ("revad", "torch") else [r["impl"].split()[-1]]
    if "ratio" not in r:
        note = r.get("note", "")
        if note in ("not installed", "not available in this revad"):
            return note
        note = note.split(" (budget")[0] or "not run"
        return ", ".join([note, *(w for w in where if w not in note)])
    if _bad([r]):
        return "MISMATCH"
    if "ns_per_entry" in r:
        cell = f"{r['ns_per_entry']:,.0f} ns/entry ({fmt_ratio(r['ratio'])} grad)"
    else:
        cell = f"{fmt_ratio(r['ratio'])} ({_fmt_time(r['time_s'])})"
    if r["n"] != n:
        where.append(f"n = {r['n']:,}")
    if r.get("colours") is not None:
        where.append(f"{r['colours']} colours")
    elif r.get("nnz", -1) >= 0:
        where.append(f"nnz {r['nnz']:,}")
    return cell + (f", {', '.join(where)}" if where else "")


def second_order_lines(records):
    """The second-order section's table (benchmarks/second.py) as Markdown lines, or []."""
    cases = {}
    for r in records:
        if str(r.get("workload", "")).startswith("second:"):
            cases.setdefault(r["case"], {}).setdefault(r["impl"], r)
    if not cases:
        return []
    lines = ["| second order | target | revad | PyTorch | JAX |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for case, title in SECOND_TITLES.items():
        libs = cases.get(case)
        if not libs or "revad" not in libs:
            continue
        revad = libs["revad"]
        n = revad["n"]
        size = f"{4 * n} ops" if case == "gradgrad" else f"n = {n:,}"
        target = revad.get("target")
        # JAX's jit where it ran, else eager; else why neither ran (eager's note has the time).
        jax = next((libs[k] for k in ("jax jit", "jax eager") if "ratio" in libs.get(k, {})),
                   libs.get("jax eager", libs.get("jax jit")))
        cells = [f"{title}, {size}", "–" if target is None else f"≤ {target:g}",
                 _second_cell(revad, n), _second_cell(libs.get("torch"), n),
                 _second_cell(jax, n)]
        lines.append("| " + " | ".join(c or "–" for c in cells) + " |")
    return lines


def summary_markdown(records, *, info, unavailable=(), peers_run=True, quick=False, wall_s=None):
    """The summary as Markdown text: a line on the machine, the table, the legend."""
    unavailable = set(unavailable)
    rows = []
    scalar = scalar_row(records, unavailable, peers_run)
    if scalar:
        rows.append(scalar)
    rows += array_rows(records, unavailable, peers_run)
    second = second_order_lines(records)
    if not rows and not second:
        return ""
    # Columns that hold nothing in any row go: a peer that no workload of this run compares (the
    # loop's or the arrays' alone, by --only), every peer with --no-peers.
    keep = [0] + [j + 1 for j in range(len(COLUMNS)) if any(r[1][j + 1] for r in rows)]
    headers = ["workload", "revad vs plain"] + [h for h, _, _ in COLUMNS]
    headers = [headers[0]] + [headers[j + 1] for j in keep]
    lines = ["| " + " | ".join(headers) + " |",
             "| --- | " + " | ".join("---:" for _ in keep) + " |"]
    for title, cells in rows:
        lines.append("| " + " | ".join([title] + [cells[j] or "–" for j in keep]) + " |")
    about = [f"revad {info.get('revad_version', '?')}", f"Python {info.get('python', '?')}",
             f"NumPy {info.get('numpy', '?')}", f"{platform.system()} {platform.machine()}",
             f"{info.get('cores', '?')} cores ({info.get('cpu', '?')})"]
    run = "quick run (tiny sizes: the ratios say little)" if quick else "full run"
    if wall_s is not None:
        run += f", {fmt_duration(wall_s)}"
    text = ["### revad benchmark summary", "",
            ", ".join(about) + "; " + run + ".",
            ]
    versions = peer_versions()
    if versions and peers_run:
        text.append("Peers: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + ".")
    if rows:
        text += ["", *lines, "", LEGEND]
    if second:
        text += ["", *second, "", SECOND_LEGEND]
    if "torch (0-d tensors)" in unavailable or "torch eager" in unavailable:
        text += ["", TORCH_HINT + "."]
    return "\n".join(text)
