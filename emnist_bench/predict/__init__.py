"""Using a run's model on one's own handwriting: image files read with bounded work
(``images``), EMNIST's conversion of an image (``preprocess``), a run opened for use
(``saved``), the contact sheet (``sheet``) and ``python -m emnist_bench.predict`` (``command``)."""
