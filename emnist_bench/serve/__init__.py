"""A page to draw on: the HTTP server (``web``, the page in ``static/``) and
``python -m emnist_bench.serve`` (``command``)."""
