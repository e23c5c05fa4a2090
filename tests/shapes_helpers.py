"""What the test_shapes_* files share: a function run on a revad Array leaf and on the same
ndarray, its values against NumPy's (exactly), its gradient against central differences, and
its errors against NumPy's."""
import numpy as np
import pytest

import revad


def _parts(r):
    return list(r) if isinstance(r, (list, tuple)) else [r]


def _value(r):
    return r.value if isinstance(r, (revad.Array, revad.Var)) else np.asarray(r)


def _weights(ref, seed):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=np.shape(p)) for p in _parts(ref)]


def _loss_np(f, ws):
    return lambda x: sum(float(np.sum(np.asarray(p) * w))
                         for p, w in zip(_parts(f(x)), ws, strict=True))


def _loss(f, ws):
    return lambda a: sum(np.sum(p * w) for p, w in zip(_parts(f(a)), ws, strict=True))


def fd_grad(loss, x, h=1e-6):
    """d loss / d x by central differences, one element at a time."""
    g = np.zeros_like(x)
    for i in np.ndindex(*x.shape):
        e = np.zeros_like(x)
        step = h * max(1.0, abs(x[i]))
        e[i] = step
        g[i] = (loss(x + e) - loss(x - e)) / (2 * step)
    return g


def check(f, x, *, exact=True, rtol=1e-6, atol=1e-7, seed=1):
    """f(Array(x)) has NumPy's f(x) values (exactly, or to 1e-12 for sums of products), types
    (Array, a Var for a 0-d result of a Var, lists for lists) and shapes, and the gradient of a
    weighted sum of its outputs is the central differences'."""
    x = np.asarray(x, dtype=np.float64)
    ref = f(x)
    got = f(revad.Array(x) if x.ndim else revad.Var(float(x)))
    assert isinstance(got, (list, tuple)) == isinstance(ref, (list, tuple))
    assert len(_parts(got)) == len(_parts(ref))
    for g, r in zip(_parts(got), _parts(ref), strict=True):
        gv, rv = _value(g), np.asarray(r)
        assert np.shape(gv) == rv.shape, (np.shape(gv), rv.shape)
        if exact:
            np.testing.assert_array_equal(gv, rv)
        else:
            np.testing.assert_allclose(gv, rv, rtol=1e-12, atol=1e-12)
    ws = _weights(ref, seed)
    fd = fd_grad(_loss_np(f, ws), x)
    gr = revad.grad(_loss(f, ws))(x if x.ndim else float(x))
    np.testing.assert_allclose(gr, fd, rtol=rtol, atol=atol)
    return got


def same_error(f, x):
    """f raises on revad's Array (or Var for 0-d x) what it raises on NumPy's array."""
    x = np.asarray(x, dtype=np.float64)
    with pytest.raises(Exception) as ref:
        f(x)
    with pytest.raises(type(ref.value)):
        f(revad.Array(x) if x.ndim else revad.Var(float(x)))


def distinct(*shape, seed=0):
    """Values without ties (sort and partition differentiate where no two are equal)."""
    n = int(np.prod(shape))
    return np.random.default_rng(seed).permutation(n).reshape(shape) * 0.37 - 1.1


def normal(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape)


# Views of the argument that every function sees too: as it is, transposed (non-contiguous),
# reversed (negative strides), every other element, and broadcast (stride 0: each element's
# gradient sums over its copies).
VIEWS = {
    "plain": lambda a: a,
    "T": lambda a: a.T,
    "reversed": lambda a: a[::-1],
    "strided": lambda a: a[::2],
    "broadcast": lambda a: np.broadcast_to(a, (2,) + np.shape(a)),
}
