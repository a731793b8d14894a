"""The ONNX forms of the ops, run in ONNX Runtime, against the kernels."""
import pytest
import torch
from helpers.roi_cases import make_rois

from rfcn_mm.ops import ps_roi_align, sorted_nms

onnx = pytest.importorskip('onnx')
ort = pytest.importorskip('onnxruntime')
pytest.importorskip('onnxscript')

functions = pytest.importorskip('rfcn_mm.deploy.onnx_functions')

TABLE = {
    torch.ops.rfcn_mm.sorted_nms.default: functions.sorted_nms_onnx,
    torch.ops.rfcn_mm.ps_roi_align.default: functions.ps_roi_align_onnx,
    torch.ops.aten.sort.stable: functions.sort_stable_onnx,
}


def run_in_onnxruntime(module, args, tmp_path):
    path = str(tmp_path / 'model.onnx')
    program = torch.onnx.export(
        module, args, dynamo=True, custom_translation_table=TABLE,
        external_data=False)
    program.save(path)
    model = onnx.load(path)
    onnx.checker.check_model(model)
    assert {n.domain for n in model.graph.node} <= {'', 'ai.onnx'}
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    names = [i.name for i in session.get_inputs()]
    return [
        torch.from_numpy(o)
        for o in session.run(None, {
            n: a.numpy()
            for n, a in zip(names, args)
        })
    ], {n.op_type for n in model.graph.node}


class NMS(torch.nn.Module):

    def __init__(self, thr, max_num):
        super().__init__()
        self.thr, self.max_num = thr, max_num

    def forward(self, boxes, valid):
        return sorted_nms(boxes, valid, self.thr, self.max_num)


@pytest.mark.parametrize('thr, max_num', [(0.5, 10), (0.7, 60), (0.3, 3)])
def test_sorted_nms_is_nonmaxsuppression(thr, max_num, tmp_path):
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(3, 50, 2, generator=g) * 60
    boxes = torch.cat([xy, xy + 4 + torch.rand(3, 50, 2, generator=g) * 30],
                      -1)
    valid = torch.rand(3, 50, generator=g) > 0.25
    valid[2] = False  # an image without a valid box
    (got, ), ops = run_in_onnxruntime(NMS(thr, max_num), (boxes, valid),
                                      tmp_path)
    assert 'NonMaxSuppression' in ops
    want = sorted_nms(boxes, valid, thr, max_num)
    assert torch.equal(got, want), (got, want)
    assert (want[2] == -1).all() and (want[0] >= 0).sum() > 2


class Sort(torch.nn.Module):

    def forward(self, x):
        return x.sort(dim=1, descending=True, stable=True)


def test_stable_sort_keeps_the_first_of_equal_values(tmp_path):
    x = torch.tensor([[3., 1, 3, 2, 1, 3], [0, 0, 0, 5, 5, 0]])
    (values, indices), ops = run_in_onnxruntime(Sort(), (x, ), tmp_path)
    want = x.sort(dim=1, descending=True, stable=True)
    assert 'TopK' in ops
    assert torch.equal(values, want.values)
    assert torch.equal(indices, want.indices)


class Align(torch.nn.Module):

    def __init__(self, k, sampling_ratio, aligned):
        super().__init__()
        self.args = (k, 0.5, sampling_ratio, aligned)

    def forward(self, x, rois):
        return ps_roi_align(x, rois, *self.args, check_batch_idx=False)


@pytest.mark.parametrize('k, sampling_ratio, aligned', [(3, 2, True),
                                                        (3, 0, True),
                                                        (2, 1, False)])
def test_ps_roi_align_is_roialign_and_a_gather(k, sampling_ratio, aligned,
                                               tmp_path):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 2 * k * k, 9, 11, generator=g)
    # every kind of RoI but the zero-size ones (see the module docstring)
    rois = make_rois(2, 9, 11, 0.5, num=22, dtype=torch.float32)
    size = torch.minimum(rois[:, 3] - rois[:, 1], rois[:, 4] - rois[:, 2])
    rois = rois[size > 0]
    bad = torch.tensor([[-1., 1, 1, 5, 5], [5., 1, 1, 5, 5],
                        [0., float('nan'), 1, 5, 5]])
    rois = torch.cat([rois, bad])
    (got, ), ops = run_in_onnxruntime(Align(k, sampling_ratio, aligned),
                                      (x, rois), tmp_path)
    assert 'RoiAlign' in ops
    want = ps_roi_align(x, rois, k, 0.5, sampling_ratio, aligned,
                        check_batch_idx=False)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert (got[-3:] == 0).all()
