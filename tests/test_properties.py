"""Properties: random expression graphs (shared subexpressions, reused nodes) against central
finite differences and, when installed, PyTorch in float64; deep chains without recursion."""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import revad

from conftest import count_programs, fd_gradient, property_settings, sin_chain

# Ops that are smooth on all of R (or made so), so that finite differences are a fair reference.
UNARY = [
    ("sin", revad.sin), ("cos", revad.cos), ("tanh", revad.tanh), ("sigmoid", revad.sigmoid),
    ("arctan", revad.arctan), ("softplus", revad.softplus), ("erf", revad.erf),
    ("neg", lambda a: -a), ("square", lambda a: a ** 2),
    ("exp_soft", lambda a: revad.exp(revad.tanh(a))),
    ("log_pos", lambda a: revad.log(1.0 + a * a)),
    ("sqrt_pos", lambda a: revad.sqrt(2.0 + revad.sin(a))),
]
BINARY = [
    ("add", lambda a, b: a + b), ("sub", lambda a, b: a - b), ("mul", lambda a, b: a * b),
    ("div", lambda a, b: a / (1.5 + revad.cos(b))),
    ("pow", lambda a, b: (1.0 + a * a) ** revad.tanh(b)),
    ("hypot", lambda a, b: revad.hypot(a, 1.0 + b * b)),
    ("atan2", lambda a, b: revad.arctan2(a, 2.0 + revad.sin(b))),
]
CONST = [
    ("cmul", lambda a, c: a * c), ("cadd", lambda a, c: c + a), ("csub", lambda a, c: c - a),
    ("cdiv", lambda a, c: a / c), ("rdiv", lambda a, c: c / (2.0 + revad.sin(a))),
]


@st.composite
def programs(draw):
    n_in = draw(st.integers(1, 4))
    steps = []
    for k in range(draw(st.integers(1, 25))):
        avail = n_in + k
        kind = draw(st.sampled_from(["u", "b", "c"]))
        i = draw(st.integers(0, avail - 1))
        if kind == "u":
            steps.append(("u", draw(st.integers(0, len(UNARY) - 1)), i))
        elif kind == "b":
            steps.append(("b", draw(st.integers(0, len(BINARY) - 1)), i,
                          draw(st.integers(0, avail - 1))))
        else:
            c = draw(st.floats(0.25, 3.0) | st.floats(-3.0, -0.25))
            steps.append(("c", draw(st.integers(0, len(CONST) - 1)), i, c))
    # The output mixes a few nodes so that several paths reach every input.
    outs = draw(st.lists(st.integers(0, n_in + len(steps) - 1), min_size=1, max_size=3))
    xs = draw(st.lists(st.floats(-2.0, 2.0), min_size=n_in, max_size=n_in))
    return n_in, steps, outs, xs


def run(program, xs, lib=None):
    """Evaluate the program on floats or Vars (the same code: revad's functions take both)."""
    n_in, steps, outs, _ = program
    nodes = list(xs)
    for step in steps:
        if step[0] == "u":
            nodes.append(UNARY[step[1]][1](nodes[step[2]]))
        elif step[0] == "b":
            nodes.append(BINARY[step[1]][1](nodes[step[2]], nodes[step[3]]))
        else:
            nodes.append(CONST[step[1]][1](nodes[step[2]], step[3]))
    total = 0.0
    for k in outs:
        total = total + revad.tanh(nodes[k]) * 0.5 + nodes[k] * 0.1
    return total


@property_settings(300)
@given(programs())
def test_random_graphs_match_finite_differences(program):
    xs = program[3]
    value, g = revad.value_and_grad(lambda v: run(program, v))(xs)
    assert value == pytest.approx(run(program, xs), rel=1e-15, abs=1e-300)
    fd = fd_gradient(lambda v: run(program, v), xs)
    for a, b in zip(g, fd, strict=True):
        assert math.isfinite(a)
        assert a == pytest.approx(b, rel=1e-5, abs=1e-6)
    count_programs()




@property_settings(100)
@given(programs())
def test_random_graphs_match_pytorch_float64(program):
    torch = pytest.importorskip("torch")
    xs = program[3]
    g = revad.grad(lambda v: run(program, v))(xs)
    tx = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in xs]


    ops = {"sin": torch.sin, "cos": torch.cos, "tanh": torch.tanh, "sigmoid": torch.sigmoid,
           "arctan": torch.arctan, "softplus": torch.nn.functional.softplus, "erf": torch.erf,
           "neg": lambda a: -a, "square": lambda a: a ** 2,
           "exp_soft": lambda a: torch.exp(torch.tanh(a)),
           "log_pos": lambda a: torch.log(1.0 + a * a),
           "sqrt_pos": lambda a: torch.sqrt(2.0 + torch.sin(a))}
    bops = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
            "div": lambda a, b: a / (1.5 + torch.cos(b)),
            "pow": lambda a, b: (1.0 + a * a) ** torch.tanh(b),
            "hypot": lambda a, b: torch.hypot(a, 1.0 + b * b),
            "atan2": lambda a, b: torch.atan2(a, 2.0 + torch.sin(b))}
    cops = {"cmul": lambda a, c: a * c, "cadd": lambda a, c: c + a, "csub": lambda a, c: c - a,
            "cdiv": lambda a, c: a / c, "rdiv": lambda a, c: c / (2.0 + torch.sin(a))}
    nodes = list(tx)
    for step in program[1]:
        if step[0] == "u":
            nodes.append(ops[UNARY[step[1]][0]](nodes[step[2]]))
        elif step[0] == "b":
            nodes.append(bops[BINARY[step[1]][0]](nodes[step[2]], nodes[step[3]]))
        else:
            nodes.append(cops[CONST[step[1]][0]](nodes[step[2]], step[3]))
    total = sum(torch.tanh(nodes[k]) * 0.5 + nodes[k] * 0.1 for k in program[2])
    tg = torch.autograd.grad(total, tx, allow_unused=True)
    for a, t in zip(g, tg, strict=True):
        assert a == pytest.approx(0.0 if t is None else t.item(), rel=1e-10, abs=1e-12)
    count_programs()


def test_deep_chain_of_100k_ops_has_no_recursion_limit():
    f, x0, y, dy = sin_chain(100_000)
    value, g = revad.value_and_grad(f)(x0)
    assert value == pytest.approx(y, rel=1e-14)
    assert g == pytest.approx(dy, rel=1e-12)


def test_long_sum_of_many_inputs():
    x = np.linspace(-1, 1, 50_000)
    g = revad.grad(lambda v: sum(vi * vi for vi in v))(x.tolist())
    np.testing.assert_array_equal(g, 2 * x)
