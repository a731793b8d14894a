"""The README's commands on the main config, R-101 as configured, on a few
images in PASCAL VOC's layout at its relative path: tools/train.py trains and
validates, then tools/test.py --eval mAP reproduces the validation's mAP
from the checkpoint."""
import os.path as osp
import subprocess
import sys

from helpers.tiny_data import write_voc

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'configs', 'rfcn', 'rfcn_r101_voc0712.py')
# no ImageNet weights: nothing to fetch
OFFLINE = ('model.backbone.init_cfg=None',
           'model.roi_head.shared_head.init_cfg=None')


def _run(cwd, *args):
    proc = subprocess.run([sys.executable, *args],
                          capture_output=True,
                          text=True,
                          timeout=600,
                          cwd=cwd)
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-3000:])
    return proc.stdout


def _logged_maps(stdout):
    return [
        float(line.split('pascal_voc/mAP:')[1].split()[0])
        for line in stdout.splitlines() if 'pascal_voc/mAP:' in line
    ]


def test_train_then_test_the_main_config(tmp_path):
    voc = tmp_path / 'data' / 'VOCdevkit'
    write_voc(str(voc), 2007)
    write_voc(str(voc), 2012, splits=('trainval', ))
    work = tmp_path / 'work_dirs' / 'main'
    out = _run(tmp_path, osp.join(ROOT,
                                  'tools', 'train.py'), CONFIG, '--work-dir',
               str(work), '--cfg-options', *OFFLINE, 'train_cfg.max_iters=2',
               'train_cfg.val_interval=2',
               'default_hooks.checkpoint.interval=2')
    checkpoint = work / 'iter_2.pth'
    assert checkpoint.is_file()
    (val_map, ) = _logged_maps(out)
    assert 0 <= val_map <= 1
    test_out = _run(tmp_path, osp.join(ROOT, 'tools', 'test.py'), CONFIG,
                    str(checkpoint), '--eval', 'mAP', '--work-dir',
                    str(tmp_path / 'test'), '--cfg-options', *OFFLINE)
    assert _logged_maps(test_out) == [val_map]
