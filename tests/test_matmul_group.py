"""Matrix-product groups (group_products.h, MM): ``A @ W`` as one group of m*q output slots whose
backward is one BLAS call per operand (or the group's C loops, for small products).

Each product is checked three ways: the reference path (one DOTC/DOT entry per output), the
group with its C loops, and the group through NumPy's BLAS; all against finite differences.
"""
import numpy as np
import pytest

import revad
from revad import _array, _core

from conftest import fd_partial
from test_array_ops import check

RNG = np.random.default_rng(77)

PATHS = {"entries": (False, None), "loops": (True, 1 << 62), "blas": (True, 0)}


@pytest.fixture(params=sorted(PATHS))
def path(request):
    groups, work = PATHS[request.param]
    old = _array._matmul_config(groups, work)
    yield request.param
    _array._matmul_config(*old)


def grads_on_every_path(f, *xs):
    """value_and_grad of f on each path; asserts they agree (to rounding), returns one."""
    out = []
    for groups, work in PATHS.values():
        old = _array._matmul_config(groups, work)
        try:
            out.append(revad.value_and_grad(f, argnums=tuple(range(len(xs))))(*xs))
        finally:
            _array._matmul_config(*old)
    for value, grads in out[1:]:
        assert value == pytest.approx(out[0][0], rel=1e-12, abs=1e-12)
        for g, g0 in zip(grads, out[0][1], strict=True):
            np.testing.assert_allclose(g, g0, rtol=1e-12, atol=1e-12)
    return out[0]


SHAPES = [((2, 3), (3, 4)), ((1, 5), (5, 3)), ((4, 5), (5, 1)), ((5, 1), (1, 4)), ((3, 2), (2,)),
          ((3,), (3, 4)), ((0, 3), (3, 2)), ((2, 0), (0, 3)), ((3, 2), (2, 0)), ((7, 6), (6, 5))]


@pytest.mark.parametrize("sa, sb", SHAPES, ids=str)
@pytest.mark.parametrize("which", ["array@const", "const@array", "array@array"])
def test_products_against_finite_differences(path, sa, sb, which):
    a, b = RNG.normal(size=sa), RNG.normal(size=sb)
    if which == "array@const":
        check(lambda x: x @ b, a)
    elif which == "const@array":
        check(lambda y: a @ y, b)
    else:
        check(lambda x, y: x @ y, a, b)


def test_non_contiguous_operands(path):
    A = RNG.normal(size=(6, 8))
    check(lambda X: X.T @ A[:, ::2], RNG.normal(size=(6, 5)))          # transposed Array
    check(lambda X: X[::2, 1:] @ X[1::2, :4].T, RNG.normal(size=(6, 5)))  # strided, gathered
    check(lambda X: A[::-1, ::3] @ X[::-1], RNG.normal(size=(3, 4)))   # negative strides
    check(lambda X: X @ X.T + X.T[:2] @ X[:, :1], RNG.normal(size=(2, 3)))  # one operand twice
    Af = np.asfortranarray(RNG.normal(size=(5, 4)))
    check(lambda X: Af @ X + (X.T @ Af.T).T, RNG.normal(size=(4, 3)))


