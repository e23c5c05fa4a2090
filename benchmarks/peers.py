"""Adapters that compute the same gradients with other Python AD libraries.

Each adapter imports its library in ``__init__`` (ImportError means "not
installed": the runner prints a note and skips it) and offers

* ``stages(fn, x)``: a list of ``(label, callable)``; each callable computes the
  gradient of workload ``fn`` at ``x`` from scratch and returns
  ``(value, gradient ndarray)``, or ``None`` for a stage that only builds.
* ``products(n)``: a callable recording n products of two leaves, or ``None``
  when the library keeps no tape outside a transformation.

``slow`` peers run at most ``SLOW_MAX_N`` inputs and ``SLOW_REPEAT`` repeats.
Micrograd and autograd slow down superlinearly on big graphs because CPython's
cyclic GC keeps rescanning their many live objects (micrograd closures even form
reference cycles); they are measured with default GC settings, which is what
users get, and micrograd also with GC off, to show how much of it is GC. (With
GC off, garbage cycles are not reclaimed, so a loop that makes and drops many
small graphs, like the products microbenchmark, can get slower, not faster.)
"""
import gc
import math
import sys
from contextlib import contextmanager
from types import SimpleNamespace

import numpy as np

from .workloads import products

SLOW_MAX_N = 10_000
SLOW_REPEAT = 3


class Micrograd:
    name = "micrograd"
    slow = True

    def __init__(self):
        from importlib.metadata import version

        from micrograd.engine import Value

        self.Value = Value
        self.version = version("micrograd")
        # micrograd 0.1.0's Value has no exp(); this one is written the way its
        # own ops are.
        self.m = SimpleNamespace(exp=self._exp)

    def _exp(self, v):
        out = self.Value(math.exp(v.data), (v,), "exp")

        def _backward():
            v.grad += out.data * out.grad

        out._backward = _backward
        return out

    def _gradient(self, fn, x):
        leaves = [self.Value(v) for v in x]
        y = fn(leaves, self.m)
        # Value.backward sorts the graph recursively, one frame per level of
        # depth (~n for the Rosenbrock sum chain); the limit is restored after.
        with _recursion_limit(sys.getrecursionlimit() + 20 * len(x) + 1000):
            y.backward()
        return y.data, np.array([v.grad for v in leaves], dtype=np.float64)

    def stages(self, fn, x):
        return [("", lambda: self._gradient(fn, x))]

    def products(self, n):
        a, b = self.Value(1.5), self.Value(2.5)
        return lambda: products(a, b, n)


class MicrogradNoGC(Micrograd):
    """micrograd with the cyclic GC disabled during each call (restored after)."""

    name = "micrograd (gc off)"

    def stages(self, fn, x):
        def run():
            with _gc_disabled():
                return self._gradient(fn, x)

        return [("", run)]

    def products(self, n):
        record = super().products(n)

        def run():
            with _gc_disabled():
                return record()

        return run


class Torch:
    name = "torch (0-d tensors)"
    slow = True

    def __init__(self):
        import torch

        self.torch = torch
        self.version = torch.__version__

    def _gradient(self, fn, x):
        torch = self.torch
        leaves = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in x]
        y = fn(leaves, torch)
        grads = torch.autograd.grad(y, leaves)
        return y.item(), torch.stack(grads).numpy()

    def stages(self, fn, x):
        return [("", lambda: self._gradient(fn, x))]

    def products(self, n):
        t = self.torch
        a = t.tensor(1.5, dtype=t.float64, requires_grad=True)
        b = t.tensor(2.5, dtype=t.float64, requires_grad=True)
        return lambda: products(a, b, n)


class Autograd:
    name = "autograd"
    slow = True

    def __init__(self):
        from importlib.metadata import version

        import autograd
        import autograd.numpy as anp

        self.value_and_grad = autograd.value_and_grad
        self.anp = anp
        self.version = version("autograd")

    def stages(self, fn, x):
        # A float64 array argument: indexing a boxed list instead rebuilds the
        # list in every vjp, which is quadratic in n.
        vg = self.value_and_grad(lambda xs: fn(xs, self.anp))
        xa = np.asarray(x, dtype=np.float64)

        def run():
            v, g = vg(xa)
            return float(v), np.asarray(g, dtype=np.float64)

        return [("", run)]

    def products(self, n):
        return None  # autograd records only inside grad()


class Jax:
    name = "jax (eager)"
    slow = True

    def __init__(self):
        import jax
        import jax.numpy as jnp

        # Process-wide JAX setting; it affects nothing but JAX.
        jax.config.update("jax_enable_x64", True)
        self.jax, self.jnp = jax, jnp
        self.version = jax.__version__

    def stages(self, fn, x):
        jnp = self.jnp
        # A list of scalars is a pytree: the loop sees 0-d arrays, as revad sees
        # Vars, with no per-element gather.
        vg = self.jax.value_and_grad(lambda xs: fn(xs, jnp))
        xs = [jnp.asarray(v, dtype=jnp.float64) for v in x]

        def run():
            v, g = vg(xs)
            return float(v), np.asarray(jnp.stack(g), dtype=np.float64)

        return [("", run)]

    def products(self, n):
        return None  # jax records only inside a transformation


class Casadi:
    name = "casadi SX"
    slow = True  # evaluation is compiled, but building goes through SWIG at ~30 us per op

    def __init__(self):
        import casadi

        self.ca = casadi
        self.version = casadi.__version__

    def _build(self, fn, n):
        ca = self.ca
        X = ca.SX.sym("x", n)
        y = fn(ca.vertsplit(X), ca)
        return ca.Function("f", [X], [y, ca.gradient(y, X)])

    def stages(self, fn, x):
        built = {}  # the "build" stage runs first and leaves its Function here
        xa = np.asarray(x, dtype=np.float64)

        def build():
            built["F"] = self._build(fn, len(x))

        def evaluate():
            v, g = built["F"](xa)
            return float(v), np.asarray(g, dtype=np.float64).ravel()

        return [("build", build), ("eval", evaluate)]

    def products(self, n):
        a, b = self.ca.SX.sym("a"), self.ca.SX.sym("b")
        return lambda: products(a, b, n)


ALL_PEERS = [Micrograd, MicrogradNoGC, Torch, Autograd, Jax, Casadi]


# How to install a missing peer. PyTorch is not in the `bench` extra: PyPI's torch on Linux is a
# CUDA build of several GB, and a CPU build comes from PyTorch's own index.
TORCH_CPU = "pip install torch --index-url https://download.pytorch.org/whl/cpu"
INSTALL_HINTS = {Torch: f"for a CPU build: {TORCH_CPU}"}


def load_peers(log=print):
    """Instantiate every peer whose library imports; print a note for the others."""
    loaded = []
    for cls in ALL_PEERS:
        try:
            loaded.append(cls())
        except ImportError as exc:
            hint = INSTALL_HINTS.get(cls, 'pip install ".[bench]"')
            log(f"note: peer {cls.name} skipped (not installed: {exc}; {hint})")
        except Exception as exc:  # a broken install must not stop the benchmark
            log(f"note: peer {cls.name} skipped (import failed: {exc!r})")
    return loaded


@contextmanager
def _recursion_limit(limit):
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, limit))
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


@contextmanager
def _gc_disabled():
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
