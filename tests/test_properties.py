"""Properties: random expression graphs (shared subexpressions, reused nodes) against central
finite differences and, when installed, PyTorch in float64; deep chains without recursion."""
import math
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import revad
import revad.numpy

from conftest import count_programs, fd_gradient, property_settings, sin_chain

# Ops that are smooth on all of R (or made so), so that finite differences are a fair reference.
UNARY = [
    ("sin", revad.sin), ("cos", revad.cos), ("tanh", revad.tanh), ("sigmoid", revad.sigmoid),
    ("arctan", revad.arctan), ("softplus", revad.softplus), ("erf", revad.erf),
    ("neg", lambda a: -a), ("square", lambda a: a ** 2),
    ("exp_soft", lambda a: revad.exp(revad.tanh(a))),
    ("log_pos", lambda a: revad.log(1.0 + a * a)),
    ("sqrt_pos", lambda a: revad.sqrt(2.0 + revad.sin(a))),
    # Every other row, each kept inside its domain and away from its kinks and jumps (a step
    # function's argument stays between two jumps: its zero derivative is then the true one).
    ("log1p_pos", lambda a: revad.log1p(a * a)),
    ("expm1_soft", lambda a: revad.expm1(revad.tanh(a))),
    ("tan_soft", lambda a: revad.tan(revad.tanh(a))),
    ("arcsin_soft", lambda a: revad.arcsin(0.5 * revad.tanh(a))),
    ("arccos_soft", lambda a: revad.arccos(0.5 * revad.tanh(a))),
    ("sinh_soft", lambda a: revad.sinh(revad.tanh(a))),
    ("cosh_soft", lambda a: revad.cosh(revad.tanh(a))),
    ("abs_pos", lambda a: revad.abs(1.5 + revad.sin(a))),
    ("relu_pos", lambda a: revad.relu(1.5 + revad.sin(a))),
    ("log2_pos", lambda a: revad.log2(1.0 + a * a)),
    ("log10_pos", lambda a: revad.log10(2.0 + revad.sin(a))),
    ("exp2_soft", lambda a: revad.exp2(revad.tanh(a))),
    ("arcsinh", revad.arcsinh),
    ("arccosh_pos", lambda a: revad.arccosh(1.5 + a * a)),
    ("arctanh_soft", lambda a: revad.arctanh(0.5 * revad.tanh(a))),
    ("cbrt_pos", lambda a: revad.cbrt(1.0 + a * a)),
    ("reciprocal_pos", lambda a: revad.reciprocal(1.5 + revad.cos(a))),
    ("sinc", revad.sinc),
    ("fabs_pos", lambda a: revad.fabs(1.5 + revad.sin(a))),
    ("sign_pos", lambda a: a * revad.sign(1.5 + revad.sin(a))),
    ("floor_mid", lambda a: a + revad.floor(0.5 + 0.25 * revad.tanh(a))),
    ("ceil_mid", lambda a: a * revad.ceil(0.5 + 0.25 * revad.tanh(a))),
    ("rint_mid", lambda a: a + revad.rint(0.2 * revad.tanh(a))),
    ("trunc_mid", lambda a: a - revad.trunc(1.5 + 0.25 * revad.tanh(a))),
    ("deg_rad", lambda a: revad.rad2deg(revad.deg2rad(a))),
    ("degrees_radians", lambda a: revad.degrees(revad.radians(a))),
    ("positive", revad.positive),
    ("conjugate", revad.conjugate),
]
BINARY = [
    ("add", lambda a, b: a + b), ("sub", lambda a, b: a - b), ("mul", lambda a, b: a * b),
    ("div", lambda a, b: a / (1.5 + revad.cos(b))),
    ("pow", lambda a, b: (1.0 + a * a) ** revad.tanh(b)),
    ("hypot", lambda a, b: revad.hypot(a, 1.0 + b * b)),
    ("atan2", lambda a, b: revad.arctan2(a, 2.0 + revad.sin(b))),
    ("logaddexp", revad.logaddexp),
    ("logaddexp2", revad.logaddexp2),
    # the maxima's and the remainders' operands kept apart, so that none crosses a kink or jump
    ("maximum_apart", lambda a, b: revad.maximum(revad.tanh(a), 2.0 + revad.tanh(b))),
    ("minimum_apart", lambda a, b: revad.minimum(revad.tanh(a), 2.0 + revad.tanh(b))),
    ("fmax_apart", lambda a, b: revad.fmax(revad.tanh(a), 2.0 + revad.tanh(b))),
    ("fmin_apart", lambda a, b: revad.fmin(revad.tanh(a), 2.0 + revad.tanh(b))),
    ("mod_apart", lambda a, b: (4.0 + 0.5 * revad.tanh(a)) % (3.0 + 0.5 * revad.tanh(b))),
    ("fmod_apart", lambda a, b: revad.fmod(-4.0 - 0.5 * revad.tanh(a), 3.0 + 0.5 * revad.tanh(b))),
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
@given(programs(), st.lists(st.floats(-1.0, 1.0), min_size=4, max_size=4))
def test_random_graphs_second_order_matches_differences_of_the_gradient(program, direction):
    """Issue 17: every row's derivative recorded by the sweep that records itself, and
    differentiated again: H v (forward over reverse, and reverse over reverse) against central
    differences of the gradient along v."""
    xs = np.array(program[3])
    v = np.array(direction[:len(xs)])

    def g(x):
        return np.array(revad.grad(lambda t: run(program, t))(list(x)))

    h = 1e-5
    fd = (g(xs + h * v) - g(xs - h * v)) / (2 * h)
    f = lambda x: run(program, [x[k] for k in range(len(xs))])  # noqa: E731
    hv = revad.hvp(f)(xs, v)  # in C: one tangent sweep, one second-order sweep
    rr = revad.grad(lambda x: revad.numpy.sum(revad.grad(f)(x) * v))(xs)
    for got in (hv, rr):
        assert np.isfinite(got).all()
        np.testing.assert_allclose(got, fd, rtol=1e-4, atol=1e-5)
    # the two routes: the same derivative, the op table's second partials against its first
    # partials recorded and differentiated again
    np.testing.assert_allclose(hv, rr, rtol=1e-9, atol=1e-11 * (1 + np.abs(rr).max()))
    assert revad._second._hessian_products(f, (xs,), 0, v[:, None]) is not None
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
           "sqrt_pos": lambda a: torch.sqrt(2.0 + torch.sin(a)),
           "log1p_pos": lambda a: torch.log1p(a * a),
           "expm1_soft": lambda a: torch.expm1(torch.tanh(a)),
           "tan_soft": lambda a: torch.tan(torch.tanh(a)),
           "arcsin_soft": lambda a: torch.asin(0.5 * torch.tanh(a)),
           "arccos_soft": lambda a: torch.acos(0.5 * torch.tanh(a)),
           "sinh_soft": lambda a: torch.sinh(torch.tanh(a)),
           "cosh_soft": lambda a: torch.cosh(torch.tanh(a)),
           "abs_pos": lambda a: torch.abs(1.5 + torch.sin(a)),
           "relu_pos": lambda a: torch.relu(1.5 + torch.sin(a)),
           "log2_pos": lambda a: torch.log2(1.0 + a * a),
           "log10_pos": lambda a: torch.log10(2.0 + torch.sin(a)),
           "exp2_soft": lambda a: torch.exp2(torch.tanh(a)),
           "arcsinh": torch.asinh,
           "arccosh_pos": lambda a: torch.acosh(1.5 + a * a),
           "arctanh_soft": lambda a: torch.atanh(0.5 * torch.tanh(a)),
           "cbrt_pos": lambda a: (1.0 + a * a) ** (1.0 / 3.0),
           "reciprocal_pos": lambda a: torch.reciprocal(1.5 + torch.cos(a)),
           "sinc": torch.sinc,
           "fabs_pos": lambda a: torch.abs(1.5 + torch.sin(a)),
           "sign_pos": lambda a: a * torch.sign(1.5 + torch.sin(a)),
           "floor_mid": lambda a: a + torch.floor(0.5 + 0.25 * torch.tanh(a)),
           "ceil_mid": lambda a: a * torch.ceil(0.5 + 0.25 * torch.tanh(a)),
           "rint_mid": lambda a: a + torch.round(0.2 * torch.tanh(a)),
           "trunc_mid": lambda a: a - torch.trunc(1.5 + 0.25 * torch.tanh(a)),
           "deg_rad": lambda a: torch.rad2deg(torch.deg2rad(a)),
           "degrees_radians": lambda a: torch.rad2deg(torch.deg2rad(a)),
           "positive": lambda a: +a, "conjugate": lambda a: a}
    bops = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
            "div": lambda a, b: a / (1.5 + torch.cos(b)),
            "pow": lambda a, b: (1.0 + a * a) ** torch.tanh(b),
            "hypot": lambda a, b: torch.hypot(a, 1.0 + b * b),
            "atan2": lambda a, b: torch.atan2(a, 2.0 + torch.sin(b)),
            "logaddexp": torch.logaddexp, "logaddexp2": torch.logaddexp2,
            "maximum_apart": lambda a, b: torch.maximum(torch.tanh(a), 2.0 + torch.tanh(b)),
            "minimum_apart": lambda a, b: torch.minimum(torch.tanh(a), 2.0 + torch.tanh(b)),
            "fmax_apart": lambda a, b: torch.fmax(torch.tanh(a), 2.0 + torch.tanh(b)),
            "fmin_apart": lambda a, b: torch.fmin(torch.tanh(a), 2.0 + torch.tanh(b)),
            "mod_apart": lambda a, b: (4.0 + 0.5 * torch.tanh(a)) % (3.0 + 0.5 * torch.tanh(b)),
            "fmod_apart": lambda a, b: torch.fmod(-4.0 - 0.5 * torch.tanh(a),
                                                  3.0 + 0.5 * torch.tanh(b))}
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


