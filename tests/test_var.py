"""The object API (micrograd / PyTorch style): leaves, grads, lifetime, comparisons, misuse."""
import math
import random

import numpy as np
import pytest

import revad
from revad import Var


def test_leaf_grad_accumulates_across_backward_calls():
    x = Var(3.0)
    (x * x).backward()
    (x * 2.0).backward()
    assert x.grad == 6.0 + 2.0
    x.grad = 0.0
    (x * x).backward()
    assert x.grad == 6.0
    x.grad = None  # PyTorch's reset idiom
    assert x.grad == 0.0


def test_reused_node_accumulates():
    x = Var(2.0)
    y = x * x
    z = y * y + y  # y used twice: dz/dy = 2y + 1 = 9, dz/dx = 9 * 2x = 36
    z.backward()
    assert (y.grad, x.grad) == (9.0, 36.0)


def test_backward_twice_on_one_tape_adds_like_retain_graph():
    x = Var(2.0)
    y = x * x
    z = y + 1.0
    z.backward()
    z.backward()
    assert x.grad == 8.0 and y.grad == 2.0


def test_intermediate_grad_is_zero_before_backward_and_readonly():
    x = Var(2.0)
    y = x * 3.0
    assert y.grad == 0.0
    assert not y.is_leaf and x.is_leaf
    with pytest.raises(AttributeError, match="read-only"):
        y.grad = 1.0
    with pytest.raises(AttributeError, match="read-only"):
        y.value = 1.0


def test_setting_a_leaf_value_mid_recording_records_the_new_value():
    x = Var(2.0)
    a = x * x          # uses 2.0
    x.value = 5.0
    b = a + x * 1.0    # uses 5.0: a fresh leaf entry, the same leaf
    assert b.value == 9.0
    b.backward()
    assert x.grad == 4.0 + 1.0  # d(x0^2)/dx0 at 2 plus d(x1)/dx1


def test_finished_tape_intermediate_cannot_be_reused():
    x = Var(2.0)
    y = x * x
    y.backward()
    with pytest.raises(RuntimeError, match="backward\\(\\) has finished"):
        y + 1.0
    with pytest.raises(RuntimeError, match="detach"):
        revad.exp(y)
    # The values stay readable, and the leaf moves on to a new tape.
    assert (y.value, y.grad, x.grad) == (4.0, 1.0, 4.0)
    z = x * 3.0
    z.backward()
    assert x.grad == 4.0 + 3.0
    w = y.detach() * x
    w.backward()
    assert x.grad == 7.0 + 4.0


def test_comparisons_on_a_finished_tape_still_work():
    x = Var(2.0)
    y = x * x
    y.backward()
    assert y > 3.0 and not (y < 3.0) and y == 4.0 and y != 5.0


def test_mixing_tapes_is_an_error():
    x = Var(1.0)
    outer = x * 2.0

    def f(t):
        return t * outer + outer * t  # outer lives on another (unfinished) tape

    with pytest.raises(ValueError, match="another computation's tape|different tapes"):
        revad.grad(f)(3.0)


def test_comparisons_return_bools_from_values():
    x, y = Var(1.0), Var(2.0)
    assert (x < y, x <= y, x > y, x >= y, x == y, x != y) == (True, True, False, False, False, True)
    assert (x < 1.5, 1.5 < x, 1 == x, x == 1) == (True, False, True, True)
    assert type(x < y) is bool
    assert (x == "a") is False and (x != None) is True  # noqa: E711
    assert bool(Var(0.0)) is False and bool(Var(-1.0)) is True
    assert sorted([Var(3.0), Var(1.0), Var(2.0)])[0].value == 1.0
    assert max(Var(3.0), Var(5.0)).value == 5.0


def test_conversions_repr_and_hash():
    x = Var(2.5)
    assert float(x) == 2.5 and int(x) == 2 and x.item() == 2.5
    assert repr(x) == "Var(value=2.5, grad=0.0)"
    assert len({x, Var(2.5)}) == 2  # by identity, like micrograd's Value
    d = {x: 1}
    assert d[x] == 1


def test_pickle_and_copy_keep_value_and_grad_as_a_leaf():
    import copy
    import pickle

    x = Var(1.5)
    y = x * 2.0
    y.backward()
    for clone in (pickle.loads(pickle.dumps(x)), copy.copy(x), copy.deepcopy(x)):
        assert clone is not x and clone.is_leaf and (clone.value, clone.grad) == (1.5, 2.0)
    z = pickle.loads(pickle.dumps(y))
    assert z.is_leaf and z.value == 3.0 and z.grad == 1.0


