"""PNG charts of a benchmark run (``python -m benchmarks --plots [DIR]``), drawn from the rows
the runner records. matplotlib is optional: without it the text tables are all there is.

* ``benchmark_peers.png``: time per workload, one bar per library, log scale.
* ``benchmark_modes.png``: the whole gradient by forward mode (n jvps) and reverse mode, vs n.
* ``benchmark_accuracy.png``: error of forward differences against step size, and revad's.
"""
import os

# revad's errors are often exactly 0; a log axis shows them at this floor, marked as such.
_ZERO_FLOOR = 1e-17
PRODUCT_SCALE = 10_000  # the product microbenchmark is drawn per this many products


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def peer_groups(records):
    """{(workload, n) label: {library: seconds}} from the runner's rows, in run order."""
    groups = {}
    for r in records:
        w = r.get("workload")
        if w in ("modes", "accuracy", "replay") or "note" in r:
            continue
        n = r.get("n")  # array workloads have a fixed size in their name
        if r["impl"] == "revad" and n is not None:
            seconds = r.get("value_and_grad_s", r.get("record_s"))
        else:
            seconds = r.get("seconds")
        if seconds is None:
            continue
        if w == "product":
            label = f"product\n(per {PRODUCT_SCALE:,} ops)"
            seconds = seconds / n * PRODUCT_SCALE
        else:
            label = w if n is None else f"{w}\nn={n:,}"
        lib = groups.setdefault(label, {})
        lib[r["impl"]] = lib.get(r["impl"], 0.0) + seconds  # casadi: build + eval
    return groups


def plot_peers(plt, records, path):
    groups = peer_groups(records)
    if not groups:
        return None
    libs = []
    for g in groups.values():
        libs += [lib for lib in g if lib not in libs]
    libs.sort(key=lambda lib: lib != "revad")
    fig, ax = plt.subplots(figsize=(max(8.0, 1.4 * len(groups) + 2), 4.8))
    width = 0.8 / len(libs)
    cmap = plt.get_cmap("tab20")
    for j, lib in enumerate(libs):
        xs = [i + (j - (len(libs) - 1) / 2) * width
              for i, g in enumerate(groups.values()) if lib in g]
        ys = [g[lib] for g in groups.values() if lib in g]
        ax.bar(xs, ys, width, label=lib, color=cmap(j % 20),
               edgecolor="black" if lib == "revad" else "none", linewidth=0.8)
    ax.set_yscale("log")
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(list(groups), fontsize=8)
    ax.set_ylabel("seconds per call (log scale)")
    ax.set_title("Time per workload, lower is better (value and gradient; casadi: build + eval;\n"
                 "a missing bar: not run or skipped)", fontsize=10)
    ax.grid(axis="y", which="major", alpha=0.3)
    ax.legend(fontsize=8, ncol=2, frameon=False)
    return _save(plt, fig, path)


def plot_modes(plt, records, path):
    rows = [r for r in records if r.get("workload") == "modes"]
    if not rows:
        return None
    n = [r["n"] for r in rows]
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    ax.plot(n, [r["forward_jvp_s"] for r in rows], "o-", label="forward: n calls of jvp")
    ax.plot(n, [r["reverse_s"] for r in rows], "s-", label="reverse: one value_and_grad")
    ax.plot(n, [r["tangent_sweeps_s"] for r in rows], "o--", label="n tangent sweeps (one tape)")
    ax.plot(n, [r["reverse_sweep_s"] for r in rows], "s--", label="one reverse sweep (one tape)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("n inputs (extended Rosenbrock, ~8n ops)")
    ax.set_ylabel("seconds for the whole gradient")
    ax.set_title("Forward mode needs n sweeps, reverse mode one", fontsize=10)
    ax.grid(which="major", alpha=0.3)
    ax.legend(fontsize=8, frameon=False)
    return _save(plt, fig, path)


def plot_accuracy(plt, records, path):
    rows = [r for r in records if r.get("workload") == "accuracy"]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(6.8, 4.6))
    cmap = plt.get_cmap("tab20")
    for k, r in enumerate(rows):
        color = cmap(k % 10)
        ax.plot(r["steps"], [max(e, _ZERO_FLOOR) for e in r["fd_rel_errors"]], "o-", ms=3,
                color=color, label=f"{r['function']}: forward difference")
        ax.axhline(max(r["revad_rel_error"], _ZERO_FLOOR), color=color, ls="--", lw=1)
    ax.plot([], [], "k--", lw=1, label="revad (dashed; 1e-17 means exact)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylim(_ZERO_FLOOR / 3, 3.0)
    ax.invert_xaxis()
    ax.set_xlabel("step h of (f(x+h) - f(x)) / h")
    ax.set_ylabel("relative error of df/dx")
    ax.set_title("Numerical differentiation vs revad", fontsize=10)
    ax.grid(which="major", alpha=0.3)
    ax.legend(fontsize=7, frameon=False, loc="center left", bbox_to_anchor=(0.0, 0.42))
    return _save(plt, fig, path)


def _save(plt, fig, path):
    """Write the figure as a PNG at path and free it; returns path."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_all(records, outdir, log=print):
    """Write every chart the records allow into outdir; returns the paths written."""
    try:
        plt = _pyplot()
    except ImportError:
        log("note: matplotlib is not installed, so no plots were drawn "
            "(pip install matplotlib); the tables above have every number")
        return []
    os.makedirs(outdir, exist_ok=True)
    written = []
    for name, draw in (("benchmark_peers.png", plot_peers), ("benchmark_modes.png", plot_modes),
                       ("benchmark_accuracy.png", plot_accuracy)):
        path = draw(plt, records, os.path.join(outdir, name))
        if path:
            log(f"plot written to {path}")
            written.append(path)
    return written
