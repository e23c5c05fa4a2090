"""Drawing the computation graph: Graphviz DOT text from a tape's columns, and rendering it.

The compiled core hands over the columns of the tape up to y (``_core._graph_columns``) with
the entries y depends on marked; everything here is text building. One tape entry is one node,
labelled with its op, its saved value and, once ``backward`` has run, its gradient. A Python
number operand is no tape entry but an immediate of the op it feeds: it is drawn as a small
dashed node next to that op, as the seed's figures draw the 2 and the 3 of z = 2xy + y + 3.
"""
import os

import numpy as np

from revad import _core
from revad._core import Var

# Ops whose operands may not be swapped get "a" and "b" on their edges.
_ORDERED = {"subtract", "divide", "power", "arctan2", "less", "less_equal", "greater",
            "greater_equal"}
_LEAF_STYLE = 'shape=box, style="rounded,filled", fillcolor="#dbeafe"'
_OP_STYLE = 'shape=ellipse'
_CONST_STYLE = 'shape=box, style=dashed, fontsize=9, height=0.25, width=0.3, margin="0.04,0.02"'
_MORE_STYLE = 'shape=note, style=dashed, fontcolor="#555555"'
_INSTALL_HINT = ("revad.draw needs the `dot` program of Graphviz, which is not on PATH. Install "
                 "it with your system's package manager: `apt-get install graphviz` (Debian, "
                 "Ubuntu), `dnf install graphviz` (Fedora), `brew install graphviz` (macOS), "
                 "`conda install graphviz`, or `choco install graphviz` / `winget install "
                 "graphviz` (Windows). Without it, revad.to_dot(y) gives the DOT text, which any "
                 "Graphviz viewer renders; draw(y, 'graph.dot') writes it to a file.")


class GraphvizNotFound(RuntimeError):
    """Graphviz's ``dot`` program is not installed (the message says how to install it)."""


def _quote(text):
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _lines(lines):
    return "\n".join(lines)


def to_dot(y, names=None, *, max_nodes=200, precision=6):
    """Graphviz DOT text of the computation graph that produced ``y``, drawn left to right.

    One node per recorded op, labelled with the op's name, its forward value and, once
    ``backward()`` has run on the tape, its gradient (d output / d node, from this tape's
    backward calls: an input's ``.grad`` also sums those of other computations); inputs are filled
    boxes, Python-number constants small dashed boxes beside the op they feed, the output has
    a double border. Only the entries ``y`` depends on are drawn. ``names`` maps labels to Vars
    (inputs or intermediates) to show, e.g. ``{"x": x, "y": y}``. At most ``max_nodes`` tape
    entries are drawn, the ones nearest the output; a dashed note says how many more there are.
    Values show ``precision`` significant digits.

    >>> import revad
    >>> x, y = revad.Var(40.0), revad.Var(4.0)
    >>> z = 2 * x * y + y + 3                       # the seed's example 1
    >>> z.backward()
    >>> dot = revad.to_dot(z, {"x": x, "y": y})
    >>> print(dot[:40])
    digraph revad {
      rankdir=LR;
      node [...
    >>> for line in dot.splitlines()[4:9]:
    ...     print(line.split(", ")[0])                 # without the style attributes
      n0 [label="x\\nvalue 40\\ngrad 8"
      n1 [label="multiply\\nvalue 80\\ngrad 4"
      c1a [label="2"
      c1a -> n1;
      n0 -> n1;
    """
    if type(y) is not Var:
        raise TypeError(f"revad.to_dot draws the graph of a Var, got {type(y).__name__}")
    if isinstance(max_nodes, bool) or not isinstance(max_nodes, (int, np.integer)) or max_nodes < 1:
        raise ValueError(f"revad: max_nodes must be a positive integer, got {max_nodes!r}")
    if (isinstance(precision, bool) or not isinstance(precision, (int, np.integer))
            or not 1 <= precision <= 17):
        raise ValueError(f"revad: precision must be an integer from 1 to 17, got {precision!r}")
    try:
        names = dict(names or {})
    except (TypeError, ValueError):
        raise TypeError(f"revad: names maps labels to Vars, got {type(names).__name__}") from None
    for label, v in names.items():
        if type(v) is not Var:
            raise TypeError(f"revad: names maps labels to Vars; {label!r} maps to a "
                            f"{type(v).__name__}")

    def num(v):
        return f"{v:.{precision}g}"

    out = ["digraph revad {", "  rankdir=LR;",
           '  node [fontname="Helvetica", fontsize=11];',
           '  edge [fontname="Helvetica", fontsize=9, color="#444444"];']
    cols = _core._graph_columns(y, list(names.values()))
    if cols is None:  # y is an input: its own one-node graph
        label = next((str(k) for k, v in names.items() if v is y), "input")
        lines = [label, f"value {num(y.value)}", f"grad {num(y.grad)}"]
        out += [f"  n0 [label={_quote(_lines(lines))}, {_LEAF_STYLE}, peripheries=2];", "}"]
        return "\n".join(out)

    label_of = {}
    for label, s in zip(names, cols["slots"], strict=True):
        if s >= 0:
            label_of.setdefault(s, str(label))
    op, arg0, arg1, val, cst, adj = (cols[k] for k in ("op", "arg0", "arg1", "val", "cst", "adj"))
    ops, top = cols["ops"], cols["top"]
    reached = np.flatnonzero(cols["reached"])
    shown = reached[-max_nodes:]  # the entries nearest the output
    hidden = len(reached) - len(shown)
    is_shown = set(shown.tolist())

    body, more_edges = [], []
    for s in shown.tolist():
        name, kind = ops[cols["shown_op"][s]][0], ops[op[s]][1]
        lines = [label_of.get(s, "input")] if kind == "leaf" else \
            [f"{label_of[s]} = {name}" if s in label_of else name]
        lines.append(f"value {num(val[s])}")
        if adj is not None:
            lines.append(f"grad {num(adj[s])}")
        style = _LEAF_STYLE if kind == "leaf" else _OP_STYLE
        extra = ", peripheries=2" if s == top else ""
        body.append(f"  n{s} [label={_quote(_lines(lines))}, {style}{extra}];")
        if kind in ("leaf", "block"):  # a block entry's operands are in the side table: not drawn
            continue
        operands = []  # (node id, role)
        if kind == "unary":
            operands.append((f"n{arg0[s]}", arg0[s], ""))
        else:
            const_a, const_b = kind.endswith("_const_a"), kind.endswith("_const_b")
            for role, a, is_const in (("a", arg0[s], const_a), ("b", arg1[s], const_b)):
                if is_const:
                    cid = f"c{s}{role}"
                    body.append(f"  {cid} [label={_quote(num(cst[a]))}, {_CONST_STYLE}];")
                    operands.append((cid, None, role))
                else:
                    operands.append((f"n{a}", a, role))
        for nid, slot, role in operands:
            attrs = f" [label={_quote(role)}]" if role and name in _ORDERED else ""
            if slot is not None and slot not in is_shown:
                if (s, attrs) not in more_edges:
                    more_edges.append((s, attrs))
                continue
            body.append(f"  {nid} -> n{s}{attrs};")
    if hidden:
        note = _lines([f"{hidden} more node{'s' if hidden != 1 else ''}",
                       f"(max_nodes={max_nodes})"])
        out.append(f"  more [label={_quote(note)}, {_MORE_STYLE}];")
        body.extend(f"  more -> n{s}{attrs};" for s, attrs in more_edges)
    out.extend(body)
    out.append("}")
    return "\n".join(out)


