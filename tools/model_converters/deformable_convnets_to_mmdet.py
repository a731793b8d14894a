"""Convert Deformable-ConvNets' R-FCN checkpoint (MXNet ``.params``) into an
mmdet checkpoint for rfcn_mm.

    python tools/model_converters/deformable_convnets_to_mmdet.py \\
        rfcn_coco-0000.params rfcn_r101_mxnet_coco.pth [--config CONFIG]

R-FCN (``rfcn_coco``) and Deformable R-FCN (``rfcn_dcn_coco``, recognised
by its offset convs) are both read; the config defaults to the matching
legacy one, ``configs/rfcn/rfcn_r101_mxnet_coco.py`` or
``configs/rfcn/rfcn_r101_dcn_mxnet_coco.py``.

Reads the file without MXNet, maps every array to the config's model and
refuses, by name, an array it has no place for, a weight the model needs
and the file lacks, and a shape that disagrees (with the model's). The
checkpoint is written atomically; its ``meta`` records the source file (and
its SHA-256), the config and the classes. Then:

    python tools/test.py CONFIG rfcn_r101_mxnet_coco.pth --eval bbox
"""
import argparse
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

import rfcn_mm  # noqa: E402,F401
from rfcn_mm.converters import MXNetParamsError, read_params  # noqa: E402
from rfcn_mm.converters.converted_checkpoint import (  # noqa: E402
    ConversionMismatchError, write_converted)
from rfcn_mm.converters.deformable_convnets import (  # noqa: E402
    convert_params, is_deformable)
from rfcn_mm.converters.reference_layers import UnknownLayerError  # noqa: E402

CONFIGS = osp.join(ROOT, 'configs', 'rfcn')
CONFIG = osp.join(CONFIGS, 'rfcn_r101_mxnet_coco.py')
DCN_CONFIG = osp.join(CONFIGS, 'rfcn_r101_dcn_mxnet_coco.py')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='Deformable-ConvNets .params file')
    parser.add_argument('dst', help='output checkpoint (.pth)')
    parser.add_argument(
        '--config',
        help='the config the checkpoint is for (default: '
        'rfcn_r101_mxnet_coco.py, or rfcn_r101_dcn_mxnet_coco.py for '
        'Deformable R-FCN)')
    parser.add_argument('--bins', type=int, default=49,
                        help='k*k of the score maps (default 49)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if not osp.isfile(args.src):
        sys.exit(f'error: {args.src} not found')
    try:
        params = read_params(args.src)
        if args.config is None:
            args.config = DCN_CONFIG if is_deformable(params) else CONFIG
        print(f'config: {args.config}')
        weights, report = convert_params(params, args.bins)
        count = write_converted(
            weights, args.src, args.dst, args.config,
            'tools/model_converters/deformable_convnets_to_mmdet.py')
    except (MXNetParamsError, UnknownLayerError,
            ConversionMismatchError) as e:
        sys.exit(f'error: {e}')
    for line in report:
        print(line)
    print(f'{count} tensors written to {args.dst}')


if __name__ == '__main__':
    main()
