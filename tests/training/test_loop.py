"""Tests of tdrdenoise.training.loop: the one training loop of Self2Self and distillation."""
import numpy as np
import pytest
import torch

from tdrdenoise.training.loop import LR_FLOOR, cosine_rate, crop_positions, draw_batch, run


def test_cosine_rate_runs_from_the_peak_to_the_floor():
    assert cosine_rate(1e-3, 0, 10) == pytest.approx(1e-3)
    assert cosine_rate(1e-3, 9, 10) == pytest.approx(LR_FLOOR * 1e-3)
    assert cosine_rate(2.0, 0, 1) == 2.0


def test_draw_batch_is_reproducible_and_crops_every_tensor_alike():
    image = torch.arange(64.0).reshape(8, 8)
    images = [(image, image * 2)]
    ys, xs = crop_positions(np.ones((8, 8), bool), 4)
    where = np.stack([np.zeros_like(ys), ys, xs], 1)
    first = draw_batch(np.random.default_rng(1), images, where, 4, 3, torch.device("cpu"))
    again = draw_batch(np.random.default_rng(1), images, where, 4, 3, torch.device("cpu"))
    assert [t.shape for t in first] == [(3, 1, 4, 4)] * 2
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert torch.equal(first[1], 2 * first[0])


def test_run_steps_and_stops_on_a_non_finite_loss():
    weight = torch.nn.Parameter(torch.ones(1))
    opt = torch.optim.Adam([weight], lr=0.1)
    losses, done = [], []
    run(opt, lambda batch: (weight * batch).sum() ** 2, steps=3, learning_rate=0.1,
        draw=lambda: torch.ones(1), losses=losses, what="test", after_step=done.append)
    assert len(losses) == 3 and done == [1, 2, 3]
    assert opt.param_groups[0]["lr"] == pytest.approx(LR_FLOOR * 0.1)
    with pytest.raises(FloatingPointError, match="the test loss is nan at step 1 of 2: why"):
        run(opt, lambda batch: weight * np.nan, steps=2, learning_rate=0.1,
            draw=lambda: None, losses=[], what="test", hint=": why")
