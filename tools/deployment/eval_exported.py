"""Evaluate exported R-FCN models (``tools/deployment/export.py``) on a
config's test set beside the eager model, in one run.

    python tools/deployment/eval_exported.py CONFIG CHECKPOINT [--pt2 FILE] \
        [--onnx FILE] [--out results.json]

Every test image goes through the config's test pipeline and data
preprocessor, then through the eager detector (mmdet's predict, what
``tools/test.py`` runs) and through each exported form (padded to its input
shape). Prints, per form, the config's test metric and the largest
differences from the eager detections: box coordinates (pixels, original
image), scores, label disagreements and images whose detection count
differs (see ``Agreement``).
"""
import argparse
import copy
import json
import os.path as osp
import sys

import torch

HERE = osp.dirname(osp.abspath(__file__))  # tools/deployment
sys.path.insert(0, osp.dirname(osp.dirname(HERE)))
sys.path.insert(0, HERE)  # deploy_runner.py
from deploy_runner import ExportedRFCN  # noqa: E402

import rfcn_mm  # noqa: E402,F401
from rfcn_mm.utils import atomic_write  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Evaluate exported R-FCN models beside the eager one')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--pt2', help='a torch.export program')
    parser.add_argument('--onnx', help='an ONNX model')
    parser.add_argument('--out', help='write the numbers as JSON here')
    args = parser.parse_args(argv)
    if not (args.pt2 or args.onnx):
        parser.error('give --pt2 and/or --onnx')
    return args


class Agreement:
    """How far one model's detections are from another's.

    Each detection of the first is matched to the detection of the same
    label of the second whose box is nearest (largest coordinate
    difference): the box and score differences of the matches are what is
    reported. Pairing by rank would not do: detections whose scores differ
    by less than the two models' rounding swap places. A detection with no
    same-label partner within 1 pixel counts as a label disagreement; the
    highest score among them, and how many score above the other list's
    lowest, say whether they matter (on the demo's checkpoint they are a
    few low-score detections whose proposals differ: the exported forms
    run the fixed-shape RPN stage with BatchNorm folded).
    """

    def __init__(self) -> None:
        self.box = self.score = 0.0
        self.labels = self.count_images = self.images = self.dets = 0
        self.unmatched_top_score = 0.0
        self.above_cut = 0

    def add(self, got, want) -> None:
        self.images += 1
        if len(got) != len(want):
            self.count_images += 1
        self.dets += len(got)
        if len(got) == 0 or len(want) == 0:
            self.labels += len(got)
            return
        dist = (got.bboxes[:, None] - want.bboxes[None]).abs().amax(-1)
        dist = dist.masked_fill(got.labels[:, None] != want.labels[None],
                                float('inf'))
        nearest, idx = dist.min(1)
        matched = nearest <= 1.0
        self.labels += int((~matched).sum())
        if (~matched).any():
            self.unmatched_top_score = max(self.unmatched_top_score,
                                           float(got.scores[~matched].max()))
            # above the other list's lowest score (beyond the scores'
            # rounding): not a matter of where the lists were cut
            cut = float(want.scores.min()) + 1e-4
            self.above_cut += int((got.scores[~matched] > cut).sum())
        if matched.any():
            self.box = max(self.box, float(nearest[matched].max()))
            score = (got.scores - want.scores[idx]).abs()[matched]
            self.score = max(self.score, float(score.max()))

    def as_dict(self) -> dict:
        return dict(
            max_box_diff_px=self.box,
            max_score_diff=self.score,
            label_disagreements=self.labels,
            highest_score_disagreeing=self.unmatched_top_score,
            disagreeing_above_the_cut=self.above_cut,
            images_with_other_count=self.count_images,
            detections=self.dets,
            images=self.images)


def exported_predictions(model: ExportedRFCN, inputs, samples):
    """InstanceData per sample from an exported model, in original image
    coordinates (like predict with rescale=True)."""
    from mmengine.structures import InstanceData
    n, _, height, width = model.input_shape
    if inputs.size(0) != n:
        raise ValueError(f'the exported batch size is {n}, the test '
                         f'dataloader gives {inputs.size(0)}')
    h, w = inputs.shape[-2:]
    if h > height or w > width:
        raise ValueError(f'a test batch is {h}x{w}, larger than the '
                         f'exported {height}x{width}: export with --shape')
    images = inputs.new_zeros(model.input_shape)
    images[..., :h, :w] = inputs
    info = []
    for s in samples:
        ih, iw = s.metainfo['img_shape'][:2]
        sx, sy = s.metainfo['scale_factor'][:2]
        info.append([ih, iw, 1 / sx, 1 / sy])
    boxes, scores, labels, num = model(images, torch.tensor(info))
    return [
        InstanceData(
            bboxes=boxes[i, :int(num[i])],
            scores=scores[i, :int(num[i])],
            labels=labels[i, :int(num[i])]) for i in range(n)
    ]


def main(argv=None) -> dict:
    args = parse_args(argv)
    from mmengine.evaluator import Evaluator
    from mmengine.runner import Runner

    from rfcn_mm.deploy.loading import build_fast_detector
    from rfcn_mm.utils import load_config
    cfg = load_config(args.config)
    detector = build_fast_detector(cfg, args.checkpoint)
    forms = {}
    if args.pt2:
        forms['pt2'] = ExportedRFCN(args.pt2)
    if args.onnx:
        forms['onnx'] = ExportedRFCN(args.onnx)
    loader_cfg = copy.deepcopy(cfg.test_dataloader)
    loader_cfg.batch_size = next(iter(forms.values())).input_shape[0]
    loader = Runner.build_dataloader(loader_cfg)
    evaluators = {
        name: Evaluator(copy.deepcopy(cfg.test_evaluator))
        for name in ['eager', *forms]
    }
    for e in evaluators.values():
        e.dataset_meta = loader.dataset.metainfo
    agreement = {name: Agreement() for name in forms}
    try:
        from tqdm import tqdm
        batches = tqdm(loader, desc='test images', unit='batch')
    except ImportError:
        batches = loader
    with torch.no_grad():
        for data in batches:
            data = detector.data_preprocessor(data, False)
            inputs, samples = data['inputs'], data['data_samples']
            if inputs.size(0) != loader_cfg.batch_size:
                continue  # a short last batch does not fit the export
            eager = detector.predict(inputs, copy.deepcopy(samples))
            evaluators['eager'].process(data_samples=eager)
            for name, model in forms.items():
                preds = exported_predictions(model, inputs, samples)
                out = copy.deepcopy(samples)
                for s, p in zip(out, preds):
                    s.pred_instances = p
                evaluators[name].process(data_samples=out)
                for p, e in zip(preds, eager):
                    agreement[name].add(p, e.pred_instances)
    size = len(loader.dataset)
    results = {}
    for name, e in evaluators.items():
        results[name] = dict(metrics=e.evaluate(size))
        if name in agreement:
            results[name].update(agreement[name].as_dict())
    for name, r in results.items():
        print(f'{name}: {json.dumps(r)}')
    if args.out:
        atomic_write(json.dumps(results, indent=1), args.out)
    return results


if __name__ == '__main__':
    main()
