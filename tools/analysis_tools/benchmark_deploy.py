"""Time R-FCN's deployment forms against eager PyTorch, in one run.

    python tools/analysis_tools/benchmark_deploy.py [--models demo r101] \
        [--reps 3] [--threads 2] [--demo-checkpoint FILE] [--out table.md]

For each model, ms/img of one image, batch 1:

- ``eager``: ``RFCN.predict`` (mmdet's inference path), float32 as built:
  the baseline of every ratio;
- ``eager, BN folded, fixed shapes``: ``FastRFCN.fixed_shape_forward``
  after ``optimize_for_inference(dtype='float32')``, what is exported;
- ``torch.compile``: that function compiled by Inductor, fullgraph
  (compile time reported apart);
- ``pt2``: the ``torch.export`` program
  (``tools/deployment/export.py --format pt2``);
- ``ONNX Runtime``: the ONNX model (``--format onnx``), CPU provider, as
  many threads as torch;
- for R-101 also mmdet's Faster R-CNN R-101-C4, eager.

Models: ``demo``, the demo's ResNet-18 R-FCN at 256x256 (random weights,
or ``--demo-checkpoint``); ``r101``, R-FCN R-101 at 600x1000 (padded to
608x1008), random weights. Each form's detections are compared with the
eager fixed-shape ones (largest box and score differences, label and count
disagreements). The table's ratios are against eager R-FCN measured in the
same run; absolute times depend on the machine.
"""
import argparse
import copy
import os.path as osp
import sys
import tempfile
import time

import torch

HERE = osp.dirname(osp.abspath(__file__))  # tools/analysis_tools
ROOT = osp.dirname(osp.dirname(HERE))
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)
from benchmark_detector import batch, build  # noqa: E402
from benchmark_detector import timeit as bench_timeit  # noqa: E402

import rfcn_mm  # noqa: E402,F401
from rfcn_mm.utils import atomic_write  # noqa: E402

DEMO_CFG = osp.join(ROOT, 'configs', 'rfcn', 'rfcn_r18_synthetic-voc.py')


def timeit(fn, reps, warmup=1):
    """Median ms of ``fn`` (benchmark_detector's timer, which synchronises
    the GPU around each call)."""
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    return bench_timeit(fn, device, warmup, reps)


def demo_model(checkpoint=None):
    """The demo's R-FCN (FastRFCN) and one 256x256 input."""
    from mmdet.registry import MODELS
    from mmdet.structures import DetDataSample
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from rfcn_mm.deploy.loading import build_fast_detector
    cfg = Config.fromfile(DEMO_CFG)
    init_default_scope('mmdet')
    if checkpoint:
        model = build_fast_detector(cfg, checkpoint)
    else:
        cfg.model.type = 'FastRFCN'
        torch.manual_seed(0)
        model = MODELS.build(cfg.model)
        model.init_weights()
    g = torch.Generator().manual_seed(0)
    inputs = torch.randn(1, 3, 256, 256, generator=g)
    sample = DetDataSample(
        metainfo=dict(
            img_shape=(256, 256),
            ori_shape=(256, 256),
            scale_factor=(1., 1.),
            pad_shape=(256, 256),
            batch_input_shape=(256, 256)))
    return model.eval(), inputs, [sample]


def r101_model(device):
    model = build('rfcn', 300, device).eval()  # a FastRFCN
    inputs, samples = batch(device, train=False)
    return model, inputs, samples


def agreement(got, want) -> str:
    """Largest differences of padded detections from the reference's."""
    boxes, scores, labels, num = got
    rb, rs, rl, rn = want
    k = int(min(num.min(), rn.min()))
    if k == 0:
        return 'no detection to compare'
    return (f'box {float((boxes[:, :k] - rb[:, :k]).abs().max()):.2g} px, '
            f'score {float((scores[:, :k] - rs[:, :k]).abs().max()):.2g}, '
            f'labels {int((labels[:, :k] != rl[:, :k]).sum())} differ, '
            f'counts {num.tolist()} vs {rn.tolist()}')


