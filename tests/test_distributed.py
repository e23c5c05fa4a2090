"""A pickled revad.trace mapped over data shards in other processes (issue 18): the loss is
recorded once, each worker replays it at its own shard (the data are arguments of the loss, so
the replay reads the new shard), and the shards' gradients sum to the eager gradient on all
the data. With Dask's LocalCluster (two worker processes) where Dask is installed (the test
extra installs it), and with a multiprocessing pool everywhere."""
import multiprocessing

import numpy as np
import pytest

import revad


def lstsq(w, X, y):
    r = X @ w - y
    return 0.5 * np.sum(r * r)


def logistic(w, X, y):
    z = X @ w
    return np.sum(np.log1p(np.exp(-z)) + (1.0 - y) * z)


def shards(n_shards=6, rows=40, features=5, seed=0, labels=False):
    rng = np.random.default_rng(seed)
    w = rng.normal(size=features)
    out = []
    for _ in range(n_shards):
        X = rng.normal(size=(rows, features))
        y = (rng.random(rows) < 0.5).astype(float) if labels else X @ w + rng.normal(size=rows)
        out.append((X, y))
    return 0.1 * rng.normal(size=features), out


def check_sum(loss, w, parts, results):
    """The summed shard results against eager value_and_grad on all the data, and against the
    analytic gradient (independent of revad)."""
    X = np.concatenate([X for X, _ in parts])
    y = np.concatenate([y for _, y in parts])
    value = sum(v for v, _ in results)
    g = sum(g for _, g in results)
    ref_value, ref_g = revad.value_and_grad(loss)(w, X, y)
    assert value == pytest.approx(ref_value, rel=1e-12)
    np.testing.assert_allclose(g, ref_g, rtol=1e-10, atol=1e-12)
    if loss is lstsq:
        np.testing.assert_allclose(g, X.T @ (X @ w - y), rtol=1e-10)
    else:
        np.testing.assert_allclose(g, X.T @ (1.0 - y - 1.0 / (1.0 + np.exp(X @ w))), rtol=1e-10)
    # every shard differs: a replay that kept the recorded shard's data would not sum to this
    assert len({round(float(v), 9) for v, _ in results}) == len(results)


@pytest.mark.parametrize("loss", [lstsq, logistic])
def test_multiprocessing_pool_maps_a_pickled_trace(loss):
    w, parts = shards(labels=loss is logistic)
    tr = revad.trace(loss, w, *parts[0])
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        results = pool.starmap(tr.value_and_grad, [(w, X, y) for X, y in parts])
    check_sum(loss, w, parts, results)


def test_dask_local_cluster_maps_a_pickled_trace():
    distributed = pytest.importorskip("dask.distributed")
    w, parts = shards(labels=True)
    tr = revad.trace(logistic, w, *parts[0])
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        futures = client.map(tr.value_and_grad, [w] * len(parts), [X for X, _ in parts],
                             [y for _, y in parts], pure=False)
        results = client.gather(futures)
    check_sum(logistic, w, parts, results)
