"""emnist_bench: config-driven experiments comparing Keras MLPs and CNNs on EMNIST."""

from pathlib import Path

__version__ = "0.3.0"


def config_dir() -> Path:
    """Returns the folder holding the Hydra configs, with the schemas its group files name
    (``emnist_bench.schema``) registered in Hydra's ConfigStore, ready to compose."""
    from emnist_bench.schema import register

    register()
    return conf_folder()


def conf_folder() -> Path:
    """Returns the folder holding the Hydra configs, registering nothing (the schemas read it).

    Installed from a wheel, ``conf/`` ships as ``emnist_bench/conf``; in a source checkout
    (editable install) it is the top-level ``conf/`` beside the package.
    """
    packaged = Path(__file__).resolve().parent / "conf"
    if (packaged / "config.yaml").is_file():
        return packaged
    return Path(__file__).resolve().parent.parent / "conf"
