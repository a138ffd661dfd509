"""The options the best presets stand on (augmentation, class weights, label smoothing, weight
decay, precision) and the seed report that reproduces the notebook's four models."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest
from omegaconf import OmegaConf

from emnist_bench import config as config_lib
from emnist_bench import config_dir
from emnist_bench.errors import ConfigError
from emnist_bench.report.seed_table import main as seed_report_main
from emnist_bench.report.seed_table import write_seed_report
from emnist_bench.training import fit as training
from emnist_bench.training import inputs, losses, runtime
from tests.configs import compose_config

NUM_CLASSES = 47
AUGMENT_LAYERS = (keras.layers.RandomRotation, keras.layers.RandomTranslation,
                  keras.layers.RandomZoom)  # fmt: skip


def layer_types(model: keras.Model) -> set[type]:
    return {type(layer) for layer in model.layers}


@pytest.mark.parametrize("family", ["mlp", "cnn"])
def test_augmentation_layers_exist_exactly_when_on_and_only_act_in_training(family):
    plain = training.build_model(compose_config([f"model={family}"]), NUM_CLASSES)
    assert not layer_types(plain) & set(AUGMENT_LAYERS)

    cfg = compose_config([f"model={family}", "augment=strong"])
    model = training.build_model(cfg, NUM_CLASSES)
    assert set(AUGMENT_LAYERS) <= layer_types(model)
    rotation = next(layer for layer in model.layers if isinstance(layer, AUGMENT_LAYERS[0]))
    assert rotation.factor == (pytest.approx(-15 / 360), pytest.approx(15 / 360))

    images = np.random.default_rng(0).integers(0, 256, (4, 28, 28), dtype=np.uint8)
    inference = [model(images, training=False).numpy() for _ in range(2)]
    np.testing.assert_allclose(inference[0], inference[1])
    keras.utils.set_random_seed(1)
    trained = model(images, training=True).numpy()
    assert not np.allclose(trained, inference[0], atol=1e-6)


def test_balanced_class_weights_are_inverse_to_frequency():
    labels = np.array([0] * 30 + [1] * 10 + [3] * 20)
    weights = losses.class_weights(labels, num_classes=5)
    assert set(weights) == set(range(5))
    assert weights[0] * 30 == pytest.approx(weights[1] * 10) == pytest.approx(weights[3] * 20)
    assert weights[0] == pytest.approx(len(labels) / (3 * 30))
    assert weights[2] == weights[4] == 1.0  # absent classes keep a neutral weight


def test_label_smoothing_uses_one_hot_targets_and_the_configured_factor():
    cfg = compose_config(["model=mlp", "trainer.label_smoothing=0.1"])
    model = training.build_model(cfg, NUM_CLASSES)
    training.compile_model(model, cfg)
    assert isinstance(model.loss, keras.losses.CategoricalCrossentropy)
    assert model.loss.get_config()["label_smoothing"] == pytest.approx(0.1)
    images = np.zeros((6, 28, 28), np.uint8)
    batch = inputs.make_dataset(images, np.arange(6), batch_size=6, shuffle=False, seed=0,
                                  num_classes=NUM_CLASSES)  # fmt: skip
    _, targets = next(iter(batch))
    assert targets.shape == (6, NUM_CLASSES)
    np.testing.assert_array_equal(targets.numpy().argmax(1), np.arange(6))

    plain = compose_config(["model=mlp"])
    model = training.build_model(plain, NUM_CLASSES)
    training.compile_model(model, plain)
    assert isinstance(model.loss, keras.losses.SparseCategoricalCrossentropy)


def test_logit_adjusted_loss_is_crossentropy_on_logits_shifted_by_the_log_prior():
    labels = np.array([0] * 60 + [1] * 30 + [2] * 10)
    prior = losses.class_prior(labels, num_classes=4)
    np.testing.assert_allclose(prior, np.array([60, 30, 10, 1]) / 101)  # absent class counts 1

    probabilities = np.array([[0.7, 0.2, 0.05, 0.05], [0.1, 0.3, 0.5, 0.1]], np.float32)
    targets = np.array([1, 2])
    loss = losses.LogitAdjustedCrossentropy(prior)
    adjusted = np.log(probabilities) + np.log(prior)
    adjusted = np.exp(adjusted) / np.exp(adjusted).sum(axis=1, keepdims=True)
    expected = -np.log(adjusted[np.arange(2), targets]).mean()
    assert float(loss(targets, probabilities)) == pytest.approx(expected, rel=1e-5)
    one_hot = np.eye(4, dtype=np.float32)[targets]
    assert float(loss(one_hot, probabilities)) == pytest.approx(expected, rel=1e-5)
    # A uniform prior shifts every logit alike: plain cross-entropy.
    uniform = losses.LogitAdjustedCrossentropy(np.full(4, 0.25))
    plain = -np.log(probabilities[np.arange(2), targets]).mean()
    assert float(uniform(targets, probabilities)) == pytest.approx(plain, rel=1e-5)


def test_logit_adjustment_is_compiled_in_with_the_prior_and_smoothing():
    cfg = compose_config(
        ["model=mlp", "data.class_weight=logit_adjusted", "trainer.label_smoothing=0.1"]
    )
    model = training.build_model(cfg, NUM_CLASSES)
    with pytest.raises(ValueError, match="needs the training class prior"):
        training.compile_model(model, cfg)
    prior = np.full(NUM_CLASSES, 1 / NUM_CLASSES)
    training.compile_model(model, cfg, prior)
    assert isinstance(model.loss, losses.LogitAdjustedCrossentropy)
    assert model.loss.get_config()["label_smoothing"] == pytest.approx(0.1)
    assert model.loss.get_config()["prior"] == pytest.approx(list(prior))


def test_weight_decay_reaches_the_optimizer():
    cfg = compose_config(["model=mlp", "optimizer=adamw", "optimizer.weight_decay=0.003"])
    model = training.build_model(cfg, NUM_CLASSES)
    training.compile_model(model, cfg)
    assert isinstance(model.optimizer, keras.optimizers.AdamW)
    assert model.optimizer.weight_decay == pytest.approx(0.003)


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ("fpu sse2 avx2 avx512f", False),
        ("fpu avx2 avx512f avx512_bf16", True),
        ("fpu avx2 amx_tile amx_bf16", True),
    ],
)
def test_cpu_bfloat16_is_read_from_the_cpu_flags(tmp_path, flags, expected):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: test\nflags\t\t: {flags}\n")
    assert runtime.cpu_has_bfloat16(cpuinfo) is expected
    assert runtime.cpu_has_bfloat16(tmp_path / "missing") is False


def test_precision_policy_names_and_auto(monkeypatch):
    assert runtime.precision_policy("float32") == "float32"
    assert runtime.precision_policy(None) == "float32"
    assert runtime.precision_policy("mixed_bfloat16") == "mixed_bfloat16"
    monkeypatch.setattr(runtime.tf.config, "list_physical_devices", lambda kind: [])
    monkeypatch.setattr(runtime, "cpu_has_bfloat16", lambda: True)
    assert runtime.precision_policy("auto") == "mixed_bfloat16"
    monkeypatch.setattr(runtime, "cpu_has_bfloat16", lambda: False)
    assert runtime.precision_policy("auto") == "float32"
    monkeypatch.setattr(runtime.tf.config, "list_physical_devices", lambda kind: ["GPU:0"])
    assert runtime.precision_policy("auto") == "mixed_float16"


def test_bfloat16_model_keeps_float32_variables_and_outputs():
    cfg = compose_config(["model=cnn", "trainer.precision=mixed_bfloat16"])
    runtime.configure_runtime(cfg.trainer)
    try:
        model = training.build_model(cfg, NUM_CLASSES)
        assert all(v.dtype == "float32" for v in model.trainable_variables)
        conv = next(layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D))
        assert conv.compute_dtype == "bfloat16"
        assert model(np.zeros((2, 28, 28), np.uint8)).dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_unknown_precision_is_a_config_error():
    with pytest.raises(ConfigError, match="trainer.precision=half"):
        config_lib.validate(compose_config(["trainer.precision=half"]))


# --- the seed report --------------------------------------------------------------------------

PUBLISHED = {"mlp_baseline": 0.775, "mlp_seed_tuned": 0.7878, "cnn_baseline": 0.8612,
             "cnn_seed_tuned": 0.8705}  # fmt: skip


def test_seed_report_experiment_sweeps_the_four_notebook_models_with_their_schedules():
    cfg = compose_config(["+experiment=seed_report"])
    assert dict(cfg.seed_report.published) == PUBLISHED
    experiment = OmegaConf.load(config_dir() / "experiment" / "seed_report.yaml")
    assert experiment.hydra.mode == "MULTIRUN"
    assert experiment.hydra.sweeper.params.model.split(",") == list(PUBLISHED)
    for name, schedule, optimizer in [
        ("mlp_baseline", "step_decay", "adam"),
        ("cnn_baseline", "step_decay", "adam"),
        ("mlp_seed_tuned", "constant", "adam"),
        ("cnn_seed_tuned", "reduce_on_plateau", "rmsprop"),
    ]:
        job = compose_config(["+experiment=seed_report", f"model={name}"])
        assert job.model.name == name
        assert (job.lr_schedule.name, job.optimizer.name) == (schedule, optimizer)
        assert job.trainer.epochs == job.seed_report.epochs[name]
    overridden = compose_config(["+experiment=seed_report", "model=cnn_baseline",
                                 "seed_report.epochs.cnn_baseline=3"])  # fmt: skip
    assert overridden.trainer.epochs == 3


def write_seed_run(sweep: Path, model: str, val: float | None, status: str = "completed"):
    out = sweep / model
    out.mkdir(parents=True)
    metrics = {"status": status, "model": model, "epochs_run": 4, "lr_schedule": "step_decay",
               "optimizer": "adam", "train_seconds": 12.0}  # fmt: skip
    if val is not None:
        metrics |= {"val_accuracy": val, "test_accuracy": val - 0.01, "macro_f1": val - 0.02}
    (out / "metrics.json").write_text(json.dumps(metrics))
    cfg = {"data": {"root": "/data/emnist-proxy", "split": "balanced"},
           "trainer": {"epochs": 4, "seed": 42}}  # fmt: skip
    OmegaConf.save(OmegaConf.create(cfg), out / "config.yaml")


def test_seed_report_sets_each_model_beside_the_notebook_figure(tmp_path):
    write_seed_run(tmp_path, "cnn_baseline", 0.84)
    write_seed_run(tmp_path, "mlp_baseline", 0.70)
    write_seed_run(tmp_path, "cnn_seed_tuned", None, status="failed")
    table = write_seed_report(tmp_path, PUBLISHED)
    # Ordered as the notebook lists them; a failed run is a row, not a gap.
    assert list(table["model"]) == ["mlp_baseline", "cnn_baseline", "cnn_seed_tuned"]
    assert list(table["published_val_accuracy"]) == [0.775, 0.8612, 0.8705]
    assert table.set_index("model").loc["cnn_baseline", "val_accuracy"] == pytest.approx(0.84)
    markdown = (tmp_path / "seed_report.md").read_text()
    assert "| cnn_baseline | completed | 4 | step_decay | adam | 84.00% | 83.00% | 82.00% |" \
        in markdown  # fmt: skip
    assert "86.12%" in markdown and "emnist-proxy" in markdown
    assert "| cnn_seed_tuned | failed |" in markdown
    assert (tmp_path / "seed_report.csv").read_text().count("\n") == 4


def test_seed_report_command_refuses_a_folder_without_runs(tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        seed_report_main([str(tmp_path)])
    assert exited.value.code == 2
    assert "no runs found" in capsys.readouterr().err
    write_seed_run(tmp_path, "mlp_seed_tuned", 0.75)
    seed_report_main([str(tmp_path)])
    assert (tmp_path / "seed_report.md").is_file()


# --- the best presets ---------------------------------------------------------------------------


def test_best_cnn_is_convolutions_and_a_dense_head():
    cfg = compose_config(["+experiment=best_cnn"])
    config_lib.validate(cfg)
    model = training.build_model(cfg, NUM_CLASSES)
    kinds = [type(layer) for layer in model.layers]
    convs = [i for i, kind in enumerate(kinds) if kind is keras.layers.Conv2D]
    dense = [i for i, kind in enumerate(kinds) if kind is keras.layers.Dense]
    assert len(convs) == len(cfg.model.conv_filters) >= 2
    assert len(dense) == len(cfg.model.dense_units) + 1 and min(dense) > max(convs)
    assert cfg.data.class_weight == "logit_adjusted" and cfg.trainer.label_smoothing > 0


def test_best_mlp_has_only_dense_layers_with_batch_norm_and_dropout():
    cfg = compose_config(["+experiment=best_mlp"])
    config_lib.validate(cfg)
    model = training.build_model(cfg, NUM_CLASSES)
    allowed = (keras.layers.InputLayer, keras.layers.Rescaling, keras.layers.Flatten,
               keras.layers.Dense, keras.layers.BatchNormalization, keras.layers.Activation,
               keras.layers.Dropout)  # fmt: skip
    assert all(isinstance(layer, allowed) for layer in model.layers)
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert len(dense) == len(cfg.model.hidden_units) + 1 >= 4
