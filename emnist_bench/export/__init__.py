"""A run's model for serving and phones: the SavedModel and TFLite files and running them back
(``formats``), ``python -m emnist_bench.export`` with its checks (``command``)."""
