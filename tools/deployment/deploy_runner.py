"""Run an exported R-FCN (``tools/deployment/export.py``) with torch and
rfcn_mm's compiled ops only: no mmdet, mmengine or mmcv import.

    python tools/deployment/deploy_runner.py MODEL.{pt2,onnx} IMAGE \
        [IMAGE ...] [--score-thr 0.3] [--out detections.json]

A ``.pt2`` program runs in torch with the ``rfcn_mm::`` operators loaded
from the installed package's compiled extension (found without importing
the package); an ``.onnx`` model runs in ONNX Runtime. Each image is
resized, normalised and padded as the exported config's test pipeline does
(read from the model's metadata) and its detections are printed in the
original image's coordinates.

As a library::

    from deploy_runner import ExportedRFCN
    model = ExportedRFCN('rfcn.pt2')
    images, img_info = model.preprocess([bgr_uint8_array])
    boxes, scores, labels, num_dets = model(images, img_info)
"""
import argparse
import glob
import importlib.util
import json
import math
import os.path as osp
import sys
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

META_FILE = 'rfcn_mm.json'


def _package_dir() -> str:
    """The installed rfcn_mm package's folder, found without importing it
    (which would import mmdet)."""
    spec = importlib.util.find_spec('rfcn_mm')
    if spec is None or not spec.submodule_search_locations:
        raise ImportError('rfcn_mm is not installed: pass the path of '
                          'its compiled extension (rfcn_mm/_ext*.so)')
    return spec.submodule_search_locations[0]


def load_rfcn_ops(ext: Optional[str] = None) -> str:
    """Register the ``torch.ops.rfcn_mm`` operators by loading rfcn_mm's
    compiled extension, without importing the rfcn_mm package (which would
    import mmdet). Returns the library's path."""
    if ext is None:
        package = _package_dir()
        found = sorted(glob.glob(osp.join(package, '_ext*.so')))
        if not found:
            raise ImportError('rfcn_mm\'s compiled extension (_ext*.so) is '
                              'not built in ' + package)
        ext = found[0]
    torch.ops.load_library(ext)
    return ext


