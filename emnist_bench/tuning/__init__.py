"""Hyperparameter search: the space from config (``space``) and keras-tuner driving it
(``search``, which imports TensorFlow)."""
