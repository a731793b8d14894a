"""End-to-end against alternating training at the same total iterations, as
py-R-FCN's README compares them (VOC 07: R-101 79.4 joint vs 79.4
alternating, R-50 77.6 vs 77.4): the demo's small R-FCN on the synthetic
VOC-layout data, VOC mAP of each and the wall and CPU time of each
training (the CPU time, of all the training's processes, is what other
work on the machine disturbs least).

    python tools/analysis_tools/alternating_study.py [--iters 600]
        [--variant 4-step] [--depth 18] [--config CONFIG]
        [--work-dir work_dirs/alternating_study]

End to end trains ``--iters`` iterations (the demo's schedule); the
alternating workflow trains ``--iters`` in all, over its stages in the
proportions of the config's ``alternating_cfg``, each with the same
warm-up and its lr step at 75%. Both start from the same seed and data
(written first if missing, as tools/demo.py does). The result goes to
``<work-dir>/alternating_study.md`` and ``.json``; a finished end-to-end
run of the same settings (and the same config but for its
``alternating_cfg``) is reused (``end2end.json``).
"""
import argparse
import glob
import hashlib
import json
import os
import os.path as osp
import resource
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

import rfcn_mm  # noqa: E402,F401
from rfcn_mm.datasets import make_synthetic_voc  # noqa: E402
from rfcn_mm.engine.alternating import VARIANTS  # noqa: E402
from rfcn_mm.utils import atomic_write  # noqa: E402

# the demo's config: its alternating_cfg sets the alternating stages
CONFIG = osp.join(ROOT, 'configs', 'rfcn', 'rfcn_r18_synthetic-voc.py')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--iters', type=int, default=600,
                        help='training iterations of each method in all')
    parser.add_argument('--config', default=CONFIG,
                        help='a config inheriting the demo\'s (default: '
                        'the demo\'s)')
    parser.add_argument('--variant', choices=sorted(VARIANTS),
                        default='4-step')
    parser.add_argument('--work-dir',
                        default=osp.join('work_dirs', 'alternating_study'))
    parser.add_argument('--data-root',
                        default=osp.join('data', 'synthetic_voc'))
    parser.add_argument('--num-train', type=int, default=400)
    parser.add_argument('--num-test', type=int, default=100)
    parser.add_argument(
        '--depth', type=int, default=18, choices=[18, 34, 50, 101, 152],
        help='ResNet depth, trained from scratch (101 on a GPU)')
    return parser.parse_args()


def _depth_options(depth):
    """The demo's model at another ResNet depth (bottleneck blocks from 50
    on: conv4 has 1024 channels, conv5 2048)."""
    if depth == 18:
        return []
    options = [f'model.backbone.depth={depth}',
               f'model.roi_head.shared_head.depth={depth}']
    if depth >= 50:
        options += ['model.rpn_head.in_channels=1024',
                    'model.rpn_head.feat_channels=512',
                    'model.roi_head.bbox_head.in_channels=2048',
                    'model.roi_head.bbox_head.mid_channels=1024']
    return options


def _data_options(data_root):
    root = osp.abspath(data_root) + '/'
    return [
        f'{loader}.dataset.data_root={root}'
        for loader in ('train_dataloader', 'val_dataloader',
                       'test_dataloader')
    ]


def _run(cmd):
    """Run ``cmd``; its wall time and the CPU time (user + system) of it
    and its children, which other work on the machine disturbs less."""
    start = time.time()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime -
                                                before.ru_stime)
    return time.time() - start, cpu


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


def model_digest(config):
    """sha256 of ``config`` but for its ``alternating_cfg``: what decides
    whether a recorded end-to-end run still applies."""
    from mmengine.config import Config
    cfg = Config.fromfile(config)
    cfg.pop('alternating_cfg', None)
    return hashlib.sha256(cfg.pretty_text.encode()).hexdigest()


def stage_iterations(total, variant, config=CONFIG):
    """Iterations of each stage: ``total`` in all, in the proportions of
    the config's ``alternating_cfg`` (its per-kind lengths and per-stage
    overrides); the last stage takes the rounding remainder."""
    from mmengine.config import Config

    from rfcn_mm.engine.alternating.stages import stage_settings
    alt = Config.fromfile(config).alternating_cfg
    stages = VARIANTS[variant].stages
    lengths = [stage_settings(alt, s)['max_iters'] for s in stages]
    scale = total / sum(lengths)
    out = {s.name: max(1, round(n * scale)) for s, n in zip(stages, lengths)}
    out[stages[-1].name] += total - sum(out.values())
    return out


