"""Batches in slots."""
import torch
from helpers.fast_training import batch

from rfcn_mm.fast.fixed_shape.slots import pack_ground_truth


def test_ground_truth_slots():
    inputs, samples = batch((3, 0, 9))
    boxes, labels, valid = pack_ground_truth(samples, 'cpu')
    assert boxes.shape == (3, 16, 4) and valid.sum(1).tolist() == [3, 0, 9]
    assert torch.equal(boxes[2, :9], samples[2].gt_instances.bboxes)
    assert torch.equal(labels[0, :3], samples[0].gt_instances.labels)