def test_paths_agree_on_a_network():
    X = RNG.normal(size=(9, 12))
    W1, W2 = RNG.normal(size=(12, 7)), RNG.normal(size=(7, 3))

    def loss(W1, W2):
        h = np.tanh(X @ W1)
        z = h @ W2
        return np.sum(z * z) + np.sum(h.T @ h)

    value, (g1, g2) = grads_on_every_path(loss, W1, W2)
    np.testing.assert_allclose(g1, fd_partial(loss, [W1, W2], 0), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(g2, fd_partial(loss, [W1, W2], 1), rtol=1e-5, atol=1e-7)


def test_a_group_is_one_entry_per_output_and_its_outputs_are_contiguous():
    A = RNG.normal(size=(50, 20))
    w = revad.Array(RNG.normal(size=20))
    y = A @ w
    info = revad.tape_info(y[0])
    assert info["n_ops"] == 20 + 50  # the leaves, the outputs
    z = w.reshape(4, 5).T @ w.reshape(4, 5)
    assert z.shape == (5, 5)
    assert np.allclose(z.value, w.value.reshape(4, 5).T @ w.value.reshape(4, 5))


def test_group_outputs_used_many_times(path):
    X = RNG.normal(size=(4, 3))
    W = revad.Array(RNG.normal(size=(3, 2)))
    Y = X @ W
    loss = np.sum(Y * Y) + np.sum(Y[0] * Y[3]) + Y[1, 1]
    loss.backward()
    Wv = W.value
    Yv = X @ Wv
    G = 2 * Yv
    G[0] += Yv[3]
    G[3] += Yv[0]
    G[1, 1] += 1.0
    np.testing.assert_allclose(W.grad, X.T @ G, rtol=1e-12)


def test_jvp_through_a_group_equals_grad(path):
    X = RNG.normal(size=(5, 4))
    w0, v0 = RNG.normal(size=(4, 3)), RNG.normal(size=(3,))

    def f(W, v):
        h = np.tanh(X @ W)
        return np.sum((h @ v) ** 2) + np.sum(W.T @ W)

    g = revad.grad(f, argnums=(0, 1))(w0, v0)
    for i in range(w0.size):
        e = np.zeros(w0.size)
        e[i] = 1.0
        _, d = revad.jvp(f, (w0, v0), (e.reshape(w0.shape), np.zeros(3)))
        assert d == pytest.approx(g[0].ravel()[i], rel=1e-10, abs=1e-12)
    t = RNG.normal(size=3)
    _, d = revad.jvp(f, (w0, v0), (np.zeros(w0.shape), t))
    assert d == pytest.approx(float(g[1] @ t), rel=1e-10)


def test_the_constant_is_kept_as_it_was_recorded(path):
    A = RNG.normal(size=(6, 5))
    A0 = A.copy()
    W0 = RNG.normal(size=(5, 2))

    def f(W):
        y = A @ W
        A[:] = 7.0  # after recording: the gradient still uses A0
        return np.sum(y * y)

    g = revad.grad(f)(W0)
    np.testing.assert_allclose(g, 2 * A0.T @ (A0 @ W0), rtol=1e-12)


def test_under_no_grad_and_shape_errors():
    W = revad.Array(RNG.normal(size=(3, 2)))
    with revad.no_grad():
        y = np.ones((4, 3)) @ W
    assert y.is_leaf and y.shape == (4, 2)
    with pytest.raises(ValueError, match=r"\(4, 2\)"):
        np.ones((4, 2)) @ W


# -- large writable constants: referenced, fingerprinted, checked ------------------------------
# A constant of 1 MiB or more is not copied: the tape references it and records a fingerprint of
# its bytes; the backward products check it and raise if it changed after it was recorded.

MODIFIED = r"modified after it was recorded \(shape \(400, 400\), dtype float64\)"


def big(shape=(400, 400)):  # 400 x 400 doubles: 1.25 MB, above the 1 MiB threshold
    return RNG.normal(size=shape)


PRODUCTS = {  # name: (product of a constant C with an Array w, shape of w, expected gradient)
    "C @ W": (lambda C, w: C @ w, (400, 3), lambda C, W: C.T @ np.ones((400, 3))),
    "W @ C": (lambda C, w: w @ C, (3, 400), lambda C, W: np.ones((3, 400)) @ C.T),
    "dot(C, v)": (lambda C, w: np.dot(C, w), (400,), lambda C, v: C.T @ np.ones(400)),
    "dot(v, C)": (lambda C, w: np.dot(w, C), (400,), lambda C, v: C @ np.ones(400)),
    "C.T @ W": (lambda C, w: C.T @ w, (400, 3), lambda C, W: C @ np.ones((400, 3))),
    "W @ C.T": (lambda C, w: w @ C.T, (3, 400), lambda C, W: np.ones((3, 400)) @ C),
}


@pytest.mark.parametrize("name", sorted(PRODUCTS))
def test_a_large_constant_is_referenced_and_gives_the_same_gradient(name):
    product, wshape, expected = PRODUCTS[name]
    C, W0 = big(), RNG.normal(size=wshape)
    f = revad.value_and_grad(lambda w: np.sum(product(C, w)))
    for _ in range(2):  # recorded afresh each call: a change between calls is no error
        value, g = f(W0)
        assert value == pytest.approx(float(np.sum(product(C, W0))), rel=1e-12)
        np.testing.assert_allclose(g, expected(C, W0), rtol=1e-12, atol=1e-12)
        C[17, 5] += 1.0


@pytest.mark.parametrize("name", sorted(PRODUCTS))
def test_changing_a_large_constant_after_recording_raises(name):
    product, wshape, _ = PRODUCTS[name]
    C, W0 = big(), RNG.normal(size=wshape)

    def f(w):
        y = np.sum(product(C, w) ** 2)
        C[123, 45] += 1.0  # after it was used: the gradient would need the old value
        return y

    with pytest.raises(RuntimeError, match=MODIFIED):
        revad.value_and_grad(f)(W0)

    # The same with an explicit Array and backward().
    w = revad.Array(W0)
    y = np.sum(product(C, w) ** 2)
    C[399, 399] *= -1.0
    with pytest.raises(RuntimeError, match="Copy it before modifying it, or record again"):
        y.backward()
    assert not w.grad.any()  # nothing was added
    C[399, 399] *= -1.0       # the same bytes again: the gradient is the right one
    y.backward()
    ref = revad.grad(lambda v: np.sum(product(C, v) ** 2))(W0)
    np.testing.assert_allclose(w.grad, ref, rtol=1e-12)


def test_a_sign_flip_of_two_elements_is_seen():
    C = big()
    W0 = RNG.normal(size=(400, 2))
    for (i, j), (k, m) in [((0, 0), (0, 1)), ((5, 7), (5, 9)), ((3, 3), (390, 1)),
                           ((0, 0), (399, 399))]:
        w = revad.Array(W0)
        y = np.sum(np.tanh(C @ w))
        C[i, j], C[k, m] = -C[i, j], -C[k, m]
        with pytest.raises(RuntimeError, match=MODIFIED):
            y.backward()
        C[i, j], C[k, m] = -C[i, j], -C[k, m]
        y.backward()  # restored: no error
        np.testing.assert_allclose(w.grad, C.T @ (1 - np.tanh(C @ W0) ** 2), rtol=1e-12)


def test_the_fingerprint_sees_small_changes_anywhere():
    # The hash itself: sign flips of two elements, swaps, one flipped bit, at many positions
    # (in one stripe, in one scramble block, far apart), on random data and on zeros.
    fp = _array._fingerprint
    rng = np.random.default_rng(5)
    for data in (rng.normal(size=5000), np.zeros(5000), np.ones(5000)):
        assert fp(data.copy()) == fp(data) and fp(data, seed=1) != fp(data)
        seen = set()
        for _ in range(300):
            i, j = rng.choice(data.size, 2, replace=False)
            for change in ("flip2", "swap", "bit", "ulp"):
                base = data.copy()
                if change == "flip2":  # of two nonzero elements
                    base[i], base[j] = data[i] or 1.0, data[j] or 2.0
                    d = base.copy()
                    d[i], d[j] = -base[i], -base[j]
                elif change == "swap":  # of two different elements
                    base[j] = data[i] + 1.0
                    d = base.copy()
                    d[i], d[j] = base[j], base[i]
                elif change == "bit":
                    d = base.copy()
                    d.view(np.uint64)[i] ^= np.uint64(1) << np.uint64(rng.integers(64))
                else:
                    d = base.copy()
                    d[i] = np.nextafter(d[i], np.inf)
                h0 = fp(base)
                h = fp(d)
                assert h != h0, (change, i, j)
                seen.add(h)
        assert len(seen) > 1000  # and different changes give different fingerprints
    # Lengths that are not whole stripes (the tail), and every byte counts.
    b = rng.integers(0, 256, size=200, dtype=np.uint8)
    hs = {fp(b[:n]) for n in range(200)}
    assert len(hs) == 200


def test_a_change_in_a_late_block_of_a_large_constant_is_seen():
    # The fingerprint is taken block of rows by block of rows along with the product; a change in
    # the last block, the first or one in the middle must be seen.
    A = RNG.normal(size=(3000, 200))  # 4.8 MB: three blocks
    W0 = RNG.normal(size=(200, 3))
    for row in (2999, 0, 1500):
        w = revad.Array(W0)
        y = np.sum(np.tanh(A @ w))
        A[row, 17] *= -2.0
        with pytest.raises(RuntimeError, match=r"\(3000, 200\)"):
            y.backward()
    value, g = revad.value_and_grad(lambda W: np.sum(np.tanh(A @ W)))(W0)
    assert value == pytest.approx(np.sum(np.tanh(A @ W0)), rel=1e-12)
    # (summed block by block: rounding differs from one product's by about 1e-16 of the terms)
    np.testing.assert_allclose(g, A.T @ (1 - np.tanh(A @ W0) ** 2), rtol=1e-10, atol=1e-12)


def test_changing_a_copy_or_another_array_is_no_error():
    C = big()
    other = big()
    W0 = RNG.normal(size=(400, 2))

    def f(W):
        c = C.copy()
        y = np.sum((c @ W) ** 2) + np.sum((C @ W) * 2.0)
        c[:] = 0.0      # a copy the tape holds separately: the tape fingerprinted this copy,
        c[:] = C        # so it must hold the same bytes again by backward
        other[:] = 0.0  # unrelated
        C[0, 0] = C[0, 0]  # written, but the same bytes
        return y

    g = revad.grad(f)(W0)
    np.testing.assert_allclose(g, 2 * C.T @ (C @ W0) + 2.0 * C.T @ np.ones((400, 2)), rtol=1e-12)


def test_a_large_constant_is_not_copied():
    import tracemalloc
    C = big((1000, 1000))  # 8 MB
    w = revad.Array(RNG.normal(size=(1000, 2)))
    tracemalloc.start()
    try:
        y = C @ w
        y = np.sum(y * y)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < C.nbytes // 8  # no copy of C, no comparison with an earlier one
    y.backward()
    np.testing.assert_allclose(w.grad, 2 * C.T @ (C @ w.value), rtol=1e-12)


def test_a_large_read_only_constant_is_referenced_without_a_check():
    C = big()
    C.setflags(write=False)
    f = revad.value_and_grad(lambda W: np.sum((C @ W) ** 2))
    W0 = RNG.normal(size=(400, 2))
    value, g = f(W0)
    np.testing.assert_allclose(g, 2 * C.T @ (C @ W0), rtol=1e-12)


def test_jvp_checks_a_large_constant_too():
    C, W0 = big(), RNG.normal(size=(400, 2))

    def f(W):
        y = np.sum(np.tanh(C @ W))
        C[1, 2] += 1.0
        return y

    with pytest.raises(RuntimeError, match=MODIFIED):
        revad.jvp(f, (W0,), (np.ones((400, 2)),))
    C0 = C.copy()
    _, d = revad.jvp(lambda W: np.sum(np.tanh(C @ W)), (W0,), (np.ones((400, 2)),))
    assert d == pytest.approx(float(np.sum((1 - np.tanh(C0 @ W0) ** 2) * (C0 @ np.ones((400, 2))))),
                              rel=1e-12)


def test_small_paths_take_large_constants_through_the_checked_product():
    # The group's C loops (small products) never read a referenced constant: it takes BLAS.
    old = _array._matmul_config(True, 1 << 62)
    try:
        C, W0 = big(), RNG.normal(size=(400, 2))
        w = revad.Array(W0)
        y = np.sum((C @ w) ** 2)
        C[3, 3] += 1.0
        with pytest.raises(RuntimeError, match=MODIFIED):
            y.backward()
    finally:
        _array._matmul_config(*old)


def test_a_graph_through_block_entries_draws():
    W = revad.Array(RNG.normal(size=(3, 2)))
    Y = np.ones((2, 3)) @ W
    dot = revad.to_dot(Y[1, 1] * Y[0, 0])  # the group's last slot and a placeholder
    assert dot.count("matmul") == 2


@pytest.mark.parametrize("name", sorted(PRODUCTS))
def test_many_small_blocks_on_threads(name):
    # Blocks of 16 KiB: 80 blocks of a 400 x 400 constant in 16 chunks of 5, which the threads
    # claim (the other operand is thin: at most 16 wide). A change in the first block, one in
    # the middle or the last is seen, whichever thread takes it.
    product, wshape, expected = PRODUCTS[name]
    old = _array._matmul_config(watch_block=1 << 14)
    try:
        C, W0 = big(), RNG.normal(size=wshape)
        value, g = revad.value_and_grad(lambda w: np.sum(product(C, w)))(W0)
        assert value == pytest.approx(float(np.sum(product(C, W0))), rel=1e-12)
        np.testing.assert_allclose(g, expected(C, W0), rtol=1e-12, atol=1e-12)
        for row in (0, 7 * 5 + 3, 399):  # blocks 0, 7 and the last
            w = revad.Array(W0)
            y = np.sum(product(C, w) ** 2)
            C[row, 11] += 1.0
            with pytest.raises(RuntimeError, match=MODIFIED):
                y.backward()
    finally:
        _array._matmul_config(*old)


@pytest.mark.parametrize("name", sorted(PRODUCTS))
def test_blocks_give_the_same_bits_on_any_number_of_threads(name):
    # The products that sum over blocks (C.T @ g) sum each chunk, then the chunks in order: which
    # thread took which chunk cannot change the rounding.
    product, wshape, _ = PRODUCTS[name]
    C, W0 = big(), RNG.normal(size=wshape)
    f = revad.value_and_grad(lambda w: np.sum(np.sin(product(C, w))))
    old = _array._matmul_config(watch_block=1 << 14)
    results = []
    try:
        for helpers in (0, 1, 3):
            before = _core._set_helpers(helpers)
            try:
                results.append(f(W0))
            finally:
                _core._set_helpers(before)
    finally:
        _array._matmul_config(*old)
    for value, g in results[1:]:
        assert value == results[0][0]
        np.testing.assert_array_equal(g, results[0][1])


@pytest.mark.parametrize("big", [False, True])  # a copied constant, and a referenced one
def test_an_operand_in_two_products_gets_both(big):
    # The BLAS backward writes a product straight into an operand's adjoints while they are
    # still all zero; the second product into the same adjoints must add to the first. Each
    # product is the only one into its operand in one order, and the second in the other.
    C = RNG.normal(size=(400, 400) if big else (80, 60))  # (BLAS: m n q >= 4096)
    D = RNG.normal(size=C.shape)
    W0 = RNG.normal(size=(C.shape[1], 3))
    f = revad.value_and_grad(lambda W: np.sum(np.tanh(C @ W)) + np.sum((D @ W) ** 2))
    for _ in range(2):  # the second call sweeps into the buffer the first left zero
        value, g = f(W0)
        want = C.T @ (1 - np.tanh(C @ W0) ** 2) + D.T @ (2 * (D @ W0))
        np.testing.assert_allclose(g, want, rtol=1e-11, atol=1e-11)
    W = revad.Array(W0)
    V = revad.Array(RNG.normal(size=(3, C.shape[0])))
    loss = np.sum(np.sin(C @ W)) + np.sum(np.cos(V @ C))   # W's and V's products apart
    loss.backward()
    np.testing.assert_allclose(W.grad, C.T @ np.cos(C @ W0), rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(V.grad, -np.sin(V.value @ C) @ C.T, rtol=1e-11, atol=1e-11)


def test_a_zero_adjoint_passes_nothing_down_through_blas_as_through_the_loops():
    # A row of the constant holds inf; the outputs it feeds get a zero adjoint. Skipped as every
    # entry skips a zero adjoint, the gradient stays finite, with BLAS as with the group's loops.
    A = RNG.normal(size=(40, 30))
    A[3, 7] = np.inf
    mask = np.ones((40, 20))
    mask[3] = 0.0
    W0 = RNG.normal(size=(30, 20))
    f = revad.grad(lambda W: np.sum(np.where(mask > 0, A @ W, 0.0) * mask))
    A0 = A.copy()
    A0[3] = 0.0                                            # the row whose outputs are dead
    ref = A0.T @ mask
    old = revad._array._matmul_config(blas_work=1)            # BLAS for every group
    try:
        g_blas = f(W0)
        revad._array._matmul_config(blas_work=10 ** 12)        # the C loops
        g_loop = f(W0)
    finally:
        revad._array._matmul_config(*old)
    assert np.isfinite(g_blas).all()
    np.testing.assert_allclose(g_blas, ref, rtol=1e-13)
    np.testing.assert_array_equal(g_blas, g_loop)


def test_a_blocks_digest_sees_its_halves_swapped_and_every_row():
    # A block's digest fingerprints its first half of rows and the rest apart (fingerprint.h,
    # rv_fp_rows, so that the fused product reads them side by side), then merges the two.
    rng = np.random.default_rng(4)
    M = rng.normal(size=(10, 16))
    d = _array._block_digest
    assert d(M) == d(M.copy()) and d(M, seed=1) != d(M)
    assert d(np.concatenate([M[5:], M[:5]])) != d(M)     # the halves swapped
    assert d(M[:9]) != d(M) and d(M[:0]) != d(M[:1])
    seen = {d(M)}
    for i in range(10):
        for j in (0, 15):
            C = M.copy()
            C[i, j] = -C[i, j]
            seen.add(d(C))
    assert len(seen) == 21


def test_the_fused_product_hashes_what_the_fingerprint_hashes():
    # fingerprint.h's rv_fp_matvec multiplies and hashes from one load of each stripe: its hash
    # must be the block digest's, bit for bit (a check through either compares with the other).
    rng = np.random.default_rng(9)
    for rows, cols in [(1, 8), (2, 8), (3, 16), (17, 24), (262, 1000), (5, 8 * 33), (0, 8)]:
        M = rng.normal(size=(rows, cols))
        v, g = rng.normal(size=cols), rng.normal(size=rows)
        for seed in (0, 3):
            got = _array._matvec_hashed(M, v, False, seed)
            if got is None:
                pytest.skip("this CPU has no AVX2 and FMA: the product and the hash run apart")
            np.testing.assert_allclose(got[1], M @ v, rtol=1e-13, atol=1e-13)
            assert got[0] == _array._block_digest(M, seed)
            h, y = _array._matvec_hashed(M, g, True, seed)
            np.testing.assert_allclose(y, M.T @ g, rtol=1e-13, atol=1e-12)
            assert h == _array._block_digest(M, seed)


@pytest.mark.parametrize("cols", [400, 403])  # whole stripes a row (fused), and not
def test_a_matrix_vector_products_constant_is_checked_either_way(cols):
    C, v0 = RNG.normal(size=(400, cols)), RNG.normal(size=cols)
    f = revad.value_and_grad(lambda v: np.sum(np.tanh(C @ v)))
    value, g = f(v0)
    np.testing.assert_allclose(g, C.T @ (1 - np.tanh(C @ v0) ** 2), rtol=1e-12, atol=1e-11)
    for i, j in [(0, 0), (399, cols - 1), (200, 7)]:
        v = revad.Array(v0)
        y = np.sum(np.tanh(C @ v))
        C[i, j] = -C[i, j]
        with pytest.raises(RuntimeError, match="modified after it was recorded"):
            y.backward()
        C[i, j] = -C[i, j]
