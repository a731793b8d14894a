"""The layering the README's architecture section describes: the R-FCN
core never imports the optional layers (rfcn_mm.fast, rfcn_mm.deploy), the
fast layer never imports deploy, and each builds on the one below."""
import ast
import os.path as osp
from pathlib import Path

import pytest

PACKAGE = Path(osp.dirname(osp.dirname(osp.abspath(__file__)))) / 'rfcn_mm'
FAST = 'rfcn_mm.fast'
DEPLOY = 'rfcn_mm.deploy'


def imports_of(names, package):
    return [n for n in names if n == package or n.startswith(package + '.')]


def imported_modules(path: Path, source: str = None):
    """Absolute names of the modules a file imports (relative imports
    resolved against its package)."""
    tree = ast.parse(source if source is not None else path.read_text())
    parts = list(path.relative_to(PACKAGE.parent).with_suffix('').parts)
    package = parts if parts[-1] == '__init__' else parts[:-1]
    if package[-1:] == ['__init__']:
        package = package[:-1]
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level \
                else []
            module = '.'.join(base + ([node.module] if node.module else []))
            names.append(module)
            # `from . import fast` imports a module too
            names += [f'{module}.{a.name}' for a in node.names]
    return names


def core_files():
    for path in sorted(PACKAGE.rglob('*.py')):
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] in ('fast', 'deploy') or rel == Path('__init__.py'):
            continue  # the optional layers; the top level imports fast
        yield path


def fast_files():
    return sorted((PACKAGE / 'fast').rglob('*.py'))


def test_the_scanner_sees_relative_and_absolute_imports():
    path = PACKAGE / 'models' / 'detectors' / 'rfcn.py'
    for src in ('from ...fast import FastRFCN', 'import rfcn_mm.fast',
                'from rfcn_mm.fast.fixed_shape import slots',
                'from ... import fast'):
        assert any(
            n == FAST or n.startswith(FAST + '.')
            for n in imported_modules(path, src)), src
    assert not any(
        n.startswith(FAST)
        for n in imported_modules(path, 'from ..roi_heads import PSRoIHead'))


@pytest.mark.parametrize(
    'path', list(core_files()), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_core_does_not_import_the_optional_layers(path):
    names = imported_modules(path)
    bad = imports_of(names, FAST) + imports_of(names, DEPLOY)
    assert not bad, f'{path} imports an optional layer: {bad}'


@pytest.mark.parametrize(
    'path', fast_files(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_fast_layer_does_not_import_deploy(path):
    bad = imports_of(imported_modules(path), DEPLOY)
    assert not bad, f'{path} imports rfcn_mm.deploy: {bad}'


def test_the_package_does_not_import_deploy():
    # deploy needs the optional ONNX packages for its ONNX parts
    assert not imports_of(imported_modules(PACKAGE / '__init__.py'), DEPLOY)


def test_each_layer_builds_on_the_one_below():
    fast = PACKAGE / 'fast' / 'fast_rfcn.py'
    assert 'rfcn_mm.models' in imported_modules(fast)
    deploy = PACKAGE / 'deploy' / 'fixed_shape_detector.py'
    assert 'rfcn_mm.fast' in imported_modules(deploy)
