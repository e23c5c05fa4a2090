"""Forward mode (revad.jvp): one tangent sweep over the same tape, from the same op table.

Every op against the reverse sweep (jvp along e_i is the i-th partial that grad gives) and
against central finite differences; then structures, random graphs, and misuse."""
import math

import numpy as np
import pytest
from hypothesis import given

import revad
from revad import Var

from conftest import central_diff, count_programs, fd_gradient, property_settings, sin_chain
from test_ops import fd_points
from test_properties import programs, run

FUNCTIONS = revad._core.functions
UNARY = sorted(name for name, fn in FUNCTIONS.items() if fn.arity == 1)
BINARY = sorted(name for name, fn in FUNCTIONS.items() if fn.arity == 2)
BINARY_POINTS = [(1.3, 0.7), (0.6, -1.9), (2.2, 2.5)]  # a > 0 so that power is real


def test_every_op_is_in_one_of_the_lists():
    # Counted from the table itself; tests/test_ops.py checks the table against its own rows.
    assert set(UNARY) | set(BINARY) == set(FUNCTIONS) and FUNCTIONS


@pytest.mark.parametrize("name", UNARY)
def test_unary_jvp_equals_reverse_partial_and_finite_differences(name):
    fn = FUNCTIONS[name]
    for p in fd_points(name):  # the reference row's points, in tests/test_ops.py
        value, t = revad.jvp(fn, p, 1.0)
        assert value == fn(p)
        assert t == revad.grad(fn)(p)  # the same partial, from the same row: bit for bit
        assert t == pytest.approx(central_diff(fn, p), rel=1e-6, abs=1e-9)
        value, t3 = revad.jvp(fn, p, -3.0)  # linear in the tangent
        assert t3 == pytest.approx(-3.0 * t, rel=1e-15)


