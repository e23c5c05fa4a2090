"""NumPy's functions that move, repeat, drop or pick elements (issue 16, "Shapes and
selection"), on revad Arrays and Vars through NumPy's own names and revad.numpy: NumPy's values
exactly, gradients against central differences, NumPy's exception types."""
import doctest

import numpy as np
import pytest
from shapes_helpers import VIEWS, check, distinct, normal, same_error

import revad
import revad.numpy as rnp

SHAPES = [(), (0,), (5,), (3, 4), (2, 3, 4), (0, 3)]


def nd(shape, seed=0):
    return distinct(*shape, seed=seed) if shape else np.float64(0.7)


# -- roll, flip, rot90, rollaxis, tile, repeat ----------------------------------------------------

@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("view", list(VIEWS))
def test_roll_and_flips_over_shapes_and_views(shape, view):
    v = VIEWS[view]
    x = nd(shape)
    if view != "plain" and not shape:
        pytest.skip("a 0-d value has no views")
    check(lambda a: np.roll(v(a), 2), x)
    check(lambda a: np.flip(v(a)), x)
    if len(shape) >= 1:
        check(lambda a: np.roll(v(a), -1, axis=0), x)
        check(lambda a: np.flipud(v(a)), x)
        check(lambda a: np.flip(v(a), axis=-1), x)
        check(lambda a: np.tile(v(a), 2), x)
        check(lambda a: np.repeat(v(a), 2, axis=0), x)
    if len(shape) >= 2:
        check(lambda a: np.roll(v(a), (1, -2), axis=(0, 1)), x)
        check(lambda a: np.fliplr(v(a)), x)
        check(lambda a: np.rot90(v(a)), x)
        check(lambda a: np.rot90(v(a), k=3, axes=(1, 0)), x)
        check(lambda a: np.rot90(v(a), 2), x)
        check(lambda a: np.rollaxis(v(a), 1), x)
        check(lambda a: np.tile(v(a), (2, 1, 2)), x)
        check(lambda a: np.repeat(v(a), 2, axis=1), x)
        check(lambda a: np.repeat(v(a), list(range(np.shape(v(a))[0])), axis=0), x)


def test_repeat_and_tile_duplicates_sum_their_gradients():
    x = normal(4)
    check(lambda a: np.repeat(a, 3), x)
    check(lambda a: np.repeat(a, [0, 1, 2, 3]), x)
    check(lambda a: np.tile(a, (2, 3)), x)
    check(lambda a: np.repeat(a, 2, axis=None), normal(2, 2))
    g = revad.grad(lambda a: np.sum(np.repeat(a, [0, 1, 2, 3])))(x)
    np.testing.assert_array_equal(g, [0.0, 1.0, 2.0, 3.0])


def test_roll_of_a_var_is_a_var_and_these_work_on_vars():
    x = revad.Var(1.5)
    assert type(np.roll(x, 1)) is revad.Var and np.roll(x, 1).value == 1.5
    check(lambda a: np.tile(a, 3), 1.5)
    check(lambda a: np.repeat(a, 2), 1.5)
    check(lambda a: np.atleast_1d(a), 1.5)
    check(lambda a: np.atleast_2d(a), 1.5)
    check(lambda a: np.atleast_3d(a), 1.5)
    check(lambda a: np.flip(a), 1.5)
    check(lambda a: np.pad(a, 2, constant_values=4.0), 1.5)


@pytest.mark.parametrize("f", [
    lambda a: np.roll(a, 1, axis=3), lambda a: np.flip(a, axis=2), lambda a: np.rot90(a[0]),
    lambda a: np.rot90(a, axes=(0, 0)), lambda a: np.rollaxis(a, 5), lambda a: np.fliplr(a[0]),
    lambda a: np.repeat(a, [1, 2], axis=0), lambda a: np.repeat(a, 2, axis=2),
    lambda a: np.tile(a, 1.5), lambda a: np.roll(a, (1, 2, 3), axis=(0, 1)),
])
def test_bad_arguments_raise_numpys_exceptions(f):
    same_error(f, normal(3, 4))


