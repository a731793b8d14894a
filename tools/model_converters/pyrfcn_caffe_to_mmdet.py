"""Convert a py-R-FCN Caffe model (``.caffemodel``) into an mmdet
checkpoint for rfcn_mm.

    python tools/model_converters/pyrfcn_caffe_to_mmdet.py \\
        resnet101_rfcn_final.caffemodel rfcn_r101_pyrfcn_voc0712.pth \\
        [--config CONFIG]

Reads the file without Caffe or protobuf, maps every layer with weights
(the layer names of py-R-FCN's ``rfcn_end2end/test_agnostic.prototxt``) to
the config's model and refuses, by name, a layer it has no place for, a
weight the model needs and the file lacks, and a shape that disagrees
(with the model's). The config defaults to the legacy one of the model's
depth (read from its res4 blocks) and classes (its ``rfcn_cls`` maps):
``rfcn_r101_pyrfcn_voc0712.py``, ``rfcn_r50_pyrfcn_voc0712.py`` or
``rfcn_r101_pyrfcn_coco.py``; other models take ``--config``.
The checkpoint is written atomically; its ``meta`` records the source file
(and its SHA-256), the config and the classes. Then:

    python tools/test.py CONFIG rfcn_r101_pyrfcn_voc0712.pth --eval mAP
"""
import argparse
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

import rfcn_mm  # noqa: E402,F401
from rfcn_mm.converters import CaffeModelError, read_caffemodel  # noqa: E402
from rfcn_mm.converters.converted_checkpoint import (  # noqa: E402
    ConversionMismatchError, write_converted)
from rfcn_mm.converters.py_rfcn import convert_layers  # noqa: E402
from rfcn_mm.converters.py_rfcn import resnet_depth  # noqa: E402
from rfcn_mm.converters.reference_layers import UnknownLayerError  # noqa: E402

# (ResNet depth, classes with the background) -> the legacy config
CONFIGS = {
    (depth, classes): osp.join(ROOT, 'configs', 'rfcn',
                               f'rfcn_r{depth}_pyrfcn_{data}.py')
    for depth, classes, data in ((101, 21, 'voc0712'), (50, 21, 'voc0712'),
                                 (101, 81, 'coco'))
}


def _config(layers, bins):
    """The legacy config of a model's depth and classes."""
    depth = resnet_depth(layers)
    cls = [layer for layer in layers if layer.name == 'rfcn_cls']
    classes = len(cls[0].blobs[0]) // bins if cls and cls[0].blobs else 21
    if (depth, classes) not in CONFIGS:
        raise UnknownLayerError(
            f'no legacy config for a ResNet-{depth} with {classes} classes '
            '(background included); pass --config')
    return CONFIGS[depth, classes]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='py-R-FCN .caffemodel file')
    parser.add_argument('dst', help='output checkpoint (.pth)')
    parser.add_argument(
        '--config',
        help='the config the checkpoint is for (default: '
        'the legacy VOC or COCO config of the model\'s depth and classes)')
    parser.add_argument('--bins', type=int, default=49,
                        help='k*k of the score maps (default 49)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if not osp.isfile(args.src):
        sys.exit(f'error: {args.src} not found')
    try:
        layers = read_caffemodel(args.src)
        if args.config is None:
            args.config = _config(layers, args.bins)
        print(f'config: {args.config}')
        weights, report = convert_layers(layers, args.bins)
        count = write_converted(
            weights, args.src, args.dst, args.config,
            'tools/model_converters/pyrfcn_caffe_to_mmdet.py')
    except (CaffeModelError, UnknownLayerError,
            ConversionMismatchError) as e:
        sys.exit(f'error: {e}')
    for line in report:
        print(line)
    print(f'{count} tensors written to {args.dst}')


if __name__ == '__main__':
    main()
