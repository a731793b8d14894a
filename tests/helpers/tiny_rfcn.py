"""A small R-FCN built from the main config, for CPU tests."""
import copy
import os.path as osp

import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import bbox_overlaps
from mmdet.utils import register_all_modules
from mmengine.config import Config
from mmengine.structures import InstanceData

import rfcn_mm  # noqa: F401  (registers the project and its fixes)

register_all_modules()

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MAIN_CFG = osp.join(ROOT, 'configs', 'rfcn', 'rfcn_r101_voc0712.py')


def tiny_model_cfg(k=3,
                   num_classes=3,
                   roi_layer='PSRoIPool',
                   class_agnostic=True,
                   sampler=None,
                   detector='RFCN'):
    """The main config's model with ResNet-18 and small images; ``detector``
    'FastRFCN' for the fast layer."""
    cfg = Config.fromfile(MAIN_CFG)
    model = copy.deepcopy(cfg.model)
    model.type = detector
    model.backbone.update(depth=18, init_cfg=None)
    model.rpn_head.update(in_channels=256, feat_channels=64)
    model.rpn_head.anchor_generator.scales = [2, 4, 8]  # small images
    model.roi_head.shared_head.update(depth=18, init_cfg=None)
    layer = dict(type=roi_layer, output_size=k)
    model.roi_head.bbox_roi_extractor.roi_layer = layer
    model.roi_head.bbox_head.update(
        roi_feat_size=k,
        in_channels=512,
        mid_channels=64,
        num_classes=num_classes,
        reg_class_agnostic=class_agnostic)
    model.train_cfg.rpn_proposal.update(nms_pre=600, max_per_img=100)
    model.test_cfg.rpn.update(nms_pre=600, max_per_img=100)
    model.train_cfg.rcnn.sampler.num = 32
    if sampler is not None:
        model.train_cfg.rcnn.sampler = sampler
    return model


def build_tiny(seed=0, **kwargs):
    torch.manual_seed(seed)
    model = MODELS.build(tiny_model_cfg(**kwargs))
    model.init_weights()
    return model


def make_batch(num_imgs=2,
               size=(96, 128),
               num_gts=2,
               seed=0,
               scale_factor=(1.0, 1.0)):
    g = torch.Generator().manual_seed(seed)
    h, w = size
    inputs = torch.rand(num_imgs, 3, h, w, generator=g) * 255
    samples = []
    for _ in range(num_imgs):
        ds = DetDataSample(
            metainfo=dict(
                img_shape=(h, w),
                ori_shape=(round(h / scale_factor[1]),
                           round(w / scale_factor[0])),
                scale_factor=scale_factor,
                pad_shape=(h, w),
                batch_input_shape=(h, w)))
        xy = torch.rand(num_gts, 2, generator=g) * torch.tensor([w, h]) * .6
        wh = 16 + torch.rand(num_gts, 2, generator=g) * 24
        gt = InstanceData()
        gt.bboxes = torch.cat([xy, xy + wh], 1)
        gt.labels = torch.randint(0, 3, (num_gts, ), generator=g)
        ds.gt_instances = gt
        samples.append(ds)
    return inputs, samples


def total_loss(losses):
    """The sum of every loss term (RPN terms come as one-level lists)."""
    return sum(
        sum(v) if isinstance(v, list) else v for k, v in losses.items()
        if 'loss' in k)


def overfit_and_check_boxes(model, steps=80):
    """Train ``model`` on one image whose boxes are painted into their
    class's channel; the loss must fall to a tenth and each box must come
    back as the top detection of its class (score > 0.5, IoU > 0.7)."""
    inputs, samples = make_batch(num_imgs=1, size=(128, 160), seed=3)
    gt = samples[0].gt_instances
    inputs = torch.full_like(inputs, 20.)
    for box, label in zip(gt.bboxes.round().int(), gt.labels):
        x1, y1, x2, y2 = box.tolist()
        inputs[0, int(label), y1:y2, x1:x2] = 230.
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=0.01, momentum=0.9)
    first = None
    for _ in range(steps):
        model.train()
        total = total_loss(model.loss(inputs, samples))
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
