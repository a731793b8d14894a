"""Plain against Deformable R-FCN at the same budget on the synthetic
VOC-layout data: VOC mAP at IoU 0.5 and 0.7 (the paper's two columns)
against training time, as a Markdown table and a plot.

    python tools/analysis_tools/deform_study.py [--depth 18] [--iters 600] \
        [--val-interval 150] [--variants plain dcn-conv5 deform-pool deform]

Variants (k = 7, OHEM, the demo's schedule): ``plain`` R-FCN;
``dcn-conv5``, deformable convolution in conv5; ``deform-pool``,
deformable PS RoI pooling; ``deform``, both (Deformable R-FCN). Each trains
in its own process from the same seed and data, as
``tools/analysis_tools/k_study.py``.
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import textwrap

HERE = osp.dirname(osp.abspath(__file__))  # tools/analysis_tools
TOOLS = osp.dirname(HERE)
sys.path.insert(0, osp.dirname(TOOLS))
sys.path.insert(0, TOOLS)  # demo.py
sys.path.insert(0, HERE)  # k_study.py
from demo import synthetic_cfg  # noqa: E402
from k_study import register_curve_hook  # noqa: E402

import rfcn_mm  # noqa: E402,F401
from rfcn_mm.datasets import make_synthetic_voc  # noqa: E402
from rfcn_mm.utils import atomic_output, atomic_write  # noqa: E402

VARIANTS = ('plain', 'dcn-conv5', 'deform-pool', 'deform')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--variants',
        nargs='+',
        default=['plain', 'deform-pool'],
        choices=VARIANTS,
        help='dcn-conv5 and deform need --depth 50 or more: mmdet\'s DCN '
        'has bottleneck blocks only')
    parser.add_argument(
        '--depth', type=int, default=18, choices=[18, 50, 101])
    parser.add_argument('--iters', type=int, default=600)
    parser.add_argument('--val-interval', type=int, default=150)
    parser.add_argument('--work-dir',
                        default=osp.join('work_dirs', 'deform_study'))
    parser.add_argument(
        '--data-root', default=osp.join('data', 'synthetic_voc'))
    parser.add_argument('--num-train', type=int, default=400)
    parser.add_argument('--num-test', type=int, default=100)
    parser.add_argument('--one', choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.val_interval < 1 or args.iters < args.val_interval:
        parser.error('need 1 <= --val-interval <= --iters')
    if args.depth < 50 and {'dcn-conv5', 'deform'} & set(args.variants):
        parser.error('--variants dcn-conv5 and deform need --depth 50 or '
                     '101 (mmdet\'s DCN is for bottleneck blocks)')
    return args


def build_cfg(args, variant):
    cfg = synthetic_cfg(
        osp.join(args.work_dir, variant), args.data_root, args.iters,
        args.val_interval)
    roi_head = cfg.model.roi_head
    roi_head.shared_head.depth = cfg.model.backbone.depth = args.depth
    if args.depth >= 50:
        cfg.model.rpn_head.update(in_channels=1024, feat_channels=512)
        roi_head.bbox_head.update(in_channels=2048, mid_channels=1024)
    if variant in ('dcn-conv5', 'deform'):
        roi_head.shared_head.dcn = dict(
            type='DCN', deform_groups=4, fallback_on_stride=False)
    if variant in ('deform-pool', 'deform'):
        roi_head.bbox_roi_extractor.roi_layer = dict(
            type='DeformPSRoIPool',
            output_size=roi_head.bbox_head.roi_feat_size,
            sample_per_part=4,
            trans_std=0.1)
        roi_head.bbox_head.type = 'DeformPSBBoxHead'
    cfg.val_evaluator = dict(
        type='VOCMetric', metric='mAP', eval_mode='11points',
        iou_thrs=[0.5, 0.7])
    cfg.test_evaluator = cfg.val_evaluator
    cfg.default_hooks.checkpoint.save_last = False
    cfg.custom_hooks = list(cfg.get('custom_hooks', [])) + [
        dict(
            type='TrainTimeCurveHook',
            out_file=osp.join(cfg.work_dir, 'curve.json'),
            keys=['pascal_voc/AP50', 'pascal_voc/AP70'])
    ]
    return cfg


def train_one(args):
    from mmengine.runner import Runner
    register_curve_hook()
    Runner.from_cfg(build_cfg(args, args.one)).train()


def plot(curves, out_file, title):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, key, iou in zip(axes, ('pascal_voc/AP50', 'pascal_voc/AP70'),
                            ('0.5', '0.7')):
        for name, points in curves.items():
            ax.plot([p['seconds'] / 60 for p in points],
                    [p[key] for p in points],
                    marker='o',
                    label=name)
        ax.set_xlabel('training time (min, validation excluded)')
        ax.set_title(f'VOC mAP at IoU {iou}')
        ax.grid(alpha=0.3)
    axes[0].set_ylabel('mAP (11 points)')
    axes[1].legend()
    fig.suptitle(textwrap.fill(title, 90), fontsize=10)
    fig.tight_layout()
    with atomic_output(out_file) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)


def main():
    args = parse_args()
    if args.one is not None:
        return train_one(args)
    make_synthetic_voc(args.data_root, args.num_train, args.num_test)
    os.makedirs(args.work_dir, exist_ok=True)
    curves = {}
    for name in args.variants:
        print(f'[deform_study] {name}: training {args.iters} iterations ...',
              flush=True)
        log_file = osp.join(args.work_dir, f'{name}.log')
        with open(log_file, 'w') as log:
            code = subprocess.call(
                [sys.executable,
                 osp.abspath(__file__), *sys.argv[1:], '--one', name],
                stdout=log,
                stderr=subprocess.STDOUT)
        curve_file = osp.join(args.work_dir, name, 'curve.json')
        if code != 0 or not osp.isfile(curve_file):
            sys.exit(f'[deform_study] {name} failed (exit {code}); see '
                     f'{log_file}')
        with open(curve_file) as f:
            curves[name] = json.load(f)
        last = curves[name][-1]
        print(f'[deform_study] {name}: mAP@0.5 {last["pascal_voc/AP50"]:.3f}'
              f', mAP@0.7 {last["pascal_voc/AP70"]:.3f} after '
              f'{last["seconds"] / 60:.1f} min', flush=True)
    import torch
    device = torch.cuda.get_device_name() if torch.cuda.is_available() \
        else 'CPU'
    title = (f'R-FCN R-{args.depth}, k = 7, synthetic VOC, {args.iters} '
             f'iterations of batch 4, {device}')
    rows = [
        title, '', '| variant | mAP@0.5 | mAP@0.7 | best mAP@0.5 | best '
        'mAP@0.7 | training min |', '|---|---|---|---|---|---|'
    ]
    for name, points in curves.items():
        rows.append(
            f'| {name} | {points[-1]["pascal_voc/AP50"]:.3f} | '
            f'{points[-1]["pascal_voc/AP70"]:.3f} | '
            f'{max(p["pascal_voc/AP50"] for p in points):.3f} | '
            f'{max(p["pascal_voc/AP70"] for p in points):.3f} | '
            f'{points[-1]["seconds"] / 60:.1f} |')
    table = '\n'.join(rows)
    for ext, text in (('md', table + '\n'),
                      ('json', json.dumps(dict(args=vars(args),
                                               device=device,
                                               curves=curves), indent=1))):
        atomic_write(text, osp.join(args.work_dir, f'deform_study.{ext}'))
    png = osp.join(args.work_dir, 'deform_study.png')
    plot(curves, png, title)
    print('\n' + table + f'\n\n[deform_study] plot: {osp.abspath(png)}')


if __name__ == '__main__':
    main()
