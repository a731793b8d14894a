"""Time R-FCN against mmdet's Faster R-CNN R-101-C4 in the same run.

    python tools/benchmark_detector.py [--device cuda] [--out bench.md]

Inference: ms/img at 600x1000, batch 1, random weights, 300 RoIs, for
R-FCN R-101 k=7 and mmdet's ``faster-rcnn_r50-caffe-c4`` config at depth
101, in float32 and in a fast mode (bfloat16 autocast + channels_last +
cudnn.benchmark). Training: ms/iter with OHEM mining from 300 and from 2000
proposals (R-FCN with its RFCNOHEMSampler, C4 with mmdet's OHEMSampler).
Prints a table with the C4/R-FCN ratios. Absolute times only mean something
on a GPU.
"""
import argparse
import copy
import os.path as osp
import statistics
import sys
import time
from contextlib import nullcontext

import torch

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
import rfcn_mm  # noqa: E402,F401

RFCN_CFG = osp.join(ROOT, 'configs', 'rfcn', 'rfcn_r101_voc0712.py')
C4_CFG = 'mmdet::faster_rcnn/faster-rcnn_r50-caffe-c4_ms-1x_coco.py'


def strip_pretrained(node):
    if isinstance(node, dict):
        if isinstance(node.get('init_cfg'), dict) and \
                node['init_cfg'].get('type') == 'Pretrained':
            node['init_cfg'] = None
        for v in node.values():
            strip_pretrained(v)
    elif isinstance(node, list):
        for v in node:
            strip_pretrained(v)


def build(name, num_proposals, device):
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.config import Config
    register_all_modules()
    cfg = Config.fromfile(RFCN_CFG if name == 'rfcn' else C4_CFG)
    model_cfg = copy.deepcopy(cfg.model)
    if name == 'c4':
        model_cfg.backbone.depth = 101
        model_cfg.roi_head.shared_head.depth = 101
        model_cfg.roi_head.bbox_head.num_classes = 20
        model_cfg.test_cfg.rpn.update(nms_pre=6000, max_per_img=300)
        model_cfg.train_cfg.rcnn.sampler = dict(
            type='OHEMSampler', num=128, pos_fraction=0.25, neg_pos_ub=-1,
            add_gt_as_proposals=True)
        model_cfg.train_cfg.rpn_proposal.update(nms_pre=6000)
    model_cfg.train_cfg.rpn_proposal.max_per_img = num_proposals
    strip_pretrained(model_cfg)
    model = MODELS.build(model_cfg).to(device)
    model.init_weights()
    return model


def batch(device, train):
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    g = torch.Generator().manual_seed(0)
    inputs = (torch.rand(1, 3, 608, 1008, generator=g) * 255).to(device)
    ds = DetDataSample(
        metainfo=dict(
            img_shape=(600, 1000),
            ori_shape=(600, 1000),
            scale_factor=(1., 1.),
            pad_shape=(608, 1008),
            batch_input_shape=(608, 1008)))
    if train:
        xy = torch.rand(4, 2, generator=g) * torch.tensor([700., 400.])
        gt = InstanceData(
            bboxes=torch.cat([xy, xy + 100 + torch.rand(4, 2) * 150], 1),
            labels=torch.randint(0, 20, (4, ), generator=g))
        ds.gt_instances = gt
    return inputs, [ds.to(device)]


def timeit(fn, device, warmup, reps):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        if device == 'cuda':
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if device == 'cuda':
            torch.cuda.synchronize()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def infer_ms(name, device, fast, warmup, reps):
    model = build(name, 300, device).eval()
    inputs, samples = batch(device, train=False)
    ctx = nullcontext()
    if fast:
        torch.backends.cudnn.benchmark = True
        model = model.to(memory_format=torch.channels_last)
        inputs = inputs.contiguous(memory_format=torch.channels_last)
        ctx = torch.autocast(device, dtype=torch.bfloat16)

    def step():
        with torch.no_grad(), ctx:
            model.predict(inputs, samples)

    return timeit(step, device, warmup, reps)


def train_ms(name, device, num_proposals, warmup, reps):
    model = build(name, num_proposals, device).train()
    inputs, samples = batch(device, train=True)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=1e-4, momentum=0.9)

    def step():
        losses = model.loss(inputs, samples)
        total = sum(
            sum(v) if isinstance(v, list) else v for k, v in losses.items()
            if 'loss' in k)
        opt.zero_grad()
        total.backward()
        opt.step()

    return timeit(step, device, warmup, reps)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--warmup', type=int, default=10)
    parser.add_argument('--reps', type=int, default=30)
    parser.add_argument('--skip-train', action='store_true')
    parser.add_argument('--out', help='also write the table here')
    args = parser.parse_args()
    dev, w, r = args.device, args.warmup, args.reps
    rows = ['| measurement | Faster R-CNN C4 ms | R-FCN ms | C4 / R-FCN |',
            '|---|---|---|---|']

    def row(what, c4, rfcn):
        rows.append(f'| {what} | {c4:.1f} | {rfcn:.1f} | {c4 / rfcn:.2f}x |')
        print(rows[-1], flush=True)

    row('inference fp32, 300 RoIs', infer_ms('c4', dev, False, w, r),
        infer_ms('rfcn', dev, False, w, r))
    row('inference bf16 + channels_last, 300 RoIs',
        infer_ms('c4', dev, True, w, r), infer_ms('rfcn', dev, True, w, r))
    if not args.skip_train:
        t = {}
        for n in (300, 2000):
            t[n] = (train_ms('c4', dev, n, w, r), train_ms('rfcn', dev, n, w,
                                                           r))
            row(f'training step, OHEM from {n} proposals', *t[n])
        rows.append(f'| training 2000 / 300 | {t[2000][0] / t[300][0]:.2f} |'
                    f' {t[2000][1] / t[300][1]:.2f} | |')
    device = torch.cuda.get_device_name() if dev == 'cuda' else 'CPU'
    table = '\n'.join([f'600x1000, batch 1, random weights, {device}', ''] +
                      rows)
    print('\n' + table)
    if args.out:
        with open(args.out, 'w') as f:
            f.write(table + '\n')


if __name__ == '__main__':
    main()
