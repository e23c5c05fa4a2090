"""Benchmark workloads, each written once as plain scalar Python code.

A workload function takes ``x`` (a list of scalars: floats, revad.Var, torch
0-d tensors, micrograd Values, CasADi SX, ...) and ``m``, a namespace providing
the elementary functions (``exp``) for that scalar type: ``math`` for floats,
``revad`` for Vars, ``torch``, ``autograd.numpy``, ``jax.numpy``, ``casadi``.
Only operators and ``m.exp`` are used, so the same code runs everywhere.
"""
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np


def seed_polynomial(x, m):
    """z = 2*x*y + y + 3 with x, y = x[0], x[1]."""
    a, b = x[0], x[1]
    return 2 * a * b + b + 3


def seed_sigmoid(x, m):
    """CS231n neuron: 1 / (1 + exp(-(w0*x0 + w1*x1 + w2))) with x = [w0, w1, w2, x0, x1]."""
    w0, w1, w2, x0, x1 = x
    return 1 / (1 + m.exp(-(w0 * x0 + w1 * x1 + w2)))


def rosenbrock(x, m):
    """Extended Rosenbrock, an explicit Python loop over scalars."""
    total = 0.0
    for i in range(len(x) - 1):
        total = total + 100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2
    return total


def products(a, b, n):
    """Record n products of the same two leaves, keeping none; return the last."""
    y = None
    for _ in range(n):
        y = a * b
    return y


# --- analytic references -------------------------------------------------


def _seed_polynomial_grad(x):
    a, b = x
    return 2 * a * b + b + 3, np.array([2 * b, 2 * a + 1])


def _seed_sigmoid_grad(x):
    w0, w1, w2, x0, x1 = x
    f = 1 / (1 + math.exp(-(w0 * x0 + w1 * x1 + w2)))
    d = f * (1 - f)
    return f, d * np.array([x0, x1, 1.0, w0, w1])


def _rosenbrock_grad(x):
    x = np.asarray(x, dtype=np.float64)
    a, b = x[:-1], x[1:]
    r = b - a**2
    g = np.zeros_like(x)
    g[:-1] += -400 * a * r - 2 * (1 - a)
    g[1:] += 200 * r
    return float(np.sum(100 * r**2 + (1 - a) ** 2)), g


def _rosenbrock_start(n):
    return [-1.2 if i % 2 == 0 else 1.0 for i in range(n)]


@dataclass(frozen=True)
class Workload:
    """One benchmark problem.

    ``n_ops(n)`` counts what a tape records: the leaves plus one entry per
    operator or ``m.exp`` call in the source; it stands in for revad's own tape
    size in per-op figures when revad cannot report one.
    ``fn`` is None for the record-only product microbenchmark.
    """

    name: str
    title: str
    fn: Callable | None
    inputs: Callable[[int], list]
    reference: Callable | None  # x -> (value, gradient ndarray)
    n_ops: Callable[[int], int]
    sizes: Sequence[int]
    quick_sizes: Sequence[int]


WORKLOADS = [
    Workload("seed1", "z = 2xy + y + 3 at (40, 4)", seed_polynomial,
             lambda n: [40.0, 4.0], _seed_polynomial_grad,
             lambda n: 2 + 4, (2,), (2,)),
    Workload("seed2", "CS231n sigmoid neuron at w=(2,-3,-3), x=(-1,-2)", seed_sigmoid,
             lambda n: [2.0, -3.0, -3.0, -1.0, -2.0], _seed_sigmoid_grad,
             lambda n: 5 + 8, (5,), (5,)),
    # n leaves; per term 7 ops (3 pow, sub, mul, rsub, add) plus 1 to accumulate the total.
    Workload("rosenbrock", "extended Rosenbrock, loop over n scalars", rosenbrock,
             _rosenbrock_start, _rosenbrock_grad,
             lambda n: n + 8 * (n - 1), (1_000, 10_000, 100_000), (10, 100)),
    Workload("product", "record only Var*Var of two leaves, n times", None,
             lambda n: [1.5, 2.5], None,
             lambda n: 2 + n, (1_000_000,), (1_000,)),
]
