"""Pretrain a config's ResNet as a classifier of the synthetic shapes: the
stand-in for ImageNet pretraining in the studies on the synthetic data.

    python tools/analysis_tools/pretrain_synthetic_backbone.py OUT.pth \
        [--config configs/rfcn/rfcn_r18_synthetic-voc.py] [--depth D] \
        [--iters 800] [--batch-size 16] [--size 128] [--lr 0.1] [--seed 0]

The backbone is the config's ``model.backbone`` with all four stages at
their ImageNet strides (what an ImageNet checkpoint holds: the R-FCN
config's conv5 shared head loads ``layer4`` from it as from torchvision's
weights), trained with a linear classifier on global-average-pooled conv5
features. Every iteration draws a fresh batch of one-shape images
(:func:`rfcn_mm.datasets.make_synthetic_shapes`), normalised by the
config's ``data_preprocessor``; the detection images are never seen. SGD
with momentum, a linear warm-up and a cosine decay. ``OUT.pth`` holds the
ResNet's ``state_dict`` (mmdet's key names) and a ``meta`` with the
settings and the accuracy on held-out images; it is written whole or not
at all, so a killed run leaves no file to mistake for a finished one.
"""
import argparse
import math
import os.path as osp
import sys
import time

import torch
import torch.nn.functional as F

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

import rfcn_mm  # noqa: E402,F401
from rfcn_mm.datasets import synthetic_voc  # noqa: E402
from rfcn_mm.utils import atomic_output, load_config  # noqa: E402

CONFIG = osp.join(ROOT, 'configs', 'rfcn', 'rfcn_r18_synthetic-voc.py')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('out', help='the checkpoint to write (.pth)')
    parser.add_argument('--config', default=CONFIG,
                        help='the detector config whose backbone and '
                        'normalisation to use (default: the demo\'s)')
    parser.add_argument('--depth', type=int,
                        choices=[18, 34, 50, 101, 152],
                        help='ResNet depth (default: the config\'s)')
    parser.add_argument('--iters', type=int, default=800)
    parser.add_argument('--batch-size', type=int, default=16)
    parser.add_argument('--size', type=int, default=128,
                        help='image side in pixels')
    parser.add_argument('--lr', type=float, default=0.1)
    parser.add_argument('--warmup', type=int, default=50,
                        help='linear warm-up iterations')
    parser.add_argument('--num-val', type=int, default=512,
                        help='held-out images for the reported accuracy')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--log-interval', type=int, default=50)
    args = parser.parse_args(argv)
    for name in ('iters', 'batch_size', 'num_val', 'log_interval'):
        if getattr(args, name) < 1:
            parser.error(f'--{name.replace("_", "-")} must be at least 1, '
                         f'got {getattr(args, name)}')
    if args.warmup < 0:
        parser.error(f'--warmup must be >= 0, got {args.warmup}')
    if not args.lr > 0:
        parser.error(f'--lr must be positive, got {args.lr}')
    return args


class ShapeClassifier(torch.nn.Module):
    """``backbone`` (an mmdet ResNet returning conv5) + global average
    pooling + a linear classifier."""

    def __init__(self, backbone, channels, num_classes):
        super().__init__()
        self.backbone = backbone
        self.fc = torch.nn.Linear(channels, num_classes)

    def forward(self, x):
        feat = self.backbone(x)[-1]
        return self.fc(feat.mean(dim=(2, 3)))


def build_classifier(cfg, depth=None):
    """The config's backbone (at ``depth`` if given) at ImageNet strides
    (4 stages, no dilation, nothing frozen, random init) with a classifier
    of the synthetic classes."""
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules()
    backbone = cfg.model.backbone.to_dict()
    if backbone.get('type') != 'ResNet':
        raise ValueError(f'{cfg.filename}: model.backbone.type is '
                         f'{backbone.get("type")!r}; pretraining builds '
                         'a ResNet')
    backbone.update(
        num_stages=4, strides=(1, 2, 2, 2), dilations=(1, 1, 1, 1),
        out_indices=(3, ), frozen_stages=-1, norm_eval=False, init_cfg=None)
    backbone.pop('pretrained', None)
    if depth is not None:
        backbone['depth'] = depth
    norm_cfg = dict(backbone.get('norm_cfg', dict(type='BN')))
    norm_cfg['requires_grad'] = True
    backbone['norm_cfg'] = norm_cfg
    net = MODELS.build(backbone)
    net.init_weights()
    return ShapeClassifier(net, net.feat_dim, len(synthetic_voc.CLASSES))


