"""Test (and evaluate) a detector with mmengine's Runner.

mmdet's command line, plus ``--eval mAP`` (VOC, 11-point) or ``--eval bbox``
(COCO) for users with mmdet 2.x habits; without it the config's
``test_evaluator`` is used.
"""
import argparse
import os
import os.path as osp
import sys

from mmengine.config import Config, ConfigDict, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
import rfcn_mm  # noqa: E402

EVALUATORS = {
    'mAP': dict(type='VOCMetric', metric='mAP', eval_mode='11points'),
    'bbox': dict(type='CocoMetric', metric='bbox', format_only=False),
}


def parse_args():
    parser = argparse.ArgumentParser(description='Test an R-FCN detector')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='where logs and metrics go')
    parser.add_argument(
        '--eval',
        choices=sorted(EVALUATORS),
        help='metric: mAP (VOC 11-point) or bbox (COCO); default: the '
        'config\'s test_evaluator')
    parser.add_argument(
        '--out', help='dump raw predictions to this pickle file')
    parser.add_argument('--show', action='store_true', help='show results')
    parser.add_argument(
        '--show-dir',
        help='draw predictions into this folder (relative to '
        'the work dir\'s timestamped run folder)')
    parser.add_argument(
        '--wait-time', type=float, default=2, help='--show interval (s)')
    parser.add_argument('--tta', action='store_true', help='test-time aug.')
    parser.add_argument(
        '--fast',
        nargs='?',
        const='bfloat16',
        choices=['float32', 'float16', 'bfloat16'],
        help='fast inference: BatchNorm folded into the convs, '
        'channels_last, the dense stage in this precision (default '
        'bfloat16) and, on a GPU, replayed as CUDA graphs')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config keys, e.g. model.test_cfg.rcnn.score_thr=0.05')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def build_cfg(args) -> Config:
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint file not found: '
                                f'{args.checkpoint}')
    cfg = rfcn_mm.utils.load_config(args.config, args.cfg_options,
                                    args.work_dir, args.launcher)
    cfg.load_from = args.checkpoint
    if args.eval:
        evaluator = ConfigDict(EVALUATORS[args.eval])
        if args.eval == 'bbox':
            dataset = cfg.test_dataloader.dataset
            ann_file = dataset.get('ann_file', '')
            if not str(ann_file).endswith('.json'):
                raise ValueError(
                    '--eval bbox is COCO\'s metric and reads the test set\'s '
                    'COCO json annotations; this config tests on '
                    f'{dataset.get("type")} with ann_file "{ann_file}" '
                    '(use --eval mAP)')
            evaluator.ann_file = osp.join(
                dataset.get('data_root', ''), ann_file)
        cfg.test_evaluator = evaluator
    if args.show or args.show_dir:
        hook = cfg.default_hooks.get('visualization')
        if hook is None:
            raise KeyError('--show/--show-dir need '
                           'default_hooks.visualization in the config')
        hook.draw = True
        if args.show:
            hook.show, hook.wait_time = True, args.wait_time
        if args.show_dir:
            hook.test_out_dir = args.show_dir
    if args.fast:
        if cfg.model.type not in ('RFCN', 'FastRFCN'):
            raise ValueError('--fast needs model.type RFCN or FastRFCN, got '
                             f'{cfg.model.type!r}')
        cfg.model.type = 'FastRFCN'  # RFCN's modules, so its checkpoints
    if args.tta:
        if 'tta_model' not in cfg or 'tta_pipeline' not in cfg:
            raise KeyError('--tta needs tta_model and tta_pipeline in the '
                           'config')
        cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
    if args.fast:
        cfg.custom_hooks = list(cfg.get('custom_hooks', [])) + [
            dict(type='RFCNFastInferenceHook', dtype=args.fast)
        ]
    if args.out:
        if not args.out.endswith(('.pkl', '.pickle')):
            raise ValueError(f'--out must be a .pkl file, got {args.out}')
        evaluators = cfg.test_evaluator
        if not isinstance(evaluators, list):
            evaluators = [evaluators]
        cfg.test_evaluator = list(evaluators) + [
            dict(type='DumpDetResults', out_file_path=args.out)
        ]
    return cfg


def main():
    cfg = build_cfg(parse_args())
    runner = (
        Runner.from_cfg(cfg)
        if 'runner_type' not in cfg else RUNNERS.build(cfg))
    with rfcn_mm.compat.name_collective_timeouts(runner.cfg):
        runner.test()
    rfcn_mm.compat.finish_distributed()


if __name__ == '__main__':
    main()
