"""value_and_grad's gradient buffers for small ndarray arguments (_array_functional.pxi): a
buffer the caller dropped may be handed out again, and none that anyone can still see is."""
import gc
import weakref

import numpy as np
import pytest

import revad


def neuron(w, x):
    return revad.sigmoid(w[0] * x[0] + w[1] * x[1] + w[2])


VG = revad.value_and_grad(neuron, argnums=(0, 1))
W, X = np.array([2.0, -3.0, -3.0]), np.array([-1.0, -2.0])


def expected(w, x):
    """The same call on lists of the same numbers: its gradients are new lists each time."""
    value, (gw, gx) = VG(list(w), list(x))
    return value, np.array(gw), np.array(gx)


def check(w, x):
    value, (gw, gx) = VG(w, x)
    f, ew, ex = expected(w, x)
    assert value == f
    np.testing.assert_array_equal(gw, ew)
    np.testing.assert_array_equal(gx, ex)
    for g, n in ((gw, 3), (gx, 2)):
        assert type(g) is np.ndarray and g.shape == (n,) and g.dtype == np.float64
        assert g.flags.owndata and g.flags.writeable and g.base is None
    return gw, gx


def test_kept_gradients_are_never_written_again():
    rng = np.random.default_rng(0)
    kept = []
    for _ in range(50):
        w, x = rng.normal(size=3), rng.normal(size=2)
        kept.append((w, x, *check(w, x)))
    for w, x, gw, gx in kept:  # each still holds its own call's gradient
        _, ew, ex = expected(w, x)
        np.testing.assert_array_equal(gw, ew)
        np.testing.assert_array_equal(gx, ex)
    assert len({id(g) for *_, gw, gx in kept for g in (gw, gx)}) == 100


def test_a_loop_that_holds_the_last_gradient():
    rng = np.random.default_rng(1)
    prev = None
    for _ in range(40):
        w, x = rng.normal(size=3), rng.normal(size=2)
        gw, gx = check(w, x)
        if prev is not None:  # the one held during this call is untouched
            pw, px, pgw, pgx = prev
            assert pgw is not gw and pgx is not gx
            _, ew, ex = expected(pw, px)
            np.testing.assert_array_equal(pgw, ew)
            np.testing.assert_array_equal(pgx, ex)
        prev = (w, x, gw, gx)


@pytest.mark.parametrize("change", ["view", "weakref", "memoryview", "reshape", "dtype",
                                    "readonly", "resize"])
def test_a_gradient_still_seen_or_changed_is_not_handed_out(change):
    for _ in range(20):  # gradients dropped at once: their buffers are there to be taken
        VG(W, X)
    _, (gw, _gx) = VG(W, X)
    before = gw.copy()
    seen = None
    if change == "view":
        seen = gw[::1]
    elif change == "weakref":
        seen = weakref.ref(gw)
    elif change == "memoryview":
        seen = memoryview(gw)
    elif change == "reshape":
        gw.shape = (3, 1)
    elif change == "dtype":
        gw.dtype = np.int64
    elif change == "readonly":
        gw.flags.writeable = False
    elif change == "resize":
        gw.resize((4,), refcheck=False)
    del gw
    gc.collect()
    for k in range(20):  # each call's gradients differ: one written into `seen` would show
        check(W * (k + 2), X)  # (and a changed one handed out fails check's shape and flags)
        if seen is not None:
            a = seen() if change == "weakref" else np.asarray(seen)
            if a is not None:
                np.testing.assert_array_equal(a, before)


def test_no_grad_of_an_unused_argument_is_stale():
    def f(w, x):
        return w[0] * 2.0

    vg = revad.value_and_grad(f, argnums=(0, 1))
    for k in range(30):  # the zeroed gradient of x comes from a reused buffer too
        _, (gw, gx) = vg(W + k, X * 7.0)
        np.testing.assert_array_equal(gw, [2.0, 0.0, 0.0])
        np.testing.assert_array_equal(gx, [0.0, 0.0])
