"""Draw a trained R-FCN's position-sensitive score maps for an image and an
RoI, like the paper's Figures 3 and 4.

    python tools/analysis_tools/vis_score_maps.py CONFIG CHECKPOINT IMAGE \
        [--roi X1 Y1 X2 Y2] [--class-name NAME] [--out maps.png]

Without --roi the top-scoring detection is used (and its class).
"""
import argparse
import math
import os
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)
import rfcn_mm  # noqa: E402,F401


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('image')
    parser.add_argument('--roi', type=float, nargs=4,
                        metavar=('X1', 'Y1', 'X2', 'Y2'),
                        help='RoI in original image pixels')
    parser.add_argument('--class-name', help='class to show')
    parser.add_argument('--out', default='ps_score_maps.png')
    parser.add_argument('--device', default='cpu')
    args = parser.parse_args()
    if args.roi is not None:
        x1, y1, x2, y2 = args.roi
        if not all(math.isfinite(v) for v in args.roi) or not (
                x1 < x2 and y1 < y2):
            parser.error(f'--roi must be finite with X1 < X2 and Y1 < Y2, '
                         f'got {args.roi}')
    return args


def main():
    args = parse_args()
    import mmcv
    from mmdet.apis import inference_detector, init_detector
    from mmengine.dataset import Compose, pseudo_collate

    from rfcn_mm.utils.checkpoint_file import load_checkpoint_file
    from rfcn_mm.visualization import draw_ps_maps, ps_maps_for_roi
    for path in (args.config, args.checkpoint, args.image):
        if not osp.isfile(path):
            raise FileNotFoundError(f'not found: {path}')
    if mmcv.imread(args.image) is None:
        raise ValueError(f'image {args.image} cannot be decoded')
    # a text file, an ONNX model ... refused by name before any model is
    # built
    ckpt = load_checkpoint_file(args.checkpoint)
    model = init_detector(args.config, args.checkpoint, device=args.device)
    # init_detector loads with a mere warning for weights that do not fit
    problems = rfcn_mm.compat.checkpoint_fit_problems(
        model, ckpt.get('state_dict', ckpt))
    if problems:
        raise ValueError(f'{args.checkpoint} does not fit {args.config}:\n  '
                         + '\n  '.join(problems))
    classes = list(model.dataset_meta['classes'])
    det = inference_detector(model, args.image).pred_instances
    if args.roi is None:
        if len(det) == 0:
            raise RuntimeError('no detection in the image: pass --roi')
        roi = det.bboxes[0].tolist()
        label = int(det.labels[0])
    else:
        roi = list(args.roi)
        label = 0
    if args.class_name is not None:
        if args.class_name not in classes:
            raise ValueError(f'unknown --class-name "{args.class_name}"; '
                             f'classes: {classes}')
        label = classes.index(args.class_name)
    # the test pipeline without annotations, as inference_detector runs it
    cfg = model.cfg.copy()
    pipeline = [
        t for t in cfg.test_dataloader.dataset.pipeline
        if t['type'] != 'LoadAnnotations'
    ]
    data = Compose(pipeline)(dict(img_path=args.image, img_id=0))
    data = model.data_preprocessor(pseudo_collate([data]), False)
    sample = data['data_samples'][0]
    sx, sy = sample.scale_factor
    roi_in = [roi[0] * sx, roi[1] * sy, roi[2] * sx, roi[3] * sy]
    result = ps_maps_for_roi(model, data, roi_in, label)
    h, w = sample.img_shape
    img = mmcv.imresize(
        mmcv.imconvert(mmcv.imread(args.image), 'bgr', 'rgb'), (w, h))
    if osp.dirname(args.out):
        os.makedirs(osp.dirname(args.out), exist_ok=True)
    draw_ps_maps(img, result, roi_in, classes[label], args.out)
    print(f'{classes[label]}: vote {result["vote"]:.3f}, '
          f'p = {result["score"]:.3f}; picture written to {args.out}')


if __name__ == '__main__':
    main()
