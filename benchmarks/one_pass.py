"""Time one Monte-Carlo dropout pass over a large image, with peak memory.

Run it in a fresh process so that the peak resident memory is that of the pass::

    OMP_NUM_THREADS=2 python benchmarks/one_pass.py              # 4096 x 4096, default tiles
    OMP_NUM_THREADS=2 python benchmarks/one_pass.py --size 2048 --tile-size 768

To compare two versions of the package, run it once with each on ``PYTHONPATH``.
"""
import argparse
import resource
import time

import numpy as np

import tdrdenoise
from tdrdenoise import TDRModel
from tdrdenoise.model import DEFAULT_TILE_SIZE


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=4096, help="image side (default 4096)")
    parser.add_argument("--tile-size", type=int, default=DEFAULT_TILE_SIZE,
                        help=f"tile side (default {DEFAULT_TILE_SIZE})")
    parser.add_argument("--passes", type=int, default=1, help="ensemble passes (default 1)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    # the weights do not change the cost of a pass: one training step is enough
    model = TDRModel(device="cpu").fit(rng.normal(size=(64, 64)), steps=1, seed=0,
                                       progress=False)
    image = rng.normal(size=(args.size, args.size)).astype(np.float32)
    t0 = time.perf_counter()
    model.predict(image, n_predictions=args.passes, seed=0, tile_size=args.tile_size,
                  progress=False)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    print(f"tdrdenoise {tdrdenoise.__version__} ({tdrdenoise.__file__}): {args.size} x "
          f"{args.size}, tile {args.tile_size}, {args.passes} pass(es): {seconds:.1f} s "
          f"({seconds / args.passes:.1f} s per pass), peak RSS {peak:.2f} GiB")


if __name__ == "__main__":
    main()
