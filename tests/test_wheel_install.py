"""rfcn_mm as users install it: a wheel built from the checkout, installed
(not editable) into a fresh environment, used from a folder outside the
checkout: every module and the compiled ops are there, ``import rfcn_mm``
registers everything, a user's config inherits ``rfcn_mm::`` configs, and
mmengine's Runner trains and mmdet's DetInferencer predicts from it."""
import os
import os.path as osp
import subprocess
import sys
import sysconfig
import zipfile

import pytest

pytestmark = pytest.mark.slow

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _package_modules():
    """Every module of the rfcn_mm source tree, as wheel paths."""
    found = []
    for folder, dirs, files in os.walk(osp.join(ROOT, 'rfcn_mm')):
        dirs[:] = [d for d in dirs if d not in ('__pycache__', '.mim')]
        rel = osp.relpath(folder, ROOT)
        found += [osp.join(rel, f) for f in files if f.endswith('.py')]
    return sorted(found)


@pytest.fixture(scope='module')
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp('dist')
    # in the checkout, so that the extension's objects in build/ (from the
    # set-up's build_ext) are linked, not compiled again (pip wheel would
    # build it from scratch: minutes on 2 cores)
    proc = subprocess.run(
        [sys.executable, 'setup.py', '-q', 'bdist_wheel', '-d',
         str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    wheels = list(out.glob('rfcn_mm-*.whl'))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_wheel_holds_every_module_the_extension_and_the_configs(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [m for m in _package_modules() if m not in names]
    assert not missing, missing
    assert any(n.startswith('rfcn_mm/_ext') and n.endswith('.so')
               for n in names)
    configs = sorted(
        n for n in names if n.startswith('rfcn_mm/.mim/configs/rfcn/'))
    on_disk = sorted(
        f'rfcn_mm/.mim/configs/rfcn/{f}'
        for f in os.listdir(osp.join(ROOT, 'configs', 'rfcn')))
    assert configs == on_disk
    assert 'rfcn_mm/.mim/model-index.yml' in names


USER_CONFIG = """\
_base_ = 'rfcn_mm::rfcn/rfcn_r18_synthetic-voc.py'
data_root = '{data}/'
train_dataloader = dict(batch_size=2, dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
train_cfg = dict(max_iters=2, val_interval=100)
default_hooks = dict(checkpoint=dict(interval=2))
"""

USER_SCRIPT = """\
import sys
import rfcn_mm
from mmdet.registry import MODELS, TASK_UTILS, DATASETS, HOOKS
from mmengine.config import Config
from mmengine.runner import Runner
assert rfcn_mm.__file__.startswith(sys.prefix), rfcn_mm.__file__
import rfcn_mm._ext
for reg, names in ((MODELS, ('RFCN', 'PSRoIHead', 'PSBBoxHead',
                             'PSRoIExtractor')),
                   (TASK_UTILS, ('RFCNOHEMSampler', )),
                   (DATASETS, ('CheckedVOCDataset', )),
                   (HOOKS, ('FiniteLossHook', 'NumClassesCheckHook'))):
    for name in names:
        assert reg.get(name) is not None, name
cfg = Config.fromfile('my_config.py')
cfg.work_dir = 'work'
assert cfg.model.type == 'RFCN' and cfg.model.backbone.depth == 18
Runner.from_cfg(cfg).train()
from mmdet.apis import DetInferencer
inferencer = DetInferencer('my_config.py', 'work/iter_2.pth', device='cpu',
                           show_progress=False)
out = inferencer(sys.argv[1], return_datasamples=True)
print('predicted', len(out['predictions'][0].pred_instances))
"""


def test_installed_wheel_trains_and_predicts_outside_the_checkout(
        wheel, tmp_path):
    from rfcn_mm.datasets import make_synthetic_voc
    data = tmp_path / 'data'
    make_synthetic_voc(str(data), num_train=4, num_test=2, seed=0)
    env_dir = tmp_path / 'env'
    subprocess.run([sys.executable, '-m', 'venv', str(env_dir)], check=True)
    # the fresh environment sees this one's dependencies (torch, mmcv,
    # mmdet ...) but not its editable rfcn_mm: a plain path entry in a .pth
    # file adds the folder without running the .pth files inside it
    py = env_dir / 'bin' / 'python'
    purelib = subprocess.run(
        [str(py), '-c', 'import sysconfig; print(sysconfig.get_paths()'
         '["purelib"])'],
        capture_output=True, text=True, check=True).stdout.strip()
    with open(osp.join(purelib, 'deps.pth'), 'w') as f:
        f.write(sysconfig.get_paths()['purelib'] + '\n')
    subprocess.run([
        str(py), '-m', 'pip', 'install', '-q', '--no-deps',
        '--no-index', str(wheel)
    ],
                   check=True,
                   timeout=600)
    work = tmp_path / 'user_project'
    work.mkdir()
    (work / 'my_config.py').write_text(USER_CONFIG.format(data=data))
    (work / 'run.py').write_text(USER_SCRIPT)
    image = sorted((data / 'VOC2007' / 'JPEGImages').glob('*.jpg'))[0]
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    proc = subprocess.run([str(py), 'run.py', str(image)],
                          cwd=str(work),
                          env=env,
                          capture_output=True,
                          text=True,
                          timeout=900)
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-4000:])
    assert 'predicted ' in proc.stdout
    assert (work / 'work' / 'iter_2.pth').is_file()
    # the rfcn_mm scope of the inherited dicts has its registries
    assert 'with scope "rfcn_mm"' not in proc.stdout + proc.stderr
