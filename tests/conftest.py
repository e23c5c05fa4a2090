"""Shared test helpers: central finite differences on plain floats, and the settings and the
count of the property (Hypothesis) tests."""
import gc
import math
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# Every property test's max_examples is multiplied by REVAD_PROPERTY_SCALE (default 1): a slower
# build (a sanitizer job) runs the same tests with e.g. 0.1, a long soak with e.g. 10.
PROPERTY_SCALE = float(os.environ.get("REVAD_PROPERTY_SCALE", "1"))
if not (PROPERTY_SCALE > 0 and math.isfinite(PROPERTY_SCALE)):
    raise ValueError(f"REVAD_PROPERTY_SCALE must be a positive number, got {PROPERTY_SCALE!r}")

# How many random programs the property tests checked in this run (value and gradient, each
# program once however it was batched), for the line the terminal summary prints.
_PROGRAMS = {"checked": 0}


def property_settings(max_examples):
    """Hypothesis settings for a property test: max_examples scaled by REVAD_PROPERTY_SCALE (at
    least 1), no deadline (a shared CI machine's timings vary), no health check on slow data."""
    return settings(max_examples=max(1, round(max_examples * PROPERTY_SCALE)), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def count_programs(n=1):
    """Call once a property test has checked n random programs (after their asserts passed)."""
    _PROGRAMS["checked"] += n


def pytest_terminal_summary(terminalreporter):
    terminalreporter.write_line(f"revad property programs: {_PROGRAMS['checked']} "
                                f"(REVAD_PROPERTY_SCALE={PROPERTY_SCALE:g})")


def central_diff(f, x, h=None):
    """d f / d x by a central difference; f takes and returns floats."""
    h = h if h is not None else 1e-6 * max(1.0, abs(x))
    return (f(x + h) - f(x - h)) / (2 * h)


def fd_gradient(f, xs, rel_step=1e-6):
    """Gradient of f(list of floats) -> float by central differences, one input at a time."""
    g = []
    for i, x in enumerate(xs):
        h = rel_step * max(1.0, abs(x))
        up, down = list(xs), list(xs)
        up[i] += h
        down[i] -= h
        g.append((f(up) - f(down)) / (2 * h))
    return g


def fd_array_gradient(loss, x, rel_step=1e-6):
    """d loss(x) / d x by central differences, element by element, for an array x (a list or
    a number too: taken as a float64 array, 0-d for a number)."""
    import numpy as np
    x = np.array(x, dtype=np.float64)
    g = np.zeros(x.shape)
    for idx in np.ndindex(*x.shape):
        step = rel_step * max(1.0, abs(x[idx]))
        up, down = x.copy(), x.copy()
        up[idx] += step
        down[idx] -= step
        g[idx] = (loss(up) - loss(down)) / (2 * step)
    return g


def fd_partial(f, args, j, rel_step=1e-6):
    """d f(*args) / d args[j] by central differences, element by element (f of plain data)."""
    return fd_array_gradient(lambda v: f(*args[:j], v, *args[j + 1:]), args[j], rel_step)


def check_weighted_gradient(f, *xs, rng, rtol=1e-5, atol=1e-7, value_rtol=1e-12):
    """revad.grad of sum(f(*xs) * w), w random weights from rng, for f written with NumPy's
    names (it runs on ndarrays and on revad Arrays): the value NumPy's to value_rtol, each
    gradient float64 of its argument's shape and equal to central differences. Returns the
    value and the gradients."""
    import numpy as np
    import pytest

    import revad
    xs = [np.asarray(x, dtype=np.float64) for x in xs]
    out = np.asarray(f(*xs), dtype=np.float64)
    w = rng.normal(size=out.shape)

    def loss(*a):
        return np.sum(f(*a) * w)

    value, grads = revad.value_and_grad(loss, argnums=tuple(range(len(xs))))(*xs)
    assert value == pytest.approx(float(np.sum(out * w)), rel=value_rtol, abs=1e-12)
    for k, (x, g) in enumerate(zip(xs, grads, strict=True)):
        assert isinstance(g, np.ndarray) and g.shape == x.shape and g.dtype == np.float64
        ref = fd_partial(lambda *a: float(loss(*a)), xs, k)
        np.testing.assert_allclose(g, ref, rtol=rtol, atol=atol)
    return value, grads


def close(a, b, rtol=1e-6, atol=1e-9):
    return math.isclose(a, b, rel_tol=rtol, abs_tol=atol)


def pytest_report_header(config):
    # Which revad the tests run against: site-packages when a wheel is tested (cibuildwheel,
    # .github/prove_wheels.py, which checks this line), the source tree in development.
    import revad
    return f"revad {revad.__version__} from {revad.__file__}"


def sin_chain(n, x0=0.7):
    """(f, x0, f(x0), f'(x0)) for y_{k+1} = sin(y_k) * 0.5 + x * 1e-3 over n steps: a deep chain
    whose exact derivative follows by a forward recurrence on floats."""
    import revad

    def f(x):
        y = x
        for _ in range(n):
            y = revad.sin(y) * 0.5 + x * 1e-3
        return y

    y, dy = x0, 1.0
    for _ in range(n):
        y, dy = math.sin(y) * 0.5 + x0 * 1e-3, math.cos(y) * 0.5 * dy + 1e-3
    return f, x0, y, dy


@pytest.fixture
def nan_slots():
    """The next tape takes this call's buffers, every value slot nan: a test that reads a value
    no sweep wrote sees nan (tests/test_lazy.py, tests/test_replay_lazy.py)."""
    import revad

    revad.release_memory()
    revad.value_and_grad(lambda x: np.sum(np.exp(x)))(np.full(300_000, np.nan))
    gc.collect()
    yield