def test_a_revad_array_as_repeats_is_refused():
    with pytest.raises(TypeError, match="repeats"):
        np.repeat(revad.Array([1.0, 2.0]), revad.Array([1.0, 2.0]))


# -- tril, triu, diag, trace ---------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(4, 4), (3, 5), (2, 3, 4), (0, 3), (5,)])
@pytest.mark.parametrize("k", [0, 1, -2, 7])
def test_tril_triu(shape, k):
    x = normal(*shape)
    check(lambda a: np.tril(a, k), x)
    check(lambda a: np.triu(a, k=k), x)
    check(lambda a: np.tril(a.T if a.ndim == 2 else a, k), x)


@pytest.mark.parametrize("k", [0, 1, -2, 5])
def test_diag_of_a_vector_is_a_matrix_and_of_a_matrix_its_diagonal(k):
    for x in (normal(4), normal(0), normal(3, 5), normal(4, 4)):
        check(lambda a: np.diag(a, k), x)
    check(lambda a: np.diag(a[::-1], k), normal(4))
    same_error(lambda a: np.diag(a), normal(2, 2, 2))
    same_error(lambda a: np.diag(a), 1.0)


@pytest.mark.parametrize("kw", [{}, {"offset": 1}, {"offset": -1}, {"axis1": 1, "axis2": 2},
                                {"offset": 2, "axis1": 2, "axis2": 0}, {"offset": 9}])
def test_trace_n_d(kw):
    check(lambda a: np.trace(a, **kw), normal(3, 4, 5), exact=False)
    check(lambda a: np.trace(a[0], **{k: v for k, v in kw.items() if k == "offset"}),
          normal(3, 4, 5), exact=False)
    same_error(lambda a: np.trace(a, axis1=0, axis2=0), normal(3, 3))
    same_error(lambda a: np.trace(a), normal(3))


# -- split ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("f", [
    lambda a: np.split(a, 2), lambda a: np.split(a, [1, 3], axis=1),
    lambda a: np.split(a, [3, 1], axis=1), lambda a: np.array_split(a, 3, axis=1),
    lambda a: np.array_split(a, 5), lambda a: np.hsplit(a, 2), lambda a: np.vsplit(a, [1]),
    lambda a: np.dsplit(a, [1, 2]), lambda a: np.hsplit(a.T, [2]),
])
def test_splits_give_lists_of_arrays(f):
    got = check(f, normal(4, 4, 3))
    assert isinstance(got, list) and all(type(p) is revad.Array for p in got)


def test_split_errors_are_numpys():
    same_error(lambda a: np.split(a, 3), normal(4))
    same_error(lambda a: np.split(a, 2, axis=2), normal(4, 2))
    same_error(lambda a: np.dsplit(a, 2), normal(4, 2))
    same_error(lambda a: np.vsplit(a, 2), normal(4))
    same_error(lambda a: np.hsplit(a, 2), 1.0)


# -- sort, argsort, partition, take_along_axis --------------------------------------------------

@pytest.mark.parametrize("shape", [(6,), (3, 4), (2, 3, 4), (0,), (3, 0)])
@pytest.mark.parametrize("axis", [-1, 0, None])
@pytest.mark.parametrize("kind", [None, "stable", "heapsort"])
def test_sort_gathers_the_values_in_order(shape, axis, kind):
    x = distinct(*shape)
    check(lambda a: np.sort(a, axis=axis, kind=kind), x)
    check(lambda a: np.sort(a.T, axis=axis, kind=kind), x)
    check(lambda a: np.sort(a[::-1], axis, kind), x)


