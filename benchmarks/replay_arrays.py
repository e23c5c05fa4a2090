"""The replay section's array rows alone: ``python -m benchmarks.replay_arrays [--quick]``
(compiled / eager value_and_grad on benchmarks/arrays.py's workloads and the MLP at batch 32;
benchmarks/compiled.py, array_rows)."""
import argparse

import revad

from . import compiled


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    compiled.array_rows(revad, args.quick, args.repeat, lambda **kw: None)


if __name__ == "__main__":
    main()
