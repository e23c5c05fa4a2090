"""revad.check_grad and revad.testing.assert_grad_close: they pass right gradients and, above
all, catch wrong ones, with a report that points at the wrong entries."""
import doctest
import math

import numpy as np
import pytest

import revad
import revad.testing
from revad import Var
from revad.testing import GradCheck, assert_grad_close, check_grad


def neuron(w, x):
    return revad.sigmoid(w[0] * x[0] + w[1] * x[1] + w[2])


W, X = np.array([2.0, -3.0, -3.0]), np.array([-1.0, -2.0])


def test_module_docstrings_run():
    result = doctest.testmod(revad.testing,
                             optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0


def test_right_gradients_pass():
    err, report = check_grad(lambda x, y: 2 * x * y + y + 3, (40.0, 4.0))
    assert err < 1e-9
    assert isinstance(report, str) and report.startswith("check_grad: max relative error")
    assert check_grad(neuron, (W, X)).max_rel_error < 1e-8
    result = assert_grad_close(neuron, (W, X))
    assert isinstance(result, GradCheck) and str(result) == result.report
    assert "max_rel_error=" in repr(result) and "lines" in repr(result)
    assert revad.check_grad is check_grad


def test_structures_and_argnums():
    params = {"w": np.array([[1.0, 2.0], [3.0, -4.0]]), "b": [0.5, (1.5, 2.0)]}

    def f(p, scale):
        return np.sum(revad.tanh(p["w"]) * p["w"]) * scale + p["b"][0] * p["b"][1][0] * p["b"][1][1]

    result = assert_grad_close(f, (params, 2.0))
    assert "argument 0, dict: worst 5 of 7" in result.report
    assert "argument 1, float: worst 1 of 1" in result.report
    assert "['w'][1, 1]" in result.report and "['b'][1][0]" in result.report
    only = check_grad(f, (params, 2.0), argnums=1)
    assert "argument 0" not in only.report and "over 1 partial " in only.report
    assert "argument 1" in check_grad(f, (params, 2.0), argnums=-1).report
    # A list is one argument (a tuple holds the arguments).
    assert_grad_close(lambda v: v[0] * v[1] * v[2], [1.0, 2.0, 3.0])


def test_zero_partials_are_not_false_alarms():
    # d/dx1 is exactly 0 by revad and ~1e-11 noise by finite differences.
    f = lambda v: v[0] ** 3 + revad.sin(v[1]) * 1e-12 + 0.0 * v[2]  # noqa: E731
    assert check_grad(f, [1.3, 0.2, 5.0]).max_rel_error < 1e-6


def test_a_detached_path_is_caught():
    # A common mistake: part of the computation is cut from the tape, silently.
    def loss(w):
        return w * w.detach() + 1.0

    with pytest.raises(AssertionError) as info:
        assert_grad_close(loss, 3.0)
    msg = str(info.value)
    assert "max relative error 0.5 > rtol" in msg
    assert "revad" in msg and "finite diff." in msg


def test_a_value_taken_out_of_the_tape_is_caught():
    # Rebuilding a Var from a value cuts the gradient through that branch.
    def f(v):
        hidden = Var(v[1].value) * 2.0
        return v[0] * hidden + v[1]

    result = check_grad(f, [1.5, -0.5])
    assert result.max_rel_error > 0.5
    # The report lists the wrong entry first: index [1], revad 1 against fd 1 + 2*1.5 = 4.
    table = result.report.splitlines()
    assert table[3].split()[:3] == ["[1]", "1", "4"]
    assert table[4].split()[0] == "[0]"


def test_a_slightly_wrong_gradient_is_caught(monkeypatch):
    # Perturb revad's own answer by one part in 10^4 in one entry: the check must see it.
    real = revad.testing.value_and_grad

    def wrong_value_and_grad(f, argnums=0):
        vg = real(f, argnums)

        def run(*args):
            value, grads = vg(*args)
            g0 = np.array(grads[0], dtype=float)
            g0[2] *= 1 + 1e-4
            return value, (g0,) + tuple(grads[1:])

        return run

    monkeypatch.setattr(revad.testing, "value_and_grad", wrong_value_and_grad)
    result = check_grad(neuron, (W, X))
    assert 5e-5 < result.max_rel_error < 2e-4
    worst = result.report.splitlines()[3].split()
    assert worst[0] == "[2]"
    with pytest.raises(AssertionError, match="max relative error 0.0001"):
        assert_grad_close(neuron, (W, X))
    assert_grad_close(neuron, (W, X), rtol=1e-3)  # a looser tolerance lets it through


def test_worst_limits_the_table():
    x = np.linspace(0.1, 1.0, 12)
    report = check_grad(lambda a: np.sum(revad.exp(a) * a), x, worst=3).report
    assert "worst 3 of 12" in report
    assert len(report.splitlines()) == 1 + 2 + 3


def test_non_finite_gradients():
    # Where revad and the differences agree on inf or nan, that is not an error ...
    assert revad.testing._rel_error(math.inf, math.inf, 1.0) == 0.0
    assert revad.testing._rel_error(math.nan, math.nan, 1.0) == 0.0
    # ... where only one side is finite, it is the largest error.
    assert revad.testing._rel_error(math.nan, 1.0, 1.0) == math.inf
    assert revad.testing._rel_error(math.inf, -math.inf, 1.0) == math.inf
    with pytest.raises(AssertionError, match="inf"):
        assert_grad_close(lambda x: revad.sqrt(x), 0.0)  # sqrt'(0) = inf, fd of sqrt(-h) is nan


def test_misuse():
    with pytest.raises(ValueError, match="eps"):
        check_grad(lambda x: x, 1.0, eps=0.0)
    with pytest.raises(TypeError, match="argnums"):
        check_grad(lambda x: x, 1.0, argnums=3)
    with pytest.raises(TypeError, match="scalar"):
        check_grad(lambda a: a * 2, np.ones(2))