@pytest.mark.parametrize("bad", [1j, "2", None, [1.0], object(), np.complex128(1.0)])
def test_bad_operands_raise_type_error_naming_the_type(bad):
    x = Var(1.0)
    name = type(bad).__name__
    with pytest.raises(TypeError, match=name):
        x * bad
    with pytest.raises(TypeError, match=name):
        bad + x
    if not isinstance(bad, list):  # the functions take lists as arrays, like NumPy's
        with pytest.raises(TypeError, match=name):
            revad.exp(bad)
    with pytest.raises(TypeError, match=name):
        Var(bad)


def test_numbers_of_every_kind_are_immediates():
    x = Var(2.0)
    for c in (3, 3.0, True, np.float64(3.0), np.float32(3.0), np.int8(3), np.bool_(True)):
        y = x * c
        assert y.value == 2.0 * float(c)
        assert revad.tape_info(y)["n_consts"] >= 1
    with pytest.raises(OverflowError):
        x * 10 ** 400


def test_no_grad_records_nothing_and_gives_exact_values():
    w = Var(1.5)
    with revad.no_grad():
        y = revad.tanh(w * 2.0 + 1.0)
        with revad.no_grad():
            z = y * w
        u = z + 1.0
    assert y.value == math.tanh(4.0)
    assert y.is_leaf and revad.tape_info(u)["n_ops"] == 0
    v = w * 2.0  # recording again after the block
    assert revad.tape_info(v)["n_ops"] == 2


def test_leaves_of_two_computations_do_not_interfere():
    p = Var(2.0)
    a = p * 3.0            # computation A
    b = p * p * p          # same tape: the thread's current one
    (a + b).backward()
    assert p.grad == 3.0 + 12.0


def test_backward_from_a_leaf():
    x = Var(4.0)
    x.backward()
    assert x.grad == 1.0


# -- micrograd's own code, with Value -> revad.Var and .data -> .value --------------------------

class Neuron:
    def __init__(self, nin, nonlin=True):
        self.w = [Var(random.uniform(-1, 1)) for _ in range(nin)]
        self.b = Var(0)
        self.nonlin = nonlin

    def __call__(self, x):
        act = sum((wi * xi for wi, xi in zip(self.w, x, strict=True)), self.b)
        return act.relu() if self.nonlin else act

    def parameters(self):
        return self.w + [self.b]


class MLP:
    def __init__(self, nin, nouts):
        sz = [nin] + nouts
        self.layers = [[Neuron(sz[i], nonlin=i != len(nouts) - 1) for _ in range(sz[i + 1])]
                       for i in range(len(nouts))]

    def __call__(self, x):
        for layer in self.layers:
            x = [n(x) for n in layer]
            x = x[0] if len(x) == 1 else x
        return x

    def parameters(self):
        return [p for layer in self.layers for n in layer for p in n.parameters()]


def micrograd_loss(model, X, y):
    scores = [model(list(map(Var, xrow))) for xrow in X]
    losses = [(1 + -yi * scorei).relu() for yi, scorei in zip(y, scores, strict=True)]
    data_loss = sum(losses) * (1.0 / len(losses))
    reg_loss = 1e-4 * sum(p * p for p in model.parameters())
    return data_loss + reg_loss


def test_micrograd_training_loop_runs_unchanged_and_gradients_are_right():
    random.seed(1)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 2))
    y = np.where(X[:, 0] * X[:, 1] > 0, 1.0, -1.0)
    model = MLP(2, [8, 8, 1])
    params = model.parameters()
    first = None
    for k in range(20):
        loss = micrograd_loss(model, X, y)
        for p in params:
            p.grad = 0.0
        loss.backward()
        if k == 0:
            first = loss.value
            # Check the gradient of a few parameters against central differences.
            for p in params[:5] + params[-3:]:
                v0 = p.value
                with revad.no_grad():
                    p.value = v0 + 1e-6
                    up = micrograd_loss(model, X, y).value
                    p.value = v0 - 1e-6
                    down = micrograd_loss(model, X, y).value
                p.value = v0
                assert p.grad == pytest.approx((up - down) / 2e-6, rel=1e-4, abs=1e-7)
        for p in params:
            p.value -= 0.05 * p.grad
    assert loss.value < first
