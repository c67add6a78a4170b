"""Defaults shared by the Python API, the command line and the benchmarks.

This module imports nothing (no torch): the command line builds its parser, and
prints ``--help``, from these values without loading the network code.
"""
__all__ = ["DEFAULT_STEPS", "DEFAULT_FINE_TUNE_STEPS", "DEFAULT_DISTIL_STEPS",
           "DEFAULT_STUDENT_WIDTH", "DEFAULT_TILE_SIZE", "DEFAULT_CHECKPOINT_EVERY",
           "DEFAULT_N_PREDICTIONS", "METHODS"]

#: Training steps of :meth:`TDRModel.fit <tdrdenoise.TDRModel.fit>`.
DEFAULT_STEPS = 2000
#: Fine-tuning steps of the ensemble before it predicts.
DEFAULT_FINE_TUNE_STEPS = 10
#: Steps of the distillation of the fast student after :meth:`TDRModel.fit` (no more
#: than the training steps) and its encoder width. 1000 steps instead of 500 gave the
#: student +0.08 to +0.11 dB of Noise2Noise gain on HST and +0.15 / +0.08 dB of PSNR
#: on the sigma 0.1 / 0.2 sets for about 12 % more time in a default fit; 2000 gave
#: nothing more on HST (docs/benchmarks.rst, fifth round).
DEFAULT_DISTIL_STEPS = 1000
DEFAULT_STUDENT_WIDTH = 24
#: Side of the tile cores of a prediction: a 4096 x 4096 image takes 16 tiles and
#: a peak of about 2.6 GiB of memory on a CPU (benchmarks/run_benchmarks.py).
DEFAULT_TILE_SIZE = 1024
#: Steps between two checkpoints of :meth:`TDRModel.fit`.
DEFAULT_CHECKPOINT_EVERY = 100
#: Monte-Carlo passes of the ensemble (``method="ensemble"``).
DEFAULT_N_PREDICTIONS = 16
#: The prediction methods (``method=`` of tdr_denoise, predict, the command line).
METHODS = ("auto", "student", "ensemble")
