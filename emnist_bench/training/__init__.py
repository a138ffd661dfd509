"""Training: schedules, losses, input pipelines, callbacks and the fit itself.

``schedules`` is plain Python; every other module imports TensorFlow and is loaded only when a
run starts, so ``--help`` and config composition stay instant.
"""
