"""Lifetime and memory: a training loop runs in bounded memory, no_grad records nothing, and a
tape's memory goes with its last Var. RSS is read with psutil (the tape's columns are C memory)."""
import gc

import numpy as np
import pytest

import revad
from revad import Var

psutil = pytest.importorskip("psutil")


def rss_mib():
    gc.collect()
    return psutil.Process().memory_info().rss / 2 ** 20


def test_training_loop_of_100k_iterations_runs_in_bounded_memory():
    rng = np.random.default_rng(0)
    data = rng.normal(size=(8, 3)).tolist()
    target = [1.0, -1.0] * 4
    params = [Var(v) for v in rng.normal(size=4)]

    def loss():
        total = 0.0
        for row, t in zip(data, target, strict=True):
            pred = revad.tanh(params[0] * row[0] + params[1] * row[1] + params[2] * row[2]
                              + params[3])
            total = total + (pred - t) ** 2
        return total

    def train(steps):
        for _ in range(steps):
            value = loss()
            for p in params:
                p.grad = 0.0
            value.backward()
            for p in params:
                p.value -= 0.01 * p.grad
        return value.value

    first = train(2_000)
    before = rss_mib()
    last = train(98_000)
    growth = rss_mib() - before
    assert last < first
    # A leak of even 1 byte per recorded op would be ~10 MiB here (98k steps x ~100 ops).
    assert growth < 4.0, f"RSS grew {growth:.1f} MiB over 98k training steps"


def test_no_grad_loop_records_nothing():
    w = Var(0.5)
    before = rss_mib()
    with revad.no_grad():
        for _ in range(200_000):
            y = revad.tanh(w * 1.5 + 0.1)
    assert revad.tape_info(y)["n_ops"] == 0 and y.is_leaf
    assert rss_mib() - before < 4.0


def test_tape_memory_goes_with_its_last_var():
    xs = [Var(float(i)) for i in range(1000)]
    before = rss_mib()
    for _ in range(30):
        y = sum(x * x for x in xs)   # ~3000 entries per tape, each tape dropped by the next
        y.backward()
        del y
    assert rss_mib() - before < 4.0


def test_an_abandoned_tape_is_reused_not_grown():
    x = Var(2.0)
    for _ in range(5):
        _ = [x * 3.0 for _ in range(100)]  # results dropped before the next round
        del _
    y = x * 3.0
    # The thread's tape was reused: only this round's entries remain (leaf + one product).
    assert revad.tape_info(y)["n_ops"] == 2


def test_bytes_per_recorded_op_at_most_25():
    xs = [Var(float(i)) for i in range(10_000)]
    y = sum(100 * (xs[i + 1] - xs[i] ** 2) ** 2 + (1 - xs[i]) ** 2 for i in range(len(xs) - 1))
    info = revad.tape_info(y)
    assert info["bytes_per_op"] <= 25.0
    # The columns: 1 (op) + 4 + 4 (operand slots) + 8 (value) bytes per entry.
    assert info["nbytes"] >= 17 * info["n_ops"]


def test_release_memory_hands_the_kept_columns_back():
    # A large tape's columns are kept for the next tape (about 17 bytes per entry plus its
    # adjoints); release_memory frees them and says how much, and RSS drops by about that much.
    revad.release_memory()
    x = np.linspace(-1.0, 1.0, 2_000_000)
    g = revad.grad(lambda v: np.sum(np.sin(v) * v))(x)
    np.testing.assert_allclose(g, np.cos(x) * x + np.sin(x), rtol=1e-14)
    before = rss_mib()
    freed = revad.release_memory()
    assert freed >= 25 * 3 * 2_000_000            # three ops' slots at 17 + 8 bytes, at least
    assert before - rss_mib() > 0.5 * freed / 2 ** 20
    assert revad.release_memory() == 0
    g2 = revad.grad(lambda v: np.sum(np.sin(v) * v))(x)   # and recording still works
    np.testing.assert_array_equal(g2, g)


def test_a_thread_keeps_a_small_private_tape_and_hands_a_large_ones_columns_on():
    revad.release_memory()
    assert revad.grad(lambda x: x * x)(3.0) == 6.0
    kept = revad.release_memory()  # the small tape kept for this thread's next call
    assert 0 < kept < 2 ** 21
    assert revad.release_memory() == 0
    revad.grad(lambda v: np.sum(v * v))(np.ones(200_000))
    assert revad.release_memory() > 17 * 3 * 200_000  # not kept: in the shared spare
    assert revad.release_memory() == 0
