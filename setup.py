"""Build script of rfcn_mm and its C++/CUDA extension ``rfcn_mm._ext``.

The extension is compiled as mmcv compiles its ops: with CUDA kernels when a
GPU is visible or ``FORCE_CUDA=1`` is set (``TORCH_CUDA_ARCH_LIST`` picks the
architectures), CPU kernels only otherwise. Build without isolation so that
the extension is compiled against the torch that is already installed::

    pip install --no-build-isolation -e .
"""
import glob
import os
import os.path as osp
import shutil
import sys
import sysconfig
from setuptools import find_packages, setup

ROOT = osp.dirname(osp.abspath(__file__))
EXT_ROOT = osp.join('rfcn_mm', 'ops', 'csrc')


def get_version():
    scope = {}
    with open(osp.join('rfcn_mm', 'version.py')) as f:
        exec(compile(f.read(), 'rfcn_mm/version.py', 'exec'), scope)
    return scope['__version__']


def parse_requirements(fname='requirements.txt'):
    reqs = []
    with open(fname) as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if line and not line.startswith(('setuptools', 'wheel')):
                reqs.append(line)
    return reqs


def add_mim_extension():
    """Put the configs where mmengine looks for a package's configs
    (``rfcn_mm/.mim/configs``, mmdet's layout), so that ``rfcn_mm::rfcn/...``
    bases resolve wherever rfcn_mm is installed. A symlink to the checkout's
    folder serves editable installs and wheels alike (the build copies what
    it points to); where symlinks cannot be made, a copy."""
    mim = osp.join('rfcn_mm', '.mim')
    os.makedirs(mim, exist_ok=True)
    for name in ('configs', 'model-index.yml'):
        target = osp.join(mim, name)
        source = osp.join('..', '..', name)
        if osp.islink(target) and os.readlink(target) == source:
            continue
        if osp.islink(target) or osp.isfile(target):
            os.remove(target)
        elif osp.isdir(target):
            shutil.rmtree(target)
        try:
            os.symlink(source, target)
        except OSError:
            if osp.isdir(name):
                shutil.copytree(name, target)
            else:
                shutil.copyfile(name, target)


def extension_spec(with_cuda, debug=False):
    """Sources, include folders, macros and compile flags of
    ``rfcn_mm._ext``, CUDA kernels included when ``with_cuda``: the one
    description of the build, which tests/test_ops/test_cuda_compiles.py
    also compiles with nvcc on machines without a GPU.

    Python's own CFLAGS carry ``-g``, which makes the library about 90x
    larger and its compile slower: ``debug=False`` turns it off
    (``RFCN_DEBUG=1`` at build time keeps it, for gdb and for sanitizer
    reports with line numbers)."""
    sources = glob.glob(osp.join(EXT_ROOT, 'pytorch', '*.cpp'))
    sources += glob.glob(osp.join(EXT_ROOT, 'pytorch', 'cpu', '*.cpp'))
    define_macros = []
    g = '-g' if debug else '-g0'
    extra_compile_args = {'cxx': ['-O3', g]}
    include_dirs = [osp.join(ROOT, EXT_ROOT, 'common')]
    if with_cuda:
        define_macros.append(('RFCN_WITH_CUDA', None))
        sources += glob.glob(osp.join(EXT_ROOT, 'pytorch', 'cuda', '*.cu'))
        include_dirs.append(osp.join(ROOT, EXT_ROOT, 'common', 'cuda'))
        extra_compile_args['nvcc'] = [
            # no FMA contraction: bin edges then round exactly as on the CPU
            '-O3', '--fmad=false', '-Xcompiler', g,
            '-D__CUDA_NO_HALF_OPERATORS__', '-D__CUDA_NO_HALF_CONVERSIONS__',
            '-D__CUDA_NO_HALF2_OPERATORS__'
        ]
    depends = glob.glob(osp.join(EXT_ROOT, 'common', '**', '*.*'),
                        recursive=True)
    return dict(
        sources=sorted(sources),
        depends=sorted(depends),
        include_dirs=include_dirs,
        define_macros=define_macros,
        extra_compile_args=extra_compile_args)


def make_extensions():
    try:
        import torch
        from torch.utils.cpp_extension import (CUDA_HOME, BuildExtension,
                                               CppExtension, CUDAExtension)
    except ImportError as e:
        raise RuntimeError(
            'rfcn_mm compiles its ops against the installed torch: install '
            'torch first, then `pip install --no-build-isolation -e .`'
        ) from e

    with_cuda = os.getenv('FORCE_CUDA', '0') == '1' or (
        torch.cuda.is_available() and CUDA_HOME is not None)
    extension = CUDAExtension if with_cuda else CppExtension
    ext = extension(
        name='rfcn_mm._ext',
        **extension_spec(with_cuda, os.getenv('RFCN_DEBUG', '0') == '1'))
    return [ext], {'build_ext': build_ext_in_one_folder(BuildExtension)}


def build_ext_in_one_folder(base):
    """``base`` (torch's BuildExtension) with one build folder for every
    way the extension is built: ``pip install -e .`` (which would otherwise
    compile in a fresh temporary folder each time), ``setup.py build_ext
    --inplace`` and ``setup.py bdist_wheel`` all keep their objects and
    ninja's state in ``build/temp.<platform>-<python>`` of the checkout, so
    each compiles only what changed since the last build. An explicit
    ``--build-temp`` is respected."""

    class BuildExtInOneFolder(base):

        def finalize_options(self):
            explicit = self.build_temp
            super().finalize_options()
            if explicit is None:
                self.build_temp = osp.join(
                    ROOT, 'build',
                    f'temp.{sysconfig.get_platform()}-'
                    f'{sys.implementation.cache_tag}')

    return BuildExtInOneFolder


if __name__ == '__main__':
    add_mim_extension()
    ext_modules, cmdclass = make_extensions()
    setup(
        name='rfcn_mm',
        version=get_version(),
        description='R-FCN (Dai et al. 2016) for MMDetection 3.x',
        long_description=open('README.md').read(),
        long_description_content_type='text/markdown',
        license='Apache License 2.0',
        packages=find_packages(exclude=('configs', 'tools', 'tests')),
        include_package_data=True,
        package_data={
            'rfcn_mm.ops': ['csrc/**/*'],
            'rfcn_mm': ['.mim/model-index.yml', '.mim/configs/**/*']
        },
        python_requires='>=3.8',
        install_requires=parse_requirements(),
        # pip install rfcn_mm[deploy]: ONNX export
        # (tools/deployment/export.py) and ONNX Runtime
        extras_require=dict(
            deploy=parse_requirements('requirements/deploy.txt'),
            # pip install rfcn_mm[tests]: pytest and pytest-xdist
            tests=parse_requirements('requirements/tests.txt')),
        ext_modules=ext_modules,
        cmdclass=cmdclass,
        zip_safe=False)
