"""Train a detector with mmengine's Runner (mmdet's command line)."""
import argparse
import os
import os.path as osp
import sys
from contextlib import nullcontext

from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
import rfcn_mm  # noqa: E402  (fixes + registration before any build)


def parse_args():
    parser = argparse.ArgumentParser(description='Train an R-FCN detector')
    parser.add_argument('config', help='config file')
    parser.add_argument('--work-dir', help='where logs and checkpoints go')
    parser.add_argument(
        '--amp', action='store_true', help='mixed-precision training')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the lr by total batch / auto_scale_lr.base_batch_size')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from this checkpoint, or without a path from the '
        'latest checkpoint in the work dir')
    parser.add_argument(
        '--from-scratch',
        action='store_true',
        help='train without the pretrained weights the config names: every '
        'layer from random initialisation, frozen stages and BatchNorms '
        'unfrozen (without it, weights that cannot be loaded stop the run)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config keys, e.g. train_cfg.max_iters=100')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher (torchrun: pytorch)')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def build_cfg(args) -> Config:
    cfg = rfcn_mm.utils.load_config(args.config, args.cfg_options,
                                    args.work_dir, args.launcher)
    if args.amp:
        import torch
        if not torch.cuda.is_available():
            raise ValueError(
                '--amp needs a CUDA GPU (mmengine\'s AmpOptimWrapper runs '
                'autocast on CUDA only) and none is visible here: train '
                'without --amp on the CPU')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.auto_scale_lr:
        if 'base_batch_size' not in cfg.get('auto_scale_lr', {}):
            raise KeyError('--auto-scale-lr needs auto_scale_lr.'
                           'base_batch_size in the config')
        cfg.auto_scale_lr.enable = True
    if args.resume == 'auto':
        import mmengine.runner  # its find_latest_checkpoint, made safe
        latest = mmengine.runner.find_latest_checkpoint(cfg.work_dir)
        if latest is None:
            print(f'--resume: no checkpoint found in {cfg.work_dir}; '
                  'training starts fresh', flush=True)
            cfg.resume = False
        else:
            cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        if not osp.isfile(args.resume):
            raise FileNotFoundError(f'--resume checkpoint not found: '
                                    f'{args.resume}')
        cfg.resume, cfg.load_from = True, args.resume
    if not cfg.get('resume'):  # a resumed run loads all its weights
        rfcn_mm.utils.check_pretrained(cfg.model, args.from_scratch)
    elif args.from_scratch:
        raise ValueError('--from-scratch and --resume exclude each other')
    return cfg


def main():
    cfg = build_cfg(parse_args())
    # one training per work dir: rank 0 holds its lock for the whole run
    lock = (rfcn_mm.engine.WorkDirLock(cfg.work_dir)
            if int(os.environ.get('RANK', '0')) == 0 else nullcontext())
    with lock:
        runner = (Runner.from_cfg(cfg)
                  if 'runner_type' not in cfg else RUNNERS.build(cfg))
        with rfcn_mm.compat.name_collective_timeouts(cfg):
            runner.train()
        rfcn_mm.compat.finish_distributed()


if __name__ == '__main__':
    main()