def measure(name, model, inputs, samples, reps, tmp, device='cpu'):
    """Rows (form, ms, note) of one model."""
    from rfcn_mm.deploy import FixedShapeDetector, export_program, to_onnx
    rows = []
    with torch.no_grad():
        ms = timeit(lambda: model.predict(inputs, copy.deepcopy(samples)),
                    reps)
    rows.append(('eager (RFCN.predict, mmdet\'s path)', ms, ''))
    fast = copy.deepcopy(model).optimize_for_inference(
        dtype='float32', channels_last=False, cuda_graph=False)
    h, w = samples[0].metainfo['img_shape'][:2]
    info = torch.tensor([[h, w, 1., 1.]], device=inputs.device)
    detector = FixedShapeDetector(fast)
    with torch.no_grad():
        want = detector(inputs, info)
        ms = timeit(lambda: detector(inputs, info), reps)
    rows.append(('eager, BN folded, fixed shapes', ms, 'the reference'))

    t = time.perf_counter()
    compiled = torch.compile(detector, fullgraph=True)
    with torch.no_grad():
        got = compiled(inputs, info)
    compile_s = time.perf_counter() - t
    with torch.no_grad():
        ms = timeit(lambda: compiled(inputs, info), reps)
    rows.append(('torch.compile (Inductor, fullgraph)', ms,
                 f'compile {compile_s:.0f} s; {agreement(got, want)}'))

    program = export_program(fast, tuple(inputs.shape[-2:]))
    module = program.module()
    with torch.no_grad():
        got = module(inputs, info)
        ms = timeit(lambda: module(inputs, info), reps)
    rows.append(('torch.export program (pt2)', ms, agreement(got, want)))

    if device == 'cuda':
        graphed = copy.deepcopy(model).optimize_for_inference(
            dtype='float32', cuda_graph=True)
        with torch.no_grad():
            ms = timeit(
                lambda: graphed.predict(inputs, copy.deepcopy(samples)),
                reps,
                warmup=3)
        rows.append(('FastRFCN fast mode fp32 (one CUDA graph)', ms, ''))
        return rows  # ONNX Runtime's CPU provider: see a CPU run
    try:
        import onnxruntime as ort
    except ImportError:
        rows.append(('ONNX Runtime', float('nan'), 'onnxruntime missing'))
        return rows
    path = osp.join(tmp, f'{name}.onnx')
    to_onnx(program, path)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = torch.get_num_threads()
    session = ort.InferenceSession(
        path, opts, providers=['CPUExecutionProvider'])
    feed = dict(images=inputs.numpy(), img_info=info.numpy())
    got = [torch.from_numpy(o) for o in session.run(None, feed)]
    ms = timeit(lambda: session.run(None, feed), reps)
    rows.append(('ONNX Runtime (CPU)', ms, agreement(got, want)))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--models',
        nargs='+',
        default=['demo', 'r101'],
        choices=['demo', 'r101'])
    parser.add_argument('--reps', type=int, default=3)
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--demo-checkpoint')
    parser.add_argument('--out', help='also write the table here')
    parser.add_argument(
        '--device',
        default='cpu',
        choices=['cpu', 'cuda'],
        help='cuda: eager, torch.compile and pt2 on the GPU beside the '
        'CUDA-graph fast mode (ONNX Runtime rows are CPU only)')
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    lines = [(torch.cuda.get_device_name() if args.device == 'cuda' else
              f'CPU, {torch.get_num_threads()} threads') +
             f', batch 1, median of {args.reps}', '',
             '| model | form | ms/img | speed-up over eager R-FCN | notes |',
             '|---|---|---|---|---|']
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            if name == 'demo':
                label = 'demo R-18, 256x256'
                model, inputs, samples = demo_model(args.demo_checkpoint)
                model = model.to(args.device)
                inputs = inputs.to(args.device)
                samples = [s.to(args.device) for s in samples]
            else:
                label = 'R-101, 600x1000'
                model, inputs, samples = r101_model(args.device)
            rows = measure(name, model, inputs, samples, args.reps, tmp,
                           args.device)
            if name == 'r101':
                from benchmark_detector import infer_step
                c4 = infer_step('c4', args.device, 'eager')
                rows.append(('Faster R-CNN R-101-C4, eager (mmdet)',
                             timeit(c4, args.reps), ''))
            base = rows[0][1]
            for form, ms, note in rows:
                lines.append(f'| {label} | {form} | {ms:.0f} | '
                             f'{base / ms:.2f}x | {note} |')
                print(lines[-1], flush=True)
    table = '\n'.join(lines)
    print('\n' + table)
    if args.out:
        atomic_write(table + '\n', args.out)


if __name__ == '__main__':
    main()
