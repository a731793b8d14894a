"""End-to-end against alternating training at the same total iterations, as
py-R-FCN's README compares them (VOC 07: R-101 79.4 joint vs 79.4
alternating, R-50 77.6 vs 77.4): the demo's small R-FCN on the synthetic
VOC-layout data, VOC mAP of each and the wall and CPU time of each
training (the CPU time, of all the training's processes, is what other
work on the machine disturbs least).

    python tools/analysis_tools/alternating_study.py [--iters 600]
        [--variant 4-step] [--depth 18] [--config CONFIG]
        [--init scratch|pretrained] [--work-dir work_dirs/alternating_study]

``--init pretrained`` starts both from a backbone pretrained to classify
the synthetic shapes (tools/analysis_tools/pretrain_synthetic_backbone.py,
run first unless ``<work-dir>`` holds one of the same settings), as the
reference trainings start from ImageNet.

End to end trains ``--iters`` iterations (the demo's schedule); the
alternating workflow trains ``--iters`` in all, over its stages in the
proportions of the config's ``alternating_cfg``, each with the same
warm-up and its lr step at 75%. Both start from the same seed and data
(written first if missing, as tools/demo.py does). The result goes to
``<work-dir>/alternating_study.md`` and ``.json``; a finished end-to-end
run of the same settings (and the same config but for its
``alternating_cfg``) is reused (``end2end.json``), and so is a finished
alternating run of the same settings and config (``<variant>.json``);
``--part end2end`` and ``--part alternating`` run one training each, for
instance side by side, and a later run without ``--part`` writes the
table from their records.
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

TOOLS = osp.join(ROOT, 'tools')
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
        '--part', choices=['both', 'end2end', 'alternating'], default='both',
        help='run one training only (its record is reused by a later run '
        'of both: the two can run side by side)')
    parser.add_argument(
        '--depth', type=int, default=18, choices=[18, 34, 50, 101, 152],
        help='ResNet depth (101 on a GPU)')
    parser.add_argument(
        '--init', choices=['scratch', 'pretrained'], default='scratch',
        help='start both trainings from random weights (the demo\'s '
        'config) or, as the paper from ImageNet, from a backbone '
        'pretrained to classify the synthetic shapes '
        '(tools/analysis_tools/pretrain_synthetic_backbone.py)')
    parser.add_argument(
        '--pretrain-iters', type=int, default=800,
        help='iterations of that pretraining, batch 16')
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


def _pretrained_config(args, config):
    """``config`` starting from a backbone pretrained on the synthetic
    shapes (trained first if ``<work-dir>`` has none of these settings):
    the config's path and the pretraining's record."""
    import torch

    def saved_meta():
        return torch.load(ckpt, map_location='cpu', weights_only=True)['meta']

    ckpt = osp.join(args.work_dir, f'pretrained_r{args.depth}.pth')
    wanted = dict(depth=args.depth, iters=args.pretrain_iters)
    meta = saved_meta() if osp.isfile(ckpt) else None
    if meta is None or {k: meta.get(k) for k in wanted} != wanted:
        _run([
            sys.executable,
            osp.join(TOOLS, 'analysis_tools',
                     'pretrain_synthetic_backbone.py'),
            ckpt, '--config', config, '--depth', str(args.depth), '--iters',
            str(args.pretrain_iters)
        ])
        meta = saved_meta()
    ckpt = osp.abspath(ckpt)
    init = (f"init_cfg=dict(_delete_=True, type='Pretrained', "
            f'checkpoint={ckpt!r})')
    path = osp.join(args.work_dir, f'pretrained_r{args.depth}_config.py')
    atomic_write(
        f'_base_ = {config!r}\n'
        f'# the backbone and conv5 from {osp.basename(ckpt)}, pretrained to '
        'classify the synthetic shapes\n'
        f'model = dict(\n    backbone=dict({init}),\n'
        f'    roi_head=dict(shared_head=dict({init})))\n', path)
    return osp.abspath(path), dict(
        iters=meta['iters'], seed=meta['seed'],
        val_accuracy=meta['val_accuracy'])


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


def config_digest(config, without=()):
    """sha256 of ``config`` but for its top-level keys ``without``."""
    from mmengine.config import Config
    cfg = Config.fromfile(config)
    for key in without:
        cfg.pop(key, None)
    return hashlib.sha256(cfg.pretty_text.encode()).hexdigest()


def model_digest(config):
    """sha256 of ``config`` but for its ``alternating_cfg``: what decides
    whether a recorded end-to-end run still applies."""
    return config_digest(config, without=('alternating_cfg', ))


def stage_iterations(total, variant, config=CONFIG):
    """Iterations of each stage: ``total`` in all, in the proportions of
    the config's ``alternating_cfg`` (its per-kind lengths and per-stage
    overrides); the longest stage takes the rounding remainder."""
    from mmengine.config import Config

    from rfcn_mm.engine.alternating.stages import stage_settings
    alt = Config.fromfile(config).alternating_cfg
    stages = VARIANTS[variant].stages
    if total < len(stages):
        raise ValueError(f'--iters {total}: the {variant} workflow needs at '
                         f'least one iteration for each of its '
                         f'{len(stages)} stages')
    lengths = [stage_settings(alt, s)['max_iters'] for s in stages]
    scale = total / sum(lengths)
    out = {s.name: max(1, round(n * scale)) for s, n in zip(stages, lengths)}
    while sum(out.values()) != total:
        longest = max(out, key=out.get)
        out[longest] += 1 if sum(out.values()) < total else -1
    return out


def _stage_options(stage_iters, variant, config):
    """``alternating_cfg.stages`` of the study's config: each stage's
    length, its lr step at 75% and its warm-up, clipped to its length."""
    from mmengine.config import Config

    from rfcn_mm.engine.alternating.stages import stage_settings
    alt = Config.fromfile(config).alternating_cfg
    options = []
    for stage in VARIANTS[variant].stages:
        n = stage_iters[stage.name]
        option = f'max_iters={n}, milestones=[{int(n * 0.75)}]'
        warmup = stage_settings(alt, stage)['warmup_iters']
        if warmup is not None:
            option += f', warmup_iters={min(warmup, n)}'
        options.append(f'{stage.name}=dict({option})')
    return ', '.join(options)


def _reuse(record, settings):
    """The run recorded in ``record`` if it had ``settings``, else None."""
    if not osp.isfile(record):
        return None
    with open(record) as f:
        run = json.load(f)
    if run.get('settings') != settings:
        return None
    print(f'reusing {record}', flush=True)
    return run


def _end2end(args, config, data, settings):
    """End-to-end training of ``--iters``: its record."""
    record = osp.join(args.work_dir, 'end2end.json')
    run = _reuse(record, settings)
    if run is not None:
        return run
    work_dir = osp.join(args.work_dir, 'end2end')
    seconds, cpu = _run([
        sys.executable, osp.join(TOOLS, 'train.py'), config, '--work-dir',
        work_dir, '--cfg-options', f'train_cfg.max_iters={args.iters}',
        f'train_cfg.val_interval={args.iters}',
        f'param_scheduler.1.end={args.iters}',
        f'param_scheduler.1.milestones=[{int(args.iters * 0.75)}]',
        f'default_hooks.checkpoint.interval={args.iters}', *data
    ])
    run = dict(settings=settings, seconds=seconds, cpu_seconds=cpu,
               mAP=_newest_metrics(work_dir)['pascal_voc/mAP'])
    atomic_write(json.dumps(run, indent=2), record)
    return run


def _alternating(args, config, data, settings, stage_iters):
    """The alternating workflow, ``--iters`` over its stages: its record."""
    record = osp.join(args.work_dir, f'{args.variant}.json')
    settings = dict(settings, variant=args.variant, stage_iters=stage_iters,
                    alternating_cfg=config_digest(config))
    run = _reuse(record, settings)
    if run is not None:
        return run
    work_dir = osp.join(args.work_dir, args.variant)
    # the demo's config with this study's stage lengths
    alt_config = osp.join(args.work_dir, f'{args.variant}_config.py')
    stages = _stage_options(stage_iters, args.variant, config)
    atomic_write(
        f'_base_ = {config!r}\nalternating_cfg = dict(variant='
        f'{args.variant!r}, stages=dict({stages}))\n', alt_config)
    seconds, cpu = _run([
        sys.executable, osp.join(TOOLS, 'train_alternating.py'), alt_config,
        '--work-dir', work_dir, '--cfg-options', *data
    ])
    eval_dir = osp.join(work_dir, 'eval')
    _run([
        sys.executable, osp.join(TOOLS, 'test.py'), config,
        osp.join(work_dir, 'final.pth'), '--eval', 'mAP', '--work-dir',
        eval_dir, '--cfg-options', *data
    ])
    run = dict(settings=settings, seconds=seconds, cpu_seconds=cpu,
               mAP=_newest_metrics(eval_dir)['pascal_voc/mAP'])
    atomic_write(json.dumps(run, indent=2), record)
    return run


def _init_words(settings):
    pretrained = settings.get('pretrained')
    if pretrained is None:
        return 'from scratch'
    return (f'pretrained ({pretrained["iters"]} iterations, '
            f'{pretrained["val_accuracy"]:.3f} held-out accuracy)')


def main():
    args = parse_args()
    make_synthetic_voc(args.data_root, args.num_train, args.num_test)
    data = _data_options(args.data_root) + _depth_options(args.depth)
    config = osp.abspath(args.config)
    stage_iters = stage_iterations(args.iters, args.variant, config)
    os.makedirs(args.work_dir, exist_ok=True)
    settings = dict(iters=args.iters, depth=args.depth,
                    data_root=osp.abspath(args.data_root))
    if args.init == 'pretrained':
        config, settings['pretrained'] = _pretrained_config(args, config)
    settings['config'] = model_digest(config)
    if args.part in ('both', 'end2end'):
        e2e = _end2end(args, config, data, settings)
    if args.part in ('both', 'alternating'):
        alt = _alternating(args, config, data, settings, stage_iters)
    if args.part != 'both':
        return
    e2e_map, e2e_time, e2e_cpu = e2e['mAP'], e2e['seconds'], e2e['cpu_seconds']
    alt_map, alt_time, alt_cpu = alt['mAP'], alt['seconds'], alt['cpu_seconds']

    result = dict(
        iters=args.iters,
        depth=args.depth,
        init=args.init,
        pretrained=settings.get('pretrained'),
        variant=args.variant,
        stage_iters=stage_iters,
        end2end=dict(mAP=e2e_map, seconds=e2e_time, cpu_seconds=e2e_cpu),
        alternating=dict(mAP=alt_map, seconds=alt_time, cpu_seconds=alt_cpu))
    stages = ' + '.join(str(n) for n in stage_iters.values())
    table = '\n'.join([
        f'| ResNet-{args.depth} {_init_words(settings)}, {args.iters} '
        'iterations in all, batch 4 '
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
