"""Threads: backward() on one tape from several threads at once, and C libraries' threads that
call back into Python (each call gets a fresh Python thread state on the same OS thread)."""
import os
import shutil
import subprocess
import sys
import textwrap
import threading

import pytest

from revad import Var


def chain(n):
    x = Var(0.5)
    a = x
    for _ in range(n):
        a = a * 1.0000001 + 0.0  # long enough that the sweeps overlap without the GIL
    return x, a * 2.0, a * 3.0


def test_concurrent_backward_on_one_tape_is_exact():
    x, y1, y2 = chain(200_000)
    y1.backward()
    y2.backward()
    want = x.grad
    for _ in range(5):
        x, y1, y2 = chain(200_000)
        barrier = threading.Barrier(2)

        def run(y):
            barrier.wait()
            y.backward()

        threads = [threading.Thread(target=run, args=(y,)) for y in (y1, y2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert x.grad == pytest.approx(want, rel=1e-12)
        # The intermediates' adjoints hold both sweeps too.
        assert y1.grad == 1.0 and y2.grad == 1.0


CALLBACK_C = textwrap.dedent("""
    #include <pthread.h>
    typedef void (*cb_t)(int);
    static cb_t g_cb; static int g_n;
    static void *worker(void *a) { for (int i = 0; i < g_n; i++) g_cb(i); return 0; }
    int run_in_thread(cb_t cb, int n) {
        pthread_t t; g_cb = cb; g_n = n;
        pthread_create(&t, 0, worker, 0);
        return pthread_join(t, 0);
    }
""")


@pytest.mark.skipif(sys.platform == "win32" or not shutil.which("cc"), reason="needs a C compiler")
def test_callbacks_from_a_foreign_thread(tmp_path):
    src = tmp_path / "cb.c"
    lib = tmp_path / "libcb.so"
    src.write_text(CALLBACK_C)
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(lib), str(src), "-lpthread"], check=True)
    # In a subprocess: before the fix the second callback read freed memory and crashed.
    code = textwrap.dedent(f"""
        import ctypes, revad
        lib = ctypes.CDLL({str(lib)!r})
        CB = ctypes.CFUNCTYPE(None, ctypes.c_int)
        out = []
        def cb(i):
            x = revad.Var(2.0)
            y = x * 3.0 + float(i)
            y.backward()
            out.append((y.value, x.grad))
        f = CB(cb)
        lib.run_in_thread.argtypes = [CB, ctypes.c_int]
        lib.run_in_thread(f, 20)
        assert out == [(6.0 + i, 3.0) for i in range(20)], out
        print("ok")
    """)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=120)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr


def _record_on_one_tape(big, small, rounds_big, rounds_small):
    """Two threads record on one tape at once: `big` runs ops whose loops let go of the GIL,
    `small` grows the tape meanwhile. Returns (errors, results of both)."""
    errors, out_big, out_small = [], [], []
    barrier = threading.Barrier(2)

    def run(fn, rounds, out):
        try:
            barrier.wait()
            for k in range(rounds):
                out.append(fn(k))
        except BaseException as e:  # pragma: no cover - reported by the assertion
            errors.append(e)

    ts = [threading.Thread(target=run, args=(big, rounds_big, out_big)),
          threading.Thread(target=run, args=(small, rounds_small, out_small))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return errors, out_big, out_small


def test_two_threads_record_on_one_tape_with_large_loops():
    # The reproducer: np.sin(a) * a over 4 * 10^5 elements runs its loops without the
    # GIL while the other thread's a[:10] * 1.5 grows the same tape (its columns, its block
    # table). Before the fix the loops read freed memory (AddressSanitizer: heap-use-after-free
    # in rv_ew_forward_part) and the values came out wrong or the process died.
    import numpy as np

    import revad

    x = np.linspace(0.1, 2.0, 400_000)
    a = revad.Array(x) * 1.0001
    # The values recorded with no other thread about, bit for bit: revad's sin is the C
    # library's, and NumPy's may differ from it in the last bit (NumPy 1.23's SIMD sin does,
    # on a CPU with AVX-512), so NumPy's values are the reference to within rounding only.
    want_big = (np.sin(a) * a).value
    np.testing.assert_allclose(want_big, np.sin(x * 1.0001) * (x * 1.0001), rtol=1e-15, atol=0)
    errors, big, small = _record_on_one_tape(
        lambda k: (np.sin(a) * a).value, lambda k: (a[:10] * (1.5 + k)).value, 10, 5000)
    assert not errors, errors
    assert len(big) == 10 and len(small) == 5000
    for v in big:
        np.testing.assert_array_equal(v, want_big)
    for k, v in enumerate(small):
        np.testing.assert_array_equal(v, x[:10] * 1.0001 * (1.5 + k))


def test_two_threads_record_and_sweep_one_tape():
    # Products through BLAS (one thread) and a growing tape (the other), then one backward over
    # both threads' entries: every gradient is the analytic one.
    import numpy as np

    import revad

    rng = np.random.default_rng(3)
    M = rng.normal(size=(300, 300))
    w = revad.Array(rng.normal(size=300))
    v0 = w * 1.0
    errors, big, small = _record_on_one_tape(
        lambda k: np.sum(M @ v0), lambda k: np.sum(v0[:5] * 2.0), 20, 3000)
    assert not errors, errors
    total = big[0] + small[0]
    for y in big[1:] + small[1:]:
        total = total + y
    total.backward()
    want = 20 * M.sum(axis=0)
    want[:5] += 3000 * 2.0
    np.testing.assert_allclose(w.grad, want, rtol=1e-12)
    np.testing.assert_allclose(total.value, 20 * (M @ w.value).sum() + 3000 * 2 * w.value[:5].sum(),
                               rtol=1e-12)


def test_two_threads_grow_the_tapes_tables_while_the_other_holds_it():
    # Each thread records products with constants the tape keeps by reference (its table of
    # constant arrays, cptr) and groups (its block table) while the other one's loops hold the
    # tape. A growth that waited for the holder (with the GIL let go) used what it had read
    # before the wait: two threads took the same index in a table, or one shrank a table the
    # other had grown. Then a group read another's constant, or past a table's end (a crash in
    # backward(), seen with NumPy 1.23).
    import numpy as np

    import revad

    rng = np.random.default_rng(5)
    x = rng.uniform(0.5, 1.5, 200_000)
    w = revad.Array(x)
    a = w * 1.0
    cs = [rng.uniform(0.5, 1.5, 100) for _ in range(4000)]
    errors, big, small = _record_on_one_tape(
        lambda k: np.sum(np.sin(a) * a * (1.0 + k)), lambda k: np.sum(a[:100] * cs[k]), 12, 4000)
    assert not errors, errors
    for k, y in enumerate(small):
        assert y.value == pytest.approx(np.sum(x[:100] * cs[k]), rel=1e-12), k
    total = big[0]
    for y in big[1:] + small:
        total = total + y
    total.backward()
    want = (np.cos(x) * x + np.sin(x)) * sum(1.0 + k for k in range(12))
    want[:100] += np.sum(cs, axis=0)
    np.testing.assert_allclose(w.grad, want, rtol=1e-12)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_fork_while_another_thread_runs_a_loop_on_the_tape():
    # The child inherits the tape with a loop counted as running (by a thread it does not
    # have): growing the tape there must not wait for it forever.
    code = textwrap.dedent("""
        import os, threading, numpy as np, revad
        from revad import _core
        a = revad.Array(np.linspace(0.1, 2.0, 2_000_000)) * 1.0001
        b = np.sin(a) * a  # imports and helper threads started before the fork
        go = threading.Event()
        def big():
            go.set()
            for _ in range(20):
                b = np.sin(a) * a
        t = threading.Thread(target=big)
        t.start()
        go.wait()
        pid = os.fork()
        if pid == 0:
            for k in range(3000):
                c = a[:10] * 1.5  # grows the inherited tape
            os._exit(0 if abs(c.value[0] - 0.1 * 1.0001 * 1.5) < 1e-12 else 3)
        t.join()
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status))
    """)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    run = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True,
                         text=True, env=env, timeout=120)
    assert run.returncode == 0 and run.stdout.strip() == "0", (run.stdout, run.stderr)
