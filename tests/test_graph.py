"""Drawing the computation graph: the DOT text of the seed's two examples, node by node and edge
by edge, as the seed's figures annotate them; large graphs; rendering through Graphviz."""
import os
import re
import shutil
import time
import xml.etree.ElementTree as ET

import pytest

import revad
import revad._graph
from revad import Var

_ATTR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|[^,\s\]]+)')


def parse_dot(text):
    """(nodes {id: attrs}, edges [(src, dst, attrs)]) of the DOT revad writes."""
    lines = text.strip().splitlines()
    assert lines[0] == "digraph revad {" and lines[-1] == "}"
    nodes, edges = {}, []
    for line in lines[1:-1]:
        line = line.strip()
        m = re.fullmatch(r"(\w+) -> (\w+)(?: \[(.*)\])?;", line)
        if m:
            edges.append((m[1], m[2], _attrs(m[3] or "")))
            continue
        m = re.fullmatch(r"(\w+) \[(.*)\];", line)
        if m and m[1] not in ("node", "edge"):
            nodes[m[1]] = _attrs(m[2])
            continue
        assert re.fullmatch(r"(rankdir=LR|node \[.*\]|edge \[.*\]);", line), line
    return nodes, edges


def _attrs(text):
    out = {}
    for key, val in _ATTR.findall(text):
        if val.startswith('"'):
            val = val[1:-1].replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
        out[key] = val
    return out


def label_lines(attrs):
    return attrs["label"].split("\n")


def by_label(nodes):
    """{first label line + value line: node id}, for the unambiguous nodes of small graphs."""
    return {tuple(label_lines(a)[:2]): nid for nid, a in nodes.items()}


def is_constant(attrs):
    return attrs.get("style") == "dashed" and attrs.get("shape") == "box"


def is_input(attrs):
    return "filled" in attrs.get("style", "")


def test_seed_example1_nodes_edges_values_and_gradients():
    x, y = Var(40.0), Var(4.0)
    z = 2 * x * y + y + 3
    z.backward()
    text = revad.to_dot(z, {"x": x, "y": y})
    assert "rankdir=LR;" in text
    nodes, edges = parse_dot(text)
    ops = {nid: label_lines(a) for nid, a in nodes.items() if not is_constant(a)}
    # The seed's forward values 80, 320, 324, 327 and, after backward, each node's gradient.
    assert sorted(ops.values()) == sorted([
        ["x", "value 40", "grad 8"], ["y", "value 4", "grad 81"],
        ["multiply", "value 80", "grad 4"], ["multiply", "value 320", "grad 1"],
        ["add", "value 324", "grad 1"], ["add", "value 327", "grad 1"]])
    consts = {nid: a["label"] for nid, a in nodes.items() if is_constant(a)}
    assert sorted(consts.values()) == ["2", "3"]
    assert {nid for nid, a in nodes.items() if is_input(a)} == {by_label(nodes)[("x", "value 40")],
                                                                  by_label(nodes)[("y", "value 4")]}
    n = {key[1].split()[1]: nid for key, nid in by_label(nodes).items()
         if not is_constant(nodes[nid])}
    c = {label: nid for nid, label in consts.items()}
    assert sorted((s, d) for s, d, _ in edges) == sorted([
        (c["2"], n["80"]), (n["40"], n["80"]),        # 2 * x
        (n["80"], n["320"]), (n["4"], n["320"]),      # * y
        (n["320"], n["324"]), (n["4"], n["324"]),     # + y
        (n["324"], n["327"]), (c["3"], n["327"])])    # + 3
    assert nodes[n["327"]].get("peripheries") == "2"  # the output
    assert sum(a.get("peripheries") == "2" for a in nodes.values()) == 1


def test_seed_example1_with_weight_and_bias_as_variables():
    x, y, w, b = Var(40.0), Var(4.0), Var(2.0), Var(3.0)
    z = w * x * y + y + b
    z.backward()
    nodes, edges = parse_dot(revad.to_dot(z, {"x": x, "y": y, "w": w, "b": b, "z": z}))
    labels = sorted(label_lines(a) for a in nodes.values())
    assert ["w", "value 2", "grad 160"] in labels and ["b", "value 3", "grad 1"] in labels
    assert ["z = add", "value 327", "grad 1"] in labels
    assert not any(is_constant(a) for a in nodes.values())
    assert len(nodes) == 8 and len(edges) == 8


def neuron(w, x):
    return 1 / (1 + revad.exp(-(w[0] * x[0] + w[1] * x[1] + w[2])))


