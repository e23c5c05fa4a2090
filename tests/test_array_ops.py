"""revad.Array: every op against finite differences, over broadcasting shapes and views.

Each check writes the function once with NumPy's names; it runs on plain ndarrays (the
reference value and the finite differences) and, through grad(), on revad Arrays.
"""
import numpy as np
import pytest

import revad

from conftest import check_weighted_gradient

RNG = np.random.default_rng(1234)


def check(f, *xs, rtol=1e-5, atol=1e-7):
    """grad of sum(f(*xs) * w) for random weights w: value exact, gradient as finite differences."""
    return check_weighted_gradient(f, *xs, rng=RNG, rtol=rtol, atol=atol)


UNARY = {  # name: (function usable on ndarrays and Arrays, input range)
    "negative": (np.negative, (-2, 2)), "abs": (np.abs, (0.2, 2)), "square": (np.square, (-2, 2)),
    "exp": (np.exp, (-2, 2)), "log": (np.log, (0.2, 3)), "log1p": (np.log1p, (-0.5, 2)),
    "expm1": (np.expm1, (-2, 2)), "sqrt": (np.sqrt, (0.2, 3)), "sin": (np.sin, (-2, 2)),
    "cos": (np.cos, (-2, 2)), "tan": (np.tan, (-1, 1)), "arcsin": (np.arcsin, (-0.8, 0.8)),
    "arccos": (np.arccos, (-0.8, 0.8)), "arctan": (np.arctan, (-2, 2)), "sinh": (np.sinh, (-2, 2)),
    "cosh": (np.cosh, (-2, 2)), "tanh": (np.tanh, (-2, 2)), "sigmoid": (revad.sigmoid, (-3, 3)),
    "relu": (revad.relu, (0.1, 2)), "softplus": (revad.softplus, (-3, 3)),
    "erf": (revad.erf, (-2, 2)),
    "log2": (np.log2, (0.2, 3)), "log10": (np.log10, (0.2, 3)), "exp2": (np.exp2, (-2, 2)),
    "reciprocal": (np.reciprocal, (0.5, 2)),
}
SHAPES = [(), (1,), (4,), (2, 3), (2, 1, 3), (0,), (2, 0)]


@pytest.mark.parametrize("name", sorted(UNARY))
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_unary(name, shape):
    fn, (lo, hi) = UNARY[name]
    check(fn, RNG.uniform(lo, hi, size=shape))


@pytest.mark.parametrize("name", ["exp", "sin", "sigmoid", "sqrt"])
@pytest.mark.parametrize("view", ["reversed", "strided", "transposed", "broadcast-col"])
def test_unary_on_views(name, view):
    fn, (lo, hi) = UNARY[name]
    take = {"reversed": lambda x: x[::-1, ::-2], "strided": lambda x: x[1::2, 1:4],
            "transposed": lambda x: x.T[::-1], "broadcast-col": lambda x: x[:, None, 2]}[view]
    check(lambda x: fn(take(x)), RNG.uniform(0.2, 0.9, size=(5, 6)))


BINARY = {
    "add": np.add, "subtract": np.subtract, "multiply": np.multiply, "divide": np.divide,
    "power": np.power, "maximum": np.maximum, "minimum": np.minimum, "arctan2": np.arctan2,
    "hypot": np.hypot,
}
PAIRS = [((), ()), ((3,), ()), ((), (3,)), ((2, 3), (3,)), ((2, 1, 3), (4, 1)), ((3, 1), (1, 2)),
         ((0,), (1,)), ((2, 0), (2, 1)), ((2, 3), (2, 3))]


@pytest.mark.parametrize("name", sorted(BINARY))
@pytest.mark.parametrize("shapes", PAIRS, ids=str)
def test_binary_array_array(name, shapes):
    sa, sb = shapes
    check(BINARY[name], RNG.uniform(0.5, 2, size=sa), RNG.uniform(0.5, 2, size=sb))


@pytest.mark.parametrize("name", sorted(BINARY))
@pytest.mark.parametrize("shapes", [((2, 3), (3,)), ((3,), (2, 3)), ((4,), ()), ((), (4,))],
                         ids=str)
def test_binary_with_constants(name, shapes):
    sa, sb = shapes
    c = RNG.uniform(0.5, 2, size=sb)
    check(lambda x: BINARY[name](x, c), RNG.uniform(0.5, 2, size=sa))
    check(lambda x: BINARY[name](c, x), RNG.uniform(0.5, 2, size=sa))
    k = float(RNG.uniform(0.5, 2))
    check(lambda x: BINARY[name](x, k), RNG.uniform(0.5, 2, size=sa))
    check(lambda x: BINARY[name](k, x), RNG.uniform(0.5, 2, size=sa))


def test_operators_on_every_side():
    c = RNG.uniform(1, 2, size=(3,))
    check(lambda x: (x + 1) * (2 - x) / (x ** 2 + c) - c / x + x ** 0.5 + 2 ** x + (-x) + abs(x)
          + c ** x + (x @ c)[:, None], RNG.uniform(0.5, 2, size=(4, 3)))


def test_var_with_array():
    def f(x, s):
        v = s[0]  # a Var, from a 1-d Array
        return v * x + x / v - revad.maximum(v, x) + np.hypot(x, v)
    check(f, RNG.uniform(0.5, 2, size=(2, 3)), np.array([1.3]))


def test_revad_functions_take_arrays():
    check(lambda x: revad.exp(x) + revad.arctan2(x, 2.0) + revad.maximum(1.0, x),
          RNG.uniform(0.5, 2, size=(3,)))


# -- reductions --------------------------------------------------------------------------------

AXES = [None, 0, 1, 2, -1, (0, 2), (1, 2), (), (0, 1, 2)]


@pytest.mark.parametrize("red", ["sum", "mean", "prod", "max", "min"])
@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("keepdims", [False, True])
def test_reductions(red, axis, keepdims):
    fn = getattr(np, red)
    x = RNG.uniform(0.5, 2, size=(2, 3, 5))
    check(lambda a: fn(a, axis=axis, keepdims=keepdims), x)
    # and on a non-contiguous, reversed view
    check(lambda a: fn(a.transpose(2, 0, 1)[::-1, :, ::2], axis=axis, keepdims=keepdims),
          RNG.uniform(0.5, 2, size=(3, 4, 5)))


@pytest.mark.parametrize("red", ["sum", "mean", "prod", "max", "min"])
def test_reduction_methods_and_0d(red):
    check(lambda a: getattr(a, red)(axis=0) * 2.0, RNG.uniform(0.5, 2, size=(4, 3)))
    check(lambda a: getattr(np, red)(a), RNG.uniform(0.5, 2, size=()))


def _pairwise_sum(v):
    """group_sums.h's rv_sum_line in Python: NumPy's pairwise order (eight running sums in blocks of
    up to 128, halves above), the order a replay of the tape repeats bit for bit."""
    n = len(v)
    if n < 8:
        acc = 0.0
        for t in v:
            acc += t
        return acc
    if n <= 128:
        r = [float(t) for t in v[:8]]
        j = 8
        while j < n - n % 8:
            for k in range(8):
                r[k] += float(v[j + k])
            j += 8
        acc = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
        for t in v[j:]:
            acc += float(t)
        return acc
    h = n // 2
    h -= h % 8
    return _pairwise_sum(v[:h]) + _pairwise_sum(v[h:])


@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("n", [5, 13, 300])
def test_sum_over_an_axis_adds_each_line_pairwise(axis, n):
    shape = [7, 9, 5]
    shape[axis] = n
    x = RNG.normal(size=shape) * 10.0 ** RNG.integers(-8, 8, size=shape)
    a = revad.Array(x)
    got = np.sum(a[::-1] * 1.0, axis=axis).value
    lines = np.moveaxis(x[::-1], axis, -1)
    expected = np.zeros(lines.shape[:-1])
    for idx in np.ndindex(*expected.shape):
        expected[idx] = _pairwise_sum(lines[idx])
    np.testing.assert_array_equal(got, expected)


def test_sum_is_as_accurate_as_numpy():
    # 10^6 terms summed one by one lose about n * eps relative; pairwise, log n * eps.
    x = np.full(1_000_000, 0.1)
    exact = 100000.0000000000055511  # mpmath: 10^6 times the double nearest 0.1
    one_by_one = 100000.00000133288      # 0.0 + x0 + x1 + ... in doubles
    got = float(revad.Array(x).sum().value)
    assert abs(got - exact) < 1e-10 < abs(one_by_one - exact)


def test_sum_of_empty_and_errors():
    check(lambda a: np.sum(a, axis=0), np.zeros((0, 3)))
    check(lambda a: np.prod(a, axis=1), np.zeros((2, 0)))
    with pytest.raises(ValueError, match=r"zero-size.*\(0, 3\)"):
        revad.grad(lambda a: np.max(a))(np.zeros((0, 3)))
    with pytest.raises(getattr(np, "exceptions", np).AxisError):
        revad.grad(lambda a: np.sum(a, axis=2))(np.ones((2, 3)))


def test_max_ties_split_the_gradient():
    g = revad.grad(lambda a: np.max(a))(np.array([1.0, 3.0, 3.0]))
    np.testing.assert_allclose(g, [0.0, 0.5, 0.5])


@pytest.mark.parametrize("axis", [None, 0, 1, -1])
def test_cumsum(axis):
    check(lambda a: np.cumsum(a, axis=axis), RNG.normal(size=(3, 4)))
    check(lambda a: np.cumsum(a[::-1, ::2], axis=axis), RNG.normal(size=(3, 5)))


@pytest.mark.parametrize("axis", [None, 0, 1, (0, 1)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_logsumexp_is_stable(axis, keepdims):
    from scipy.special import logsumexp as ref
    x = RNG.normal(size=(3, 4)) * 3
    check(lambda a: revad.logsumexp(a, axis=axis, keepdims=keepdims) if isinstance(a, revad.Array)
          else ref(a, axis=axis, keepdims=keepdims), x)
    big = np.array([1000.0, 1000.0, -1000.0])
    v, g = revad.value_and_grad(revad.logsumexp)(big)
    assert v == pytest.approx(1000.0 + np.log(2.0)) and np.allclose(g, [0.5, 0.5, 0.0])


def test_norm_mean_var_std():
    x = RNG.normal(size=(3, 4))
    check(lambda a: np.linalg.norm(a), x)
    check(lambda a: np.linalg.norm(a, axis=1), x)
    check(lambda a: np.linalg.norm(a[0], ord=1) + np.linalg.norm(a[1], ord=np.inf), x)
    check(lambda a: np.var(a, axis=0) + np.std(a), x)


# -- products --------------------------------------------------------------------------------

@pytest.mark.parametrize("sa, sb", [((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 4)), ((2, 3), (3, 4)),
                                    ((1, 3), (3, 1)), ((0, 3), (3, 2)), ((2, 0), (0, 3))], ids=str)
@pytest.mark.parametrize("which", ["array@const", "const@array", "array@array"])
def test_dot_and_matmul(sa, sb, which):
    a, b = RNG.normal(size=sa), RNG.normal(size=sb)
    if which == "array@const":
        check(lambda x: x @ b, a)
        check(lambda x: np.dot(x, b), a)
    elif which == "const@array":
        check(lambda y: a @ y, b)
        check(lambda y: np.dot(a, y), b)
    else:
        check(lambda x, y: x @ y, a, b)
        check(lambda x, y: np.matmul(x, y), a, b)


def test_dot_on_views_and_scalars():
    A = RNG.normal(size=(4, 3))
    check(lambda x: A[:, ::-1] @ x[::2], RNG.normal(size=(6,)))
    check(lambda X: X.T @ A, RNG.normal(size=(4, 5)))
    check(lambda X: X[::-1].T @ X[:, 1:3], RNG.normal(size=(4, 5)))
    check(lambda x: np.dot(x, 2.0) + np.inner(x, x), RNG.normal(size=(3,)))


def test_outer():
    check(lambda x, y: np.outer(x, y), RNG.normal(size=(3,)), RNG.normal(size=(2, 2)))
    check(lambda x: np.outer(x, np.arange(3.0)), RNG.normal(size=(4,)))


def test_constant_matrix_is_copied_unless_read_only():
    import sys
    A = RNG.normal(size=(3, 4))
    A0 = A.copy()
    w = np.ones(4)

    def f(x):
        y = A @ x
        A[:] = 0.0  # mutated after recording: the tape has its own copy
        return np.sum(y * y)

    g = revad.grad(f)(w)
    np.testing.assert_allclose(g, 2 * A0.T @ (A0 @ w))

    # Read-only (all the way down): referenced by the tape, not copied.
    B = A0.copy()
    B.setflags(write=False)
    before = sys.getrefcount(B)
    seen = []

    def h(x):
        y = B @ x
        seen.append(sys.getrefcount(B) - before)
        return np.sum(y * y)

    g = revad.grad(h)(w)
    np.testing.assert_allclose(g, 2 * A0.T @ (A0 @ w))
    assert seen == [1]  # the tape holds B itself
    C = A0.copy()  # a read-only view of a writable array is still copied
    V = C.view()
    V.setflags(write=False)
    before = sys.getrefcount(V)
    seen.clear()

    def k(x):
        y = V @ x
        seen.append(sys.getrefcount(V) - before)
        return np.sum(y)

    revad.grad(k)(w)
    assert seen == [0]


# -- joining, selecting, reshaping -----------------------------------------------------------

def test_concatenate_stack_with_constants_and_views():
    c = RNG.normal(size=(2, 3))
    check(lambda x: np.concatenate([x, c, x[::-1]], axis=0), RNG.normal(size=(2, 3)))
    check(lambda x: np.concatenate([x, c], axis=1), RNG.normal(size=(2, 3)))
    check(lambda x: np.concatenate([x[:1], x[1:]]), RNG.normal(size=(4,)))  # adjacent: a view
    check(lambda x: np.stack([x, c[0], x * 2], axis=1), RNG.normal(size=(3,)))
    check(lambda x: np.hstack([x, c[0]]) + 0.0, RNG.normal(size=(3,)))
    check(lambda x: np.vstack([x, c[0]]), RNG.normal(size=(3,)))
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(3,\)"):
        revad.grad(lambda x: np.sum(np.concatenate([x, np.ones(3)])))(np.ones((2, 3)))


def test_where_clip_take():
    x = RNG.normal(size=(3, 4))
    check(lambda a: np.where(x > 0, a, 0.0), x)
    check(lambda a: np.where(x > 0, a * 2, a[0]), x)
    check(lambda a: np.clip(a, -0.5, 0.5), x)
    check(lambda a: np.clip(a, None, 0.2) + a.clip(-0.1), x)
    check(lambda a: np.take(a, [0, 2, 2], axis=1) + np.take(a, [5, 1, 0])[:, None], x)


def test_indexing():
    x = RNG.normal(size=(4, 5))
    check(lambda a: a[1], x)
    check(lambda a: a[-1, ::-2], x)
    check(lambda a: a[..., 1], x)
    check(lambda a: a[None, 1:3, None, 2:], x)
    check(lambda a: a[[0, 0, 3], 1:4], x)           # advanced: a gather, repeated rows add up
    check(lambda a: a[x > 0], x)                     # boolean mask
    check(lambda a: a[np.array([[0, 1], [2, 3]]), np.array([4, 0])], x)
    check(lambda a: a[2, 3] * a[0, 0], x)           # Vars


def test_element_of_a_1d_array_is_a_var_and_iteration():
    def f(a):
        if isinstance(a, revad.Array):
            assert type(a[0]) is revad.Var and len(a) == 3
            assert [type(e) for e in a] == [revad.Var] * 3
        return sum(e * e for e in a) + a[-1]
    check(f, np.array([1.0, 2.0, 3.0]))
    with pytest.raises(IndexError, match="out of bounds for axis 0 with size 3"):
        revad.grad(lambda a: a[3])(np.ones(3))
    with pytest.raises(IndexError, match="too many indices"):
        revad.grad(lambda a: a[0, 0])(np.ones(3))


def _same_outcome(get, key):
    """(kind, what) of get(key): a Var's value and slot, an Array's values and shape, or the
    exception's type and message."""
    try:
        r = get(key)
    except Exception as exc:  # the outcome compared is the exception itself
        return "raised", (type(exc), str(exc))
    if type(r) is revad.Var:
        return "var", (r.value, r.is_leaf)
    return "array", (r.shape, r.value.tolist(), r.is_leaf)


def test_1d_integer_and_slice_keys_agree_with_the_general_path():
    # a[i] and a[i:j:k] of a 1-d Array take a short way; a[(i,)] takes the general one.
    keys = [k for i in range(-7, 7) for k in (i, np.int64(i), np.int8(i), np.intp(i))]
    keys += [np.uint8(2), np.uint64(5), True, False, np.True_, 2**70, -2**70, 2.0, "0"]
    keys += [slice(*s) for s in [(None,), (1, None), (None, -1), (None, None, -1), (4, 0, -2),
                                 (-9, 9), (3, 3), (9, 20), (None, None, 3), (np.int64(1), 4),
                                 (0, 5, np.int8(-1))]]
    x = np.arange(5.0) * 1.5

    def f(a):
        views = (a, a[::-1], a[1:4], (a * 1.0)[::2])  # a leaf, views, a lazy group's view
        for view in views if isinstance(a, revad.Array) else ():
            for key in keys:
                fast, general = _same_outcome(view.__getitem__, key), _same_outcome(
                    lambda k: view[(k,)], key)
                assert fast == general, (view.shape, key, fast, general)
        if isinstance(a, revad.Array):
            for k in (0, -1, np.int64(2)):
                assert a[k].value == x[k] and a[1:][k].value == x[1:][k]
            with pytest.raises(ValueError, match="slice step cannot be zero"):
                a[::0]
            with pytest.raises(TypeError, match="slice indices must be integers"):
                a[1.0:2]
        return a[-1] * a[np.int32(0)] + sum(a[1:]) + sum(e * e for e in a[::-2])
    check(f, x)
    with revad.no_grad():  # a leaf's elements, recording nothing
        a = revad.Array(x)
        for key in keys:
            fast, general = _same_outcome(a.__getitem__, key), _same_outcome(lambda k: a[(k,)], key)
            assert fast == general, (key, fast, general)
        assert [type(e) for e in a] == [revad.Var] * 5 and all(e.is_leaf for e in a)
    a = revad.Array(x)  # outside any grad call: the element's Var binds a to this thread's tape
    y = a[-2] * 3.0 + a[1:3][np.int64(0)]
    y.backward()
    np.testing.assert_array_equal(a.grad, [0.0, 1.0, 0.0, 3.0, 0.0])


def test_iterating_takes_each_element_when_asked():
    a = revad.Array([1.0, 2.0, 3.0])
    it = iter(a)
    assert next(it).value == 1.0 and it.__length_hint__() == 2
    with revad.no_grad():
        assert next(it).is_leaf  # taken under no_grad: a leaf holding the value
    assert not next(it).is_leaf
    with pytest.raises(StopIteration):
        next(it)
    rows = list(revad.Array(np.ones((2, 3))))  # rows of a 2-d Array are views
    assert [type(r) for r in rows] == [revad.Array] * 2 and rows[1].shape == (3,)
    with pytest.raises(TypeError, match="iteration over a 0-d"):
        iter(revad.Array(1.0))


def test_reshape_ravel_transpose_squeeze_expand():
    x = RNG.normal(size=(2, 3, 4))
    check(lambda a: a.reshape(6, 4) @ np.ones(4), x)
    check(lambda a: a.T.reshape(-1), x)                   # non-contiguous: a gather
    check(lambda a: np.reshape(a[:, ::-1], (3, -1)), x)
    check(lambda a: np.ravel(a.transpose(1, 0, 2)), x)
    check(lambda a: np.squeeze(a[:, :1], axis=1) + np.expand_dims(a[0, 0], 0), x)
    check(lambda a: np.swapaxes(a, 0, 2) * np.moveaxis(a, 0, -1).reshape(4, 3, 2), x)
    check(lambda a: np.broadcast_to(a[0, 0], (3, 4)), x)
    with pytest.raises(ValueError, match=r"shape \(2, 3, 4\) into shape \(5, -1\)"):
        revad.grad(lambda a: a.reshape(5, -1).sum())(x)


def test_views_record_nothing():
    def f(a):
        n0 = revad.tape_info(a[0, 0])["n_ops"]
        _ = a.T[::-1, 1:][None]
        _ = a.reshape(-1)
        assert revad.tape_info(a[0, 0])["n_ops"] == n0
        return a.sum()
    revad.grad(f)(np.ones((3, 4)))


# -- agreement with the scalar path ----------------------------------------------------------

def test_identical_to_the_scalar_path():
    x = RNG.normal(size=20)
    W = RNG.normal(size=(5, 20))

    def vec(a):
        h = np.tanh(W @ a)
        return np.sum(h * h) + np.sum(revad.sigmoid(a) * a)

    def scalar(a):  # the same computation on a list of Vars, one op at a time
        h = [revad.tanh(sum((W[i, j] * a[j] for j in range(20)), 0.0)) for i in range(5)]
        return sum(hi * hi for hi in h) + sum(revad.sigmoid(aj) * aj for aj in a)

    v1, g1 = revad.value_and_grad(vec)(x)
    v2, g2 = revad.value_and_grad(scalar)(list(x))
    assert v1 == pytest.approx(v2, rel=1e-14)
    np.testing.assert_allclose(g1, g2, rtol=1e-13, atol=1e-15)


# -- errors ----------------------------------------------------------------------------------

def test_errors_name_shapes_and_functions():
    with pytest.raises(ValueError, match=r"\(2, 3\) \(2,\)"):
        revad.grad(lambda a: np.sum(a + np.ones(2)))(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"\(2, 3\) and \(2,\)"):
        revad.grad(lambda a: np.sum(a @ np.ones(2)))(np.ones((2, 3)))
    with pytest.raises(TypeError, match="numpy.median"):
        revad.grad(lambda a: np.sum(np.median(a)))(np.ones(3))
    with pytest.raises(TypeError, match="numpy.linalg.lstsq"):
        revad.grad(lambda a: np.sum(np.linalg.lstsq(a, np.ones(2))[0]))(np.eye(2))
    with pytest.raises(TypeError, match="numpy.spacing"):
        revad.grad(lambda a: np.sum(np.spacing(a)))(np.ones(3))
    with pytest.raises(TypeError, match="drop its gradient"):
        revad.grad(lambda a: np.sum(np.asarray(a)))(np.ones(3))
    with pytest.raises(TypeError, match="immutable"):
        def f(a):
            a[0] = 1.0
        revad.grad(f)(np.ones(3))
    with pytest.raises(TypeError, match="scalar.*shape \\(3,\\)"):
        revad.grad(lambda a: a * 2)(np.ones(3))


def test_comparisons_give_constant_bool_arrays():
    def f(a):
        m = a > 0.5
        assert isinstance(m, np.ndarray) and m.dtype == bool
        return np.sum(np.where(m, a, 0.0))
    np.testing.assert_array_equal(revad.grad(f)(np.array([0.1, 0.7])), [0.0, 1.0])


def test_no_grad_gives_values():
    x = revad.Array([1.0, 2.0])
    with revad.no_grad():
        y = np.exp(x).sum()
    assert y.is_leaf and y.item() == pytest.approx(np.exp(1) + np.exp(2))


def test_array_leaves_accumulate_and_reset():
    x = revad.Array([1.0, 2.0])
    (x * x).sum().backward()
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad, [5.0, 7.0])
    x.grad = None
    np.testing.assert_allclose(x.grad, [0.0, 0.0])
    y = x * x
    z = y.sum()
    z.backward()
    np.testing.assert_allclose(y.grad, [1.0, 1.0])
    with pytest.raises(RuntimeError, match="finished"):
        y + 1.0


def test_bytes_per_element():
    def held(v):
        info = revad.tape_info(v)
        return info["nbytes"] + info["constant_nbytes"]
    x = np.ones(1_000_000)
    saved = revad._core._enter_private()
    try:
        a = revad.Array(x)
        n0 = held(a[0])
        b = np.exp(a)
        n1 = held(b[0])
        c = b * np.arange(x.size, dtype=float)
        n2 = held(c[0])
        d = c * 2.0
        n3 = held(d[0])
    finally:
        revad._core._exit_private(saved)
    # One elementwise group per op: a value and a placeholder op byte per element (9 bytes),
    # plus a few int64 of parameters; a writable ndarray constant is copied (8 more per element).
    assert (n1 - n0) / x.size == pytest.approx(9, abs=1e-3)
    assert (n2 - n1) / x.size == pytest.approx(9 + 8, abs=1e-3)
    assert (n3 - n2) / x.size == pytest.approx(9, abs=1e-3)


def test_elementwise_walks_broadcast_and_strided_operands_without_slot_maps():
    # The slots of broadcast, strided and reversed operands are walked in C order in C: a 4-d
    # broadcast of views on both sides, against NumPy's values and finite differences.
    q, x = RNG.normal(size=(3, 4, 5)), RNG.normal(size=(6, 3, 5))
    check(lambda Q, X: np.exp(Q.reshape(1, 3, 4, 5)[:, ::-1, 1:, ::2] * X[::2, :, None, ::-2]
                              - Q[0, 0, 0]),
          q, x)
    check(lambda Q: np.tanh(Q.transpose(2, 1, 0)[::-1]) + 1.5 * Q.T, q)
