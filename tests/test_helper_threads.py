"""Large array groups are shared by two threads (src/revad/_core_threads.pxi, _run_group): each
thread runs its part of the outputs in C. The parts must give the bits one thread gives, and a
backward is only shared where no adjoint is written from both parts (parallel.h,
rv_ew_split_dim)."""
import threading

import numpy as np
import pytest

import revad
from revad import _core

RNG = np.random.default_rng(11)


@pytest.fixture
def split_everything():
    old = _core._set_split_min(1)   # every group, however small, in two parts
    yield
    _core._set_split_min(old)


def _one_thread(f, *args, argnums=0):
    old = _core._set_split_min(None)
    try:
        return revad.value_and_grad(f, argnums=argnums)(*args)
    finally:
        _core._set_split_min(old)


# The constant of "constant operand", drawn once, before the arguments of any program.
CONSTANT = RNG.normal(size=500)
PROGRAMS = {
    "rosenbrock": (lambda x: np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2),
                   lambda: (RNG.normal(size=1001),)),
    "broadcast": (lambda Q, xc: np.sum(np.sum(Q[None] * xc[:, :, None, :], axis=3) ** 2),
                  lambda: (RNG.normal(size=(5, 3, 3)), RNG.normal(size=(7, 5, 3)))),
    "same operand": (lambda x: np.sum(np.exp(x * x) / (1.0 + x)),
                     lambda: (RNG.uniform(0, 1, 333),)),
    "strided, reversed": (lambda x: np.sum(np.tanh(x[::3] - x[::-3]) * x[1::3]),
                          lambda: (RNG.normal(size=300),)),
    "sums along axes": (lambda A: np.sum(np.log1p(np.sum(A * A, axis=0)) + np.max(A, axis=1).sum()),
                        lambda: (RNG.normal(size=(37, 19)),)),
    "transposed": (lambda A: np.sum(A.T * A[:, ::-1].T ** 2), lambda: (RNG.normal(size=(40, 30)),)),
    "constant operand": (lambda x, c=CONSTANT: np.sum(np.sin(c - x) * (x / c)),
                         lambda: (RNG.normal(size=500),)),
}


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_two_threads_give_one_threads_bits(name, split_everything):
    f, make = PROGRAMS[name]
    args = make()
    argnums = tuple(range(len(args)))
    v1, g1 = _one_thread(f, *args, argnums=argnums)
    v2, g2 = revad.value_and_grad(f, argnums=argnums)(*args)
    assert v1 == v2
    for a, b in zip(g1, g2, strict=True):
        np.testing.assert_array_equal(a, b)
    assert any(t.name == "revad-worker" for t in threading.enumerate())


def test_a_large_objective_is_split_by_default_and_right():
    n = 200_001
    x = RNG.normal(size=n)
    f = PROGRAMS["rosenbrock"][0]
    v1, g1 = _one_thread(f, x)
    v2, g2 = revad.value_and_grad(f)(x)
    assert v1 == v2
    np.testing.assert_array_equal(g1, g2)
    expected = np.zeros(n)
    d = x[1:] - x[:-1] ** 2
    expected[1:] += 200.0 * d
    expected[:-1] += -400.0 * d * x[:-1] - 2.0 * (1.0 - x[:-1])
    np.testing.assert_allclose(g2, expected, rtol=1e-12, atol=1e-9)


def test_gradients_from_several_user_threads_at_once(split_everything):
    f, make = PROGRAMS["broadcast"]
    args = make()
    expected = _one_thread(f, *args, argnums=(0, 1))[1]
    results, errors = [], []

    def run():
        try:
            for _ in range(20):
                results.append(revad.grad(f, argnums=(0, 1))(*args))
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 60
    for r in results:
        for a, b in zip(r, expected, strict=True):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("f", [
    lambda x, A: np.sum(x[None, :] * A),              # x's adjoints summed over every row
    lambda x, A: np.sum(x[:, None] * A.T),            # the same, cut along rows
    lambda x, A: np.sum(x[1:] * x[:-1] * A[0, 1:]),   # operands a slot apart
    lambda x, A: np.sum(x * x[::-1] * A[0]),           # each slot in both halves
    lambda x, A: np.sum(x[None, :64] * x[:64, None] * A[:64, :64]),  # an outer product of x
    lambda x, A: np.sum(np.sum(A, axis=0) * x),
    lambda x, A: np.sum(np.broadcast_to(x, (3, 4000)).sum(axis=0) * A[0]),
], ids=["broadcast", "broadcast-T", "overlap", "reversed", "outer", "sum", "sum of broadcast"])
def test_groups_are_split_only_where_the_parts_share_no_adjoint(f, split_everything):
    # Broadcast operands are cut along a dimension they move along (each x[j] in one part);
    # operands that overlap, or two views of x that meet, are not cut at all.
    x, A = RNG.normal(size=4000), RNG.normal(size=(64, 4000))
    g1 = _one_thread(f, x, A)[1]
    for _ in range(5):
        np.testing.assert_array_equal(revad.grad(f)(x, A), g1)


@pytest.mark.parametrize("setting, split", [("1", False), ("2", True), ("many", True)])
def test_revad_num_threads_chooses_one_thread_or_two(setting, split):
    import subprocess
    import sys
    code = ("import warnings; warnings.simplefilter('error', RuntimeWarning)\n"
            "try:\n    import revad._core as c\n"
            "except RuntimeWarning as w:\n    print('warned', w); raise SystemExit\n"
            "print(c._set_split_min(None) is not None)")
    env = dict(__import__("os").environ, REVAD_NUM_THREADS=setting)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.strip()
    if setting == "many":
        assert out.startswith("warned") and "REVAD_NUM_THREADS='many'" in out
    else:
        assert out == str(split)


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_a_forked_child_starts_its_own_second_thread(split_everything):
    import os
    import time
    import warnings
    f, make = PROGRAMS["rosenbrock"]
    (x,) = make()
    expected = revad.grad(f)(x)             # the parent's worker thread is running now
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
        pid = os.fork()
    if pid == 0:  # the child: the parent's worker thread did not come along
        code = 1
        try:
            code = 0 if np.array_equal(revad.grad(f)(x), expected) else 1
        finally:
            os._exit(code)
    deadline = time.monotonic() + 60
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            pytest.fail("the forked child hung")
        time.sleep(0.01)
    assert os.waitstatus_to_exitcode(status) == 0


def test_operands_that_meet_in_both_halves_are_not_cut():
    # x * x[::-1]: output k writes x[k] and x[n-1-k], so both halves write every slot. Cut in
    # two, the threads (really concurrent at this size) would lose each other's additions.
    x = RNG.normal(size=2_000_001)
    def f(v):
        return np.sum(v * v[::-1] * 1.5)

    g1 = _one_thread(f, x)[1]
    for _ in range(3):
        np.testing.assert_array_equal(revad.grad(f)(x), g1)
    np.testing.assert_allclose(g1, 3.0 * x[::-1], rtol=1e-15)
