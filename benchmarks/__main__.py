"""Benchmark revad against the same code on plain floats and against other AD libraries.

Run from the repository root: ``python -m benchmarks [--quick] [--repeat N]
[--only NAME] [--no-peers] [--json PATH] [--plots [DIR]]``. For each workload it times revad
(recording, backward, value_and_grad), the same code on plain floats, and every
installed peer library, checks every gradient against the analytic one, and
prints aligned tables; then forward vs reverse mode and numerical vs automatic
accuracy (modes.py), second order beside PyTorch's and JAX's (second.py), and with --plots,
PNG charts (plots.py, needs matplotlib). It ends with a Markdown table of the headline ratios
(summary.py); what it is timing meanwhile goes to stderr (progress.py). The README's main
command installs the peers: pip install ".[bench]".
"""
import argparse
import gc
import json
import math
import os
import platform
import sys
import time

import numpy as np

from . import arrays as arrays_mod
from . import compiled, modes, plots, progress, scalar_args, second, summary
from . import peers as peers_mod
from .timing import measure, paired_ratio
from .workloads import WORKLOADS, products

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the repository root
RTOL = 1e-8
PEER_ROW_BUDGET_S = 10.0  # a peer row expected to take longer is skipped
QUICK_PEER_ROW_BUDGET_S = 1.0
SLOW_CALL_S = 1.0  # calls longer than this get no warm-up run


def machine_info():
    """Platform, CPU model, core count and Python version, as a dict."""
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": sys.version.split()[0] + " (" + platform.python_implementation() + ")",
        "numpy": np.__version__,
    }


def import_revad(root=None):
    """revad: the source tree's when it is built (an editable install, an in-place build), else
    the installed one.

    ``python -m benchmarks`` runs from the repository root, and Python puts that folder first on
    sys.path, so ``import revad`` finds the source tree's revad/ before the installed package.
    After ``pip install .`` that folder holds no compiled modules (the build put them in the
    installed copy only) and the import fails; then the repository root is left out of sys.path
    for this one import, and the installed revad is taken. (``root``: the folder to leave
    aside, by default the repository root.)"""
    try:
        import revad
        return revad
    except ImportError as exc:
        first = exc
    root = os.path.abspath(root or ROOT)
    for name in [m for m in sys.modules if m == "revad" or m.startswith("revad.")]:
        del sys.modules[name]  # what the failed import of the source tree's revad left
    saved = sys.path[:]
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != root]
    try:
        import revad
    except ImportError as exc:
        raise ImportError(f"the source tree's revad/ is not built ({first}), and no other revad "
                          f"is installed ({exc})") from None
    finally:
        sys.path[:] = saved
    return revad


def fmt_time(s):
    """Seconds as a short string with a unit."""
    if s is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if s >= scale:
            return f"{s / scale:.3g} {unit}"
    return f"{s / 1e-9:.3g} ns"


def fmt_num(x):
    """A number with 3 significant digits, without exponent notation when >= 100."""
    if x is None:
        return "-"
    return f"{x:.0f}" if abs(x) >= 100 else f"{x:.3g}"


def check(got, ref):
    """'ok' if value and gradient match the reference to RTOL, else a loud MISMATCH."""
    if got is None or ref is None:
        return "-"
    (v, g), (rv, rg) = got, ref
    g = np.asarray(g, dtype=np.float64)
    if g.shape != rg.shape:
        return f"!!! MISMATCH: gradient shape {g.shape} != {rg.shape}"
    scale = max(1.0, float(np.max(np.abs(rg))))
    verr = abs(float(v) - rv) / max(1.0, abs(rv))
    gerr = float(np.max(np.abs(g - rg))) / scale if g.size else 0.0
    if not (verr <= RTOL and gerr <= RTOL):  # also catches NaN
        return f"!!! MISMATCH: rel err value {verr:.2g}, grad {gerr:.2g}"
    return "ok"