def test_cs231n_neuron_decomposed():
    w = [Var(2.0), Var(-3.0), Var(-3.0)]
    x = [Var(-1.0), Var(-2.0)]
    f = neuron(w, x)
    f.backward()
    names = {"w0": w[0], "w1": w[1], "w2": w[2], "x0": x[0], "x1": x[1]}
    nodes, edges = parse_dot(revad.to_dot(f, names, precision=3))
    labels = sorted(label_lines(a) for a in nodes.values() if not is_constant(a))
    # The CS231n figure: inputs with their gradients, then *, *, +, +, *-1, exp, +1, 1/x.
    assert labels == sorted([
        ["w0", "value 2", "grad -0.197"], ["x0", "value -1", "grad 0.393"],
        ["w1", "value -3", "grad -0.393"], ["x1", "value -2", "grad -0.59"],
        ["w2", "value -3", "grad 0.197"],
        ["multiply", "value -2", "grad 0.197"], ["multiply", "value 6", "grad 0.197"],
        ["add", "value 4", "grad 0.197"], ["add", "value 1", "grad 0.197"],
        ["negative", "value -1", "grad -0.197"], ["exp", "value 0.368", "grad -0.534"],
        ["add", "value 1.37", "grad -0.534"], ["divide", "value 0.731", "grad 1"]])
    consts = [a["label"] for a in nodes.values() if is_constant(a)]
    assert consts == ["1", "1"]
    # 1 / (...): the constant is the divide's first operand; the edges say which is which.
    div = by_label(nodes)[("divide", "value 0.731")]
    into_div = {nodes[s]["label"].split("\n")[0]: a.get("label") for s, d, a in edges if d == div}
    assert into_div == {"1": "a", "add": "b"}
    # Commutative ops carry no operand labels.
    add = by_label(nodes)[("add", "value 1.37")]
    assert all("label" not in a for s, d, a in edges if d == add)
    assert len(edges) == 14


def test_cs231n_neuron_as_one_sigmoid_node():
    w = [Var(2.0), Var(-3.0), Var(-3.0)]
    x = [Var(-1.0), Var(-2.0)]
    f = revad.sigmoid(w[0] * x[0] + w[1] * x[1] + w[2])
    f.backward()
    nodes, edges = parse_dot(revad.to_dot(f, precision=3))
    labels = [label_lines(a) for a in nodes.values()]
    assert ["sigmoid", "value 0.731", "grad 1"] in labels
    assert ["add", "value 1", "grad 0.197"] in labels
    assert sum(lines[0] == "input" for lines in labels) == 5
    assert len(nodes) == 10 and len(edges) == 9


def test_before_backward_there_are_no_gradients():
    x = Var(0.5)
    y = revad.tanh(x) * 2.0
    nodes, _ = parse_dot(revad.to_dot(y))
    assert all(not any(ln.startswith("grad") for ln in label_lines(a)) for a in nodes.values())
    y.backward()
    nodes, _ = parse_dot(revad.to_dot(y))
    assert all(label_lines(a)[-1].startswith("grad") for a in nodes.values() if not is_constant(a))


def test_only_what_the_output_depends_on_is_drawn():
    x, u = Var(1.0), Var(2.0)
    before = u * 10.0  # recorded on the same tape, not part of y
    y = revad.sin(x) + 1.0
    after = y * u  # recorded after y, not part of y either
    nodes, edges = parse_dot(revad.to_dot(y))
    labels = [label_lines(a)[0] for a in nodes.values() if not is_constant(a)]
    assert labels == ["input", "sin", "add"]
    assert len(edges) == 3
    assert len(parse_dot(revad.to_dot(after))[0]) == 6  # x, sin, add and its constant, u, multiply
    del before


def test_names_for_intermediates_and_quoting():
    x = Var(3.0)
    h = x ** 2
    y = h + 1.0
    nodes, _ = parse_dot(revad.to_dot(y, {'my "x"\\': x, "h": h, "y": y, "unused": Var(1.0)}))
    firsts = sorted(label_lines(a)[0] for a in nodes.values())
    assert firsts == ["1", "h = square", 'my "x"\\', "y = add"]


def test_a_leaf_output_and_reused_operands():
    x = Var(2.5)
    x.grad = 1.0
    nodes, edges = parse_dot(revad.to_dot(x, {"x": x}))
    assert [label_lines(a) for a in nodes.values()] == [["x", "value 2.5", "grad 1"]] and not edges
    y = x * x  # one operand twice: two edges
    nodes, edges = parse_dot(revad.to_dot(y))
    assert len(nodes) == 2 and len(edges) == 2


