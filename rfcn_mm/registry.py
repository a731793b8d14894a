"""rfcn_mm's registry scope.

Every rfcn_mm class is registered into mmdet's own registries
(``mmdet.registry.MODELS`` and the like). The registries here are their
empty children under the scope ``rfcn_mm``: a config that inherits
``rfcn_mm::...`` gets ``_scope_='rfcn_mm'`` on its dicts (mmengine's rule
for configs of another package), and building them looks a type up here
first and then, finding nothing, in mmdet and mmengine, where it is.
"""
import mmdet.registry as mmdet_registry
from mmengine.registry import Registry

__all__ = []


def _child(name: str) -> Registry:
    parent = getattr(mmdet_registry, name)
    return Registry(
        parent.name, parent=parent, scope='rfcn_mm', locations=['rfcn_mm'])


for _name in dir(mmdet_registry):
    if isinstance(getattr(mmdet_registry, _name), Registry):
        globals()[_name] = _child(_name)
        __all__.append(_name)
