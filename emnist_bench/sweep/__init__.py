"""Sweeps: the technique grid's variants (``variants``) and the Hydra callbacks that run around
its jobs (``callbacks``). Importing the package registers the ``variant`` config group."""

from emnist_bench.sweep.variants import register

register()
