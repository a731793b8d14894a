"""tools/deployment/export.py and tools/deployment/deploy_runner.py: a
checkpoint exported to a torch.export program and to ONNX, run without
mmdet, against the eager fixed-shape inference (the oracle)."""
import importlib.util
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
from helpers.tool_runs import run_tool_here
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config

from rfcn_mm.deploy import FixedShapeDetector, export_program

pytestmark = pytest.mark.slow

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SYNTHETIC = osp.join(ROOT, 'configs', 'rfcn', 'rfcn_r18_synthetic-voc.py')
CLASSES = ('rectangle', 'ellipse', 'triangle', 'cross')
RUNNER_PATH = osp.join(ROOT, 'tools', 'deployment', 'deploy_runner.py')


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    """A config inheriting the demo's (every detection kept) and a
    checkpoint of random weights in mmengine's format."""
    d = tmp_path_factory.mktemp('export')
    cfg_path = d / 'tiny.py'
    cfg_path.write_text(f'_base_ = {SYNTHETIC!r}\n'
                        'model = dict(test_cfg=dict(rcnn=dict(score_thr=0.0,'
                        ' max_per_img=50)))\n')
    cfg = Config.fromfile(str(cfg_path))
    register_all_modules()
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    ckpt = d / 'tiny.pth'
    torch.save(
        dict(
            state_dict=model.state_dict(),
            meta=dict(dataset_meta=dict(classes=CLASSES))), ckpt)
    return d, str(cfg_path), str(ckpt)


@pytest.fixture(scope='module')
def exported(checkpoint):
    d, cfg, ckpt = checkpoint
    files = {}
    for fmt in ('pt2', 'onnx'):
        if fmt == 'onnx':
            pytest.importorskip('onnxscript')
            pytest.importorskip('onnxruntime')
        out = str(d / f'tiny.{fmt}')
        # in this process: the demo's test runs the tool in its own
        proc = run_tool_here(
            'tools/deployment/export.py', cfg, ckpt, '--format', fmt,
            '--out', out, cwd=ROOT)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert 'for inputs [1, 3, 256, 256]' in proc.stdout  # the pipeline
        files[fmt] = out
    return files


def eager_outputs(cfg_path, ckpt, images, img_info):
    from rfcn_mm.deploy.loading import build_fast_detector
    detector = build_fast_detector(Config.fromfile(cfg_path), ckpt)
    detector.optimize_for_inference(
        dtype='float32', channels_last=False, cuda_graph=False)
    with torch.no_grad():
        return FixedShapeDetector(detector)(images, img_info)


RUNNER = '''
import importlib.util, sys, torch
spec = importlib.util.spec_from_file_location('deploy_runner', {runner!r})
deploy_runner = importlib.util.module_from_spec(spec)
spec.loader.exec_module(deploy_runner)
ExportedRFCN, main = deploy_runner.ExportedRFCN, deploy_runner.main
images, img_info = torch.load({inputs!r})
outputs = {{}}
for fmt, path in {files!r}.items():
    outputs[fmt] = ExportedRFCN(path)(images, img_info)
main([{files!r}['pt2'], {image!r}, '--score-thr', '0'])
torch.save(outputs, {out!r})
loaded = sorted(m.split('.')[0] for m in sys.modules
                if m.split('.')[0] in ('mmdet', 'mmengine', 'mmcv',
                                       'rfcn_mm'))
print('LOADED', sorted(set(loaded)))
'''


def test_both_forms_give_the_eager_detections_without_mmdet(
        checkpoint, exported):
    d, cfg, ckpt = checkpoint
    g = torch.Generator().manual_seed(1)
    images = torch.randn(1, 3, 256, 256, generator=g)
    img_info = torch.tensor([[240., 256., 1.5, 1.25]])
    torch.save((images, img_info), d / 'inputs.pt')
    import cv2
    image = str(d / 'image.png')
    cv2.imwrite(image, (np.random.default_rng(0).random(
        (200, 300, 3)) * 255).astype(np.uint8))
    proc = subprocess.run([
        sys.executable, '-c',
        RUNNER.format(
            runner=RUNNER_PATH,
            inputs=str(d / 'inputs.pt'),
            files=exported,
            image=image,
            out=str(d / 'outputs.pt'))
    ],
                          capture_output=True,
                          text=True,
                          timeout=600,
                          cwd=str(d))
    assert proc.returncode == 0, proc.stderr[-3000:]
    # the runner imported torch and the compiled ops, nothing of the rest
    assert 'LOADED []' in proc.stdout, proc.stdout[-2000:]
    assert f'{image}: ' in proc.stdout  # detections of the image printed
    got = torch.load(d / 'outputs.pt')
    want = eager_outputs(cfg, ckpt, images, img_info)
    assert int(want[3][0]) > 10
    for a, b in zip(got['pt2'], want):
        assert torch.equal(a, b)
    boxes, scores, labels, num = got['onnx']
    assert torch.equal(num, want[3]) and torch.equal(labels, want[2])
    torch.testing.assert_close(scores, want[1], rtol=0, atol=1e-5)
    torch.testing.assert_close(boxes, want[0], rtol=0, atol=1e-3)


