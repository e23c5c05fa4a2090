"""Median-of-N wall-clock timer built on time.perf_counter.

Unlike timeit, the garbage collector is left as it is: the cyclic GC is part of
what users of a Python-object graph pay, so hiding it would flatter some peers.
"""
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# Short calls are repeated inside one sample until a sample lasts this long, so
# that perf_counter's resolution and overhead do not dominate.
_MIN_SAMPLE_S = 2e-3
# Calls that need a fresh setup each time (and so cannot be batched) are sampled
# at least this many times, or for this long, when they are short.
_MIN_SETUP_SAMPLES = 30
_MIN_SETUP_TOTAL_S = 0.05
_MAX_SETUP_SAMPLES = 2000


@dataclass
class Timing:
    """Result of :func:`measure`: median seconds per call, all samples, last result."""

    median: float
    samples: list
    result: Any


def _timer_overhead() -> float:
    """Seconds taken by an empty perf_counter bracket (subtracted from unbatched samples)."""
    best = float("inf")
    for _ in range(200):
        t0 = time.perf_counter()
        t1 = time.perf_counter()
        best = min(best, t1 - t0)
    return best


_OVERHEAD = _timer_overhead()


def measure(
    fn: Callable,
    *,
    setup: Callable[[], Any] | None = None,
    repeat: int = 5,
    warmup: int = 1,
) -> Timing:
    """Time ``fn()`` (or ``fn(setup())``) and return the median over ``repeat`` samples.

    Without ``setup``, a sample runs ``fn`` as many times as needed to last at
    least ~2 ms and reports the time per call.  With ``setup``, its result is
    passed to ``fn`` and only ``fn`` is timed, one call per sample; short calls
    get extra samples.  A call's result is dropped outside the timed region when
    samples hold one call; within a batch each call frees its predecessor's
    result (a small cost, met only by calls far shorter than 2 ms).  ``warmup``
    untimed calls come first.
    """
    def one_call():
        arg = setup() if setup is not None else None
        t0 = time.perf_counter()
        res = fn(arg) if setup is not None else fn()
        t1 = time.perf_counter()
        return t1 - t0, res

    result = None
    for _ in range(warmup):
        _, result = one_call()
        result = None
    elapsed, result = one_call()

    samples = []
    if setup is None and elapsed < _MIN_SAMPLE_S:
        number = max(1, int(_MIN_SAMPLE_S / max(elapsed, 1e-9)))
        for _ in range(repeat):
            result = None
            t0 = time.perf_counter()
            for _ in range(number):
                result = fn()
            samples.append((time.perf_counter() - t0) / number)
    else:
        samples.append(elapsed)
        target = repeat
        if setup is not None and elapsed < _MIN_SETUP_TOTAL_S / _MIN_SETUP_SAMPLES:
            wanted = int(_MIN_SETUP_TOTAL_S / max(elapsed, 1e-9))
            target = max(repeat, min(_MAX_SETUP_SAMPLES, wanted))
        while len(samples) < target:
            result = None
            dt, result = one_call()
            samples.append(dt)
        samples = [max(s - _OVERHEAD, 0.0) for s in samples]
    return Timing(statistics.median(samples), samples, result)


def settle(seconds: float) -> None:
    """Let other libraries' threads go idle: a BLAS or OpenMP pool keeps its threads spinning
    for a while after each call (OpenBLAS's, about 0.1 s: measured at 98% of a core through a
    0.1 s sleep after a gemv), and they would take a core from whatever is timed next. The wait
    is busy, not a sleep: on a virtual machine the calls after a sleep ran up to 20% slower
    (the GMM gradient: 24.8, 22.3, then 20.5 ms; 21.3, then 20.3 after a busy wait)."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        pass


def paired_ratio(base: Callable, other: Callable, *, repeat: int = 7, settle_s: float = 0.0,
                 batch_s: float = _MIN_SAMPLE_S) -> float:
    """Median over ``repeat`` rounds of time(other) / time(base), the two timed back to back.

    On a shared machine the load changes from one second to the next; timing the two calls in
    the same round lets that drift cancel in each round's ratio, where two separate medians
    could each catch a different load. A batch repeats its call for at least ``batch_s``. With
    ``settle_s``, each batch starts after that long idle and one untimed call of its own: each
    side is timed with its own threads only, not with the other's still spinning (see settle).
    """
    return paired(base, other, repeat=repeat, settle_s=settle_s, batch_s=batch_s).ratio


@dataclass
class Paired:
    """Result of :func:`paired`: the median ratio of the rounds, and each side's median seconds
    per call over the same rounds."""

    ratio: float
    base: float
    other: float


def paired(base: Callable, other: Callable, *, repeat: int = 7, settle_s: float = 0.0,
           batch_s: float = _MIN_SAMPLE_S, first: tuple | None = None,
           warm_each: bool = False) -> Paired:
    """:func:`paired_ratio`, with each side's time per call as well. ``first``: the seconds of
    one warm call of each (base, other) that the caller has already timed; the warm-up and the
    calls that size the batches are then skipped (a call of seconds is not made twice more).
    ``warm_each``: each batch starts with one untimed call of its own, as with ``settle_s``
    (revad's gradient of 10^6 elements right after a Hessian-vector product took 0.6 s, then
    0.08 s: the other side's large tape had left it memory to fault in afresh)."""
    def per_call(fn, number):
        if settle_s > 0:
            settle(settle_s)
        if settle_s > 0 or warm_each:
            fn()
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        return (time.perf_counter() - t0) / number

    if first is None:
        base(), other()  # warm up
        first = (per_call(base, 1), per_call(other, 1))
    numbers = [max(1, int(batch_s / max(t, 1e-9))) for t in first]
    rounds = []
    for _ in range(repeat):
        tb = per_call(base, numbers[0])
        to = per_call(other, numbers[1])
        rounds.append((to / tb, tb, to))
    return Paired(*(statistics.median(r[k] for r in rounds) for k in range(3)))
