"""Position-sensitivity study, as the paper's Table 2: train R-FCN with
k x k = 1 x 1, 3 x 3 and 7 x 7 bins on the synthetic VOC-layout data,
validate every ``--val-interval`` iterations, and report VOC mAP against
training wall time as a Markdown table and a plot.

    python tools/analysis_tools/k_study.py [--depth 18] [--ks 1 3 7] \
        [--iters 600]
        [--val-interval 150] [--batch-size 4] [--work-dir work_dirs/k_study]

Each k trains in its own process from the same seed and data (written first
if missing, as tools/demo.py does). Training time excludes validation. On a
GPU, ``--depth 101`` trains the paper's backbone from scratch (no ImageNet
weights are needed).
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import textwrap
import time

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

import rfcn_mm  # noqa: E402,F401
from rfcn_mm.datasets import make_synthetic_voc  # noqa: E402
from rfcn_mm.utils import atomic_output, atomic_write  # noqa: E402

sys.path.insert(0, osp.join(ROOT, 'tools'))  # demo.py
from demo import synthetic_cfg  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--ks', type=int, nargs='+', default=[1, 3, 7])
    parser.add_argument(
        '--depth', type=int, default=18, choices=[18, 34, 50, 101, 152])
    parser.add_argument('--iters', type=int, default=600)
    parser.add_argument('--val-interval', type=int, default=150)
    parser.add_argument(
        '--batch-size',
        type=int,
        default=4,
        help='images per iteration; the lr scales linearly from 0.02 at 4')
    parser.add_argument('--workers', type=int, default=0)
    parser.add_argument('--amp', action='store_true')
    parser.add_argument('--work-dir', default=osp.join('work_dirs', 'k_study'))
    parser.add_argument(
        '--data-root', default=osp.join('data', 'synthetic_voc'))
    parser.add_argument('--num-train', type=int, default=400)
    parser.add_argument('--num-test', type=int, default=100)
    parser.add_argument(
        '--parallel',
        action='store_true',
        help='train all k at once (one GPU shared by all runs: wall times '
        'are comparable between the runs, not with a run of its own)')
    parser.add_argument('--one-k', type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.val_interval < 1 or args.iters < args.val_interval:
        parser.error('need 1 <= --val-interval <= --iters')
    return args


def build_cfg(args, k):
    cfg = synthetic_cfg(
        osp.join(args.work_dir, f'k{k}'), args.data_root, args.iters,
        args.val_interval)
    model = cfg.model
    model.roi_head.bbox_roi_extractor.roi_layer.output_size = k
    model.roi_head.bbox_head.roi_feat_size = k
    model.backbone.depth = model.roi_head.shared_head.depth = args.depth
    if args.depth >= 50:  # bottleneck blocks: conv4 1024, conv5 2048
        model.rpn_head.update(in_channels=1024, feat_channels=512)
        model.roi_head.bbox_head.update(in_channels=2048, mid_channels=1024)
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        loader.num_workers = args.workers
        loader.persistent_workers = args.workers > 0
    cfg.test_dataloader = cfg.val_dataloader
    cfg.train_dataloader.batch_size = args.batch_size
    cfg.optim_wrapper.optimizer.lr = 0.02 * args.batch_size / 4
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
    cfg.default_hooks.checkpoint.save_last = False
    cfg.custom_hooks = list(cfg.get('custom_hooks', [])) + [
        dict(
            type='TrainTimeCurveHook',
            out_file=osp.join(cfg.work_dir, 'curve.json'))
    ]
    return cfg


def register_curve_hook():
    from mmdet.registry import HOOKS
    from mmengine.hooks import Hook

    @HOOKS.register_module(force=True)
    class TrainTimeCurveHook(Hook):
        """Record (iteration, training seconds, mAP and the metrics named
        in ``keys``) at every validation; training seconds exclude the
        validations."""

        def __init__(self, out_file, keys=()):
            self.out_file = out_file
            self.keys = list(keys)
            self.points = []

        def _now(self, runner):
            import torch
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            return time.perf_counter()

        def before_train(self, runner):
            self.start, self.val_seconds = self._now(runner), 0.0

        def before_val_epoch(self, runner):
            self.val_start = self._now(runner)

        def after_val_epoch(self, runner, metrics=None):
            now = self._now(runner)
            metrics = metrics or {}
            point = dict(
                iter=runner.iter,
                seconds=round(now - self.start - self.val_seconds, 2),
                mAP=float(metrics.get('pascal_voc/mAP', 0.0)))
            point.update({k: float(metrics.get(k, 0.0)) for k in self.keys})
            self.points.append(point)
            self.val_seconds += now - self.val_start
            atomic_write(json.dumps(self.points, indent=1), self.out_file)


def train_one(args):
    from mmengine.runner import Runner
    register_curve_hook()
    runner = Runner.from_cfg(build_cfg(args, args.one_k))
    runner.train()


def plot(curves, out_file, title):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    for k, points in curves.items():
        ax.plot([p['seconds'] / 60 for p in points],
                [p['mAP'] for p in points],
                marker='o',
                label=f'k = {k}')
    ax.set_xlabel('training time (min, validation excluded)')
    ax.set_ylabel('VOC mAP (11 points)')
    ax.set_title(textwrap.fill(title, 60), fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_output(out_file) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)


def main():
    args = parse_args()
    if args.one_k is not None:
        return train_one(args)
    make_synthetic_voc(args.data_root, args.num_train, args.num_test)
    os.makedirs(args.work_dir, exist_ok=True)
    procs = {}
    for k in args.ks:
        print(
            f'[k_study] k = {k}: training {args.iters} iterations ...',
            flush=True)
        cmd = [
            sys.executable,
            osp.abspath(__file__), *sys.argv[1:], '--one-k',
            str(k)
        ]
        with open(osp.join(args.work_dir, f'k{k}.log'), 'w') as log:
            procs[k] = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT)
        if not args.parallel:
            procs[k].wait()
    curves = {}
    for k, proc in procs.items():
        returncode = proc.wait()
        curve_file = osp.join(args.work_dir, f'k{k}', 'curve.json')
        if returncode != 0 or not osp.isfile(curve_file):
            sys.exit(f'[k_study] k = {k} failed (exit {returncode}); see '
                     f'{osp.join(args.work_dir, f"k{k}.log")}')
        with open(curve_file) as f:
            curves[k] = json.load(f)
        last = curves[k][-1]
        print(
            f'[k_study] k = {k}: mAP {last["mAP"]:.3f} after '
            f'{last["seconds"] / 60:.1f} min',
            flush=True)
    import torch
    device = torch.cuda.get_device_name() if torch.cuda.is_available() \
        else 'CPU'
    title = (f'R-FCN R-{args.depth}, synthetic VOC, batch '
             f'{args.batch_size}, {device}' +
             (f', {len(args.ks)} runs at once' if args.parallel else ''))
    rows = [
        title, '', '| k x k | final mAP | best mAP | training min |'
        ' mAP at each validation |', '|---|---|---|---|---|'
    ]
    for k, points in curves.items():
        rows.append(f'| {k} x {k} | {points[-1]["mAP"]:.3f} | '
                    f'{max(p["mAP"] for p in points):.3f} | '
                    f'{points[-1]["seconds"] / 60:.1f} | ' +
                    ', '.join(f'{p["mAP"]:.3f}@{p["iter"]}'
                              for p in points) + ' |')
    table = '\n'.join(rows)
    atomic_write(table + '\n', osp.join(args.work_dir, 'k_study.md'))
    atomic_write(
        json.dumps(
            dict(args=vars(args), device=device, curves=curves), indent=1),
        osp.join(args.work_dir, 'k_study.json'))
    png = osp.join(args.work_dir, 'k_study.png')
    plot(curves, png, title)
    print('\n' + table + f'\n\n[k_study] plot: {osp.abspath(png)}')


if __name__ == '__main__':
    main()
