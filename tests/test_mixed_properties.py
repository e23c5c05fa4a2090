"""Properties of programs that mix Vars and Arrays: vectors built from scalar Vars (NumPy's
np.array, which gives an object ndarray of Vars, and revad.numpy.array, which gives an Array),
lists of Vars given to concatenate, hstack, stack, vstack, where and clip, elementwise ops between
Arrays, object arrays and Vars, indexing, and reductions (sum, mean, max, min, std, prod).

Each random program runs twice: on revad's leaves (scalar Vars, Array leaves) and on plain
floats and float ndarrays, where every build is a float array. The values must agree, and the
gradient with respect to every input must match central differences of the float program.
Programs whose float run comes near a kink (max/min with a runner-up close to the top, clip or
abs near their switch point, std near 0) or grows huge are drawn again, not counted."""
import itertools

import numpy as np
import pytest
from hypothesis import assume, given, note
from hypothesis import strategies as st

import revad
import revad.numpy as rnp

from conftest import count_programs, fd_array_gradient, fd_gradient, property_settings
from test_properties import BINARY, CONST, UNARY

# How a list of scalars becomes a vector, and how R rows become a matrix.
BUILDS = ("np.array", "np.array(object)", "rnp.array")
JOINS = ("concatenate", "hstack")
STACKS = ("stack", "vstack", "np.array", "rnp.array")
REDUCTIONS = ("sum", "mean", "max", "min", "std", "prod")
# The steps a program is made of (a vector build twice as often as the others).
OPS = ("scalar", "build", "build", "binary", "const", "unary", "join", "stack", "where", "clip",
       "maxmin", "abs", "index", "reduce", "dot")
KINKS_AT_LEAST = 1e-3  # how far every kink must be from its switch point (the steps are 1e-6)
LARGEST = 1e4          # no node of the float run may exceed this


class HypothesisChoices:
    """The program's choices drawn by Hypothesis (so that a failure shrinks)."""

    def __init__(self, draw):
        self.draw = draw

    def int(self, lo, hi):
        return self.draw(st.integers(lo, hi))

    def real(self, lo, hi):
        return self.draw(st.floats(lo, hi))