def draw(y, path, names=None, *, format=None, max_nodes=200, precision=6):
    """Render the computation graph of ``y`` to ``path`` (SVG, PNG, PDF, ...) with Graphviz.

    The format is ``format`` or the path's suffix; ``.dot``/``.gv`` writes the DOT text
    itself. Rendering runs Graphviz's ``dot`` program, which must be installed (Debian's
    ``graphviz`` package; the Python ``graphviz`` package is not needed); when it is missing,
    ``GraphvizNotFound`` (a RuntimeError) says how to install it. Other arguments as for
    ``to_dot``. Returns the path.

    >>> import os, tempfile, revad
    >>> x = revad.Var(-1.0)
    >>> f = revad.sigmoid(2.0 * x - 3.0)
    >>> f.backward()
    >>> path = revad.draw(f, os.path.join(tempfile.mkdtemp(), "neuron.dot"), {"x": x})
    >>> open(path).read().startswith("digraph revad {")
    True
    """
    text = to_dot(y, names, max_nodes=max_nodes, precision=precision)
    path = os.fspath(path)
    fmt = (format or os.path.splitext(path)[1].lstrip(".")).lower()
    if not fmt:
        raise ValueError(f"revad: cannot tell the image format of {path!r}; give it a suffix "
                         "(.svg, .png, .pdf, .dot) or pass format=")
    if fmt in ("dot", "gv"):
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
        return path
    import shutil  # here, not at import: most programs never draw, and subprocess is slow to load
    import subprocess

    exe = shutil.which("dot")
    if exe is None:
        raise GraphvizNotFound(_INSTALL_HINT)
    try:
        proc = subprocess.run([exe, f"-T{fmt}", "-o", path], input=text.encode("utf-8"),
                              capture_output=True, timeout=300)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"revad: Graphviz took over 300 s to lay out the graph; draw fewer "
                           f"nodes (max_nodes={max_nodes})") from None
    if proc.returncode != 0:
        raise RuntimeError(f"revad: Graphviz's dot failed (exit {proc.returncode}) writing "
                           f"{path!r} as {fmt!r}: {proc.stderr.decode(errors='replace').strip()}")
    return path
