"""Importing TensorFlow (Keras's backend) without its start-up noise.

TensorFlow's C++ start-up lines (``All log messages before absl::InitializeLog()``, oneDNN and
CPU-feature notices) ignore ``TF_CPP_MIN_LOG_LEVEL`` because they come before its logging starts;
the import runs with stderr closed instead, and absl's Python warnings are kept to errors.
TensorFlow's warning that functions are "retracing" counts across models: a sweep or a search
that builds a new model per job or trial sets it off from the sixth, though each model traces its
own functions once; it is dropped. A user who asks for TensorFlow's logs
(``TF_CPP_MIN_LOG_LEVEL=0`` or ``1``) gets them all.

A missing TensorFlow still raises ``ModuleNotFoundError``; every command's edge
(``errors.exit_on_user_error``) turns it into one line with the pip command.
"""

from __future__ import annotations

import logging
import os
import sys

from emnist_bench.errors import stderr_closed


def wants_tensorflow_logs() -> bool:
    """Whether the user lowered ``TF_CPP_MIN_LOG_LEVEL`` below 2 (the commands' default)."""
    return os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2").strip() in ("0", "1")


def _new_models_retracing(record: logging.LogRecord) -> bool:
    """False for TensorFlow's retracing warning (see the module's docstring), else True."""
    return "triggered tf.function retracing" not in record.getMessage()


def _quiet_python_logs() -> None:
    logger = logging.getLogger("tensorflow")
    if _new_models_retracing not in logger.filters:
        logger.addFilter(_new_models_retracing)


def import_tensorflow():
    """Imports TensorFlow and Keras quietly (once per process); returns ``tensorflow``."""
    if wants_tensorflow_logs():
        import keras  # noqa: F401
        import tensorflow

        return tensorflow
    _quiet_python_logs()
    if "tensorflow" in sys.modules and "keras" in sys.modules:
        return sys.modules["tensorflow"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with stderr_closed():
        import keras  # noqa: F401
        import tensorflow
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:
        pass
    return tensorflow