def test_other_input_shapes_are_refused_by_name(exported):
    spec = importlib.util.spec_from_file_location('deploy_runner',
                                                  RUNNER_PATH)
    deploy_runner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(deploy_runner)
    for path in exported.values():
        model = deploy_runner.ExportedRFCN(path)
        with pytest.raises(ValueError, match=r'exported for images of shape '
                           r'\[1, 3, 256, 256\].*got \[1, 3, 224, 256\]'):
            model(torch.zeros(1, 3, 224, 256), torch.zeros(1, 4))
        big = np.zeros((300, 600, 3), np.uint8)  # resizes to 128 x 256: fits
        images, info = model.preprocess([big])
        assert images.shape == (1, 3, 256, 256)
        assert info.tolist() == [[128., 256., 600 / 256, 300 / 128]]


def test_configs_the_fixed_shape_path_cannot_reproduce_are_refused(
        checkpoint):
    _, cfg_path, _ = checkpoint
    cfg = Config.fromfile(cfg_path)
    cfg.model.type = 'FastRFCN'
    cfg.model.test_cfg.rcnn.nms = dict(type='soft_nms', iou_threshold=0.5)
    model = MODELS.build(cfg.model).eval()
    with pytest.raises(ValueError, match=r'test_cfg.rcnn.nms must be'):
        export_program(model, (256, 256))


def test_a_deformable_rfcn_exports_to_pt2_and_is_refused_for_onnx(tmp_path):
    from helpers.tiny_rfcn import tiny_model_cfg

    from rfcn_mm.deploy import example_inputs, save_program, to_onnx
    cfg = tiny_model_cfg(k=3, detector='FastRFCN')
    cfg.roi_head.bbox_roi_extractor.roi_layer = dict(
        type='DeformPSRoIPool', output_size=3, sample_per_part=2)
    cfg.roi_head.bbox_head.type = 'DeformPSBBoxHead'
    cfg.test_cfg.rcnn.score_thr = 0.0
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    head = model.roi_head.bbox_head
    with torch.no_grad():  # offsets that move the bins
        head.conv_cls_offset.weight.normal_(0, 0.05)
        head.conv_reg_offset.weight.normal_(0, 0.05)
    model.eval().optimize_for_inference(
        dtype='float32', channels_last=False, cuda_graph=False)
    program = export_program(model, (96, 128))
    targets = [str(n.target) for n in program.graph.nodes]
    assert targets.count('rfcn_mm.deform_ps_roi_pool.default') == 4
    path = str(tmp_path / 'deform.pt2')
    save_program(program, path, dict(input_shape=[1, 3, 96, 128]))
    inputs = example_inputs(1, (96, 128))
    want = FixedShapeDetector(model)(*inputs)
    got = torch.export.load(path).module()(*inputs)
    assert int(want[3][0]) > 10
    for a, b in zip(got, want):
        assert torch.equal(a, b)
    pytest.importorskip('onnxscript')
    with pytest.raises(ValueError, match='export it with --format pt2'):
        to_onnx(program, str(tmp_path / 'deform.onnx'))


def _limit_file_size(limit):
    """preexec_fn: files of at most ``limit`` bytes (what a full disk looks
    like to a writer), as an error rather than a signal."""

    def apply():
        import resource
        import signal
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@pytest.mark.parametrize('fmt', ['pt2', 'onnx'])
def test_a_failed_export_keeps_the_good_model_and_leaves_no_fragment(
        checkpoint, exported, tmp_path, fmt):
    """A full disk during the export (before: the pt2 writer aborted the
    process, SIGABRT, and both formats left a fragment over the good file):
    the tool fails with an OSError, the model that was there is unchanged,
    and no temporary file is left."""
    _, cfg, ckpt = checkpoint
    out = tmp_path / f'model.{fmt}'
    good = open(exported[fmt], 'rb').read()
    out.write_bytes(good)
    proc = subprocess.run(
        [sys.executable, 'tools/deployment/export.py', cfg, ckpt,
         '--format', fmt, '--out', str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        preexec_fn=_limit_file_size(len(good) // 2))
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-3000:])
    assert 'File too large' in proc.stderr, proc.stderr[-3000:]
    assert out.read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]


