"""NumPy's functions that combine selected elements (issue 16, "Shapes and selection"): diff,
kron, cross, select, nan_to_num, gradient, einsum, dot and inner beyond 2-d, on revad Arrays
and Vars: NumPy's values, gradients against central differences, NumPy's exception types."""
import numpy as np
import pytest
from shapes_helpers import VIEWS, check, normal, same_error

import revad

# -- diff, ediff1d ------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(6,), (3, 4), (2, 3, 4), (0,), (1, 3)])
@pytest.mark.parametrize("n", [0, 1, 2, 7])
@pytest.mark.parametrize("axis", [-1, 0])
def test_diff(shape, n, axis):
    x = normal(*shape)
    check(lambda a: np.diff(a, n, axis), x)
    check(lambda a: np.diff(a[::-1], n=n, axis=axis), x)


@pytest.mark.parametrize("view", list(VIEWS))
def test_diff_prepend_append(view):
    v = VIEWS[view]
    x = normal(4, 3)
    check(lambda a: np.diff(v(a), prepend=1.5), x)
    check(lambda a: np.diff(v(a), axis=0, append=np.ones((1,) + np.shape(v(a))[1:])), x)
    check(lambda a: np.diff(v(a), 2, 0, prepend=v(a)[:1], append=-2.0), x)
    g = revad.grad(lambda a: np.sum(np.diff(a[0], prepend=a[1, 0])))(x)
    np.testing.assert_allclose(g[0, -1], 1.0)
    np.testing.assert_allclose(g[1, 0], -1.0)


def test_diff_errors_are_numpys():
    same_error(lambda a: np.diff(a), 1.0)
    same_error(lambda a: np.diff(a, -1), normal(3))
    same_error(lambda a: np.diff(a, axis=1), normal(3))
    same_error(lambda a: np.diff(a, append=np.ones((2, 2))), normal(3))


def test_ediff1d():
    check(lambda a: np.ediff1d(a), normal(2, 3))
    check(lambda a: np.ediff1d(a, to_end=[1.0, 2.0], to_begin=-1.0), normal(4))


# -- kron, cross --------------------------------------------------------------------------------

@pytest.mark.parametrize("sa, sb", [((3,), (2,)), ((2, 2), (3, 1)), ((2,), (2, 3)),
                                    ((2, 1, 2), (3, 2)), ((), (3,)), ((0, 2), (2, 2))])
def test_kron(sa, sb):
    b = normal(*sb, seed=5)
    x = normal(*sa) if sa else np.float64(1.3)
    check(lambda a: np.kron(a, b), x)
    check(lambda a: np.kron(b, a), x)
    check(lambda a: np.kron(a, a), x)


@pytest.mark.filterwarnings("ignore:Arrays of 2-dimensional vectors:DeprecationWarning")
@pytest.mark.parametrize("na, nb", [(3, 3), (3, 2), (2, 3), (2, 2)])
@pytest.mark.parametrize("lead", [(), (4,), (2, 3)])
def test_cross(na, nb, lead):
    b = normal(*lead, nb, seed=3)
    check(lambda a: np.cross(a, b), normal(*lead, na))
    check(lambda a: np.cross(b, a), normal(*lead, na))
    check(lambda a: np.cross(a[..., :nb], a), normal(*lead, max(na, nb)))


def test_cross_axes():
    x, b = normal(3, 4), normal(4, 3, seed=2)
    check(lambda a: np.cross(a, b, axisa=0), x)
    check(lambda a: np.cross(a, b.T, axisa=0, axisb=0, axisc=0), x)
    check(lambda a: np.cross(a.T, b, axis=1), x)
    check(lambda a: np.cross(a, b.T, axis=0), x)
    same_error(lambda a: np.cross(a, a), normal(4))
    same_error(lambda a: np.cross(a, b, axisa=2), x)


# -- select, nan_to_num ---------------------------------------------------------------------------

