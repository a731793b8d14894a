"""Export of FastRFCN's fixed-shape inference to a torch.export program
(``.pt2``) and to ONNX in the standard opset."""
import io
import json
from typing import Optional, Sequence, Tuple

import torch
from torch import Tensor

from rfcn_mm.utils.atomic_io import atomic_write
from .fixed_shape_detector import FixedShapeDetector
from .ps_roi_pool_sat import ps_roi_pool_by_summed_area

INPUT_NAMES = ['images', 'img_info']
OUTPUT_NAMES = ['boxes', 'scores', 'labels', 'num_dets']
META_FILE = 'rfcn_mm.json'  # the metadata's name in a .pt2 archive


def example_inputs(batch: int,
                   shape: Tuple[int, int],
                   device='cpu') -> Tuple[Tensor, Tensor]:
    """Images and image info of the exported shape: whole images, boxes not
    rescaled."""
    h, w = shape
    g = torch.Generator().manual_seed(0)
    images = torch.randn(batch, 3, h, w, generator=g).to(device)
    img_info = torch.tensor([[h, w, 1., 1.]] * batch, device=device)
    return images, img_info


def preprocessing(data_preprocessor, test_pipeline: Sequence[dict]) -> dict:
    """What a caller must do to an image before the exported model, read
    from the config: resize (the test pipeline's ``Resize``), channel order,
    mean and std."""
    resize = [t for t in test_pipeline if t.get('type') == 'Resize']
    mean = data_preprocessor.mean.flatten().tolist() \
        if data_preprocessor.mean is not None else [0., 0., 0.]
    std = data_preprocessor.std.flatten().tolist() \
        if data_preprocessor.std is not None else [1., 1., 1.]
    return dict(
        resize_scale=list(resize[0]['scale']) if resize else None,
        keep_ratio=bool(resize[0].get('keep_ratio', False))
        if resize else None,
        bgr_to_rgb=bool(
            getattr(data_preprocessor, '_channel_conversion', False)),
        mean=mean,
        std=std,
        pad_value=0.0)


def export_program(detector, shape: Tuple[int, int], batch: int = 1):
    """``torch.export`` of :class:`FixedShapeDetector` for inputs of
    ``batch`` images of ``shape`` (H, W): a static shape, the anchors and
    constants of that shape frozen into the program."""
    module = FixedShapeDetector(detector)
    inputs = example_inputs(batch, shape,
                            next(detector.parameters()).device)
    module.warm_up(*inputs)
    with torch.no_grad():
        return torch.export.export(module, inputs)


def save_program(program, path: str, meta: dict) -> None:
    """``torch.export.save`` with the metadata (input shape, classes,
    preprocessing) as an extra file, written whole or not at all
    (:func:`rfcn_mm.utils.atomic_write`): the archive is made in memory, so
    that a full disk fails as a Python ``OSError`` instead of aborting in
    the zip writer, and a good file at ``path`` survives any failure."""
    buffer = io.BytesIO()
    torch.export.save(
        program, buffer, extra_files={META_FILE: json.dumps(meta)})
    atomic_write(buffer.getvalue(), path)


def to_onnx(program,
            path: str,
            meta: Optional[dict] = None,
            opset_version: int = 18) -> None:
    """Convert an exported program to ONNX with standard ops only: PS RoI
    pooling decomposed into summed-area-table lookups, sorted NMS, PS RoI
    Align and stable sorts translated by :mod:`rfcn_mm.deploy.onnx_functions`.
    The metadata goes into the model's ``metadata_props``."""
    import onnx

    from .onnx_functions import (ps_roi_align_onnx, sort_stable_onnx,
                                 sorted_nms_onnx)
    targets = {
        str(n.target)
        for n in program.graph.nodes if n.op == 'call_function'
    }
    if 'rfcn_mm.deform_ps_roi_pool.default' in targets:
        raise ValueError(
            'ONNX export of deformable PS RoI pooling (DeformPSBBoxHead, or '
            'ps_roi_align with legacy=True) is not supported: its bilinear '
            'sampling with skipped samples has no translation '
            'into standard ONNX ops here; export it with --format pt2')
    program = program.run_decompositions(
        {torch.ops.rfcn_mm.ps_roi_pool.default: ps_roi_pool_by_summed_area})
    onnx_program = torch.onnx.export(
        program,
        dynamo=True,
        input_names=INPUT_NAMES,
        output_names=OUTPUT_NAMES,
        opset_version=opset_version,
        custom_translation_table={
            torch.ops.aten.sort.stable: sort_stable_onnx,
            torch.ops.rfcn_mm.sorted_nms.default: sorted_nms_onnx,
            torch.ops.rfcn_mm.ps_roi_align.default: ps_roi_align_onnx,
        },
        external_data=False,
        verbose=False)
    model = onnx_program.model_proto
    if meta is not None:
        entry = model.metadata_props.add()
        entry.key, entry.value = META_FILE, json.dumps(meta)
    onnx.checker.check_model(model)
    domains = {n.domain for n in model.graph.node} - {'', 'ai.onnx'}
    if domains:
        raise RuntimeError(f'the ONNX model has ops of custom domains '
                           f'{sorted(domains)}; only standard ops expected')
    atomic_write(model.SerializeToString(), path)
