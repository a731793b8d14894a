"""The paper's alternating training: RPN and R-FCN trained in turns so that
they share conv1-conv4, then merged into one detector.

    python tools/train_alternating.py CONFIG [--work-dir DIR] [--resume]
        [--variant 4-step|5-stage] [--launcher pytorch --gpus 8]

CONFIG is an R-FCN config with ``alternating_cfg`` (the stage settings),
e.g. configs/rfcn/rfcn_r101_alt-4step_voc0712.py. Each stage trains in its
own process through tools/train.py in DIR/<stage>/; the final model is
DIR/final.pth, for ``tools/test.py CONFIG DIR/final.pth --eval mAP``.
After a kill or a failure, the same command with ``--resume`` skips the
finished stages and continues the interrupted one from its last
checkpoint. See rfcn_mm/engine/alternating/ for the stages.
"""
import argparse
import os.path as osp
import sys

from mmengine.config import DictAction

TOOLS = osp.dirname(osp.abspath(__file__))
sys.path.insert(0, osp.dirname(TOOLS))
import rfcn_mm  # noqa: E402
import rfcn_mm.engine.alternating as alternating  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(
        description='Alternating training of RPN and R-FCN')
    parser.add_argument('config', help='config file with alternating_cfg')
    parser.add_argument(
        '--work-dir', help='where the stages and the final model go')
    parser.add_argument(
        '--resume',
        action='store_true',
        help='skip the finished stages, continue the interrupted one from '
        'its latest checkpoint')
    parser.add_argument(
        '--variant',
        choices=sorted(alternating.VARIANTS),
        help='4-step (Faster R-CNN\'s, the paper\'s) or 5-stage '
        '(py-R-FCN\'s); default: the config\'s alternating_cfg.variant')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config keys, e.g. alternating_cfg.rpn.max_iters=100')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm'],
        default='none',
        help='how each stage runs: one process, torchrun on this machine '
        '(--gpus processes), or srun in the current slurm allocation')
    parser.add_argument(
        '--gpus',
        type=int,
        default=1,
        help='processes per stage with --launcher pytorch')
    return parser.parse_args()


def main():
    args = parse_args()
    if args.gpus < 1:
        raise ValueError(f'--gpus must be at least 1, got {args.gpus}')
    cfg = rfcn_mm.utils.load_config(args.config, args.cfg_options,
                                    args.work_dir)
    workflow = alternating.AlternatingTraining(
        cfg,
        args.config,
        TOOLS,
        variant=args.variant,
        launcher=args.launcher,
        gpus=args.gpus,
        log=lambda line: print(line, flush=True))
    # one workflow per work dir (each stage also locks its own folder)
    with rfcn_mm.engine.WorkDirLock(workflow.work_dir,
                                    what='alternating training'):
        try:
            final = workflow.run(resume=args.resume)
        except alternating.AlternatingStageError as e:
            sys.exit(f'error: {e}\nFix the cause and run the same command '
                     'with --resume to continue from there.')
    ann_file = str(cfg.test_dataloader.dataset.get('ann_file', ''))
    metric = 'bbox' if ann_file.endswith('.json') else 'mAP'
    print(f'evaluate: python tools/test.py {args.config} {final} '
          f'--eval {metric}', flush=True)


if __name__ == '__main__':
    main()
