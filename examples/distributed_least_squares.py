"""The gradient of a least-squares loss whose data is split into shards, each shard's gradient
computed in another process by a pickled ``revad.trace``, the gradients summed.

The loss is recorded once, on the first shard; the trace (its tape, constants included) is
pickled to the workers, and each replays it at its own shard: the data matrix and the targets
are arguments of the loss, so a replay reads the new shard, never the recorded one. The sum of
the shards' gradients is the gradient on all the data (the loss is a sum over rows).

Run it from the repository root: ``python examples/distributed_least_squares.py``. With Dask
installed (``pip install "dask[distributed]"``), it starts a two-process
``dask.distributed.LocalCluster``; without Dask, a ``multiprocessing`` pool of two processes.
On a real cluster, replace the LocalCluster by the scheduler's address:
``Client("tcp://scheduler:8786")``; the workers need revad installed, nothing else.
"""
import numpy as np

import revad


def loss(w, X, y):
    """Half the squared residual of the linear model X @ w against y, summed over rows."""
    r = X @ w - y
    return 0.5 * np.sum(r * r)


def make_shards(n_shards=8, rows=500, features=20, seed=0):
    """(w, [(X, y) per shard]): shards of equal shape, so one trace replays on all."""
    rng = np.random.default_rng(seed)
    w_true = rng.normal(size=features)
    shards = []
    for _ in range(n_shards):
        X = rng.normal(size=(rows, features))
        shards.append((X, X @ w_true + 0.1 * rng.normal(size=rows)))
    return np.zeros(features), shards


def sum_value_and_grad(results):
    """The loss and gradient on all the data from each shard's (value, gradient)."""
    return sum(v for v, _ in results), sum(g for _, g in results)


def with_dask(tr, w, shards):
    """Map tr.value_and_grad over the shards on a local Dask cluster of two worker processes."""
    from dask.distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        futures = client.map(tr.value_and_grad, [w] * len(shards),
                             [X for X, _ in shards], [y for _, y in shards], pure=False)
        return sum_value_and_grad(client.gather(futures))


def with_multiprocessing(tr, w, shards):
    """The same map on a multiprocessing pool of two processes."""
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(2) as pool:
        return sum_value_and_grad(pool.starmap(tr.value_and_grad,
                                               [(w, X, y) for X, y in shards]))


def main():
    w, shards = make_shards()
    tr = revad.trace(loss, w, *shards[0])  # recorded once; argnums=0: the gradient in w
    try:
        value, g = with_dask(tr, w, shards)
        how = "a Dask LocalCluster of 2 worker processes"
    except ImportError:
        value, g = with_multiprocessing(tr, w, shards)
        how = "a multiprocessing pool of 2 processes (Dask is not installed)"
    X = np.concatenate([X for X, _ in shards])
    y = np.concatenate([y for _, y in shards])
    ref_value, ref_g = revad.value_and_grad(loss)(w, X, y)  # eager, on all the data at once
    err = float(np.max(np.abs(g - ref_g)) / np.max(np.abs(ref_g)))
    print(f"{len(shards)} shards on {how}: loss {value:.6g} (eager on all the data "
          f"{ref_value:.6g}), gradient's max relative difference {err:.1e}")


if __name__ == "__main__":
    main()
