"""RoI sets shared by the op tests (every kind of box the ops must handle),
and a child-process runner for calls that raise inside the extension."""
import os
import subprocess
import sys

import torch


def make_rois(batch,
              height,
              width,
              spatial_scale,
              num=24,
              seed=0,
              dtype=torch.float64):
    """RoIs in image coordinates for a (height, width) map at
    ``spatial_scale``: inside, touching each border, partly and wholly
    outside, degenerate (zero or negative size), tiny and image-sized."""
    g = torch.Generator().manual_seed(seed)
    img_w, img_h = width / spatial_scale, height / spatial_scale

    def rand(n, lo, hi):
        return lo + (hi - lo) * torch.rand(n, generator=g, dtype=torch.float64)

    n = max(num - 10, 1)
    x1, y1 = rand(n, 0, img_w * 0.8), rand(n, 0, img_h * 0.8)
    x2 = torch.minimum(x1 + rand(n, 1, img_w * 0.6), torch.tensor(img_w))
    y2 = torch.minimum(y1 + rand(n, 1, img_h * 0.6), torch.tensor(img_h))
    boxes = [torch.stack([x1, y1, x2, y2], 1)]
    special = [
        [0, 0, img_w, img_h],  # image-sized, touches all borders
        [0, 0, img_w / 3, img_h / 2],  # top-left corner
        [img_w * 0.6, img_h * 0.5, img_w, img_h],  # bottom-right corner
        [-img_w * 0.3, img_h * 0.2, img_w * 0.4, img_h * 0.7],  # partly out
        [img_w * 0.7, -img_h * 0.5, img_w * 1.5, img_h * 0.3],  # partly out
        [img_w * 1.2, img_h * 1.1, img_w * 1.6, img_h * 1.5],  # wholly out
        [-img_w, -img_h, -img_w * 0.5, -img_h * 0.2],  # wholly out
        [img_w * 0.4, img_h * 0.4, img_w * 0.4, img_h * 0.6],  # zero width
        [img_w * 0.5, img_h * 0.5, img_w * 0.3, img_h * 0.3],  # negative
        [
            img_w * 0.31, img_h * 0.52, img_w * 0.31 + 0.3 / spatial_scale,
            img_h * 0.52 + 0.2 / spatial_scale
        ],  # tiny: under a pixel
    ]
    boxes.append(torch.tensor(special, dtype=torch.float64))
    boxes = torch.cat(boxes)[:num]
    idx = torch.randint(0, batch, (boxes.size(0), 1), generator=g)
    return torch.cat([idx.double(), boxes], 1).to(dtype)


def interior_integer_rois(batch,
                          height,
                          width,
                          spatial_scale,
                          num=16,
                          seed=0,
                          dtype=torch.float32):
    """RoIs on integer feature coordinates strictly inside the map, where
    torchvision's rounding and ours agree."""
    g = torch.Generator().manual_seed(seed)
    rois = []
    for _ in range(num):
        x1 = int(torch.randint(1, width - 3, (1, ), generator=g))
        y1 = int(torch.randint(1, height - 3, (1, ), generator=g))
        x2 = int(torch.randint(x1 + 1, width - 1, (1, ), generator=g))
        y2 = int(torch.randint(y1 + 1, height - 1, (1, ), generator=g))
        b = int(torch.randint(0, batch, (1, ), generator=g))
        rois.append([
            b, x1 / spatial_scale, y1 / spatial_scale, x2 / spatial_scale,
            y2 / spatial_scale
        ])
    return torch.tensor(rois, dtype=dtype)


def import_torchvision_ops():
    """torchvision.ops, or None where torchvision is absent or broken."""
    try:
        import torchvision.ops
        return torchvision.ops
    except Exception:  # a broken install raises RuntimeError & co.
        return None


TESTS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEST_OPS_DIR = os.path.join(TESTS_DIR, 'test_ops')
ROOT = os.path.dirname(TESTS_DIR)


def refusals_in_child(body, timeout=300):
    """Run ``body`` in a child Python that has loaded what the test run
    loads (torch, mmcv's ops, torchvision's ops where they import) and
    return its stdout lines.

    For calls meant to raise a C++ error inside the extension: a process
    once died (SIGSEGV) while unwinding such an error after torchvision's
    ops were loaded, on a GPU machine whose extensions were built with
    another compiler than torch's. In a child, that fails one test with
    the signal named instead of killing the run.
    """
    code = '\n'.join([
        'import sys', 'import torch', 'import mmcv.ops  # noqa: F401', 'try:',
        '    import torchvision.ops  # noqa: F401', 'except Exception:',
        '    pass',
        f'sys.path[:0] = [{TEST_OPS_DIR!r}, {TESTS_DIR!r}, {ROOT!r}]', body
    ])
    proc = subprocess.run([sys.executable, '-c', code],
                          capture_output=True,
                          text=True,
                          timeout=timeout)
    assert proc.returncode == 0, (
        f'child exited with {proc.returncode} '
        f'({"signal " + str(-proc.returncode) if proc.returncode < 0 else ""})'
        f': {proc.stderr[-2000:]}')
    return proc.stdout.splitlines()