def atomic_write(data: str, path: str) -> None:
    """rfcn_mm's :func:`rfcn_mm.utils.atomic_write` (whole or not at all),
    loaded from its file: it needs the standard library only."""
    spec = importlib.util.spec_from_file_location(
        'rfcn_mm_atomic_io', osp.join(_package_dir(), 'utils',
                                      'atomic_io.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.atomic_write(data, path)


class ExportedRFCN:
    """An exported R-FCN, ``.pt2`` or ``.onnx``.

    Args:
        path (str): The exported model.
        ext (str, optional): rfcn_mm's compiled extension, for ``.pt2``
            (default: the installed package's).
    """

    def __init__(self, path: str, ext: Optional[str] = None) -> None:
        if not osp.isfile(path):
            raise FileNotFoundError(f'exported model not found: {path}')
        if osp.getsize(path) == 0:
            raise ValueError(f'exported model {path} is an empty file')
        self.path = path
        if path.endswith('.pt2'):
            self.format = 'pt2'
            load_rfcn_ops(ext)
            extra = {META_FILE: ''}
            try:
                program = torch.export.load(path, extra_files=extra)
            except Exception as e:
                raise ValueError(
                    f'{path} cannot be read as a torch.export program '
                    '(truncated, or not written by '
                    f'tools/deployment/export.py?): {type(e).__name__}: {e}'
                ) from None
            self.meta = self._meta(extra[META_FILE])
            self._module = program.module()
        elif path.endswith('.onnx'):
            import onnx
            import onnxruntime
            self.format = 'onnx'
            try:
                model = onnx.load(path, load_external_data=False)
                self._session = onnxruntime.InferenceSession(
                    path, providers=['CPUExecutionProvider'])
            except Exception as e:
                raise ValueError(
                    f'{path} cannot be read as an ONNX model (truncated, or '
                    'not written by tools/deployment/export.py?): '
                    f'{type(e).__name__}: {e}') from None
            props = {p.key: p.value for p in model.metadata_props}
            self.meta = self._meta(props.get(META_FILE, ''))
        else:
            raise ValueError(f'{path}: expected a .pt2 or .onnx file')
        self.input_shape = tuple(self.meta['input_shape'])

    def _meta(self, text: str) -> dict:
        try:
            meta = json.loads(text)
            tuple(meta['input_shape']), meta['preprocessing']
        except (ValueError, KeyError, TypeError):
            raise ValueError(
                f'{self.path} holds no rfcn_mm metadata ({META_FILE}): it '
                'was not written by tools/deployment/export.py') from None
        return meta

    def __call__(self, images: Tensor,
                 img_info: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """boxes (N, D, 4), scores (N, D), labels (N, D), num_dets (N,)."""
        if tuple(images.shape) != self.input_shape:
            raise ValueError(
                f'{self.path} was exported for images of shape '
                f'{list(self.input_shape)} (N, 3, H, W), got '
                f'{list(images.shape)}: pad smaller images to that shape '
                '(preprocess does), or export again with --shape/--batch')
        if tuple(img_info.shape) != (self.input_shape[0], 4):
            raise ValueError(f'img_info must be shaped ({self.input_shape[0]}'
                             f', 4), got {list(img_info.shape)}')
        images = images.float().contiguous()
        img_info = img_info.float().contiguous()
        bad = int((~torch.isfinite(images)).sum())
        if bad:
            raise ValueError(f'images hold {bad} NaN or infinite value(s)')
        _, _, height, width = self.input_shape
        for i, (h, w, sx, sy) in enumerate(img_info.tolist()):
            if not (all(math.isfinite(v) for v in (h, w, sx, sy))
                    and 0 < h <= height and 0 < w <= width and sx > 0
                    and sy > 0):
                raise ValueError(
                    f'img_info[{i}] must be (height, width, scale_x, scale_y)'
                    f' of the resized image, with 0 < height <= {height}, '
                    f'0 < width <= {width} and positive finite scales, got '
                    f'{[h, w, sx, sy]}')
        if self.format == 'pt2':
            with torch.no_grad():
                return tuple(self._module(images, img_info))
        out = self._session.run(None, {
            'images': images.numpy(),
            'img_info': img_info.numpy()
        })
        return tuple(torch.from_numpy(o) for o in out)

    def preprocess(self,
                   images: Sequence[np.ndarray]) -> Tuple[Tensor, Tensor]:
        """BGR images (H, W, 3) to the exported inputs: resized as the
        config's test pipeline (cv2 bilinear when OpenCV is installed, as
        mmcv does; PIL otherwise), channel order, mean and std, padded with
        0 to the exported shape.

        Pixel values are 0..255, as the model was trained on: uint8, or
        float with values up to 255 (a float image whose values all lie in
        0..1 is refused: scale it by 255). A grayscale image, (H, W) or
        (H, W, 1), is used as three equal channels, as OpenCV loads a
        grayscale file in colour; a BGRA image (H, W, 4) loses its alpha,
        as OpenCV's colour loading does. NaN or infinite pixels are
        refused."""
        n, _, height, width = self.input_shape
        if len(images) != n:
            raise ValueError(f'{self.path} takes {n} image(s) per call, got '
                             f'{len(images)}')
        pre = self.meta['preprocessing']
        batch = torch.full(self.input_shape, float(pre['pad_value']))
        info = []
        for i, img in enumerate(images):
            img = _as_bgr(img, i)
            h, w = img.shape[:2]
            resized = _resize(img, pre['resize_scale'], pre['keep_ratio'])
            nh, nw = resized.shape[:2]
            if nh > height or nw > width:
                raise ValueError(
                    f'image {i} resizes to {nh}x{nw}, larger than the '
                    f'exported {height}x{width}: export with --shape')
            x = torch.from_numpy(np.ascontiguousarray(resized)).float()
            if pre['bgr_to_rgb']:
                x = x.flip(-1)
            x = (x - torch.tensor(pre['mean'])) / torch.tensor(pre['std'])
            batch[i, :, :nh, :nw] = x.permute(2, 0, 1)
            info.append([nh, nw, w / nw, h / nh])
        return batch, torch.tensor(info, dtype=torch.float32)


def _as_bgr(img, i: int) -> np.ndarray:
    """Image ``i`` as an (H, W, 3) array of 0..255 values (see
    ``ExportedRFCN.preprocess``), or a ValueError naming the problem."""
    if not isinstance(img, np.ndarray):
        raise ValueError(f'image {i} must be a numpy array (H, W, 3), got '
                         f'{type(img).__name__}')
    if img.ndim == 2:
        img = img[:, :, None]
    if img.ndim != 3 or img.shape[2] not in (1, 3, 4):
        raise ValueError(f'image {i} must be shaped (H, W, 3) (BGR), (H, W) '
                         f'or (H, W, 1) (grayscale) or (H, W, 4) (BGRA), got '
                         f'{list(img.shape)}')
    if img.shape[0] == 0 or img.shape[1] == 0:
        raise ValueError(f'image {i} is empty: shape {list(img.shape)}')
    if img.dtype == np.uint8:
        pass
    elif np.issubdtype(img.dtype, np.floating):
        if not np.isfinite(img).all():
            raise ValueError(f'image {i} holds '
                             f'{int((~np.isfinite(img)).sum())} NaN or '
                             'infinite pixel value(s)')
        low, high = float(img.min()), float(img.max())
        if low < 0 or high > 255:
            raise ValueError(f'image {i} has pixel values from {low:g} to '
                             f'{high:g}; expected 0..255')
        if high <= 1 and high > 0:
            raise ValueError(
                f'image {i} is a float image with values in 0..1 (max '
                f'{high:g}); the model takes 0..255 pixel values, as it was '
                'trained on: multiply it by 255 (or pass uint8)')
        img = img.astype(np.float32)
    else:
        raise ValueError(f'image {i} has dtype {img.dtype}; expected uint8 '
                         'or float with 0..255 values')
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    elif img.shape[2] == 4:
        img = img[:, :, :3]
    return img


def _resize(img: np.ndarray, scale: Optional[List[int]],
            keep_ratio: bool) -> np.ndarray:
    """mmcv's ``Resize`` (``rescale_size`` for keep_ratio, bilinear)."""
    if scale is None:
        return img
    h, w = img.shape[:2]
    if keep_ratio:
        factor = min(max(scale) / max(h, w), min(scale) / min(h, w))
        size = (int(w * factor + 0.5), int(h * factor + 0.5))
    else:
        size = (int(scale[0]), int(scale[1]))
    try:
        import cv2
        return cv2.resize(img, size, interpolation=cv2.INTER_LINEAR)
    except ImportError:
        from PIL import Image
        pixels = img if img.dtype == np.uint8 else np.clip(
            np.rint(img), 0, 255).astype(np.uint8)
        return np.asarray(
            Image.fromarray(pixels).resize(size, Image.BILINEAR))


def _read_bgr(path: str) -> np.ndarray:
    try:
        import cv2
        img = cv2.imread(path, cv2.IMREAD_COLOR)
    except ImportError:
        from PIL import Image
        img = np.asarray(Image.open(path).convert('RGB'))[..., ::-1]
    if img is None:
        raise ValueError(f'image {path} cannot be read')
    return img


def main(argv=None) -> List[dict]:
    parser = argparse.ArgumentParser(
        description='Detect with an exported R-FCN (.pt2 or .onnx)')
    parser.add_argument('model', help='exported model')
    parser.add_argument('images', nargs='+', help='image files')
    parser.add_argument('--score-thr', type=float, default=0.3)
    parser.add_argument('--ext', help='rfcn_mm\'s compiled extension')
    parser.add_argument('--out', help='write the detections as JSON here')
    args = parser.parse_args(argv)
    model = ExportedRFCN(args.model, args.ext)
    n = model.input_shape[0]
    classes = model.meta.get('classes') or []
    results = []
    for start in range(0, len(args.images), n):
        paths = args.images[start:start + n]
        imgs = [_read_bgr(p) for p in paths]
        imgs += [imgs[-1]] * (n - len(imgs))  # fill the last batch
        boxes, scores, labels, num = model(*model.preprocess(imgs))
        for i, path in enumerate(paths):
            k = int(num[i])
            for box, score, label in zip(boxes[i, :k].tolist(),
                                         scores[i, :k].tolist(),
                                         labels[i, :k].tolist()):
                if score < args.score_thr:
                    continue
                name = classes[label] if label < len(classes) else label
                results.append(
                    dict(
                        image=path,
                        label=name,
                        score=round(score, 4),
                        box=[round(v, 1) for v in box]))
                print(f'{path}: {name} {score:.3f} '
                      f'[{", ".join(f"{v:.1f}" for v in box)}]')
    if args.out:
        atomic_write(json.dumps(results, indent=1), args.out)
    return results


if __name__ == '__main__':
    main(sys.argv[1:])