def tape_info(revad, y):
    """revad's own tape size for the graph ending at y, {'n_ops', 'nbytes'}, or None."""
    getter = (getattr(getattr(revad, "_core", None), "_tape_info", None)
              or getattr(revad, "tape_info", None))
    try:
        if getter is not None:
            return dict(getter(y))
        if hasattr(revad.Var, "tape_info"):
            info = y.tape_info
            return dict(info() if callable(info) else info)
    except Exception:  # an optional diagnostic: never fail the run for it
        return None
    return None


def timed(fn, **kwargs):
    """measure() after a full collection, so that garbage left by the previous
    measurement (say micrograd's cycles) is not collected at this one's expense."""
    gc.collect()
    return measure(fn, **kwargs)


class Table:
    """Prints rows as they come, in fixed-width columns."""

    def __init__(self, columns):
        self.columns = columns  # (header, width); negative width = left-aligned

    def header(self):
        self.row([h for h, _ in self.columns])

    def row(self, cells):
        out = []
        for (_, w), c in zip(self.columns, cells, strict=True):
            c = str(c)
            out.append(c.ljust(-w) if w < 0 else c.rjust(w))
        print("  ".join(out).rstrip(), flush=True)


REVAD_TABLE = Table([("revad n", 9), ("ops", 9), ("record", 9), ("backward", 9),
                     ("value&grad", 10), ("rec ns/op", 9), ("bwd ns/op", 9),
                     ("B/op", 5), ("plain", 9), ("v&g/plain", 11), ("check", -4)])
PEER_TABLE = Table([("peer n", 9), ("library", -20), ("stage", -5), ("time", 9),
                    ("ns/op", 9), ("peer/revad", 10), ("check", -4)])


