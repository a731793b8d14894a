"""The layering the README's architecture section describes: the R-FCN
core never imports the optional fast layer (rfcn_mm.fast); the fast layer
builds on the core."""
import ast
import os.path as osp
from pathlib import Path

import pytest

PACKAGE = Path(osp.dirname(osp.dirname(osp.abspath(__file__)))) / 'rfcn_mm'
FAST = 'rfcn_mm.fast'


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
        if rel.parts[0] == 'fast' or rel == Path('__init__.py'):
            continue  # the fast layer itself; the top level imports both
        yield path


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
def test_core_does_not_import_the_fast_layer(path):
    bad = [
        n for n in imported_modules(path)
        if n == FAST or n.startswith(FAST + '.')
    ]
    assert not bad, f'{path} imports the fast layer: {bad}'


def test_the_fast_layer_builds_on_the_core():
    fast = PACKAGE / 'fast' / 'fast_rfcn.py'
    assert 'rfcn_mm.models' in imported_modules(fast)