def test_sort_stable_keyword_and_argsort_is_the_plain_permutation():
    x = distinct(3, 5)
    check(lambda a: np.sort(a, stable=True), x)
    a = revad.Array(x)
    for kw in ({}, {"axis": 0}, {"axis": None}, {"kind": "stable"}):
        r = np.argsort(a, **kw)
        assert type(r) is np.ndarray
        np.testing.assert_array_equal(r, np.argsort(x, **kw))
    np.testing.assert_array_equal(np.argpartition(a, 2), np.argpartition(x, 2))
    order = np.argsort(x, axis=1)
    check(lambda b: np.take_along_axis(b, order, axis=1), x)
    check(lambda b: np.take_along_axis(b, order[:, :2], 1), x)
    check(lambda b: np.take_along_axis(b, np.argsort(x, axis=None), None), x)
    check(lambda b: np.take_along_axis(b, np.argsort(x, axis=0)[::-1], axis=0), x)


def test_sort_with_ties_and_nans_has_numpys_values():
    x = np.array([3.0, np.nan, 1.0, 3.0, -np.inf, 1.0])
    np.testing.assert_array_equal(np.sort(revad.Array(x)).value, np.sort(x))
    g = revad.grad(lambda a: np.sum(np.sort(a)[:2] * np.array([1.0, 10.0])))(x)
    np.testing.assert_array_equal(g, [0, 0, 10.0, 0, 1.0, 0])  # -inf, then the first 1.0


@pytest.mark.parametrize("kth", [0, 2, -1, (1, 3)])
@pytest.mark.parametrize("axis", [-1, 0, None])
def test_partition(kth, axis):
    check(lambda a: np.partition(a, kth, axis=axis), distinct(5, 4))


def test_sort_errors_are_numpys():
    same_error(lambda a: np.sort(a), 1.0)
    same_error(lambda a: np.sort(a, axis=2), normal(3, 2))
    same_error(lambda a: np.sort(a, kind="nonsense"), normal(3))
    same_error(lambda a: np.partition(a, 5), normal(3))
    same_error(lambda a: np.take_along_axis(a, np.array([[0]]), axis=0), normal(3))
    same_error(lambda a: np.take_along_axis(a, np.array([0.5]), axis=0), normal(3))
    with pytest.raises(TypeError, match="order="):
        np.sort(revad.Array([1.0]), order="x")
    with pytest.raises(TypeError, match="constant integer indices"):
        np.take_along_axis(revad.Array([1.0]), revad.Array([0.0]), 0)


# -- pad ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["constant", "edge", "reflect", "symmetric", "wrap"])
@pytest.mark.parametrize("shape", [(5,), (3, 4), (2, 3, 4)])
@pytest.mark.parametrize("width", [1, (1, 2), ((2, 0),), 0])
def test_pad_modes(mode, shape, width):
    x = normal(*shape)
    check(lambda a: np.pad(a, width, mode), x)
    check(lambda a: np.pad(a.T, width, mode=mode), x)


@pytest.mark.parametrize("cv", [3.5, (1.0, -2.0), ((1.0, 2.0), (3.0, 4.0))])
def test_pad_constant_values(cv):
    check(lambda a: np.pad(a, ((1, 2), (2, 1)), constant_values=cv), normal(3, 4))
    check(lambda a: np.pad(a, 2, "constant", constant_values=cv), normal(3, 2))


def test_pad_with_nan_constants_keeps_the_gradient_of_the_elements():
    x = normal(2, 3)
    r = np.pad(revad.Array(x), 1, constant_values=np.nan)
    np.testing.assert_array_equal(r.value, np.pad(x, 1, constant_values=np.nan))
    g = revad.grad(lambda a: np.sum(np.pad(a, 1, constant_values=np.nan)[1:-1, 1:-1] * x))(x)
    np.testing.assert_array_equal(g, x)


def test_pad_refuses_modes_that_compute_values_and_raises_numpys_errors():
    a = revad.Array(normal(3, 4))
    for kw in ({"mode": "mean"}, {"mode": "linear_ramp"}, {"mode": "reflect",
                                                            "reflect_type": "odd"},
               {"mode": np.pad}):
        with pytest.raises(TypeError, match="numpy.pad"):
            np.pad(a, 1, **kw)
    with pytest.raises(TypeError, match="constant"):
        np.pad(a, 1, constant_values=revad.Var(1.0))
    same_error(lambda b: np.pad(b, -1), normal(3))
    same_error(lambda b: np.pad(b, ((1, 2, 3),)), normal(3))
    same_error(lambda b: np.pad(b, 1, "edge", constant_values=2.0), normal(3))
    same_error(lambda b: np.pad(b, 1, "reflect"), normal(0))


# -- atleast_nd, column_stack, append, r_, c_ ---------------------------------------------------

@pytest.mark.parametrize("shape", [(), (3,), (2, 3), (2, 3, 4), (0,)])
def test_atleast_nd(shape):
    x = normal(*shape) if shape else np.float64(0.5)
    for f in (np.atleast_1d, np.atleast_2d, np.atleast_3d):
        check(f, x)
    a = revad.Array(normal(3))
    r = np.atleast_2d(a, 1.0, np.ones(2))
    ref = np.atleast_2d(np.ones(3), 1.0, np.ones(2))
    assert type(r) is type(ref) and [np.shape(p) for p in r] == [p.shape for p in ref]
    assert type(r[0]) is revad.Array and type(r[1]) is np.ndarray


@pytest.mark.parametrize("f", [
    lambda a: np.column_stack([a[0], a[1]]), lambda a: np.column_stack((a, a[:, :1])),
    lambda a: np.column_stack([a[0], np.ones(3), a[1]]),
    lambda a: np.column_stack([a[0, :1], a[1, 0], 2.0]),
    lambda a: np.append(a, a[0]), lambda a: np.append(a, a[:1], axis=0),
    lambda a: np.append(a, np.ones((2, 1)), 1), lambda a: np.append(a[0], 5.0),
    lambda a: np.append(a[0, 0], a[1]),
])
def test_column_stack_and_append(f):
    check(f, normal(2, 3))


def test_column_stack_and_append_errors():
    same_error(lambda a: np.append(a, a[0], axis=0), normal(2, 3))
    same_error(lambda a: np.column_stack([a, a[:1]]), normal(2, 3))


@pytest.mark.parametrize("f", [
    lambda a, np: np.r_[a[0], a[1]], lambda a, np: np.r_[a[0], 0.0, 1:3, [7.0, 8.0]],
    lambda a, np: np.r_[a[0, 1], a[1]], lambda a, np: np.r_[a, a],
    lambda a, np: np.r_[0:1:4j, a[0]], lambda a, np: np.c_[a[0], a[1]],
    lambda a, np: np.c_[a.T, a[0], np.ones(3)], lambda a, np: np.c_[a[0]],
])
def test_r_and_c(f):
    x = normal(2, 3)
    ref = f(x, np)
    got = f(revad.Array(x), rnp)
    assert type(got) is revad.Array
    np.testing.assert_array_equal(got.value, ref)
    w = normal(*ref.shape, seed=3)
    g = revad.grad(lambda a: np.sum(f(a, rnp) * w))(x)
    from shapes_helpers import fd_grad
    np.testing.assert_allclose(g, fd_grad(lambda v: np.sum(f(v, np) * w), x), rtol=1e-6,
                               atol=1e-7)


def test_r_and_c_of_plain_data_are_numpys_and_directives_are_refused():
    np.testing.assert_array_equal(rnp.r_[1:4, 0], np.r_[1:4, 0])
    np.testing.assert_array_equal(rnp.c_[np.ones(2), np.zeros(2)], np.c_[np.ones(2), np.zeros(2)])
    assert rnp.r_["0,2", [1, 2]].shape == (1, 2)
    with pytest.raises(TypeError, match="directive"):
        rnp.r_["0,2", revad.Array([1.0])]
    with pytest.raises(ValueError):
        rnp.r_[revad.Array([[1.0]]), revad.Array([1.0])]


def test_r_c_docstring_example_runs():
    parser = doctest.DocTestParser()
    test = parser.get_doctest(type(rnp.r_).__doc__, {}, "revad.numpy.r_", None, 0)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    assert runner.summarize(verbose=False).failed == 0


# -- Var's attributes -----------------------------------------------------------------------------

def test_var_has_a_float64_scalars_dtype_shape_and_ndim():
    x = revad.Var(2.0)
    y = x * 3.0
    for v in (x, y):
        assert v.dtype == np.float64 and v.shape == () and v.ndim == 0
        assert (v.dtype, v.shape, v.ndim) == (np.float64(1).dtype, np.float64(1).shape,
                                              np.float64(1).ndim)
    assert revad.Array([1.0]).dtype == np.dtype(np.float64)
    assert np.shape(x) == () and np.ndim(x) == 0
    d = x.dtype
    assert repr(d) == "dtype('float64')" and d.kind == "f" and d.itemsize == 8
    assert np.dtype(d) == np.float64 and np.zeros(2, dtype=d).dtype == np.float64
    assert np.finfo(d).eps == np.finfo(np.float64).eps and np.issubdtype(d, np.floating)
    assert hash(d) == hash(np.dtype(np.float64)) and {d: 1}[np.dtype(np.float64)] == 1
    assert type(d.type(1.5)) is np.float64 and d.type(y) is y


@pytest.mark.parametrize("red", [np.mean, np.var, np.std, np.sum])
def test_reductions_of_object_arrays_of_vars_keep_the_gradient(red):
    # NumPy ends these with `r.dtype.type(r / n)` when r has a dtype: it must stay a Var.
    a, b = revad.Var(1.0), revad.Var(4.0)
    r = red(np.array([a, b]))
    assert type(r) is revad.Var and r.value == pytest.approx(red([1.0, 4.0]))
    r.backward()
    want = {np.mean: (0.5, 0.5), np.var: (-1.5, 1.5), np.std: (-0.5, 0.5), np.sum: (1.0, 1.0)}
    assert (a.grad, b.grad) == pytest.approx(want[red])


def test_through_revad_numpy_in_a_program():
    def f(a):
        s = rnp.sort(a)
        return rnp.sum(rnp.roll(s, 1) * rnp.diff(rnp.pad(s, 1, "edge"))[1:]) + rnp.trace(
            rnp.diag(rnp.flip(a), 1))

    x = distinct(5)
    check(f, x)


def test_under_no_grad_the_values_are_numpys():
    x = distinct(3, 4)
    with revad.no_grad():
        a = revad.Array(x)
        for f in (lambda b: np.roll(b, 1), lambda b: np.sort(b, 0), lambda b: np.tril(b),
                  lambda b: np.pad(b, 1, constant_values=2.0), lambda b: np.split(b, 2, 1),
                  lambda b: np.diff(b), lambda b: np.diag(b[0], 1)):
            for r, ref in zip(f(a) if isinstance(f(x), list) else [f(a)],
                              f(x) if isinstance(f(x), list) else [f(x)], strict=True):
                assert type(r) is revad.Array
                np.testing.assert_array_equal(r.value, ref)


def test_forward_mode_through_gathers():
    x = distinct(5)
    t = normal(5, seed=2)
    for f in (lambda b: np.sum(np.roll(b, 2) * np.arange(5.0)),
              lambda b: np.sum(np.sort(b) * np.arange(5.0)),
              lambda b: np.sum(np.pad(b, 1, "reflect") ** 2)):
        _, tangent = revad.jvp(f, (x,), (t,))
        g = revad.grad(f)(x)
        np.testing.assert_allclose(tangent, g @ t, rtol=1e-12)
