"""rfcn_mm as it is built and installed.

The set-up's build: every way of building the extension (the editable
install, ``build_ext --inplace``, ``bdist_wheel``) shares one build folder,
so a build with nothing changed compiles nothing, and the library carries
no debug information. The wheel: built from the checkout, installed (not
editable) into a fresh environment, used from a folder outside the
checkout: every module and the compiled ops are there, ``import rfcn_mm``
registers everything, a user's config inherits ``rfcn_mm::`` configs, and
mmengine's Runner trains and mmdet's DetInferencer predicts from it.

The tests that run setup.py share this file, so that one worker runs them
one after the other (two builds in one build folder at once would race)."""
import glob
import os
import os.path as osp
import re
import struct
import subprocess
import sys
import sysconfig
import zipfile

import pytest
from helpers.setup_script import setup_module

pytestmark = pytest.mark.slow

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


BUILD_TEMP = osp.join(
    ROOT, 'build',
    f'temp.{sysconfig.get_platform()}-{sys.implementation.cache_tag}')


def _elf_section_names(path):
    """Section names of a 64-bit little-endian ELF file (the header's
    section table and its string table, as the ELF specification lays them
    out)."""
    with open(path, 'rb') as f:
        data = f.read()
    assert data[:4] == b'\x7fELF' and data[4] == 2 and data[5] == 1, path
    shoff, = struct.unpack_from('<Q', data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from('<HHH', data, 0x3A)

    def section(i):
        # sh_name, then sh_offset at 0x18 of each 64-byte header
        name, = struct.unpack_from('<I', data, shoff + i * shentsize)
        offset, = struct.unpack_from('<Q', data, shoff + i * shentsize + 0x18)
        return name, offset

    _, strtab = section(shstrndx)
    names = []
    for i in range(shnum):
        name, _ = section(i)
        end = data.index(b'\0', strtab + name)
        names.append(data[strtab + name:end].decode())
    return names


def test_every_kind_of_build_uses_the_checkouts_build_folder(tmp_path):
    from setuptools.dist import Distribution

    from torch.utils.cpp_extension import BuildExtension
    build_ext = setup_module().build_ext_in_one_folder(BuildExtension)
    # pip install -e . : setuptools' editable_wheel gives the build a fresh
    # temporary folder, which would mean a full compile on every install
    dist = Distribution(dict(name='rfcn_mm', ext_modules=[]))
    dist.get_command_obj('build').build_temp = str(tmp_path)
    cmd = build_ext(dist)
    cmd.ensure_finalized()
    assert cmd.build_temp == BUILD_TEMP
    # setup.py build_ext / bdist_wheel: setuptools' own default folder
    dist = Distribution(dict(name='rfcn_mm', ext_modules=[]))
    build = dist.get_command_obj('build')
    build.ensure_finalized()
    assert osp.join(ROOT, build.build_temp) == BUILD_TEMP
    # an explicit --build-temp is kept
    cmd = build_ext(Distribution(dict(name='rfcn_mm', ext_modules=[])))
    cmd.build_temp = str(tmp_path)
    cmd.ensure_finalized()
    assert cmd.build_temp == str(tmp_path)


def _build_in_place():
    proc = subprocess.run(
        [sys.executable, 'setup.py', 'build_ext', '--inplace'],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def test_a_build_with_nothing_changed_compiles_nothing_and_no_debug_info():
    _build_in_place()  # whatever changed since the set-up's build
    log = _build_in_place()
    assert 'ninja: no work to do' in log, log[-3000:]
    assert not re.search(r'(?m)^\[\d+/\d+\] ', log), log[-3000:]
    assert osp.isfile(osp.join(BUILD_TEMP, 'build.ninja'))
    libs = glob.glob(osp.join(ROOT, 'rfcn_mm', '_ext*.so'))
    assert len(libs) == 1, libs
    sections = _elf_section_names(libs[0])
    assert '.text' in sections and '.dynsym' in sections, sections
    assert not [s for s in sections if s.startswith('.debug')], sections


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