def test_max_nodes_draws_the_nearest_and_counts_the_rest():
    x = Var(0.1)
    y = x
    for _ in range(20_000):
        y = revad.sin(y) * 0.5 + x
    t0 = time.perf_counter()
    text = revad.to_dot(y, max_nodes=50)
    assert time.perf_counter() - t0 < 5.0
    nodes, edges = parse_dot(text)
    tape_nodes = [nid for nid in nodes if nid.startswith("n")]
    assert len(tape_nodes) == 50
    more = nodes["more"]
    total = 1 + 3 * 20_000  # the leaf, then sin, multiply (by a constant), add per step
    assert label_lines(more) == [f"{total - 50} more nodes", "(max_nodes=50)"]
    assert more["shape"] == "note"
    # Every drawn node whose operand is not drawn gets its edge from the marker, once.
    into_more = [d for s, d, _ in edges if s == "more"]
    assert into_more and len(into_more) == len(set(into_more))
    drawn = set(tape_nodes)
    assert all(s in drawn or s == "more" or s.startswith("c") for s, d, _ in edges)
    # The output is among the drawn nodes.
    assert any(a.get("peripheries") == "2" for a in nodes.values())
    x = Var(0.1)
    y = x
    for _ in range(500):
        y = revad.sin(y) * 0.5 + x
    nodes, _ = parse_dot(revad.to_dot(y, max_nodes=1501))
    assert "more" not in nodes and len([n for n in nodes if n.startswith("n")]) == 1501


def test_one_more_node_is_singular():
    x = Var(1.0)
    nodes, _ = parse_dot(revad.to_dot(revad.exp(x), max_nodes=1))
    assert label_lines(nodes["more"])[0] == "1 more node"


def test_misuse():
    with pytest.raises(TypeError, match="Var"):
        revad.to_dot(3.0)
    with pytest.raises(ValueError, match="max_nodes"):
        revad.to_dot(Var(1.0), max_nodes=0)
    with pytest.raises(TypeError, match="maps to a float"):
        revad.to_dot(Var(1.0), {"x": 1.0})
    with pytest.raises(ValueError, match="format"):
        revad.draw(Var(1.0), "graph")


def test_draw_writes_dot_text_without_graphviz(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    x = Var(2.0)
    y = x * 3.0
    path = revad.draw(y, tmp_path / "g.gv")
    assert open(path).read().strip() == revad.to_dot(y)
    with pytest.raises(revad._graph.GraphvizNotFound, match="apt-get install graphviz") as info:
        revad.draw(y, tmp_path / "g.svg")
    assert isinstance(info.value, RuntimeError) and "to_dot" in str(info.value)


def _need_dot():
    if shutil.which("dot") is None:
        if os.environ.get("CI"):
            pytest.fail("Graphviz's dot is missing in CI: .ci/run should install graphviz")
        pytest.skip("Graphviz's dot is not installed")


def test_render_svg_and_png_with_graphviz(tmp_path):
    _need_dot()
    x, y = Var(40.0), Var(4.0)
    z = 2 * x * y + y + 3
    z.backward()
    path = revad.draw(z, tmp_path / "example1.svg", {"x": x, "y": y})
    assert path == str(tmp_path / "example1.svg")
    root = ET.parse(path).getroot()
    ns = {"svg": "http://www.w3.org/2000/svg"}
    titles = {t.text for t in root.iterfind(".//svg:g[@class='node']/svg:title", ns)}
    nodes, edges = parse_dot(revad.to_dot(z, {"x": x, "y": y}))
    assert titles == set(nodes) and len(titles) == 8
    assert len(list(root.iterfind(".//svg:g[@class='edge']", ns))) == len(edges) == 8
    texts = [t.text for t in root.iterfind(".//svg:text", ns)]
    for want in ("x", "value 40", "grad 8", "grad 81", "value 327", "2", "3"):
        assert want in texts
    png = revad.draw(z, tmp_path / "example1.png")
    with open(png, "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(RuntimeError, match="dot failed"):
        revad.draw(z, tmp_path / "example1.nosuchformat")


def test_a_leaf_used_on_two_tapes_shows_each_tapes_gradient():
    # x.grad sums over both backward calls; each picture shows its own computation's share.
    x = Var(3.0)
    y1 = x * 2.0
    y1.backward()
    y2 = x * 5.0 + 1.0
    y2.backward()
    assert x.grad == 7.0
    for y, grad in ((y1, "grad 2"), (y2, "grad 5")):
        nodes, _ = parse_dot(revad.to_dot(y, {"x": x}))
        assert ["x", "value 3", grad] in [label_lines(a) for a in nodes.values()]
