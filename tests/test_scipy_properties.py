"""Random programs of SciPy's special functions (ufunc-pair groups) mixed with revad's array ops,
over broadcast, strided and reversed operands: gradients against central finite differences of
the same program on ndarrays (revad.scipy.special gives SciPy's own result there)."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import revad

from conftest import count_programs, property_settings

pytest.importorskip("scipy.special")
import revad.scipy.special as sp


def _t(x):
    """Any real into [-2, 2]: every function below then stays inside its domain."""
    return 2.0 * np.tanh(0.5 * x)


def _p(x, lo=0.3):
    """Any real into [lo, lo + 4]."""
    return _t(x) ** 2 + lo


def _u(x):
    """Any real into (0.05, 0.95)."""
    return 0.05 + 0.9 * sp.expit(x)


UNARY = [
    lambda a: sp.gammaln(_p(a)), lambda a: sp.psi(_p(a, 0.5)), lambda a: sp.gamma(_p(a)),
    lambda a: sp.rgamma(_p(a)), lambda a: sp.erfc(_t(a)), lambda a: sp.erfinv(0.9 * np.tanh(a)),
    lambda a: sp.erfcinv(_u(a) * 1.8 + 0.05), lambda a: sp.logit(_u(a)),
    lambda a: sp.i0(_t(a)), lambda a: sp.i1(_t(a)), lambda a: sp.iv(1.5, _p(a)),
    lambda a: sp.ive(1.0, _t(a)), lambda a: sp.j0(2.0 * _t(a)), lambda a: sp.j1(_t(a)),
    lambda a: sp.jv(2.5, _p(a)), lambda a: sp.y0(_p(a, 0.5)), lambda a: sp.y1(_p(a, 0.8)),
    lambda a: sp.yn(2, _p(a, 1.0)), lambda a: sp.gammainc(2.5, _p(a)),
    lambda a: sp.gammaincc(1.5, _p(a)), lambda a: sp.entr(_p(a, 0.1)),
    lambda a: sp.ndtr(_t(a)), lambda a: sp.log_ndtr(2.0 * _t(a)), lambda a: sp.ndtri(_u(a)),
    lambda a: sp.polygamma(1, _p(a, 0.5)), lambda a: sp.stdtr(3.0, _t(a)),
    lambda a: sp.betainc(2.0, 1.5, _u(a)),
]
BINARY = [
    lambda a, b: sp.beta(_p(a, 0.5), _p(b, 0.5)), lambda a, b: sp.betaln(_p(a), _p(b)),
    lambda a, b: sp.xlogy(_t(a), _p(b)), lambda a, b: sp.xlog1py(_t(a), _p(b, -0.5)),
    lambda a, b: sp.kl_div(_p(a, 0.1), _p(b, 0.1)), lambda a, b: sp.rel_entr(_p(a), _p(b)),
    lambda a, b: sp.poch(_p(a, 0.5), _p(b, 0.1)),
    lambda a, b: np.tanh(a) * b,  # revad's own groups in between
    lambda a, b: a + np.sin(b),
]
FORMS = [
    ((2, 3), lambda a: a),
    ((3,), lambda a: a),
    ((2, 1), lambda a: a),
    ((), lambda a: a),
    ((4, 6), lambda a: a[::2, 1::2]),
    ((2, 3), lambda a: a[::-1, ::-1]),
    ((3, 2), lambda a: a.T),
]


@st.composite
def programs(draw):
    n_in = draw(st.integers(1, 3))
    forms = [draw(st.integers(0, len(FORMS) - 1)) for _ in range(n_in)]
    steps = []
    for k in range(draw(st.integers(1, 8))):
        avail = n_in + k
        if draw(st.booleans()):
            steps.append(("u", draw(st.integers(0, len(UNARY) - 1)),
                          draw(st.integers(0, avail - 1))))
        else:
            steps.append(("b", draw(st.integers(0, len(BINARY) - 1)),
                          draw(st.integers(0, avail - 1)), draw(st.integers(0, avail - 1))))
    outs = draw(st.lists(st.integers(0, n_in + len(steps) - 1), min_size=1, max_size=3))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    xs = [rng.uniform(-2.0, 2.0, size=FORMS[f][0]) for f in forms]
    return forms, steps, outs, xs


def run(program, *leaves):
    forms, steps, outs, _ = program
    nodes = [FORMS[f][1](x) for f, x in zip(forms, leaves, strict=True)]
    for step in steps:
        if step[0] == "u":
            nodes.append(UNARY[step[1]](nodes[step[2]]))
        else:
            nodes.append(BINARY[step[1]](nodes[step[2]], nodes[step[3]]))
    total = 0.0
    for k in outs:
        total = total + np.sum(np.tanh(nodes[k]) * 0.5 + _t(nodes[k]) * 0.1)
    return total


@property_settings(120)
@given(programs())
def test_random_special_programs_match_finite_differences(program):
    xs = program[3]
    argnums = tuple(range(len(xs)))
    value, grads = revad.value_and_grad(lambda *a: run(program, *a), argnums=argnums)(*xs)
    plain = float(run(program, *xs))
    assert float(np.asarray(value)) == pytest.approx(plain, rel=1e-12, abs=1e-12)
    for k, x in enumerate(xs):
        fd = np.zeros(np.shape(x))
        for idx in np.ndindex(*fd.shape):
            h = 1e-6 * max(1.0, abs(x[idx]))
            up = [np.array(v, dtype=float) for v in xs]
            down = [np.array(v, dtype=float) for v in xs]
            up[k][idx] += h
            down[k][idx] -= h
            fd[idx] = (float(run(program, *up)) - float(run(program, *down))) / (2 * h)
        np.testing.assert_allclose(np.asarray(grads[k]), fd, rtol=1e-5, atol=1e-6)
    count_programs()