class Runner:
    """Runs the workloads, prints their tables and keeps every row for --json."""

    def __init__(self, revad, args):
        self.revad = revad
        self.quick = args.quick
        self.repeat = args.repeat or (3 if args.quick else 7)
        self.budget = QUICK_PEER_ROW_BUDGET_S if args.quick else PEER_ROW_BUDGET_S
        self.records = []
        self.mismatches = []

    def record(self, **row):
        self.records.append(row)
        if str(row.get("check", "")).startswith("!!!"):
            self.mismatches.append(row)

    def run_workload(self, w, peer_list):
        sizes = w.quick_sizes if self.quick else w.sizes
        print(f"\n[{w.name}] {w.title}")
        REVAD_TABLE.header()
        revad_runs = {}  # n -> (seconds, ops), what the peers are compared with
        counted = False
        last = None  # (n, wall seconds) of the last row, for the next row's estimate
        for n in sizes:
            bench = self.revad_products if w.fn is None else self.revad_gradient
            # (a row under a second is mostly fixed costs: no estimate from it)
            progress.step(f"{w.name} n={n:,}: revad",
                          last[1] * n / last[0] if last and last[1] > 1.0 else None)
            t0 = time.perf_counter()
            seconds, n_ops, from_tape = bench(w, n)
            last = n, time.perf_counter() - t0
            revad_runs[n] = seconds, n_ops
            counted |= not from_tape
        if counted:
            print("  (ops marked * are counted from the source, leaves + operators: "
                  "revad reports no tape size)")
        if peer_list:
            print()
            PEER_TABLE.header()
            for peer in peer_list:
                self.peer_rows(w, sizes, peer, revad_runs)

    # --- revad ------------------------------------------------------------

    def revad_gradient(self, w, n):
        revad, fn, rep = self.revad, w.fn, self.repeat
        x = w.inputs(n)
        ref = w.reference(x)

        def record():
            return fn([revad.Var(v) for v in x], revad)

        def recorded():
            leaves = [revad.Var(v) for v in x]
            return fn(leaves, revad), leaves

        def backward(state):
            state[0].backward()
            return state

        plain = timed(lambda: fn(x, math), repeat=rep)
        rec = timed(record, repeat=rep)
        bwd = timed(backward, setup=recorded, repeat=rep)
        vg_fn = revad.value_and_grad(lambda xs: fn(xs, revad))
        vg = timed(lambda: vg_fn(x), repeat=rep)
        # The headline ratio: value_and_grad against the plain-float evaluation, timed in turns.
        ratio = paired_ratio(lambda: fn(x, math), lambda: vg_fn(x), repeat=rep)

        y, leaves = bwd.result
        checks = [check((plain.result, ref[1]), ref),  # the plain value
                  check((y.value, [v.grad for v in leaves]), ref),  # Var.backward
                  check(vg.result, ref),  # value_and_grad
                  check((ref[0], revad.grad(lambda xs: fn(xs, revad))(x)), ref)]
        status = next((c for c in checks if c != "ok"), "ok")
        # Free every measured graph first: a shared tape would count them too.
        y = leaves = rec.result = bwd.result = vg.result = None
        gc.collect()
        info = tape_info(revad, fn([revad.Var(v) for v in x], revad))
        n_ops = info["n_ops"] if info else w.n_ops(n)
        bpo = info["nbytes"] / n_ops if info and n_ops else None
        REVAD_TABLE.row([n, f"{n_ops}" + ("" if info else "*"), fmt_time(rec.median),
                         fmt_time(bwd.median), fmt_time(vg.median),
                         fmt_num(rec.median / n_ops * 1e9), fmt_num(bwd.median / n_ops * 1e9),
                         "n/a" if bpo is None else fmt_num(bpo), fmt_time(plain.median),
                         f"{ratio:.3g}x", status])
        self.record(workload=w.name, n=n, impl="revad", n_ops=n_ops, n_ops_from_tape=bool(info),
                    record_s=rec.median, backward_s=bwd.median, value_and_grad_s=vg.median,
                    bytes_per_op=bpo, plain_s=plain.median,
                    ratio_to_plain=ratio, check=status)
        return vg.median, n_ops, bool(info)

    def revad_products(self, w, n):
        revad, rep = self.revad, self.repeat
        a, b = revad.Var(1.5), revad.Var(2.5)
        plain = timed(lambda: products(1.5, 2.5, n), repeat=rep)
        rec = timed(lambda: products(a, b, n), repeat=rep)
        # The last product must still differentiate correctly after n others.
        y = rec.result
        y.backward()
        status = check((y.value, [a.grad, b.grad]), (3.75, np.array([2.5, 1.5])))
        # Per-op bytes from whatever the tape holds at this point (one product if
        # dropped products are freed, n if the tape keeps them).
        info = tape_info(revad, y)
        bpo = info["nbytes"] / info["n_ops"] if info and info.get("n_ops") else None
        del y
        REVAD_TABLE.row([n, n, fmt_time(rec.median), "-", "-",
                         fmt_num(rec.median / n * 1e9), "-", "n/a" if bpo is None else fmt_num(bpo),
                         fmt_time(plain.median), f"{rec.median / plain.median:.3g}x", status])
        self.record(workload=w.name, n=n, impl="revad", n_ops=n, record_s=rec.median,
                    bytes_per_op=bpo, plain_s=plain.median,
                    ratio_to_plain=rec.median / plain.median, check=status)
        return rec.median, n, True

    # --- peers --------------------------------------------------------------

    def peer_rows(self, w, sizes, peer, revad_runs):
        """Time one peer on every size, skipping rows that are capped or too slow."""
        # Products compare per-op cost, so every peer records at most SLOW_MAX_N.
        cap = peers_mod.SLOW_MAX_N if peer.slow or w.fn is None else None
        last = None  # (n, seconds per call, all stages) of the last measured or probed size
        for n in sizes:
            n_peer = n
            if cap and n > cap:
                if w.fn is not None:
                    self.peer_note(w, n, peer, f"skipped: slow peers run n <= {cap}")
                    continue
                n_peer = cap
            if w.fn is None and peer.products(1) is None:
                self.peer_note(w, n, peer, "n/a: no tape outside a grad transformation")
                return
            if last is None and n_peer >= 100:  # also warms the peer up
                progress.step(f"{w.name} n={n_peer // 100:,}: {peer.name} (warm-up, to estimate "
                              f"the time of n={n_peer:,})")
                last = self.probe(w, peer, n_peer // 100)
            est = last[1] * n_peer / last[0] if last else 0.0
            repeat = self.repeat
            if peer.slow or est > SLOW_CALL_S / 2:
                repeat = min(repeat, peers_mod.SLOW_REPEAT)
            if est > 2 * SLOW_CALL_S:
                repeat = 1  # hundreds of times slower than revad: one sample says enough
            warmup = int(est < SLOW_CALL_S)  # long calls: the probe or a smaller row warmed up
            if est * (repeat + warmup) > self.budget:
                self.peer_note(w, n_peer, peer, f"skipped: would take > {self.budget:.0f} s "
                                                f"(~{fmt_time(est)} per call)", estimate_s=est)
                continue
            progress.step(f"{w.name} n={n_peer:,}: {peer.name}", est * (repeat + warmup))
            stages, ref = self.peer_stages(w, peer, n_peer)
            revad_s, revad_ops = revad_runs[n]
            n_ops = revad_ops * n_peer / n  # the same op count as revad's row, for ns/op
            total = 0.0
            for label, fn in stages:
                t = timed(fn, repeat=repeat, warmup=warmup)
                total += t.median
                status = check(t.result, ref)
                # Per-op ratio: a capped peer may have run fewer products than revad.
                ratio = (t.median / n_peer) / (revad_s / n)
                PEER_TABLE.row([n_peer, peer.name, label, fmt_time(t.median),
                                fmt_num(t.median / n_ops * 1e9), f"{ratio:.3g}x", status])
                self.record(workload=w.name, n=n_peer, impl=peer.name, version=peer.version,
                            stage=label, seconds=t.median, ns_per_op=t.median / n_ops * 1e9,
                            ratio_to_revad=ratio, check=status)
            last = (n_peer, total)

    @staticmethod
    def peer_stages(w, peer, n):
        """(stages, reference) for peer on workload w at size n; None if not supported."""
        if w.fn is None:
            record = peer.products(n)
            return None if record is None else ([("record", record)], None)
        x = w.inputs(n)
        return peer.stages(w.fn, x), w.reference(x)

    def probe(self, w, peer, n):
        """(n, seconds per call) from an untimed-for-report run at a small size."""
        stages, _ = self.peer_stages(w, peer, max(n, 2))
        total = sum(timed(fn, repeat=1, warmup=1).median for _, fn in stages)
        return max(n, 2), total

    def peer_note(self, w, n, peer, note, **extra):
        PEER_TABLE.row([n, peer.name, "", "-", "-", "-", note])
        self.record(workload=w.name, n=n, impl=peer.name, note=note, **extra)


def parse_args(argv=None):
    """The command line, with --only resolved to a set of workload names."""
    names = ([w.name for w in WORKLOADS] + [w.name for w in arrays_mod.ARRAY_WORKLOADS]
             + list(modes.SECTIONS) + list(scalar_args.SECTIONS) + list(second.SECTIONS)
             + list(compiled.SECTIONS))
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="tiny sizes: a smoke test (half a minute with the peers; CI runs it)")
    p.add_argument("--repeat", type=int, metavar="N",
                   help="samples per measurement, median reported (default 7, quick 3; "
                        f"slow peers use at most {peers_mod.SLOW_REPEAT})")
    p.add_argument("--only", metavar="NAME", action="append",
                   help=f"run only this workload (repeatable, comma-separated): {', '.join(names)}")
    p.add_argument("--no-peers", action="store_true", help="benchmark revad alone")
    p.add_argument("--json", metavar="PATH", help="also write all results to this JSON file")
    p.add_argument("--plots", nargs="?", const="docs", metavar="DIR",
                   help="also draw PNG charts into DIR (default docs/); needs matplotlib")
    args = p.parse_args(argv)
    if args.repeat is not None and args.repeat < 1:
        p.error("--repeat must be at least 1")
    if args.only:
        wanted = {name.strip() for item in args.only for name in item.split(",") if name.strip()}
        unknown = wanted - set(names)
        if unknown:
            p.error(f"unknown workload(s) {', '.join(sorted(unknown))}; "
                    f"choose from {', '.join(names)}")
        args.only = wanted
    return args


