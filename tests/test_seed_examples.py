"""The seed article's two worked examples (see DESIGN.md), with their published numbers."""
import math

import numpy as np
import pytest

import revad
from revad import Var


def test_example1_values_and_gradients():
    # z = 2xy + y + 3 at x = 40, y = 4: nodes 80 (2x), 320 (2xy), 324 (+y), 327 (+3).
    x, y = Var(40.0), Var(4.0)
    two_x = 2 * x
    two_xy = two_x * y
    s = two_xy + y
    z = s + 3
    assert [two_x.value, two_xy.value, s.value, z.value] == [80.0, 320.0, 324.0, 327.0]
    z.backward()
    assert (x.grad, y.grad) == (8.0, 81.0)
    # Every node's gradient, as the seed's figure annotates them.
    assert (z.grad, s.grad, two_xy.grad, two_x.grad) == (1.0, 1.0, 1.0, 4.0)


def test_example1_weight_and_bias_as_variables():
    x, y, w, b = Var(40.0), Var(4.0), Var(2.0), Var(3.0)
    z = w * x * y + y + b
    z.backward()
    assert (x.grad, y.grad, w.grad, b.grad) == (8.0, 81.0, 160.0, 1.0)


def test_example1_functional():
    value, grads = revad.value_and_grad(lambda x, y, w, b: w * x * y + y + b,
                                        argnums=(0, 1, 2, 3))(40.0, 4.0, 2.0, 3.0)
    assert value == 327.0
    assert grads == (8.0, 81.0, 160.0, 1.0)


def neuron(w, x):
    return 1 / (1 + revad.exp(-(w[0] * x[0] + w[1] * x[1] + w[2])))


def neuron_sigmoid(w, x):
    return revad.sigmoid(w[0] * x[0] + w[1] * x[1] + w[2])


@pytest.mark.parametrize("f", [neuron, neuron_sigmoid], ids=["exp-add-reciprocal", "sigmoid-node"])
def test_example2_cs231n_neuron(f):
    w = [Var(2.0), Var(-3.0), Var(-3.0)]
    x = [Var(-1.0), Var(-2.0)]
    out = f(w, x)
    out.backward()
    assert out.value == pytest.approx(0.7310585786300049, rel=1e-15)  # 1/(1+e^-1)
    s = 0.7310585786300049 * (1 - 0.7310585786300049)   # the local gradient y(1-y) = 0.196612
    assert [v.grad for v in w] == pytest.approx([s * -1.0, s * -2.0, s], rel=1e-12)
    assert [v.grad for v in x] == pytest.approx([s * 2.0, s * -3.0], rel=1e-12)
    assert [round(v.grad, 3) for v in w] == [-0.197, -0.393, 0.197]
    assert [round(v.grad, 3) for v in x] == [0.393, -0.590]


def test_example2_decomposed_graph_equals_sigmoid_node():
    w, x = np.array([2.0, -3.0, -3.0]), np.array([-1.0, -2.0])
    g1 = revad.grad(neuron, argnums=(0, 1))(w, x)
    g2 = revad.grad(neuron_sigmoid, argnums=(0, 1))(w, x)
    for a, b in zip(g1, g2, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-14)


def test_example2_sigmoid_uses_saved_output():
    # The sigmoid node's local gradient is y(1-y) of its saved output.
    a = Var(1.0)
    y = revad.sigmoid(a)
    y.backward()
    assert a.grad == pytest.approx(y.value * (1 - y.value), rel=1e-15)
    assert math.isclose(y.value, 0.7310585786300049, rel_tol=1e-15)
