"""Time rfcn_mm's PS RoI ops against torchvision's in the same run.

    python tools/benchmark_ops.py [--device cuda] [--out bench_ops.md]

Shapes: a 38x63 map (600x1000 image at stride 16), k in {3, 7}, class maps
for 21 and 81 classes plus 4k^2 box maps, 300 and 2000 RoIs. Prints a table
of times and ratios (torchvision time / ours: > 1 means ours is faster).
Absolute times are only meaningful on a GPU.
"""
import argparse
import os.path as osp
import statistics
import sys
import time

import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
import rfcn_mm  # noqa: E402,F401
from rfcn_mm.ops import ps_roi_align, ps_roi_pool  # noqa: E402


def torchvision_ops():
    try:
        import torchvision.ops
        return torchvision.ops
    except Exception:  # missing or broken (e.g. next to a CPU torch wheel)
        return None


def make_inputs(k, classes, num_rois, device, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    channels = k * k * (classes + 4)
    x = torch.randn(1, channels, 38, 63, generator=g).to(device, dtype)
    ctr = torch.rand(num_rois, 2, generator=g) * torch.tensor([1000., 600.])
    size = torch.exp(torch.empty(num_rois, 2).uniform_(3, 6.3, generator=g))
    boxes = torch.cat([ctr - size / 2, ctr + size / 2], 1)
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, 1000)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, 600)
    rois = torch.cat([torch.zeros(num_rois, 1), boxes], 1).to(device, dtype)
    return x, rois


REPS = 30


def _time_once(fn, device):
    if device == 'cuda':
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        return start.elapsed_time(end)
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1e3


def timeit(fns, device, warmup=5, reps=None):
    """Median ms of each function; the functions take turns, rep by rep, so
    that clock changes and other load hit all of them alike."""
    reps = reps or REPS
    for fn in fns:
        for _ in range(warmup):
            fn()
    times = [[] for _ in fns]
    for _ in range(reps):
        for fn, t in zip(fns, times):
            t.append(_time_once(fn, device))
    return [statistics.median(t) for t in times]


def step_fn(fn, x, rois, k, backward):
    if not backward:
        return lambda: fn(x, rois, k)
    xg = x.detach().requires_grad_(True)

    def step():
        out = fn(xg, rois, k)
        out.backward(torch.ones_like(out))
        xg.grad = None

    return step


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument(
        '--dtype',
        default='float32',
        choices=['float32', 'float16', 'bfloat16'])
    parser.add_argument(
        '--reps',
        type=int,
        default=50,
        help='timed repetitions of each op, taking turns (median reported)')
    parser.add_argument(
        '--check-batch-idx',
        action='store_true',
        help='time rfcn_mm with its host-side batch index check (one '
        'synchronisation per call on CUDA); by default it is off, as in '
        'the detector, and torchvision has none')
    parser.add_argument('--out', help='also write the table here')
    args = parser.parse_args()
    check = args.check_batch_idx
    global REPS
    REPS = args.reps
    dtype = getattr(torch, args.dtype)
    tv = torchvision_ops()
    ours = {
        'pool': lambda x, r, k: ps_roi_pool(x, r, k, 1 / 16, check),
        'align': lambda x, r, k: ps_roi_align(x, r, k, 1 / 16, 2, True, check),
    }
    theirs = {}
    if tv is not None:
        theirs = {
            'pool': lambda x, r, k: tv.ps_roi_pool(x, r, k, 1 / 16),
            'align': lambda x, r, k: tv.ps_roi_align(x, r, k, 1 / 16, 2),
        }
    rows = []
    header = ('| mode | k | classes | RoIs | pass | rfcn_mm ms | '
              'torchvision ms | torchvision / rfcn_mm |')
    rows.append(header)
    rows.append('|' + '---|' * 8)
    for mode in ('pool', 'align'):
        for k in (3, 7):
            for classes in (21, 81):
                for num_rois in (300, 2000):
                    x, rois = make_inputs(k, classes, num_rois, args.device,
                                          dtype)
                    for backward in (False, True):
                        fns = [step_fn(ours[mode], x, rois, k, backward)]
                        if mode in theirs:
                            fns.append(
                                step_fn(theirs[mode], x, rois, k, backward))
                        t_ours, t_tv = (timeit(fns, args.device) + [None])[:2]
                        ratio = f'{t_tv / t_ours:.2f}x' if t_tv else 'n/a'
                        tv_ms = f'{t_tv:.3f}' if t_tv else 'n/a'
                        rows.append(
                            f'| {mode} | {k} | {classes} | {num_rois} | '
                            f'{"fwd+bwd" if backward else "fwd"} | '
                            f'{t_ours:.3f} | {tv_ms} | {ratio} |')
                        print(rows[-1], flush=True)
    device = (torch.cuda.get_device_name() if args.device == 'cuda' else 'CPU')
    title = (f'PS RoI ops, {device}, {args.dtype}, 38x63 map, batch index '
             f'check {"on" if check else "off"}')
    table = '\n'.join([title, ''] + rows)
    if tv is None:
        table += '\n\ntorchvision does not import here: no baseline.'
    print('\n' + table)
    if args.out:
        with open(args.out, 'w') as f:
            f.write(table + '\n')


if __name__ == '__main__':
    main()
