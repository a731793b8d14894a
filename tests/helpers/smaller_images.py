"""Configs' networks on smaller images: their Resize scales divided by a
factor (a third of the size is a ninth of the compute), everything else as
configured."""


def shrink_resizes(node, factor=3):
    """Every Resize-like transform's scales in ``node`` (a config, a
    pipeline, a data loader) divided by ``factor``, in place."""
    if isinstance(node, dict):
        if 'Resize' in str(node.get('type', '')):
            for key in ('scale', 'scales'):
                if key in node:
                    node[key] = shrunk(node[key], factor)
        for value in node.values():
            shrink_resizes(value, factor)
    elif isinstance(node, (list, tuple)):
        for value in node:
            shrink_resizes(value, factor)


def shrunk(value, factor):
    """A scale (a number, or nested tuples/lists of them) divided by
    ``factor``, at least 32."""
    if isinstance(value, (int, float)):
        return max(32, int(value) // factor)
    return type(value)(shrunk(v, factor) for v in value)
