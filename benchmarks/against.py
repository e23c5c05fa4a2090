"""revad here against revad in another built tree (a git worktree of an older commit), paired.

    git worktree add ../base HEAD~1 && (cd ../base && python setup.py build_ext --inplace)
    python -m benchmarks.against ../base --only seed2,rosenbrock,gmm --rounds 5

Each round runs this tree's benchmark code (``python -m benchmarks --no-peers``) twice in fresh
processes, once importing this tree's revad and once the other tree's, in alternating order, so
that a busy spell on a shared machine falls on both sides alike. For every timed quantity it
prints the median over rounds of the ratio this / other (below 1: this tree is faster) and the
range of the ratios: a change is real only where the range excludes 1.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# What is timed in a result row, in seconds (second.py's rows: time_s the second-order call,
# base_s its denominator).
TIMES = ("record_s", "backward_s", "value_and_grad_s", "seconds", "reverse_s", "forward_jvp_s",
         "list_s", "ndarray_s", "time_s", "base_s")
_RUN = ("import sys; sys.argv[0] = 'benchmarks'; root = sys.argv.pop(1)\n"
        "if root: sys.path.insert(0, root)\n"
        "from benchmarks.__main__ import main; sys.exit(main(sys.argv[1:]))")


def run_once(tree, args, out):
    """One benchmark run importing revad from `tree` ('' for this one); its JSON rows."""
    cmd = [sys.executable, "-c", _RUN, tree, "--no-peers", "--json", out,
           "--repeat", str(args.repeat)]
    cmd += ["--only", args.only] if args.only else []
    cmd += ["--quick"] if args.quick else []
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"the run importing revad from {tree or ROOT} failed:\n{done.stderr[-2000:]}")
    with open(out) as fh:
        data = json.load(fh)
    return data["machine"].get("revad", "?"), data["results"]


def keyed(rows):
    """{(workload, impl, size or loop, quantity): seconds} for the timed quantities."""
    out = {}
    for r in rows:
        where = r.get("n", r.get("loop", ""))
        for q in TIMES:
            if isinstance(r.get(q), float) and r[q] > 0:
                out[(r["workload"], r["impl"], str(where), q)] = r[q]
    return out


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.against", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("other", help="the root of another revad tree, built in place")
    p.add_argument("--rounds", type=int, default=5, help="paired rounds (default 5)")
    p.add_argument("--repeat", type=int, default=3, help="samples per measurement in a run")
    p.add_argument("--only", help="workloads, comma-separated (see python -m benchmarks -h)")
    p.add_argument("--quick", action="store_true", help="the benchmark's tiny sizes")
    args = p.parse_args(argv)
    other = os.path.abspath(args.other)
    ratios, names = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.rounds):
            order = [("this", ""), ("other", other)]
            got = {}
            for side, tree in order if k % 2 == 0 else order[::-1]:
                print(f"round {k + 1}/{args.rounds}: {side}", file=sys.stderr, flush=True)
                names[side], rows = run_once(tree, args, os.path.join(tmp, f"{side}.json"))
                got[side] = keyed(rows)
            for key in got["this"].keys() & got["other"].keys():
                ratios.setdefault(key, []).append(got["this"][key] / got["other"][key])
    print(f"this:  {names['this']}\nother: {names['other']}\n")
    print("| workload | impl | n / loop | time | this / other (median) | range |")
    print("| --- | --- | --- | --- | --- | --- |")
    for key in sorted(ratios):
        r = ratios[key]
        print(f"| {' | '.join(key)} | {statistics.median(r):.3f} | {min(r):.3f}-{max(r):.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
