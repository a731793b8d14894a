import pytest
import torch
from mmdet.structures.bbox import bbox_overlaps
from tiny_rfcn import build_tiny, make_batch

# Losses of the tiny R-FCN (seed 0, batch seed 0) recorded when the
# detector was verified by the tests above; a change here means the model's
# numbers changed and needs a reason.
GOLDEN = dict(
    loss_rpn_cls=1.1086664199829102,
    loss_rpn_bbox=0.055615875869989395,
    loss_cls=5.061436653137207,
    loss_bbox=0.0010493167210370302)


def _total(losses):
    return sum(
        sum(v) if isinstance(v, list) else v for k, v in losses.items()
        if 'loss' in k)


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


@pytest.mark.parametrize('fixed_shape', [False, True])
def test_overfits_one_batch_and_recovers_its_boxes(fixed_shape):
    torch.manual_seed(0)
    model = build_tiny(k=3)
    model.train_cfg['fixed_shape'] = fixed_shape
    inputs, samples = make_batch(num_imgs=1, size=(128, 160), seed=3)
    gt = samples[0].gt_instances
    # paint each box in its class's channel so there is something to find
    inputs = torch.full_like(inputs, 20.)
    for box, label in zip(gt.bboxes.round().int(), gt.labels):
        x1, y1, x2, y2 = box.tolist()
        inputs[0, int(label), y1:y2, x1:x2] = 230.
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=0.01, momentum=0.9)
    first = None
    for _ in range(80):
        model.train()
        total = _total(model.loss(inputs, samples))
        first = total.item() if first is None else first
        opt.zero_grad()
        total.backward()
        opt.step()
    assert total.item() < 0.1 * first
    model.eval()
    with torch.no_grad():
        pred = model.predict(inputs, samples)[0].pred_instances
    for box, label in zip(gt.bboxes, gt.labels):
        top = pred[pred.labels == label][:1]
        assert len(top) == 1 and top.scores[0] > 0.5
        assert bbox_overlaps(top.bboxes, box[None])[0, 0] > 0.7
