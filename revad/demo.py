"""The seed's two worked examples, run: ``python -m revad.demo [--out DIR] [--format svg|png]``.

Prints every node's forward value and then its gradient, in the order the seed's figures give
them, and draws both computation graphs (``example1``, ``example2`` and ``example2_sigmoid``
in DIR, the current directory by default) with Graphviz when it is installed, or writes their
DOT text when it is not.
"""
import argparse
import math
import os
import sys

import revad
from revad import Var
from revad._graph import GraphvizNotFound


def _fmt(v, digits):
    return f"{v:.{digits}f}".rstrip("0").rstrip(".") if digits else f"{v:g}"


def _rows(rows, digits=0):
    width = max(len(name) for name, _ in rows)
    return [f"    {name:<{width}} = {_fmt(v, digits)}" for name, v in rows]


def example1():
    """z = 2xy + y + 3 at x = 40, y = 4; then with weight w = 2 and bias b = 3 as variables.
    Returns (printed lines, [(file stem, output Var, names)])."""
    x, y = Var(40.0), Var(4.0)
    two_x = 2 * x
    two_xy = two_x * y
    s = two_xy + y
    z = s + 3
    lines = ["Example 1: z = 2xy + y + 3 at x = 40, y = 4",
             "  forward pass (every node's value is saved on the tape):"]
    lines += _rows([("2x", two_x.value), ("2x * y", two_xy.value), ("2xy + y", s.value),
                    ("2xy + y + 3 = z", z.value)])
    z.backward()
    lines.append("  backward pass (one sweep from z; each node passes dz/dnode down):")
    lines += _rows([("dz/dz", z.grad), ("dz/d(2xy + y)", s.grad), ("dz/d(2xy)", two_xy.grad),
                    ("dz/d(2x)", two_x.grad), ("dz/dx", x.grad), ("dz/dy", y.grad)])
    lines.append("    (by hand: dz/dx = 2y = 8, dz/dy = 2x + 1 = 81)")

    x, y, w, b = Var(40.0), Var(4.0), Var(2.0), Var(3.0)
    z = w * x * y + y + b
    z.backward()
    lines.append("  with the weight w = 2 and the bias b = 3 as variables, z = wxy + y + b:")
    lines += _rows([("dz/dx", x.grad), ("dz/dy", y.grad), ("dz/dw", w.grad), ("dz/db", b.grad)])
    lines.append("    (by hand: dz/dw = xy = 160, dz/db = 1)")
    return lines, [("example1", z, {"x": x, "y": y, "w": w, "b": b, "z": z})]


def example2():
    """The CS231n neuron f(w, x) = 1 / (1 + exp(-(w0 x0 + w1 x1 + w2))) at w = (2, -3, -3),
    x = (-1, -2), node by node and as one sigmoid node."""
    w = [Var(2.0), Var(-3.0), Var(-3.0)]
    x = [Var(-1.0), Var(-2.0)]
    p0, p1 = w[0] * x[0], w[1] * x[1]
    s = p0 + p1
    t = s + w[2]
    neg = -t
    e = revad.exp(neg)
    d = 1 + e
    f = 1 / d
    lines = ["Example 2: the CS231n neuron f(w, x) = 1 / (1 + exp(-(w0 x0 + w1 x1 + w2)))",
             "           at w = (2, -3, -3), x = (-1, -2)",
             "  forward pass:"]
    nodes = [("w0 x0", p0), ("w1 x1", p1), ("w0 x0 + w1 x1", s), ("s = w0 x0 + w1 x1 + w2", t),
             ("-s", neg), ("exp(-s)", e), ("1 + exp(-s)", d), ("f = 1 / (1 + exp(-s))", f)]
    lines += _rows([(name, v.value) for name, v in nodes], 3)
    f.backward()
    lines.append("  backward pass (df/dnode, from the output back):")
    lines += _rows([(f"df/d{name.split(' = ')[0] if ' = ' in name else '(' + name + ')'}", v.grad)
                    for name, v in reversed(nodes)], 3)
    lines.append(f"    df/dw = ({', '.join(f'{v.grad:.3f}' for v in w)})")
    lines.append(f"    df/dx = ({', '.join(f'{v.grad:.3f}' for v in x)})")
    names = {"w0": w[0], "w1": w[1], "w2": w[2], "x0": x[0], "x1": x[1], "f": f}

    ws = [Var(2.0), Var(-3.0), Var(-3.0)]
    xs = [Var(-1.0), Var(-2.0)]
    fs = revad.sigmoid(ws[0] * xs[0] + ws[1] * xs[1] + ws[2])
    fs.backward()
    same = all(math.isclose(a.grad, b.grad, rel_tol=1e-12)
               for a, b in zip(ws + xs, w + x, strict=True))
    lines.append("  the same neuron as one sigmoid node, whose local gradient y(1 - y) = "
                 f"{fs.value * (1 - fs.value):.3f}")
    lines.append("  comes from its saved output y:")
    lines.append(f"    f = {fs.value:.3f}, df/dw = ({', '.join(f'{v.grad:.3f}' for v in ws)}), "
                 f"df/dx = ({', '.join(f'{v.grad:.3f}' for v in xs)})")
    verdict = "the same gradients as the decomposed graph" if same else "DIFFERENT gradients!"
    lines.append(f"    {verdict}")
    names_s = {"w0": ws[0], "w1": ws[1], "w2": ws[2], "x0": xs[0], "x1": xs[1], "f": fs}
    return lines, [("example2", f, names), ("example2_sigmoid", fs, names_s)]


def main(argv=None):
    """Print both examples and draw their graphs; returns the exit status."""
    p = argparse.ArgumentParser(prog="python -m revad.demo",
                                description="The seed's two worked examples: every node's value "
                                            "and gradient, printed in the seed's order, and the "
                                            "graphs drawn with Graphviz.")
    p.add_argument("--out", default=".", metavar="DIR",
                   help="folder for the graph images (default: the current directory)")
    p.add_argument("--format", default="svg",
                   help="image format for Graphviz: svg (default), png, pdf")
    p.add_argument("--no-draw", action="store_true", help="print the numbers only")
    args = p.parse_args(argv)

    graphs = []
    for i, example in enumerate((example1, example2)):
        lines, drawn = example()
        if i:
            print()
        print("\n".join(lines))
        graphs += drawn
    if args.no_draw:
        return 0
    os.makedirs(args.out, exist_ok=True)
    print()
    fmt = args.format.lower()
    for stem, y, names in graphs:
        path = os.path.join(args.out, f"{stem}.{fmt}")
        precision = 6 if stem == "example1" else 3
        try:
            revad.draw(y, path, names, precision=precision)
        except GraphvizNotFound as exc:
            if fmt in ("dot", "gv"):
                raise
            print(f"note: {exc}", file=sys.stderr)
            fmt = "dot"
            path = revad.draw(y, os.path.join(args.out, f"{stem}.dot"), names, precision=precision)
        print(f"graph: wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
