"""The CUDA build of ``rfcn_mm._ext`` compiles, on machines without a GPU.

Every ``.cu`` launcher and every ``.cpp`` whose code depends on
``RFCN_WITH_CUDA`` is compiled with ``nvcc -c`` exactly as setup.py
describes it for ``FORCE_CUDA=1`` (its sources, include folders, macros and
nvcc flags, torch's own nvcc flags), against the installed torch's headers,
for sm_90 and for the oldest architecture the README promises. Linking
needs a CUDA build of torch; compiling is what can be checked here.

A CPU build of torch ships the ``c10/cuda`` and ``ATen/cuda`` headers but
not the configure-time ``c10/cuda/impl/cuda_cmake_macros.h``;
``C10_CUDA_NO_CMAKE_CONFIGURE_FILE`` stands in for it. The launchers use
c10's CUDA headers only (not ``ATen/cuda/CUDAContext.h``, which needs the
cuBLAS, cuSPARSE and cuSOLVER headers), so nothing else is missing.

A file that compiled is remembered in ``build/nvcc_check/`` under a hash of
everything its compile depends on (its text, every header of
``rfcn_mm/ops/csrc/common``, the command, torch's version, nvcc's version),
so a run compiles only what changed since the last; ``RFCN_NVCC_CACHE=0``
compiles everything. A fresh checkout compiles everything.
"""
import hashlib
import os
import os.path as osp
import shutil
import subprocess
import sysconfig
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from helpers.setup_script import setup_module

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
COMMON = osp.join(ROOT, 'rfcn_mm', 'ops', 'csrc', 'common')
CACHE = osp.join(ROOT, 'build', 'nvcc_check')
# compute capabilities: the oldest the README promises, and Hopper's
ARCHS = ('75', '90')


def _nvcc():
    cuda_home = os.environ.get('CUDA_HOME') or os.environ.get('CUDA_PATH')
    if cuda_home and osp.isfile(osp.join(cuda_home, 'bin', 'nvcc')):
        return osp.join(cuda_home, 'bin', 'nvcc')
    return shutil.which('nvcc')


NVCC = _nvcc()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        NVCC is None,
        reason='nvcc not found (neither $CUDA_HOME/bin/nvcc nor on PATH): '
        'the CUDA sources cannot be compiled here')
]


SPEC = setup_module().extension_spec(with_cuda=True)
TORCH_INCLUDE = osp.join(osp.dirname(torch.__file__), 'include')


def _cuda_path_sources():
    """The .cu files, and the .cpp files that RFCN_WITH_CUDA changes."""
    found = []
    for src in SPEC['sources']:
        if src.endswith('.cu'):
            found.append(src)
        else:
            with open(osp.join(ROOT, src)) as f:
                if 'RFCN_WITH_CUDA' in f.read():
                    found.append(src)
    return found


SOURCES = _cuda_path_sources()


def _command(src, obj):
    from torch.utils.cpp_extension import COMMON_NVCC_FLAGS
    cmd = [NVCC, '-c', osp.join(ROOT, src), '-o', obj, '-std=c++20']
    if src.endswith('.cu'):
        cmd += COMMON_NVCC_FLAGS + ['-Xcompiler', '-fPIC']
        cmd += SPEC['extra_compile_args']['nvcc']
        for arch in ARCHS:
            cmd.append(f'-gencode=arch=compute_{arch},code=sm_{arch}')
    else:
        cmd += ['-Xcompiler', '-fPIC']
        for flag in SPEC['extra_compile_args']['cxx']:
            cmd += ['-Xcompiler', flag]
    for name, value in SPEC['define_macros']:
        cmd.append(f'-D{name}' if value is None else f'-D{name}={value}')
    cmd += ['-DTORCH_API_INCLUDE_EXTENSION_H', '-DTORCH_EXTENSION_NAME=_ext']
    if not osp.isfile(
            osp.join(TORCH_INCLUDE, 'c10', 'cuda', 'impl',
                     'cuda_cmake_macros.h')):
        cmd.append('-DC10_CUDA_NO_CMAKE_CONFIGURE_FILE')
    for folder in SPEC['include_dirs'] + [
            TORCH_INCLUDE,
            osp.join(TORCH_INCLUDE, 'torch', 'csrc', 'api', 'include'),
            sysconfig.get_paths()['include']
    ]:
        cmd.append(f'-I{folder}')
    return cmd


def _fingerprint(src, cmd, nvcc_version):
    digest = hashlib.sha256()
    for part in (' '.join(cmd[5:]), torch.__version__, nvcc_version):
        digest.update(part.encode() + b'\0')
    paths = [osp.join(ROOT, src)]
    for folder, _, files in sorted(os.walk(COMMON)):
        paths += [osp.join(folder, f) for f in sorted(files)]
    for path in paths:
        digest.update(path.encode() + b'\0')
        with open(path, 'rb') as f:
            digest.update(f.read())
    return digest.hexdigest()


def _compile(src, out_dir, nvcc_version, use_cache):
    obj = osp.join(out_dir, src.replace(os.sep, '_') + '.o')
    cmd = _command(src, obj)
    stamp = osp.join(CACHE, _fingerprint(src, cmd, nvcc_version))
    if use_cache and osp.isfile(stamp):
        return 'cached', 0, ''
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=900, cwd=ROOT)
    log = proc.stdout + proc.stderr
    if proc.returncode == 0 and osp.isfile(obj):
        os.makedirs(CACHE, exist_ok=True)
        with open(stamp, 'w') as f:
            f.write(' '.join(cmd) + '\n')
    return 'compiled', proc.returncode, log


@pytest.fixture(scope='module')
def compiled(tmp_path_factory):
    """Every CUDA-path source compiled (those whose inputs did not change
    since their last successful compile are taken from the cache), a few
    at a time where there are cores for it."""
    nvcc_version = subprocess.run([NVCC, '--version'],
                                  capture_output=True,
                                  text=True,
                                  check=True).stdout
    use_cache = os.environ.get('RFCN_NVCC_CACHE', '1') != '0'
    out_dir = str(tmp_path_factory.mktemp('nvcc'))
    cores = (len(os.sched_getaffinity(0))
             if hasattr(os, 'sched_getaffinity') else os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=max(1, min(cores, 4))) as pool:
        results = pool.map(
            lambda src: _compile(src, out_dir, nvcc_version, use_cache),
            SOURCES)
        return dict(zip(SOURCES, results))


def test_the_cuda_build_has_launchers_and_cuda_registrations():
    names = [osp.basename(s) for s in SOURCES]
    for op in ('ps_roi_pool', 'ps_roi_align', 'deform_ps_roi_pool',
               'sorted_nms'):
        assert f'{op}_cuda.cu' in names
        assert f'{op}.cpp' in names  # its TORCH_LIBRARY_IMPL(..., CUDA, ...)
    assert 'pybind.cpp' in names


@pytest.mark.parametrize('src', SOURCES, ids=osp.basename)
def test_cuda_source_compiles_with_nvcc(compiled, src):
    how, returncode, log = compiled[src]
    assert returncode == 0, (
        f'nvcc could not compile {src} (the FORCE_CUDA=1 build of '
        f'rfcn_mm._ext):\n{" ".join(_command(src, "OUT.o"))}\n{log[-6000:]}')
    if how == 'compiled':
        # a clean compile: no warning from nvcc or the host compiler
        assert 'warning' not in log.lower(), log[-6000:]