def main():
    args = parse_args()
    make_synthetic_voc(args.data_root, args.num_train, args.num_test)
    data = _data_options(args.data_root) + _depth_options(args.depth)
    config = osp.abspath(args.config)
    stage_iters = stage_iterations(args.iters, args.variant, config)
    python = sys.executable
    tools = osp.join(ROOT, 'tools')

    e2e_dir = osp.join(args.work_dir, 'end2end')
    e2e_record = osp.join(args.work_dir, 'end2end.json')
    settings = dict(iters=args.iters, depth=args.depth,
                    data_root=osp.abspath(args.data_root),
                    config=model_digest(config))
    e2e = None
    if osp.isfile(e2e_record):
        with open(e2e_record) as f:
            e2e = json.load(f)
        if e2e.get('settings') != settings:
            e2e = None
        else:
            print(f'end to end: reusing {e2e_record}', flush=True)
    if e2e is None:
        seconds, cpu = _run([
            python, osp.join(tools, 'train.py'), config, '--work-dir',
            e2e_dir, '--cfg-options', f'train_cfg.max_iters={args.iters}',
            f'train_cfg.val_interval={args.iters}',
            f'param_scheduler.1.end={args.iters}',
            f'param_scheduler.1.milestones=[{int(args.iters * 0.75)}]',
            f'default_hooks.checkpoint.interval={args.iters}', *data
        ])
        e2e = dict(settings=settings, seconds=seconds, cpu_seconds=cpu,
                   mAP=_newest_metrics(e2e_dir)['pascal_voc/mAP'])
        os.makedirs(args.work_dir, exist_ok=True)
        atomic_write(json.dumps(e2e, indent=2), e2e_record)
    e2e_map, e2e_time, e2e_cpu = e2e['mAP'], e2e['seconds'], e2e['cpu_seconds']

    alt_dir = osp.join(args.work_dir, args.variant)
    # the demo's config with this study's stage lengths
    os.makedirs(args.work_dir, exist_ok=True)
    alt_config = osp.join(args.work_dir, f'{args.variant}_config.py')
    stages = ', '.join(
        f'{name}=dict(max_iters={n}, milestones=[{int(n * 0.75)}])'
        for name, n in stage_iters.items())
    atomic_write(
        f'_base_ = {config!r}\nalternating_cfg = dict(variant='
        f'{args.variant!r}, stages=dict({stages}))\n', alt_config)
    alt_time, alt_cpu = _run([
        python, osp.join(tools, 'train_alternating.py'), alt_config,
        '--work-dir', alt_dir, '--cfg-options', *data
    ])
    eval_dir = osp.join(alt_dir, 'eval')
    _run([
        python, osp.join(tools, 'test.py'), config,
        osp.join(alt_dir, 'final.pth'), '--eval', 'mAP', '--work-dir',
        eval_dir, '--cfg-options', *data
    ])
    alt_map = _newest_metrics(eval_dir)['pascal_voc/mAP']

    result = dict(
        iters=args.iters,
        depth=args.depth,
        variant=args.variant,
        stage_iters=stage_iters,
        end2end=dict(mAP=e2e_map, seconds=e2e_time, cpu_seconds=e2e_cpu),
        alternating=dict(mAP=alt_map, seconds=alt_time, cpu_seconds=alt_cpu))
    stages = ' + '.join(str(n) for n in stage_iters.values())
    table = '\n'.join([
        f'| ResNet-{args.depth}, {args.iters} iterations in all, batch 4 '
        '| VOC mAP | wall time | CPU time | CPU time vs end to end |',
        '|---|---|---|---|---|',
        f'| end to end (approximate joint) | {e2e_map:.4f} | '
        f'{e2e_time / 60:.1f} min | {e2e_cpu / 60:.1f} min | 1.00x |',
        f'| {args.variant} alternating ({stages}) | {alt_map:.4f} '
        f'| {alt_time / 60:.1f} min | {alt_cpu / 60:.1f} min | '
        f'{alt_cpu / e2e_cpu:.2f}x |'
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
