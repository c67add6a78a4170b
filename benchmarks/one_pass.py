"""Time one pass over a large image, with peak memory: the distilled student (the
default of ``tdr_denoise``) or one Monte-Carlo dropout pass of the ensemble.

Run it in a fresh process so that the peak resident memory is that of the pass::

    OMP_NUM_THREADS=2 python benchmarks/one_pass.py                     # student, 4096^2
    OMP_NUM_THREADS=2 python benchmarks/one_pass.py --method ensemble   # one teacher pass
    OMP_NUM_THREADS=2 python benchmarks/one_pass.py --size 2048 --tile-size 768
    OMP_NUM_THREADS=2 python benchmarks/one_pass.py --no-refine         # network alone

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
    parser.add_argument("--method", choices=["student", "ensemble"], default="student",
                        help="the student's single pass (default) or ensemble passes")
    parser.add_argument("--passes", type=int, default=1,
                        help="ensemble passes (default 1; --method ensemble only)")
    parser.add_argument("--no-refine", dest="refine", action="store_false",
                        help="without the Wiener refinement (the network's pass alone)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    # the weights do not change the cost of a pass: one training step is enough
    model = TDRModel(device="cpu").fit(rng.normal(size=(64, 64)), steps=1, seed=0,
                                       progress=False)
    image = rng.normal(size=(args.size, args.size)).astype(np.float32)
    options = ({"method": "student"} if args.method == "student" else
               {"method": "ensemble", "n_predictions": args.passes, "seed": 0})
    passes = 1 if args.method == "student" else args.passes
    t0 = time.perf_counter()
    model.predict(image, tile_size=args.tile_size, progress=False, refine=args.refine,
                  **options)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    print(f"tdrdenoise {tdrdenoise.__version__} ({tdrdenoise.__file__}): {args.size} x "
          f"{args.size}, tile {args.tile_size}, {args.method}, {passes} pass(es)"
          f"{'' if args.refine else ', no refinement'}: "
          f"{seconds:.1f} s ({seconds / passes:.1f} s per pass), peak RSS {peak:.2f} GiB")


if __name__ == "__main__":
    main()
