"""Shared test helpers: central finite differences on plain floats."""
import math


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