def _runner_module():
    spec = importlib.util.spec_from_file_location('deploy_runner',
                                                  RUNNER_PATH)
    deploy_runner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(deploy_runner)
    return deploy_runner


@pytest.mark.parametrize('fmt', ['pt2', 'onnx'])
def test_deployment_inputs_are_checked(exported, fmt):
    """Bad pixels and image info are refused by name (before: no detection
    and no word); other layouts are converted as OpenCV's colour loading
    converts them (the oracle: the same image in BGR uint8)."""
    model = _runner_module().ExportedRFCN(exported[fmt])
    rng = np.random.default_rng(0)
    bgr = rng.integers(0, 256, (120, 200, 3), dtype=np.uint8)
    images, info = model.preprocess([bgr])
    want = model(images, info)

    def same(img):
        got = model(*model.preprocess([img]))
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-4)

    # float with 0..255 values: cv2 resizes uint8 in fixed point and rounds
    # to integers, float not, so the pixels agree to a grey level
    std = min(model.meta['preprocessing']['std'])
    f_images, f_info = model.preprocess([bgr.astype(np.float32)])
    torch.testing.assert_close(f_images, images, rtol=0, atol=1 / std)
    assert torch.equal(f_info, info)
    same(np.concatenate([bgr, np.full((120, 200, 1), 7, np.uint8)], 2))
    gray = bgr[:, :, 1]
    want = model(*model.preprocess([np.repeat(gray[:, :, None], 3, 2)]))
    same(gray)
    same(gray[:, :, None])

    refusals = [
        (bgr / 255., r'image 0 is a float image with values in 0\.\.1 '
         r'\(max 1\); the model takes 0\.\.255'),
        (np.where(bgr > 250, np.nan, bgr).astype(np.float32),
         r'image 0 holds \d+ NaN or infinite pixel'),
        (bgr.astype(np.uint16), r'image 0 has dtype uint16'),
        (bgr[:, :, :2], r'image 0 must be shaped \(H, W, 3\)'),
        (bgr[:0], r'image 0 is empty'),
    ]
    for img, match in refusals:
        with pytest.raises(ValueError, match=match):
            model.preprocess([img])
    nan_images = images.clone()
    nan_images[0, 0, 5, 5] = float('nan')
    with pytest.raises(ValueError, match=r'images hold 1 NaN or infinite'):
        model(nan_images, info)
    for row in ([float('nan'), 120, 1, 1], [0, 0, 1, 1],
                [120, 900, 1, 1], [120, 200, 0, 1]):
        with pytest.raises(ValueError, match=r'img_info\[0\] must be '
                           r'\(height, width, scale_x, scale_y\)'):
            model(images, torch.tensor([row]))


@pytest.mark.parametrize('fmt', ['pt2', 'onnx'])
def test_a_damaged_model_file_is_named(exported, tmp_path, fmt):
    runner = _runner_module()
    good = open(exported[fmt], 'rb').read()
    for name, data, match in (
            ('empty', b'', 'is an empty file'),
            ('cut', good[:len(good) // 3], 'cannot be read as a'),
            ('text', b'not a model\n' * 10, 'cannot be read as a')):
        path = tmp_path / f'{name}.{fmt}'
        path.write_bytes(data)
        with pytest.raises(ValueError) as info:
            runner.ExportedRFCN(str(path))
        assert str(info.value).startswith(f'{path}') or \
            str(path) in str(info.value)
        assert match in str(info.value)


def test_an_export_shape_no_image_fits_is_refused_at_export(
        checkpoint, tmp_path):
    _, cfg, ckpt = checkpoint
    out = tmp_path / 'small.pt2'
    proc = run_tool_here('tools/deployment/export.py', cfg, ckpt,
                         '--format', 'pt2', '--shape', '100', '120',
                         '--out', str(out), cwd=ROOT)
    assert proc.returncode == 1
    assert ('--shape 100 120 is smaller than what the test pipeline resizes '
            'images to') in proc.stderr, proc.stderr[-2000:]
    assert not out.exists()
