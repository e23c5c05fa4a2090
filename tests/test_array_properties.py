"""Properties of Arrays: random programs over broadcast, strided, reversed and transposed
operands against central finite differences of the same program on ndarrays (revad's functions
take both), and against the scalar path on Vars."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import revad

from conftest import count_programs, fd_partial, property_settings
from test_properties import BINARY, CONST, UNARY

# How an input enters the program: (base shape of the leaf, the view taken of it). Every view
# broadcasts against (2, 3), so any two nodes combine.
FORMS = [
    ((2, 3), lambda a: a),
    ((3,), lambda a: a),
    ((2, 1), lambda a: a),
    ((), lambda a: a),
    ((4, 6), lambda a: a[::2, 1::2]),          # strided
    ((2, 3), lambda a: a[::-1, ::-1]),          # reversed
    ((3, 2), lambda a: a.T),                    # transposed
    ((1, 2, 3), lambda a: a[0]),                # a leading unit dimension dropped
]
VIEWS = [lambda a: a[..., ::-1] if np.ndim(a) else a, lambda a: a[::-1] if np.ndim(a) else a,
         # a sum over the last axis: of a lazy group (+, -, *), from its operands (group_sums.h,
         # rv_sums_forward_lazy), which a later step may still read
         lambda a: np.sum(a, axis=-1, keepdims=True) if np.ndim(a) else a,
         # moves of elements (_array_select.pxi: a view or a gather), shapes kept
         lambda a: np.roll(a, 1, axis=-1) if np.ndim(a) else a, lambda a: np.flip(a),
         lambda a: np.tril(a) if np.ndim(a) >= 2 else a,
         lambda a: np.diff(a, axis=-1, prepend=0.5) if np.ndim(a) else a,
         lambda a: np.pad(a, [(0, 0)] * (np.ndim(a) - 1) + [(1, 0)], "edge")[..., :-1]
         if np.ndim(a) else a]


@st.composite
def programs(draw):
    n_in = draw(st.integers(1, 3))
    forms = [draw(st.integers(0, len(FORMS) - 1)) for _ in range(n_in)]
    steps = []
    for k in range(draw(st.integers(1, 12))):
        avail = n_in + k
        kind = draw(st.sampled_from(["u", "b", "c", "v"]))
        i = draw(st.integers(0, avail - 1))
        if kind == "u":
            steps.append(("u", draw(st.integers(0, len(UNARY) - 1)), i))
        elif kind == "b":
            steps.append(("b", draw(st.integers(0, len(BINARY) - 1)), i,
                          draw(st.integers(0, avail - 1))))
        elif kind == "c":
            c = draw(st.floats(0.25, 3.0) | st.floats(-3.0, -0.25))
            steps.append(("c", draw(st.integers(0, len(CONST) - 1)), i, c))
        else:
            steps.append(("v", draw(st.integers(0, len(VIEWS) - 1)), i))
    outs = draw(st.lists(st.integers(0, n_in + len(steps) - 1), min_size=1, max_size=3))
    seed = draw(st.integers(0, 2 ** 32 - 1))
    rng = np.random.default_rng(seed)
    xs = [rng.uniform(-2.0, 2.0, size=FORMS[f][0]) for f in forms]
    return forms, steps, outs, xs


def run(program, *leaves):
    """The program on ndarrays or on revad Arrays: the same code."""
    forms, steps, outs, _ = program
    nodes = [FORMS[f][1](x) for f, x in zip(forms, leaves, strict=True)]
    for step in steps:
        if step[0] == "u":
            nodes.append(UNARY[step[1]][1](nodes[step[2]]))
        elif step[0] == "b":
            nodes.append(BINARY[step[1]][1](nodes[step[2]], nodes[step[3]]))
        elif step[0] == "c":
            nodes.append(CONST[step[1]][1](nodes[step[2]], step[3]))
        else:
            nodes.append(VIEWS[step[1]](nodes[step[2]]))
    total = 0.0
    for k in outs:
        total = total + np.sum(revad.tanh(nodes[k]) * 0.5 + nodes[k] * 0.1)
    return total


@property_settings(150)
@given(programs())
def test_random_array_programs_match_finite_differences(program):
    xs = program[3]
    argnums = tuple(range(len(xs)))
    value, grads = revad.value_and_grad(lambda *a: run(program, *a), argnums=argnums)(*xs)
    assert value == pytest.approx(run(program, *xs), rel=1e-13, abs=1e-13)
    for k, g in enumerate(grads):
        assert g.shape == np.shape(xs[k])
        assert np.all(np.isfinite(g))
        np.testing.assert_allclose(g, fd_partial(lambda *a: run(program, *a), xs, k),
                                   rtol=1e-5, atol=1e-6)
    count_programs()


@property_settings(60)
@given(programs())
def test_random_array_programs_match_the_scalar_path(program):
    # The same program on object arrays of Vars records one scalar entry per element: the
    # groups must give the same gradient up to rounding.
    xs = program[3]
    argnums = tuple(range(len(xs)))
    grads = revad.grad(lambda *a: run(program, *a), argnums=argnums)(*xs)
    vs = [np.array([revad.Var(float(v)) for v in np.ravel(x)], dtype=object).reshape(np.shape(x))
          for x in xs]
    out = run(program, *vs)
    out.backward()
    for g, v in zip(grads, vs, strict=True):
        ref = np.array([e.grad for e in np.ravel(v)]).reshape(np.shape(v))
        np.testing.assert_allclose(g, ref, rtol=1e-12, atol=1e-14)
    count_programs()
