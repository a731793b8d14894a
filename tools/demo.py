"""The offline demo: write a synthetic VOC-layout dataset, train a small
R-FCN on it on the CPU, evaluate VOC mAP, and draw some detections.

    python tools/demo.py [--iters 600] [--work-dir work_dirs/demo]
"""
import argparse
import json
import os.path as osp
import sys
import time
import warnings

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

import rfcn_mm  # noqa: E402,F401
from rfcn_mm.datasets import make_synthetic_voc  # noqa: E402
from rfcn_mm.utils import atomic_write  # noqa: E402

CONFIG = osp.join(ROOT, 'configs', 'rfcn', 'rfcn_r18_synthetic-voc.py')


def parse_args():
    parser = argparse.ArgumentParser(description='R-FCN offline demo')
    parser.add_argument('--iters', type=int, default=600,
                        help='training iterations (batch 4)')
    parser.add_argument('--work-dir', default=osp.join('work_dirs', 'demo'))
    parser.add_argument('--data-root',
                        default=osp.join('data', 'synthetic_voc'))
    parser.add_argument('--num-train', type=int, default=400)
    parser.add_argument('--num-test', type=int, default=100)
    parser.add_argument('--num-vis', type=int, default=6,
                        help='test images to draw detections on')
    return parser.parse_args()


def synthetic_cfg(work_dir, data_root, iters, val_interval=None):
    """The synthetic config pointed at ``data_root`` and shortened to
    ``iters`` iterations (warm-up up to 50, lr step at 75%), validating
    every ``val_interval`` (default: once, at the end)."""
    from mmengine.config import Config
    cfg = Config.fromfile(CONFIG)
    cfg.work_dir = work_dir
    root = osp.abspath(data_root) + '/'
    for loader in (cfg.train_dataloader, cfg.val_dataloader,
                   cfg.test_dataloader):
        loader.dataset.data_root = root
    cfg.train_cfg.max_iters = iters
    cfg.train_cfg.val_interval = val_interval or iters
    cfg.param_scheduler[0].end = min(50, iters)
    cfg.param_scheduler[1].update(end=iters, milestones=[int(iters * 0.75)])
    cfg.default_hooks.checkpoint.interval = iters
    return cfg


def build_cfg(args):
    return synthetic_cfg(args.work_dir, args.data_root, args.iters)


def draw(runner, cfg, out_dir, num):
    import mmcv
    from mmdet.apis import inference_detector
    model = runner.model
    model.cfg = cfg  # what inference_detector reads, as init_detector sets
    model.dataset_meta = runner.test_dataloader.dataset.metainfo
    model.eval()
    visualizer = runner.visualizer
    visualizer.dataset_meta = model.dataset_meta
    names = open(
        osp.join(cfg.test_dataloader.dataset.data_root,
                 cfg.test_dataloader.dataset.ann_file)).read().split()[:num]
    paths = []
    for name in names:
        img_path = osp.join(cfg.test_dataloader.dataset.data_root,
                            'VOC2007', 'JPEGImages', f'{name}.jpg')
        result = inference_detector(model, img_path)
        img = mmcv.imconvert(mmcv.imread(img_path), 'bgr', 'rgb')
        out = osp.join(out_dir, f'{name}.png')
        with warnings.catch_warnings():
            # mmdet clips boxes to [0, width], mmengine's visualizer warns
            # about any x == width: every box on the right or bottom edge
            warnings.filterwarnings(
                'ignore', message=r'.*The (bbox|polygon) is out of bounds')
            visualizer.add_datasample(
                name, img, result, draw_gt=False, pred_score_thr=0.5,
                out_file=out)
        paths.append(out)
    return paths


def main():
    args = parse_args()
    from mmengine.runner import Runner
    start = time.time()
    print(f'[demo] writing the synthetic dataset to {args.data_root} ...')
    make_synthetic_voc(args.data_root, args.num_train, args.num_test)
    cfg = build_cfg(args)
    runner = Runner.from_cfg(cfg)
    runner.train()  # evaluates VOC mAP on the test split at the end
    mAP = float(
        runner.message_hub.get_scalar('val/pascal_voc/mAP').current())
    vis_dir = osp.join(args.work_dir, 'detections')
    paths = draw(runner, cfg, vis_dir, args.num_vis)
    summary = dict(
        mAP=round(mAP, 4),
        iters=args.iters,
        minutes=round((time.time() - start) / 60, 1),
        dataset=osp.abspath(args.data_root),
        checkpoint=osp.abspath(
            osp.join(args.work_dir, f'iter_{args.iters}.pth')),
        logs=osp.abspath(runner.log_dir),
        detections=osp.abspath(vis_dir))
    atomic_write(
        json.dumps(summary, indent=2),
        osp.join(args.work_dir, 'demo_summary.json'))
    print('\n[demo] done.')
    for key, value in summary.items():
        print(f'[demo]   {key:<11} {value}')
    print(f'[demo]   images      {len(paths)} PNGs with drawn detections')


if __name__ == '__main__':
    main()