def test_select_first_true_condition_wins():
    x = normal(3, 4)
    c1, c2 = x > 0, x > -0.5
    check(lambda a: np.select([c1, c2], [a, a * 2.0]), x)
    check(lambda a: np.select([c1, c2], [a, np.ones(4)], default=a.T.T * 3.0), x)
    check(lambda a: np.select([c1[0]], [a[0, 0]], default=a[1]), x)
    check(lambda a: np.select([np.array(True)], [a[0]], 7.0), x)
    same_error(lambda a: np.select([c1], [a, a]), x)
    same_error(lambda a: np.select([], []), x)
    same_error(lambda a: np.select([x], [a]), x)


def test_select_of_revad_conditions_reads_their_values():
    x = normal(5)
    g = revad.grad(lambda a: np.sum(np.select([a > 0], [a * a], -a)))(x)
    np.testing.assert_allclose(g, np.where(x > 0, 2 * x, -1.0))


def test_nan_to_num_passes_the_gradient_where_finite():
    x = np.array([1.0, np.nan, np.inf, -np.inf, -2.0])
    for kw in ({}, {"nan": 3.0}, {"posinf": 9.0, "neginf": -9.0}, {"copy": False}):
        r = np.nan_to_num(revad.Array(x), **kw)
        np.testing.assert_array_equal(r.value, np.nan_to_num(x.copy(), **kw))
        g = revad.grad(lambda a: np.sum(np.nan_to_num(a, **kw) * np.arange(5.0)))(x)
        np.testing.assert_array_equal(g, [0.0, 0, 0, 0, 4.0])
    check(lambda a: np.nan_to_num(a), normal(2, 3))
    check(lambda a: np.nan_to_num(a), 1.5)
    y = revad.Var(float("inf"))
    assert np.nan_to_num(y).value == np.nan_to_num(np.inf)


# -- gradient -----------------------------------------------------------------------------------

@pytest.mark.parametrize("edge_order", [1, 2])
@pytest.mark.parametrize("shape", [(5,), (3, 4), (3, 4, 5)])
def test_gradient_uniform(edge_order, shape):
    x = normal(*shape)
    check(lambda a: np.gradient(a, edge_order=edge_order), x)
    check(lambda a: np.gradient(a, 0.5, edge_order=edge_order), x)
    check(lambda a: np.gradient(a, axis=0, edge_order=edge_order), x)
    check(lambda a: np.gradient(a.T, 2, edge_order=edge_order), x)


@pytest.mark.parametrize("edge_order", [1, 2])
def test_gradient_spacings(edge_order):
    x = normal(4, 5)
    xs, ys = np.array([0.0, 0.5, 1.5, 3.5]), np.array([0, 1, 2, 4, 8])
    check(lambda a: np.gradient(a, xs, ys, edge_order=edge_order), x)
    check(lambda a: np.gradient(a, 2.0, np.arange(5), edge_order=edge_order), x)
    check(lambda a: np.gradient(a, ys, axis=1, edge_order=edge_order), x)
    check(lambda a: np.gradient(a, 1.0, ys, axis=(1, 0), edge_order=edge_order), x.T.copy())


def test_gradient_errors_are_numpys():
    x = normal(4, 5)
    same_error(lambda a: np.gradient(a, 1.0, 2.0, 3.0), x)
    same_error(lambda a: np.gradient(a, np.ones(3), 1.0), x)
    same_error(lambda a: np.gradient(a, np.ones((4, 1)), 1.0), x)
    same_error(lambda a: np.gradient(a, edge_order=3), x)
    same_error(lambda a: np.gradient(a[:2], edge_order=2), x)
    same_error(lambda a: np.gradient(a, axis=2), x)
    with pytest.raises(TypeError, match="constant spacings"):
        np.gradient(revad.Array(normal(3)), revad.Array(normal(3)))


# -- einsum, dot, inner ---------------------------------------------------------------------------

