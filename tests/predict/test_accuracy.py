"""``predict`` on real handwriting rendered as scans scores as ``evaluate`` does on the same
images: the conversion gives the model what EMNIST gave it."""

from __future__ import annotations

import pytest

from emnist_bench.data.load import load_part
from tests.predict.scans import compare_with_evaluate

# A plain CNN with light augmentation (shifts, rotations, zoom), trained 8 epochs on the CSV
# proxy's 2,115 training images: about 65% on its test split, in about 10 s on 2 cores.
MODEL = ("model=cnn", "augment=light", "trainer.epochs=8", "trainer.deterministic=true")


@pytest.fixture(scope="module")
def csv_proxy(shared_data):
    """The real CSV proxy (470 test images, 10 per class); skips when ../shared is absent."""
    root = shared_data / "emnist-proxy-csv"
    if not root.is_dir():
        pytest.skip(f"{root} not found")
    return root


@pytest.fixture(scope="module")
def proxy_run(csv_proxy, proxy_cache, tmp_path_factory):
    from emnist_bench.run import run
    from tests.configs import compose_config, smoke_overrides

    out = tmp_path_factory.mktemp("proxy_run")
    overrides = smoke_overrides(csv_proxy, proxy_cache, *MODEL, "data.val_size=0.1", subset=None)
    return out, run(compose_config(overrides, out))


@pytest.mark.slow
def test_predict_on_scans_of_the_test_split_scores_as_evaluate_does(csv_proxy, proxy_run, tmp_path):
    """On 470 images one image is 0.21 points and the gap moves by about a point from seed to
    seed (benchmarks/RESULTS.md), so the default suite allows 3 points beside a 85% per-image
    agreement; the tighter check is the slow test below, on the 7,050 images of the IDX proxy."""
    folder, metrics = proxy_run
    test = load_part(csv_proxy, "balanced", "test", cache_dir=None)
    result = compare_with_evaluate(folder, test.images, test.labels, tmp_path)
    assert result["evaluate_accuracy"] == pytest.approx(metrics["test_accuracy"])
    assert (
        result["evaluate_accuracy"] > 0.3
    )  # well above chance (1/47), so the test means something
    assert abs(result["predict_accuracy"] - result["evaluate_accuracy"]) <= 0.03, result
    assert result["same_class"] > 0.85
    assert (tmp_path / "sheet.png").is_file() and len(result["results"]) == 470


@pytest.mark.slow
def test_predict_on_scans_of_the_idx_test_split_is_within_1_5_points_of_evaluate(
    idx_proxy, proxy_cache, tmp_path
):
    """The conversion costs the model a little: predict scored 0.60 and 1.05 points under
    evaluate in two trainings of this model (82%), with the paired gap's standard error about
    0.22 points on 7,050 images. So the gap may reach 1.5 points and nine in ten images must get
    the same class; a broken conversion loses tens of points and the agreement with them."""
    from emnist_bench.run import run
    from tests.configs import compose_config

    overrides = [f"data.root={idx_proxy}", f"data.cache_dir={proxy_cache}", "model=cnn",
                 "augment=light", "trainer.epochs=3", "trainer.deterministic=true"]  # fmt: skip
    metrics = run(compose_config(overrides, tmp_path / "run"))
    test = load_part(idx_proxy, "balanced", "test", cache_dir=proxy_cache)
    result = compare_with_evaluate(tmp_path / "run", test.images, test.labels, tmp_path)
    assert result["evaluate_accuracy"] == pytest.approx(metrics["test_accuracy"])
    assert result["evaluate_accuracy"] > 0.75, result
    assert abs(result["predict_accuracy"] - result["evaluate_accuracy"]) <= 0.015, result
    assert result["same_class"] > 0.9, result
