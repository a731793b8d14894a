"""Build rfcn_mm's CUDA kernels for the host (``cuda_on_host/``), so that
tests on machines without a GPU run the kernels' own source.

Every CUDA thread of a block becomes a std::thread and ``__syncthreads`` a
std::barrier; blocks run one at a time, so block-wide (``__shared__``)
arrays become static and dynamic shared memory points into one host buffer;
``gpuAtomicAdd`` is a std::atomic_ref. This checks the kernels' logic (what
they compute, read and write, that every thread meets every barrier), not
the GPU's memory model or speed.
"""
import glob
import os.path as osp
import re
import shutil
import subprocess

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
HARNESS = osp.join(ROOT, 'tests', 'test_ops', 'cuda_on_host')
COMMON = osp.join(ROOT, 'rfcn_mm', 'ops', 'csrc', 'common')
KERNELS = osp.join(COMMON, 'cuda')


def _gxx_has_cxx20_threads():
    """Whether g++ is there and has what cuda_on_host.h uses (C++20's
    std::barrier and std::atomic_ref)."""
    if shutil.which('g++') is None:
        return False
    probe = ('#include <atomic>\n#include <barrier>\n'
             'int main() { float f = 0; std::barrier<> b(1);'
             ' std::atomic_ref<float>(f).fetch_add(1.f); }\n')
    return subprocess.run(
        ['g++', '-std=c++20', '-fsyntax-only', '-x', 'c++', '-'],
        input=probe,
        text=True,
        capture_output=True).returncode == 0


needs_gxx = pytest.mark.skipif(
    not _gxx_has_cxx20_threads(),
    reason='needs g++ with C++20 (std::barrier, std::atomic_ref) to build '
    'the kernels for the host')


def host_source(text):
    """A CUDA kernel file's text as the host harness compiles it."""
    text = text.replace('#include <ATen/cuda/Atomic.cuh>\n', '')
    text = re.sub(
        r'extern __shared__ (?:__align__\(\d+\) )?([\w ]+?) (\w+)\[\];',
        r'\1* \2 = reinterpret_cast<\1*>(host_dynamic_smem);', text)
    text = re.sub(r'(?m)^(\s*)__shared__ ', r'\1static ', text)
    if '__shared__' in text or '#include <ATen' in text:
        raise AssertionError('a kernel file uses CUDA that the host harness '
                             'does not translate')
    return text


# AddressSanitizer and UndefinedBehaviorSanitizer, every finding fatal: an
# out-of-bounds read or write, or a float-to-int cast out of range, makes
# the harness exit with an error instead of reading garbage
SANITIZE = ('-fsanitize=address,undefined,float-cast-overflow',
            '-fno-sanitize-recover=all', '-fno-omit-frame-pointer')


def _gxx_has_sanitizers():
    if shutil.which('g++') is None:
        return False
    return subprocess.run(
        ['g++', *SANITIZE, '-x', 'c++', '-', '-o', '/dev/null'],
        input='int main() { return 0; }\n',
        text=True,
        capture_output=True).returncode == 0


def build(harness, build_dir, edit=None, sanitize=False):
    """Compile ``cuda_on_host/<harness>.cpp`` against the kernels (each
    file's text passed through ``edit(name, text)`` first, if given), with
    the sanitizers of ``SANITIZE`` if ``sanitize``; returns the
    executable's path."""
    for path in glob.glob(osp.join(KERNELS, '*.cuh')):
        with open(path) as f:
            text = f.read()
        name = osp.basename(path)
        if edit is not None:
            text = edit(name, text)
        (build_dir / name).write_text(host_source(text))
    exe = build_dir / harness
    subprocess.run([
        'g++', '-std=c++20', '-O2', '-pthread', '-Wall',
        '-Wno-unknown-pragmas', *(SANITIZE if sanitize else ()),
        f'-I{build_dir}', f'-I{COMMON}',
        osp.join(HARNESS, f'{harness}.cpp'), '-o',
        str(exe)
    ],
                   check=True)
    return str(exe)


def replacing(name, old, new):
    """An ``edit`` for :func:`build` that replaces ``old`` (which must be
    there) by ``new`` in the kernel file ``name``."""

    def edit(file, text):
        if file == name:
            assert old in text, f'{old!r} is not in {name}'
            text = text.replace(old, new)
        return text

    return edit


def run(exe, data, timeout=300):
    """Run a harness on ``data`` (bytes on stdin); its stdout."""
    proc = subprocess.run([exe],
                          input=data,
                          capture_output=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout
