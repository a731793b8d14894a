"""End-to-end against alternating training at the same total iterations, as
py-R-FCN's README compares them (VOC 07: R-101 79.4 joint vs 79.4
alternating, R-50 77.6 vs 77.4): the demo's small R-FCN on the synthetic
VOC-layout data, VOC mAP of each and the wall time of each training.

    python tools/alternating_study.py [--work-dir work_dirs/alternating_study]
        [--iters 600] [--variant 4-step]

End to end trains ``--iters`` iterations (the demo's schedule); the
alternating workflow trains ``--iters`` in all, split evenly over its
stages, each with the same warm-up and lr step at 75%. Both start from the
same seed and data (written first if missing, as tools/demo.py does). The
result goes to ``<work-dir>/alternating_study.md`` and ``.json``.
"""
import argparse
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

import rfcn_mm  # noqa: E402,F401
from rfcn_mm.datasets import make_synthetic_voc  # noqa: E402
from rfcn_mm.engine.alternating import VARIANTS  # noqa: E402
from rfcn_mm.utils import atomic_write  # noqa: E402

END2END = osp.join(ROOT, 'configs', 'rfcn', 'rfcn_r18_synthetic-voc.py')
ALTERNATING = osp.join(ROOT, 'configs', 'rfcn',
                       'rfcn_r18_alt-4step_synthetic-voc.py')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--iters', type=int, default=600,
                        help='training iterations of each method in all')
    parser.add_argument('--variant', choices=sorted(VARIANTS),
                        default='4-step')
    parser.add_argument('--work-dir',
                        default=osp.join('work_dirs', 'alternating_study'))
    parser.add_argument('--data-root',
                        default=osp.join('data', 'synthetic_voc'))
    parser.add_argument('--num-train', type=int, default=400)
    parser.add_argument('--num-test', type=int, default=100)
    return parser.parse_args()


def _data_options(data_root):
    root = osp.abspath(data_root) + '/'
    return [
        f'{loader}.dataset.data_root={root}'
        for loader in ('train_dataloader', 'val_dataloader',
                       'test_dataloader')
    ]


def _run(cmd):
    start = time.time()
    subprocess.run(cmd, check=True)
    return time.time() - start


def _newest_metrics(work_dir):
    """The metrics mmengine wrote for the newest test/val run."""
    for path in sorted(glob.glob(osp.join(work_dir, '*', '*.json')),
                       reverse=True):
        with open(path) as f:
            record = json.load(f)
        if 'pascal_voc/mAP' in record:
            return record
    for path in sorted(glob.glob(
            osp.join(work_dir, '*', 'vis_data', 'scalars.json')),
                       reverse=True):
        with open(path) as f:
            for line in reversed(f.read().splitlines()):
                record = json.loads(line)
                if 'pascal_voc/mAP' in record:
                    return record
    raise FileNotFoundError(f'no VOC mAP recorded under {work_dir}')


def main():
    args = parse_args()
    make_synthetic_voc(args.data_root, args.num_train, args.num_test)
    data = _data_options(args.data_root)
    n = len(VARIANTS[args.variant].stages)
    per_stage = args.iters // n
    step = int(per_stage * 0.75)
    python = sys.executable
    tools = osp.join(ROOT, 'tools')

    e2e_dir = osp.join(args.work_dir, 'end2end')
    e2e_time = _run([
        python, osp.join(tools, 'train.py'), END2END, '--work-dir', e2e_dir,
        '--cfg-options', f'train_cfg.max_iters={args.iters}',
        f'train_cfg.val_interval={args.iters}',
        f'param_scheduler.1.end={args.iters}',
        f'param_scheduler.1.milestones=[{int(args.iters * 0.75)}]',
        f'default_hooks.checkpoint.interval={args.iters}', *data
    ])
    e2e_map = _newest_metrics(e2e_dir)['pascal_voc/mAP']

    alt_dir = osp.join(args.work_dir, args.variant)
    alt_time = _run([
        python, osp.join(tools, 'train_alternating.py'), ALTERNATING,
        '--work-dir', alt_dir, '--variant', args.variant, '--cfg-options',
        f'alternating_cfg.rpn.max_iters={per_stage}',
        f'alternating_cfg.rpn.milestones=[{step}]',
        f'alternating_cfg.rfcn.max_iters={per_stage}',
        f'alternating_cfg.rfcn.milestones=[{step}]', *data
    ])
    eval_dir = osp.join(alt_dir, 'eval')
    _run([
        python, osp.join(tools, 'test.py'), ALTERNATING,
        osp.join(alt_dir, 'final.pth'), '--eval', 'mAP', '--work-dir',
        eval_dir, '--cfg-options', *data
    ])
    alt_map = _newest_metrics(eval_dir)['pascal_voc/mAP']

    result = dict(
        iters=args.iters,
        variant=args.variant,
        per_stage_iters=per_stage,
        end2end=dict(mAP=e2e_map, seconds=e2e_time),
        alternating=dict(mAP=alt_map, seconds=alt_time))
    table = '\n'.join([
        f'| training ({args.iters} iterations in all, batch 4) | VOC mAP '
        '| wall time | time vs end to end |', '|---|---|---|---|',
        f'| end to end (approximate joint) | {e2e_map:.4f} | '
        f'{e2e_time / 60:.1f} min | 1.00x |',
        f'| {args.variant} alternating ({n} x {per_stage}) | {alt_map:.4f} '
        f'| {alt_time / 60:.1f} min | {alt_time / e2e_time:.2f}x |'
    ])
    os.makedirs(args.work_dir, exist_ok=True)
    atomic_write(json.dumps(result, indent=2),
                 osp.join(args.work_dir, 'alternating_study.json'))
    atomic_write(table + '\n', osp.join(args.work_dir,
                                        'alternating_study.md'))
    print(table)
    print(f'mAP difference (alternating - end to end): '
          f'{alt_map - e2e_map:+.4f}')


if __name__ == '__main__':
    main()
