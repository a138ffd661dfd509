"""emnist_bench: config-driven experiments comparing Keras MLPs and CNNs on EMNIST."""

from pathlib import Path

__version__ = "0.3.0"


def config_dir() -> Path:
    """Returns the folder holding the Hydra configs.

    Installed from a wheel, ``conf/`` ships as ``emnist_bench/conf``; in a source checkout
    (editable install) it is the top-level ``conf/`` beside the package. Its group files name
    schemas (``emnist_bench.schema``), which are registered here, before anything composes.
    """
    from emnist_bench.schema import register

    register()
    packaged = Path(__file__).resolve().parent / "conf"
    if (packaged / "config.yaml").is_file():
        return packaged
    return Path(__file__).resolve().parent.parent / "conf"
