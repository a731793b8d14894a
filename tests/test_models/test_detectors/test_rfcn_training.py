"""RFCN's training: golden losses and overfitting one batch."""
import pytest
import torch
from helpers.tiny_rfcn import build_tiny, make_batch, overfit_and_check_boxes

# Losses of the tiny R-FCN (seed 0, batch seed 0) recorded when the
# detector was verified by the tests above; a change here means the model's
# numbers changed and needs a reason.
GOLDEN = dict(
    loss_rpn_cls=1.1086664199829102,
    loss_rpn_bbox=0.055615875869989395,
    loss_cls=5.061436653137207,
    loss_bbox=0.0010493167210370302)


def test_golden_losses_at_a_fixed_seed():
    model = build_tiny(seed=0)
    inputs, samples = make_batch(seed=0)
    torch.manual_seed(0)
    model.train()
    losses = model.loss(inputs, samples)
    for key, expected in GOLDEN.items():
        value = losses[key]
        value = sum(value) if isinstance(value, list) else value
        assert abs(value.item() - expected) <= 1e-4 * max(1, expected), key


@pytest.mark.slow
def test_overfits_one_batch_and_recovers_its_boxes():
    overfit_and_check_boxes(build_tiny(k=3))