class SeededChoices:
    """The same choices from a NumPy generator: many programs from one drawn seed."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)

    def int(self, lo, hi):
        return int(self.rng.integers(lo, hi + 1))

    def real(self, lo, hi):
        return float(self.rng.uniform(lo, hi))


def make_program(c):
    """A random program over n_s scalar inputs and some Array leaves of shape (L,) or (R, L).

    Nodes have kinds "S" (a scalar), "V" (a vector of length L) and "M" (an (R, L) matrix); each
    step names the nodes it reads, so the program can be replayed on any kind of leaves."""
    L, R = c.int(2, 4), c.int(2, 3)
    n_s = c.int(1, 3)
    kinds = ["S"] * n_s + [("V", "M")[c.int(0, 1)] for _ in range(c.int(0, 2))]
    n_in = len(kinds)

    def pick(*wanted):
        idx = [i for i, k in enumerate(kinds) if k in wanted]
        return idx[c.int(0, len(idx) - 1)] if idx else None

    def const():
        return c.real(0.25, 3.0) * (1 if c.int(0, 1) else -1)

    def element():
        """One scalar of a list: a scalar node, a function of one, a constant, an entry of a
        vector or matrix node (a Var)."""
        kind = c.int(0, 3)
        if kind == 0:
            return ("s", pick("S"))
        if kind == 1:
            return ("u", c.int(0, len(UNARY) - 1), pick("S"))
        if kind == 2 or pick("V", "M") is None:
            return ("k", const())
        j = pick("V", "M")
        return ("e", j, c.int(0, L - 1) if kinds[j] == "V" else (c.int(0, R - 1), c.int(0, L - 1)))

    def elements(n):
        return [element() for _ in range(n)]

    def operand(shape_of):
        """An argument of where or clip: a node, a list of scalars, a constant."""
        kind = c.int(0, 2)
        if kind == 0:
            return ("n", pick(*shape_of))
        if kind == 1 and "V" in shape_of:
            return ("l", elements(L))
        return ("k", const())

    steps = []
    for _ in range(c.int(1, 10)):
        has_v, has_vm = pick("V") is not None, pick("V", "M") is not None
        op = OPS[c.int(0, len(OPS) - 1)]
        if ((op in ("unary", "clip", "index", "reduce") and not has_vm)
                or (op == "dot" and not has_v)):
            op = "build"  # a vector from scalars first
        if op == "scalar":
            steps.append(("eu", c.int(0, len(UNARY) - 1), pick("S")))
            kinds.append("S")
        elif op == "build":
            steps.append(("build", BUILDS[c.int(0, 2)], elements(L)))
            kinds.append("V")
        elif op == "binary":  # S, V, M with each other (Var * Array, Array + object array...)
            i, j = pick("S", "V", "M"), pick("S", "V", "M")
            steps.append(("eb", c.int(0, len(BINARY) - 1), i, j))
            kinds.append(max(kinds[i], kinds[j], key="SVM".index))
        elif op == "const":
            i = pick("S", "V", "M")
            steps.append(("ec", c.int(0, len(CONST) - 1), i, const()))
            kinds.append(kinds[i])
        elif op == "unary":
            i = pick("V", "M")
            steps.append(("eu", c.int(0, len(UNARY) - 1), i))
            kinds.append(kinds[i])
        elif op == "join":
            # A vector joined from pieces: slices of vector nodes and lists of scalars.
            cuts = sorted({0, L, *(c.int(1, L - 1) for _ in range(c.int(0, 2)))})
            parts = []
            for a, b in itertools.pairwise(cuts):
                j = pick("V") if c.int(0, 1) else None
                parts.append(("slice", j, a, b) if j is not None else ("l", elements(b - a)))
            steps.append(("join", JOINS[c.int(0, 1)], parts))
            kinds.append("V")
        elif op == "stack":
            # R rows, vector nodes or lists of scalars (only lists for NumPy's own np.array).
            how = STACKS[c.int(0, 3)]
            rows = [("n", pick("V")) if how != "np.array" and has_v and c.int(0, 1)
                    else ("l", elements(L)) for _ in range(R)]
            steps.append(("stack", how, rows))
            kinds.append("M")
        elif op == "where":
            mask = [bool(c.int(0, 1)) for _ in range(L)]
            steps.append(("where", mask, operand("SV"), operand("SV")))
            kinds.append("V")
        elif op == "clip":
            i = pick("V", "M")
            shape_of = "SV" if kinds[i] == "V" else "SVM"
            lo = None if c.int(0, 2) == 0 else operand(shape_of)
            hi = None if lo is not None and c.int(0, 2) == 0 else operand(shape_of)
            steps.append(("clip", i, lo, hi))
            kinds.append(kinds[i])
        elif op == "maxmin":
            i, j = pick("S", "V", "M"), pick("S", "V", "M")
            steps.append(("mm", c.int(0, 1), i, j))
            kinds.append(max(kinds[i], kinds[j], key="SVM".index))
        elif op == "abs":
            i = pick("S", "V", "M")
            steps.append(("abs", i))
            kinds.append(kinds[i])
        elif op == "index":
            i = pick("V", "M")
            perm = list(range(L))
            for a in range(L - 1):  # Fisher-Yates, from the choices
                b = c.int(a, L - 1)
                perm[a], perm[b] = perm[b], perm[a]
            if kinds[i] == "V":
                options = [(c.int(0, L - 1), "S"), (slice(None, None, -1), "V"), (perm, "V")]
            else:
                options = [((c.int(0, R - 1), c.int(0, L - 1)), "S"), (c.int(0, R - 1), "V"),
                           (slice(None, None, -1), "M"), ((slice(None), perm), "M")]
                if R == L:
                    options.append(((slice(None), c.int(0, L - 1)), "V"))
            key, kind = options[c.int(0, len(options) - 1)]
            steps.append(("ix", i, key))
            kinds.append(kind)
        elif op == "reduce":
            i = pick("V", "M")
            axes = [None] if kinds[i] == "V" else [None, 0] + ([1] if R == L else [])
            axis = axes[c.int(0, len(axes) - 1)]
            steps.append(("red", REDUCTIONS[c.int(0, 5)], i, axis))
            kinds.append("S" if axis is None else "V")
        else:
            # A dot product of two vectors made Arrays by revad.numpy.array.
            steps.append(("dot", pick("V"), pick("V")))
            kinds.append("S")
    # The last node and up to two others feed the loss.
    outs = [len(kinds) - 1] + [c.int(0, len(kinds) - 1) for _ in range(c.int(0, 2))]
    # The inputs come from a seed, not from Hypothesis's favourite values (0, 1, ...): x * x and
    # x tie at x = 1, and a max of the two has a kink there. Generic inputs tie only where two
    # nodes are the same function (equal derivatives too), which the kink checks allow.
    rng = np.random.default_rng(c.int(0, 2 ** 32 - 1))
    scalars = [float(x) for x in rng.uniform(-2.0, 2.0, size=n_s)]
    arrays = [rng.uniform(-2.0, 2.0, size=(L,) if k == "V" else (R, L)) for k in kinds[n_s:n_in]]
    return {"L": L, "R": R, "steps": steps, "outs": outs, "scalars": scalars, "arrays": arrays}


class Revad:
    """How the program's builds run on revad's leaves."""

    ref = False

    @staticmethod
    def build(how, items):
        if how == "np.array":
            return np.array([item(x) for x in items])  # an object ndarray when it holds Vars
        if how == "np.array(object)":
            return np.array([item(x) for x in items], dtype=object)
        return rnp.array(items)  # recorded on the tape, 0-d Arrays included

    @staticmethod
    def listed(items):
        # A 0-d Array inside a list is invisible to NumPy's dispatch (it would convert it and
        # raise): the program indexes it with [()] for its Var, as a user must.
        return [item(x) for x in items]

    @staticmethod
    def to_array(x):
        return rnp.array(x)

    @staticmethod
    def reduce(name, x, axis):
        if name == "std" and isinstance(x, np.ndarray) and x.dtype == object:
            # NumPy's std on an object array ends with each result's .sqrt(): a slice of plain
            # floats has none (nor does NumPy without revad), so such a slice goes as an Array.
            is_var = np.vectorize(lambda e: type(e) is revad.Var, otypes=[bool])(x)
            if not np.any(is_var):  # plain numbers: revad.numpy.array keeps NumPy's object dtype
                x = x.astype(np.float64)
            elif not np.all(np.any(is_var, axis=axis)):
                x = rnp.array(x)
        return getattr(np, name)(x, axis=axis)

    def kink(self, *args):
        pass


REVAD = Revad()


def item(x):
    return x[()] if type(x) is revad.Array else x


class Reference:
    """The same program on floats: every build is a float ndarray. It notes how close the run
    comes to a kink, and how large its nodes grow."""

    ref = True

    def __init__(self):
        self.gap = np.inf
        self.largest = 0.0

    @staticmethod
    def build(how, items):
        return np.array(items, dtype=np.float64)

    @staticmethod
    def listed(items):
        return list(items)

    @staticmethod
    def to_array(x):
        return np.asarray(x, dtype=np.float64)

    @staticmethod
    def reduce(name, x, axis):
        return getattr(np, name)(x, axis=axis)

    def apart(self, a, b):
        """a and b (broadcast) must differ by KINKS_AT_LEAST where they differ at all: equal
        values come from the same expression (or constants), with the same derivative."""
        d = np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))
        d = d[d != 0]
        if d.size:
            self.gap = min(self.gap, float(d.min()))

    def kink(self, what, *args):
        if what == "pair":
            self.apart(*args)
        elif what in ("max", "min"):
            x, axis = np.asarray(args[0], dtype=np.float64), args[1]
            if axis is None:
                rows = [x.ravel()]
            else:
                rows = np.moveaxis(x, axis, -1).reshape(-1, x.shape[axis])
            for row in rows:
                u = np.unique(row)
                if u.size > 1:
                    self.apart(u[-1] if what == "max" else u[0], u[-2] if what == "max" else u[1])
        elif what == "std":
            self.gap = min(self.gap, float(np.min(args[0])))

    def grown(self, x):
        x = np.asarray(x, dtype=np.float64)
        size = float(np.max(np.abs(x))) if np.all(np.isfinite(x)) else np.inf
        self.largest = max(self.largest, size)


def run(program, scalars, arrays, mode=REVAD):
    """The program on (scalar Vars, Array leaves) or, with a Reference mode, on (floats,
    ndarrays)."""
    nodes = list(scalars) + list(arrays)

    def element(spec):
        if spec[0] == "s":
            return nodes[spec[1]]
        if spec[0] == "u":
            return UNARY[spec[1]][1](nodes[spec[2]])
        if spec[0] == "k":
            return spec[1]
        return nodes[spec[1]][spec[2]]

    def operand(spec):
        if spec is None:
            return None
        if spec[0] == "n":
            return nodes[spec[1]]
        if spec[0] == "l":
            return mode.listed([element(e) for e in spec[1]])
        return spec[1]

    for step in program["steps"]:
        op = step[0]
        if op == "eu":
            r = UNARY[step[1]][1](nodes[step[2]])
        elif op == "eb":
            r = BINARY[step[1]][1](nodes[step[2]], nodes[step[3]])
        elif op == "ec":
            r = CONST[step[1]][1](nodes[step[2]], step[3])
        elif op == "build":
            r = mode.build(step[1], [element(e) for e in step[2]])
        elif op == "join":
            parts = [nodes[p[1]][p[2]:p[3]] if p[0] == "slice" else operand(p) for p in step[2]]
            r = (np.concatenate if step[1] == "concatenate" else np.hstack)(parts)
        elif op == "stack":
            rows = [operand(p) for p in step[2]]
            if step[1] == "stack":
                r = np.stack(rows)
            elif step[1] == "vstack":
                r = np.vstack(rows)
            elif step[1] == "np.array":
                r = mode.build("np.array(object)", rows)
            else:
                r = mode.build("rnp.array", [list(p) if type(p) is list else p for p in rows])
        elif op == "where":
            r = np.where(step[1], operand(step[2]), operand(step[3]))
        elif op == "clip":
            a, lo, hi = nodes[step[1]], operand(step[2]), operand(step[3])
            if mode.ref:  # NumPy's meaning: minimum(maximum(a, lo), hi)
                if lo is not None:
                    mode.kink("pair", a, lo)
                if hi is not None:
                    mode.kink("pair", a if lo is None else np.maximum(a, lo), hi)
            r = np.clip(a, lo, hi)
        elif op == "mm":
            a, b = nodes[step[2]], nodes[step[3]]
            mode.kink("pair", a, b)
            r = (np.maximum, np.minimum)[step[1]](a, b)
        elif op == "abs":
            mode.kink("pair", nodes[step[1]], 0.0)
            r = np.abs(nodes[step[1]])
        elif op == "ix":
            r = nodes[step[1]][step[2]]
        elif op == "red":
            name, x, axis = step[1], nodes[step[2]], step[3]
            if name in ("max", "min"):
                mode.kink(name, x, axis)
            r = mode.reduce(name, x, axis)
            if name == "std":
                mode.kink("std", r)
        else:
            r = np.dot(mode.to_array(nodes[step[1]]), mode.to_array(nodes[step[2]]))
        if mode.ref:
            mode.grown(r)
        nodes.append(r)
    total = 0.0
    for k in program["outs"]:
        total = total + np.sum(revad.tanh(nodes[k]) * 0.5 + nodes[k] * 0.1)
    return total


def reference(program, scalars=None, arrays=None):
    """(value, Reference) of the program on floats, by default at its own inputs."""
    mode = Reference()
    value = run(program, program["scalars"] if scalars is None else scalars,
                program["arrays"] if arrays is None else arrays, mode)
    return float(value), mode


def smooth_enough(program):
    """Whether central differences are a fair reference at the program's inputs."""
    value, mode = reference(program)
    return np.isfinite(value) and mode.largest < LARGEST and mode.gap > KINKS_AT_LEAST