def _rows_recorded(fn, arity):
    """The names of the op table's rows that fn records on Vars (read from its graph)."""
    xs = [revad.Var(0.3), revad.Var(0.7)][:arity]
    return set(re.findall(r'label="(\w+)\\n', revad.to_dot(fn(*xs))))


def test_every_row_of_the_table_is_drawn():
    # A new row of ops_table.h must join the programs above (kept smooth for finite
    # differences); this fails, naming it, until it does.
    drawn = set()
    for _, fn in UNARY:
        drawn |= _rows_recorded(fn, 1)
    for _, fn in BINARY:
        drawn |= _rows_recorded(fn, 2)
    for _, fn in CONST:
        drawn |= _rows_recorded(lambda a, f=fn: f(a, 2.0), 1)
    rows = set(revad._core.functions)
    assert rows - drawn == set(), f"rows the random programs never draw: {sorted(rows - drawn)}"


def test_deep_chain_of_100k_ops_has_no_recursion_limit():
    f, x0, y, dy = sin_chain(100_000)
    value, g = revad.value_and_grad(f)(x0)
    assert value == pytest.approx(y, rel=1e-14)
    assert g == pytest.approx(dy, rel=1e-12)


def test_long_sum_of_many_inputs():
    x = np.linspace(-1, 1, 50_000)
    g = revad.grad(lambda v: sum(vi * vi for vi in v))(x.tolist())
    np.testing.assert_array_equal(g, 2 * x)
