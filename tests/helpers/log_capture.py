"""The messages mmengine's current logger emits at WARNING and above."""
import contextlib
import logging


@contextlib.contextmanager
def logged_warnings():
    from mmengine.logging import MMLogger
    records = []

    class Grab(logging.Handler):

        def emit(self, record):
            records.append(record.getMessage())

    logger = MMLogger.get_current_instance()
    handler = Grab(level=logging.WARNING)
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)