def _normaliser(cfg):
    """RGB images (N, H, W, 3) to the tensor the config's detector feeds
    its backbone: its own ``data_preprocessor`` (channel order, mean and
    std; no padding) on the images in BGR, as they are loaded from
    file."""
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules()
    pre = dict(cfg.model.get('data_preprocessor', {}))
    pre.setdefault('type', 'DetDataPreprocessor')
    pre['pad_size_divisor'] = 1
    preprocessor = MODELS.build(pre)

    def normalise(images):
        bgr = torch.from_numpy(images[..., ::-1].copy()).permute(0, 3, 1, 2)
        return preprocessor(dict(inputs=bgr), training=False)['inputs']

    return normalise


def _lr(args, it):
    if it < args.warmup:
        return args.lr * (0.01 + 0.99 * it / args.warmup)
    progress = (it - args.warmup) / max(1, args.iters - args.warmup)
    return args.lr * 0.5 * (1 + math.cos(math.pi * progress))


@torch.no_grad()
def accuracy(model, images, labels, normalise, batch_size=64):
    model.eval()
    correct = 0
    for i in range(0, len(images), batch_size):
        logits = model(normalise(images[i:i + batch_size]))
        correct += (logits.argmax(1) == torch.from_numpy(
            labels[i:i + batch_size])).sum().item()
    model.train()
    return correct / len(images)


def main(argv=None):
    args = parse_args(argv)
    try:
        cfg = load_config(args.config)
    except FileNotFoundError as e:
        sys.exit(f'error: {e}')
    torch.manual_seed(args.seed)
    model = build_classifier(cfg, args.depth)
    normalise = _normaliser(cfg)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=args.lr, momentum=0.9, weight_decay=1e-4)
    val_images, val_labels = synthetic_voc.make_synthetic_shapes(
        args.num_val, args.size, seed=f'{args.seed}-val')
    start = time.time()
    model.train()
    for it in range(args.iters):
        for group in optimizer.param_groups:
            group['lr'] = _lr(args, it)
        images, labels = synthetic_voc.make_synthetic_shapes(
            args.batch_size, args.size, seed=f'{args.seed}-train-{it}')
        logits = model(normalise(images))
        loss = F.cross_entropy(logits, torch.from_numpy(labels))
        if not torch.isfinite(loss):
            sys.exit(f'error: the loss is {loss.item()} at iteration '
                     f'{it + 1}; lower --lr (now {args.lr})')
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        done = it + 1
        if done % args.log_interval == 0 or done == args.iters:
            spent = time.time() - start
            eta = spent / done * (args.iters - done)
            print(f'iter {done}/{args.iters}  lr {_lr(args, it):.4f}  '
                  f'loss {loss.item():.4f}  eta {eta / 60:.1f} min',
                  flush=True)
    acc = accuracy(model, val_images, val_labels, normalise)
    print(f'held-out accuracy: {acc:.4f} on {args.num_val} images '
          f'({len(synthetic_voc.CLASSES)} classes)')
    meta = dict(
        config=osp.abspath(args.config),
        depth=model.backbone.depth,
        classes=list(synthetic_voc.CLASSES),
        iters=args.iters,
        batch_size=args.batch_size,
        size=args.size,
        lr=args.lr,
        warmup=args.warmup,
        seed=args.seed,
        val_accuracy=acc,
        seconds=time.time() - start)
    with atomic_output(args.out) as tmp:
        torch.save(
            dict(state_dict=model.backbone.state_dict(), meta=meta), tmp)
    print(f'wrote {args.out}')
    return meta


if __name__ == '__main__':
    main()