@pytest.mark.parametrize("name", BINARY)
def test_binary_jvp_equals_reverse_partials_and_finite_differences(name):
    fn = FUNCTIONS[name]
    for a, b in BINARY_POINTS:
        da, db = revad.grad(fn, argnums=(0, 1))(a, b)
        assert revad.jvp(fn, (a, b), (1.0, 0.0)) == (fn(a, b), da)
        assert revad.jvp(fn, (a, b), (0.0, 1.0)) == (fn(a, b), db)
        assert revad.jvp(fn, (a, b), (0.5, -2.0))[1] == pytest.approx(0.5 * da - 2.0 * db,
                                                                      rel=1e-14)
        assert da == pytest.approx(central_diff(lambda s: fn(s, b), a), rel=1e-6, abs=1e-9)
        assert db == pytest.approx(central_diff(lambda s: fn(a, s), b), rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("name", BINARY)
def test_binary_with_a_constant_operand_on_either_side(name):
    # x op c (VC) and c op x (CV): the constant's tangent is zero.
    fn = FUNCTIONS[name]
    for a, b in BINARY_POINTS:
        left, right = (lambda x: fn(x, b)), (lambda x: fn(a, x))
        assert revad.jvp(left, a, 1.0) == (fn(a, b), revad.grad(left)(a))
        assert revad.jvp(right, b, 1.0) == (fn(a, b), revad.grad(right)(b))
        assert revad.jvp(left, a, 1.0)[1] == revad.grad(fn, argnums=0)(a, b)
        assert revad.jvp(right, b, 1.0)[1] == revad.grad(fn, argnums=1)(a, b)


def test_seed_example1_by_forward_mode():
    f = lambda x, y, w, b: w * x * y + y + b  # noqa: E731
    args = (40.0, 4.0, 2.0, 3.0)
    basis = np.eye(4)
    partials = [revad.jvp(f, args, tuple(e))[1] for e in basis]
    assert partials == [8.0, 81.0, 160.0, 1.0]
    assert revad.jvp(f, args, (1.0, 1.0, 1.0, 1.0)) == (327.0, 250.0)


def test_seed_example2_by_forward_mode():
    def neuron(w, x):
        return 1 / (1 + revad.exp(-(w[0] * x[0] + w[1] * x[1] + w[2])))

    w, x = np.array([2.0, -3.0, -3.0]), np.array([-1.0, -2.0])
    dw, dx = revad.grad(neuron, argnums=(0, 1))(w, x)
    for i in range(3):
        value, t = revad.jvp(neuron, (w, x), (np.eye(3)[i], np.zeros(2)))
        assert value == pytest.approx(0.7310585786300049, rel=1e-15)
        assert t == pytest.approx(dw[i], rel=1e-14)
    for i in range(2):
        assert revad.jvp(neuron, (w, x), (np.zeros(3), np.eye(2)[i]))[1] == \
            pytest.approx(dx[i], rel=1e-14)
    assert [round(revad.jvp(neuron, (w, x), (e, np.zeros(2)))[1], 3) for e in np.eye(3)] == \
        [-0.197, -0.393, 0.197]


@property_settings(150)
@given(programs())
def test_random_graphs_basis_tangents_equal_the_gradient(program):
    xs = program[3]
    f = lambda v: run(program, v)  # noqa: E731
    value, g = revad.value_and_grad(f)(xs)
    for i in range(len(xs)):
        e = [0.0] * len(xs)
        e[i] = 1.0
        v, t = revad.jvp(f, xs, e)
        assert v == value
        # Sums of the same products, in another order: equal to rounding.
        assert t == pytest.approx(g[i], rel=1e-12, abs=1e-14)
    fd = fd_gradient(f, xs)
    direction = [(-1.0) ** i * (i + 1) / len(xs) for i in range(len(xs))]
    expected = sum(d * gi for d, gi in zip(direction, fd, strict=True))
    assert revad.jvp(f, xs, direction)[1] == pytest.approx(expected, rel=1e-5, abs=1e-6)
    count_programs()


def test_structures_of_arguments_and_tangents():
    params = {"w": np.array([[1.0, 2.0], [3.0, 4.0]]), "b": [0.5, (1.5, 2)], "s": 2.0}

    def f(p):
        return np.sum(p["w"] * p["w"]) * p["s"] + p["b"][0] * p["b"][1][0] * p["b"][1][1]

    tangent = {"s": 1.0, "b": [0.0, (0.0, 0.0)], "w": np.zeros((2, 2))}  # key order may differ
    value, t = revad.jvp(f, params, tangent)
    assert value == 30 * 2.0 + 0.5 * 1.5 * 2
    assert t == 30.0  # d/ds
    tangent = {"w": [[0.0, 1.0], [0.0, 0.0]], "b": [1.0, [0.0, 0.0]], "s": 0}
    assert revad.jvp(f, params, tangent)[1] == 2 * 2.0 * 2.0 + 1.5 * 2
    # A list argument with an array tangent, ints as reals, several arguments.
    assert revad.jvp(lambda v: v[0] * v[1], [3, 4], np.array([1.0, 0.0])) == (12.0, 4.0)
    assert revad.jvp(lambda x, v: x * v[1], (2.0, [3.0, 4.0]), (0.0, [5.0, 1.0])) == (8.0, 2.0)
    assert revad.jvp(lambda a: np.sum(a * a), np.arange(3.0), [1, 1, 1]) == (5.0, 6.0)


def test_results_are_floats_and_trivial_functions():
    value, t = revad.jvp(lambda x: x * 2, 1.5, 1.0)
    assert type(value) is float and type(t) is float and (value, t) == (3.0, 2.0)
    assert revad.jvp(lambda x: x, 1.5, 2.0) == (1.5, 2.0)  # the output is the input
    assert revad.jvp(lambda x: 7.0, 1.5, 2.0) == (7.0, 0.0)  # the output ignores the input
    assert revad.jvp(lambda x, y: y, (1.0, 2.0), (1.0, 0.0)) == (2.0, 0.0)


def test_an_infinite_partial_of_an_input_held_still_does_not_make_nan():
    # sqrt'(0) = inf; along x alone, y does not move: the reverse sweep's dz/dx is 1.
    f = lambda x, y: x + revad.sqrt(y)  # noqa: E731
    assert revad.grad(f, argnums=(0, 1))(1.0, 0.0) == (1.0, math.inf)
    assert revad.jvp(f, (1.0, 0.0), (1.0, 0.0)) == (1.0, 1.0)
    assert revad.jvp(f, (1.0, 0.0), (0.0, 1.0)) == (1.0, math.inf)


def test_comparisons_on_the_tape_carry_no_tangent():
    def f(x):
        y = x * x
        if y > 1.0:  # recorded on the tape as a comparison entry
            return y * 3.0
        return y

    assert revad.jvp(f, 2.0, 1.0) == (12.0, 12.0)
    assert revad.jvp(f, 0.5, 1.0) == (0.25, 1.0)


def test_jvp_leaves_the_callers_tape_alone():
    x = Var(3.0)
    y = x * x
    assert revad.jvp(lambda a: a * y.value, 2.0, 1.0) == (18.0, 9.0)
    with revad.no_grad():
        assert revad.jvp(lambda a: a * a, 2.0, 1.0) == (4.0, 4.0)
    y.backward()
    assert x.grad == 6.0


def test_misuse_is_reported_clearly():
    f = lambda x, y: x * y  # noqa: E731
    with pytest.raises(ValueError, match="tuple of 2 arguments"):
        revad.jvp(f, (1.0, 2.0), 1.0)
    with pytest.raises(ValueError, match="tuple of 2 arguments"):
        revad.jvp(f, (1.0, 2.0), (1.0,))
    with pytest.raises(ValueError, match="shape"):
        revad.jvp(lambda a: np.sum(a), np.zeros(3), np.zeros(2))
    with pytest.raises(ValueError, match="list or tuple of 2"):
        revad.jvp(lambda v: v[0], [1.0, 2.0], [1.0])
    with pytest.raises(TypeError, match="real numbers"):
        revad.jvp(lambda v: v[0], [1.0, 2.0], ["1", "0"])
    with pytest.raises(TypeError, match=r"tangent 0\[1\] must be a real number"):
        revad.jvp(lambda v: v[0], [1.0, 2.0], [1.0, [0.0, 1.0]])
    with pytest.raises(ValueError, match="list or tuple of 2"):
        revad.jvp(lambda v: v[0], [1.0, 2.0], np.zeros((2, 1)))
    with pytest.raises(ValueError, match="keys"):
        revad.jvp(lambda d: d["a"], {"a": 1.0}, {"b": 1.0})
    with pytest.raises(TypeError, match="real number"):
        revad.jvp(lambda x: x, 1.0, "1")
    with pytest.raises(TypeError, match="real number"):
        revad.jvp(lambda x: x, 1.0, 1j)
    value, tangent = revad.jvp(lambda a: a * 2, np.ones(2), np.array([1.0, -3.0]))  # J v
    assert value.tolist() == [2.0, 2.0] and tangent.tolist() == [2.0, -6.0]
    outside = Var(2.0) * 1.0
    with pytest.raises(ValueError, match="another computation"):
        revad.jvp(lambda x: x * outside, 1.0, 1.0)


def test_a_long_chain_in_one_sweep():
    f, x0, y, dy = sin_chain(50_000)  # as in the reverse-mode test: the same exact derivative
    assert revad.jvp(f, x0, 1.0) == (pytest.approx(y, rel=1e-14), pytest.approx(dy, rel=1e-12))


def test_jvp_through_array_block_entries_equals_grad():
    # SUM, DOTC (constant matrix) and DOT (Array with Array) carry tangents like the reverse sweep.
    rng = np.random.default_rng(3)
    A = rng.normal(size=(4, 3))
    x = rng.normal(size=3)

    def f(v, s):
        z = np.tanh(A @ v)
        return np.sum(z * z) + np.dot(v, v) * s + np.sum(v) ** 2

    g = revad.grad(f, argnums=(0, 1))(x, 0.7)
    for i in range(3):
        e = np.zeros(3)
        e[i] = 1.0
        value, d = revad.jvp(f, (x, 0.7), (e, 0.0))
        assert d == pytest.approx(g[0][i], rel=1e-12)
    assert revad.jvp(f, (x, 0.7), (np.zeros(3), 1.0))[1] == pytest.approx(g[1], rel=1e-12)
    with pytest.raises(ValueError, match="tangent"):
        revad.jvp(f, (x, 0.7), (np.zeros(2), 1.0))
