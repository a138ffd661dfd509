"""How long loading EMNIST train + test takes once the parse is cached.

Parses the IDX proxy once to fill a cache, then times ``load_part`` for train and test from
the cache ``--repeats`` times. Prints a summary, and the result as JSON on the last line.

    .venv/bin/python benchmarks/cache_load.py [--root DIR] [--cache-dir DIR] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from emnist_bench.data.load import load_mapping, load_part  # noqa: E402

DEFAULT_ROOT = REPO_ROOT.parent / "shared" / "data" / "emnist-proxy"
SPLIT = "balanced"


def load_train_test(root: Path, cache_dir: Path) -> int:
    """Loads both parts through the cache; returns the number of images."""
    mapping = load_mapping(root, SPLIT)
    parts = [
        load_part(root, SPLIT, part, cache_dir=cache_dir, mapping=mapping)
        for part in ("train", "test")
    ]
    return sum(part.images.shape[0] for part in parts)


def measure(root: Path, cache_dir: Path, repeats: int) -> dict:
    start = time.perf_counter()
    images = load_train_test(root, cache_dir)
    parse_s = time.perf_counter() - start
    cached = sorted(p.name for p in cache_dir.glob(f"emnist-{SPLIT}-*.npz"))
    if len(cached) < 2:
        raise SystemExit(f"expected the train and test cache files in {cache_dir}, found {cached}")
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        if load_train_test(root, cache_dir) != images:
            raise SystemExit("the cached load returned a different number of images")
        times.append(time.perf_counter() - start)
    return {
        "benchmark": "cache_load",
        "root": str(root),
        "images": images,
        "first_parse_s": round(parse_s, 4),
        "cached_median_s": round(statistics.median(times), 4),
        "cached_times_s": [round(t, 4) for t in times],
        "repeats": repeats,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="EMNIST IDX folder")
    parser.add_argument("--cache-dir", type=Path, help="cache folder (default: a temp folder)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if not args.root.is_dir():
        raise SystemExit(f"{args.root}: folder not found (see ../shared/data/README.md)")
    with tempfile.TemporaryDirectory(prefix="emnist-cache-") as temporary:
        cache_dir = args.cache_dir or Path(temporary)
        result = measure(args.root, cache_dir, args.repeats)
    print(f"images (train + test): {result['images']}")
    print(f"first load (parse + cache write): {result['first_parse_s']:.3f} s")
    print(f"cached load, median of {args.repeats}: {result['cached_median_s']:.3f} s")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
