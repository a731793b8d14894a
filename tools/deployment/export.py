"""Export R-FCN's fixed-shape inference for deployment.

    python tools/deployment/export.py CONFIG CHECKPOINT --format {pt2,onnx} \
        [--shape H W] [--batch N] --out FILE

The exported model takes a batch of preprocessed images of one shape and
returns padded detections (see ``rfcn_mm.deploy.FixedShapeDetector``):

    inputs   images (N, 3, H, W) float32, img_info (N, 4) float32
    outputs  boxes (N, D, 4), scores (N, D), labels (N, D), num_dets (N,)

``pt2``: a ``torch.export`` program (``torch.export.load``), which
``tools/deployment/deploy_runner.py`` runs with torch and rfcn_mm's
compiled ops only.
``onnx``: standard ONNX ops only (PS RoI pooling as summed-area-table
lookups, NMS as ``NonMaxSuppression``), checked with ``onnx.checker``; runs
in ONNX Runtime. Both are exported for one input shape (``--shape``; by
default the test pipeline's resize scale rounded up to the data
preprocessor's ``pad_size_divisor``): smaller images are padded to it, an
input of another shape is refused. Both hold the preprocessing the
config's test pipeline does (resize, channel order, mean and std) as
metadata.
"""
import argparse
import math
import os
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)
from mmengine.config import DictAction  # noqa: E402

import rfcn_mm  # noqa: E402,F401


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Export R-FCN\'s fixed-shape inference (pt2 or ONNX)')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--format', choices=['pt2', 'onnx'], required=True, help='format')
    parser.add_argument('--out', required=True, help='file to write')
    parser.add_argument(
        '--shape',
        type=int,
        nargs=2,
        metavar=('H', 'W'),
        help='input height and width (default: from the test pipeline)')
    parser.add_argument(
        '--batch', type=int, default=1, help='images per call (default 1)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config keys')
    args = parser.parse_args(argv)
    if args.batch < 1:
        parser.error(f'--batch must be >= 1, got {args.batch}')
    if args.shape is not None and min(args.shape) < 1:
        parser.error(f'--shape must be positive, got {args.shape}')
    return args


def default_shape(cfg) -> tuple:
    """(H, W) that holds every test image: the test pipeline's resize
    scale (long side, short side for keep_ratio) in landscape, rounded up
    to ``pad_size_divisor``."""
    pipeline = cfg.test_dataloader.dataset.get('pipeline', [])
    resize = [t for t in pipeline if t.get('type') == 'Resize']
    if not resize:
        raise ValueError('the config\'s test pipeline has no Resize: give '
                         '--shape H W')
    scale = resize[0]['scale']
    w, h = (max(scale), min(scale)) if resize[0].get('keep_ratio') else scale
    div = cfg.model.get('data_preprocessor', {}).get('pad_size_divisor', 1)
    return (int(math.ceil(h / div) * div), int(math.ceil(w / div) * div))


def check_shape(cfg, shape: tuple) -> None:
    """Refuse an input shape that no image of the test pipeline fits: a
    keep-ratio resize makes landscape images up to (short, long) and
    portrait ones up to (long, short); ``shape`` must hold one of them, or
    every image would be refused when the model is run."""
    pipeline = cfg.test_dataloader.dataset.get('pipeline', [])
    resize = [t for t in pipeline if t.get('type') == 'Resize']
    if not resize or not resize[0].get('keep_ratio'):
        return
    scale = resize[0]['scale']
    short, long = min(scale), max(scale)
    h, w = shape
    landscape, portrait = h >= short and w >= long, h >= long and w >= short
    if not (landscape or portrait):
        raise ValueError(
            f'--shape {h} {w} is smaller than what the test pipeline resizes '
            f'images to (up to {short}x{long} landscape, {long}x{short} '
            'portrait; Resize(scale='
            f'{tuple(scale)}, keep_ratio=True)): every image would be refused '
            f'when run. Give at least --shape {short} {long}')
    if not (landscape and portrait):
        held, refused = (('landscape', 'portrait') if landscape else
                         ('portrait', 'landscape'))
        print(f'note: --shape {h} {w} holds only the {held} images of the '
              f'test pipeline; {refused} images will be refused when run')


def main(argv=None):
    args = parse_args(argv)
    from rfcn_mm.deploy.export import (export_program, preprocessing,
                                       save_program, to_onnx)
    from rfcn_mm.deploy.loading import build_fast_detector
    from rfcn_mm.utils import load_config
    cfg = load_config(args.config, args.cfg_options)
    shape = tuple(args.shape) if args.shape else default_shape(cfg)
    check_shape(cfg, shape)
    detector = build_fast_detector(cfg, args.checkpoint)
    # float32, BatchNorm folded into the convs, fixed-shape post-processing
    detector.optimize_for_inference(
        dtype='float32', channels_last=False, cuda_graph=False)
    meta = dict(
        input_shape=[args.batch, 3, *shape],
        classes=list((detector.dataset_meta or {}).get('classes', [])),
        max_per_img=int(detector.test_cfg.rcnn.max_per_img),
        preprocessing=preprocessing(
            detector.data_preprocessor,
            cfg.test_dataloader.dataset.get('pipeline', [])),
        config=osp.abspath(args.config),
        checkpoint=osp.abspath(args.checkpoint))
    program = export_program(detector, shape, args.batch)
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    if args.format == 'pt2':
        save_program(program, args.out, meta)
    else:
        to_onnx(program, args.out, meta)
    print(f'exported {args.format} for inputs {meta["input_shape"]} to '
          f'{args.out}')


if __name__ == '__main__':
    main()