def finite_differences(program, rel=1e-6):
    """d loss / d input by central differences, for each input: the scalars, then the arrays."""
    xs, arrays = list(program["scalars"]), program["arrays"]
    f = lambda s, a: reference(program, s, a)[0]  # noqa: E731
    grads = [np.float64(g) for g in fd_gradient(lambda s: f(s, arrays), xs, rel)]
    for k, a in enumerate(arrays):
        others = list(arrays)

        def loss(b, k=k, others=others):
            others[k] = b
            return f(xs, others)

        grads.append(fd_array_gradient(loss, a, rel))
    return grads


def check(program, value, g_scalars, g_arrays):
    """revad's value and gradients of one program against the float run and central differences."""
    want, _ = reference(program)
    assert value == pytest.approx(want, rel=1e-11, abs=1e-11)
    got = list(g_scalars) + list(g_arrays)
    for g, x in zip(got, program["scalars"] + program["arrays"], strict=True):
        assert np.shape(g) == np.shape(x)
        assert np.all(np.isfinite(g))
    # The differences' rounding error grows with |loss| / h: the absolute tolerance does too.
    rtol, atol = 1e-5, 1e-6 * max(1.0, abs(want))
    fd = finite_differences(program)
    if not all(np.allclose(g, f, rtol=rtol, atol=atol) for g, f in zip(got, fd, strict=True)):
        # A strongly curved program, whose central differences are off by h^2/6 times the third
        # derivative (-3787.016 for -3787.074, seen once in 10^4 programs): Richardson's
        # extrapolation from steps h and h/2 cancels that term.
        half = finite_differences(program, rel=0.5e-6)
        fd = [(4 * b - a) / 3 for a, b in zip(fd, half, strict=True)]
    for g, f in zip(got, fd, strict=True):
        np.testing.assert_allclose(g, f, rtol=rtol, atol=atol)


