"""Convert Deformable-ConvNets' R-FCN checkpoint (MXNet ``.params``) into an
mmdet checkpoint for rfcn_mm.

    python tools/model_converters/deformable_convnets_to_mmdet.py \\
        rfcn_coco-0000.params rfcn_r101_mxnet_coco.pth \\
        [--config configs/rfcn/rfcn_r101_mxnet_coco.py]

Reads the file without MXNet, maps every array to the config's model and
refuses, by name, an array it has no place for, a weight the model needs
and the file lacks, and a shape that disagrees (with the model's). The
checkpoint is written atomically; its ``meta`` records the source file (and
its SHA-256), the config and the classes. Then:

    python tools/test.py configs/rfcn/rfcn_r101_mxnet_coco.py \\
        rfcn_r101_mxnet_coco.pth --eval bbox
"""
import argparse
import hashlib
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

import rfcn_mm  # noqa: E402,F401
from rfcn_mm.converters import read_params  # noqa: E402
from rfcn_mm.converters.deformable_convnets import (  # noqa: E402
    UnknownLayerError, convert_params)

CONFIG = osp.join(ROOT, 'configs', 'rfcn', 'rfcn_r101_mxnet_coco.py')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='Deformable-ConvNets .params file')
    parser.add_argument('dst', help='output checkpoint (.pth)')
    parser.add_argument('--config', default=CONFIG,
                        help='the config the checkpoint is for')
    return parser.parse_args(argv)


def fit_problems(model, state: dict) -> list:
    """What keeps ``state`` from loading into ``model`` strictly."""
    from rfcn_mm.compat import checkpoint_fit_problems
    problems = checkpoint_fit_problems(model, state, revise_keys=())
    expected = set(model.state_dict())
    extra = sorted(set(state) - expected)
    if extra:
        problems.append('not in the model: ' + ', '.join(extra[:8]) +
                        (f' and {len(extra) - 8} more' if len(extra) > 8
                         else ''))
    return problems


def build_model(config: str):
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    cfg = Config.fromfile(config)
    return cfg, MODELS.build(cfg.model)


def main(argv=None):
    args = parse_args(argv)
    import torch

    from rfcn_mm.utils import atomic_output
    if not osp.isfile(args.src):
        sys.exit(f'error: {args.src} not found')
    params = read_params(args.src)
    cfg, model = build_model(args.config)
    bins = cfg.model.roi_head.bbox_head.get('roi_feat_size', 7)**2
    try:
        weights, report = convert_params(params, bins)
    except (UnknownLayerError, ValueError) as e:
        sys.exit(f'error: {args.src}: {e}')
    state = {k: torch.from_numpy(v) for k, v in weights.items()}
    problems = fit_problems(model, state)
    if problems:
        sys.exit(f'error: {args.src} does not fit {args.config}:\n  ' +
                 '\n  '.join(problems))
    with open(args.src, 'rb') as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    from mmdet.datasets import CocoDataset
    classes = cfg.get('test_dataloader', {}).get('dataset', {}).get(
        'metainfo', {}).get('classes', CocoDataset.METAINFO['classes'])
    meta = dict(
        converted_from=osp.basename(args.src),
        source_sha256=digest,
        converter='tools/model_converters/deformable_convnets_to_mmdet.py',
        config=osp.basename(args.config),
        dataset_meta=dict(classes=tuple(classes)))
    with atomic_output(args.dst) as tmp:
        torch.save(dict(state_dict=state, meta=meta), tmp)
    for line in report:
        print(line)
    print(f'{len(state)} tensors written to {args.dst}')


if __name__ == '__main__':
    main()