EINSUMS = [
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 2)]),
    ("ij,jk,kl", [(2, 3), (3, 4), (4, 2)]),
    ("i,i,i->", [(4,), (4,), (4,)]),
    ("ij,ij,ij->ij", [(2, 3), (2, 3), (1, 3)]),
    ("...j,...j->...", [(2, 3, 4), (3, 4)]),
    ("...ij,...jk", [(2, 3, 4), (2, 4, 2)]),
    ("i...->...", [(3, 2, 2)]),
    ("...", [(2, 3)]),
    ("ii->i", [(3, 3)]),
    ("ii", [(3, 3)]),
    ("iji->j", [(3, 2, 3)]),
    ("ij,jj->i", [(2, 3), (3, 3)]),
    ("bij,bjk,bkl->bil", [(2, 2, 3), (2, 3, 2), (2, 2, 3)]),
    ("a,b,c,d->abcd", [(2,), (3,), (1,), (2,)]),
    (",i->i", [(), (3,)]),
    ("ij->", [(0, 3)]),
]


@pytest.mark.parametrize("spec, shapes", EINSUMS)
@pytest.mark.parametrize("optimize", [False, True, "greedy", "optimal"])
def test_einsum_any_number_of_operands(spec, shapes, optimize):
    consts = [normal(*s, seed=k + 1) for k, s in enumerate(shapes)]
    for k in range(len(shapes)):  # the Array in each place, the others constants
        def f(a, k=k):
            ops = consts[:k] + [a] + consts[k + 1:]
            return np.einsum(spec, *ops, optimize=optimize)
        check(f, consts[k], exact=False)
    # every operand the same leaf where the shapes allow it
    if len(set(shapes)) == 1 and shapes[0]:
        check(lambda a: np.einsum(spec, *[a] * len(shapes), optimize=optimize), consts[0],
              exact=False)


def test_einsum_an_explicit_path_and_errors():
    a, b, c = normal(2, 3), normal(3, 4), normal(4, 2)
    path = np.einsum_path("ij,jk,kl->il", a, b, c, optimize="optimal")[0]
    check(lambda x: np.einsum("ij,jk,kl->il", x, b, c, optimize=path), a, exact=False)
    same_error(lambda x: np.einsum("ij,jk->ik", x, a), a)
    same_error(lambda x: np.einsum("ij,jk", x), a)
    same_error(lambda x: np.einsum("ii->i", x), a)
    same_error(lambda x: np.einsum("ijk->i", x), a)
    same_error(lambda x: np.einsum("ij->k", x), a)
    same_error(lambda x: np.einsum("...i->i", x, b), a)


@pytest.mark.parametrize("sa, sb", [((2, 3, 4), (4,)), ((2, 3, 4), (4, 5)), ((3,), (2, 3, 4)),
                                    ((2, 3), (4, 3, 2)), ((2, 2, 3), (2, 3, 2)), ((), (2, 3, 2))])
def test_dot_beyond_2d(sa, sb):
    b = normal(*sb, seed=4)
    x = normal(*sa) if sa else np.float64(0.5)
    check(lambda a: np.dot(a, b), x, exact=False)
    if len(sa) and len(sb) and sa[-1] == sb[-1]:
        check(lambda a: np.inner(a, b), x, exact=False)
    if sa:
        same_error(lambda a: np.dot(a, np.ones((sa[-1] + 1, 2))), x)


@pytest.mark.parametrize("sa, sb", [((2, 3, 4), (4,)), ((2, 3), (5, 3)), ((3,), (2, 4, 3)),
                                    ((), (2, 3)), ((2, 4), ()), ((0, 3), (2, 3))])
def test_inner_beyond_1d(sa, sb):
    b = normal(*sb, seed=4) if sb else np.float64(2.5)
    x = normal(*sa) if sa else np.float64(0.5)
    check(lambda a: np.inner(a, b), x, exact=False)
    check(lambda a: np.inner(b, a), x, exact=False)
    if len(sa):
        same_error(lambda a: np.inner(a, np.ones(sa[-1] + 1)), x)


def test_array_dot_method_beyond_2d():
    x, b = normal(2, 3, 4), normal(4, 2)
    r = revad.Array(x).dot(b)
    np.testing.assert_allclose(r.value, x.dot(b), rtol=1e-12)