@st.composite
def programs(draw):
    return make_program(HypothesisChoices(draw))


@property_settings(500)
@given(programs())
def test_mixed_programs_match_finite_differences(program):
    # revad.grad over every argument: the scalars become Var leaves, the arrays Array leaves.
    assume(smooth_enough(program))
    n_s, n_a = len(program["scalars"]), len(program["arrays"])
    f = lambda *a: run(program, a[:n_s], a[n_s:])  # noqa: E731
    args, argnums = (*program["scalars"], *program["arrays"]), tuple(range(n_s + n_a))
    value, grads = revad.value_and_grad(f, argnums=argnums)(*args)
    check(program, float(value), grads[:n_s], grads[n_s:])
    for g, again in zip(grads, revad.grad(f, argnums=argnums)(*args), strict=True):
        np.testing.assert_array_equal(g, again)  # the same tape and sweep: bit for bit
    count_programs()


BATCH = 10


@property_settings(1000)
@given(st.integers(0, 2 ** 32 - 1))
def test_batches_of_mixed_programs_on_one_tape_match_finite_differences(seed):
    # BATCH programs from one seed, recorded together on the current tape with their own leaves
    # (Var and Array), one .backward() of the sum of their losses: each leaf's gradient is its
    # own program's.
    choices = SeededChoices(seed)
    batch = []
    while len(batch) < BATCH:
        program = make_program(choices)
        if smooth_enough(program):
            batch.append(program)
    leaves, losses = [], []
    for program in batch:
        s = [revad.Var(x) for x in program["scalars"]]
        a = [revad.Array(x) for x in program["arrays"]]
        leaves.append((s, a))
        losses.append(run(program, s, a))
    total = sum(losses)
    if isinstance(total, (revad.Var, revad.Array)):
        total.backward()
    for k, (program, (s, a), loss) in enumerate(zip(batch, leaves, losses, strict=True)):
        note(f"program {k} of the batch: {program}")
        check(program, float(loss), [v.grad for v in s], [x.grad for x in a])
    count_programs(len(batch))