def main(argv=None):
    """Run the benchmarks; returns the exit status (1 if any gradient mismatched)."""
    args = parse_args(argv)
    # Progress goes to stderr; on a terminal it is one status line, erased before each row.
    saved = progress.current, sys.stdout
    progress.current = progress.Progress()
    if progress.current.live and sys.stdout.isatty():
        sys.stdout = progress.ClearingStream(sys.stdout, progress.current)
    try:
        return run(args)
    finally:
        progress.current.clear()
        progress.current, sys.stdout = saved


def run(args):
    start = time.perf_counter()
    info = machine_info()
    for key, val in info.items():
        print(f"{key:>9}: {val}")
    try:
        revad = import_revad()
    except ImportError as exc:
        print(f"error: cannot import revad ({exc}); install it first, from the repository root:\n"
              f"  pip install \".[bench]\" && python -m benchmarks    (or `pip install -e .` to "
              f"develop)", file=sys.stderr)
        return 2
    info["revad_version"] = getattr(revad, "__version__", "?")
    info["revad"] = info["revad_version"] + " at " + os.path.dirname(revad.__file__)
    print(f"{'revad':>9}: {info['revad']}")
    source = os.path.join(ROOT, "revad")
    if os.path.isdir(source) and os.path.dirname(os.path.abspath(revad.__file__)) != source:
        print(f"{'':>9}  (the installed revad: the source tree's revad/ is not built)")

    if not args.no_peers:
        progress.step("importing the peers")
    peer_list = [] if args.no_peers else peers_mod.load_peers()
    unavailable = set() if args.no_peers else (
        {cls.name for cls in peers_mod.ALL_PEERS} - {p.name for p in peer_list})
    # Importing torch and jax leaves ~240k long-lived objects that every full GC
    # pass would rescan (0.2 s each), billing micrograd and autograd for
    # libraries their users never load. Freezing moves what exists now out of
    # the collector's sight; garbage made from here on is collected as usual.
    gc.collect()
    gc.freeze()
    if peer_list:
        print("    peers: " + ", ".join(f"{p.name} {p.version}" for p in peer_list))
        info["peers"] = {p.name: p.version for p in peer_list}
    print("times are medians; ops = entries on revad's tape (leaves included), and every\n"
          "ns/op divides by that count; peer/revad > 1 means revad is faster")

    runner = Runner(revad, args)
    for w in WORKLOADS:
        if not args.only or w.name in args.only:
            runner.run_workload(w, peer_list)
    # The vectorised NumPy workloads (revad.Array), with their own table.
    array_names = {w.name for w in arrays_mod.ARRAY_WORKLOADS}
    if not args.only or args.only & array_names:
        records, bad = arrays_mod.run_arrays(args.only, repeat=min(runner.repeat, 5),
                                             peers=not args.no_peers, quick=args.quick)
        runner.records += records
        runner.mismatches += [r for r in records if r.get("check", "ok") != "ok"]
        unavailable |= {r["impl"] for r in records if r.get("note") == "not installed"}
    modes.run(revad, args, runner.record)
    scalar_args.run(revad, args, runner.record)
    second.run(revad, args, runner.record)
    compiled.run(revad, args, runner.record)

    elapsed = time.perf_counter() - start
    print(f"\ntotal wall time: {elapsed:.1f} s")
    table = summary.summary_markdown(runner.records, info=info, unavailable=unavailable,
                                     peers_run=not args.no_peers, quick=args.quick,
                                     wall_s=elapsed)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"machine": info, "repeat": runner.repeat, "quick": args.quick,
                       "wall_s": elapsed, "results": runner.records, "summary": table},
                      fh, indent=1)
        print(f"results written to {args.json}")
    if args.plots:
        plots.write_all(runner.records, args.plots)
    if table:
        print("\n" + table)
    if runner.mismatches:
        print(f"!!! {len(runner.mismatches)} gradient MISMATCH(es), see the rows marked above")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
