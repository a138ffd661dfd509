"""Config composition stays free of TensorFlow; wrong values stop a run in one clear line."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import pytest
from omegaconf import OmegaConf

import emnist_bench
from emnist_bench import config as config_lib
from emnist_bench.cli import composition_error
from emnist_bench.errors import ConfigError
from emnist_bench.techniques import TECHNIQUE_GROUPS, USER_GROUPS, options
from tests.configs import compose_config


def run_cli(*arguments: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "emnist_bench", *arguments],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def test_every_option_composes_without_importing_tensorflow():
    script = textwrap.dedent(
        """
        import sys
        from emnist_bench import config as config_lib
        from emnist_bench.techniques import TECHNIQUE_GROUPS, options
        from tests.configs import compose_config
        groups = ("model", *TECHNIQUE_GROUPS, "augment", "data", "tuner")
        overrides = [f"{g}={o}" for g in groups for o in options(g)]
        overrides += [f"+experiment={o}" for o in options("experiment")]
        for override in overrides:
            cfg = compose_config([override])
            config_lib.validate(cfg)
            config_lib.model_arguments(cfg, 47)
            config_lib.technique_choices(cfg)
        heavy = [m for m in ("tensorflow", "keras") if m in sys.modules]
        assert not heavy, heavy
        print("composed", len(overrides))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    groups = ("model", *TECHNIQUE_GROUPS, "augment", "data", "tuner", "experiment")
    assert int(result.stdout.split()[-1]) == sum(len(options(g)) for g in groups)


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_lists_every_group_and_the_config_without_tensorflow_or_hydra(flag):
    script = (
        f"import sys, runpy; sys.argv=['emnist_bench', '{flag}']\n"
        "try:\n runpy.run_module('emnist_bench', run_name='__main__')\n"
        "except SystemExit: pass\n"
        "heavy = [m for m in ('tensorflow', 'keras', 'hydra') if m in sys.modules]\n"
        "assert not heavy, heavy"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    for group in USER_GROUPS:
        assert f"\n{group}: {', '.join(options(group))}\n" in result.stdout
    lines = result.stdout.splitlines()
    assert lines[0].startswith("usage: python -m emnist_bench ")
    examples = "\n".join(lines[:15])
    for command in ("-m +sweep=technique_grid", "emnist_bench.evaluate ", "emnist_bench.report "):
        assert command in examples
    assert "data.root" in examples and "$EMNIST_BENCH_DATA" in result.stdout
    groups = result.stdout.split("== Groups", 1)[1].split("== Config", 1)[0]
    listed = {line.split(":")[0] for line in groups.splitlines()[1:] if ":" in line}
    assert listed == set(USER_GROUPS)  # not the internal variant, schema or search_space groups
    config = result.stdout.split("== Config (override any key: key=value) ==\n", 1)[1]
    for block in ("optimizer:\n  name: adam\n  learning_rate: 0.001\n", "trainer:\n  epochs: 10\n"):
        assert block in config
    assert "output_dir: ${hydra:runtime.output_dir}" in config
    assert result.stdout.rstrip().endswith("python -m emnist_bench --hydra-help")


def test_the_help_config_is_the_config_hydra_composes():
    from emnist_bench.usage import default_config

    composed = compose_config(output_dir=None)
    assert OmegaConf.to_yaml(default_config()) == OmegaConf.to_yaml(composed)


def test_each_option_alone_is_what_hydra_composes():
    groups = ("model", *TECHNIQUE_GROUPS, "augment", "data", "tuner", "search_space")
    for group in groups:
        for option in options(group):
            mine = config_lib.option_config(group, option)
            if group == "search_space":
                hydras = compose_config([f"search_space@search_space.mlp={option}"])
                hydras = hydras.search_space.mlp
            else:
                hydras = compose_config([f"{group}={option}"])[group]
            assert OmegaConf.get_type(mine) is OmegaConf.get_type(hydras), (group, option)
            assert OmegaConf.to_container(mine) == OmegaConf.to_container(hydras), (group, option)


def test_version_prints_the_package_version():
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"emnist_bench {emnist_bench.__version__}"


def test_required_technique_grid_is_available():
    assert len(options("lr_schedule")) >= 2 and {"step_decay", "reduce_on_plateau"} <= set(
        options("lr_schedule")
    )
    assert len(options("activation")) >= 3 and len(options("optimizer")) >= 3
    assert set(options("batch_norm")) == {"on", "off"}
    assert {"none", "l1", "l2"} <= set(options("regularization"))
    assert set(options("dropout")) == {"on", "off"}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model.hidden_units=[64,32]"], "an MLP needs at least 3"),
        (["model.hidden_units=[64,0,32]"], "model.hidden_units has 0; each entry must be >= 1"),
        (["model=cnn", "model.conv_filters=[32]"], "a CNN needs at least 2"),
        (["dropout.rate=1.0"], "dropout.rate=1.0 must be in [0, 1)"),
        (["dropout.rate=-0.1"], "must be in [0, 1)"),
        (["model.dropout_rates=[0.1,0.2,1.5]"], "model.dropout_rates has 1.5; each entry must"),
        (["model.activations=[relu,relu]"], "model.activations has 2 entries, expected 3"),
        (["model=cnn", "model.dense_activations=[relu,elu]"], "model.dense_activations has 2"),
        (["trainer.epochs=-1"], "trainer.epochs=-1 must be >= 0"),
        (["trainer.batch_size=0"], "trainer.batch_size=0"),
        (["optimizer.learning_rate=0"], "optimizer.learning_rate=0.0 must be > 0"),
        (["optimizer=adamw", "optimizer.weight_decay=-1"], "optimizer.weight_decay=-1.0 must be"),
        (["lr_schedule=step_decay", "lr_schedule.every=0"], "lr_schedule.every=0 must be >= 1"),
        (["tuner=random", "tuner.max_trials=0"], "tuner.max_trials=0 must be >= 1"),
        (["regularization.l2=-1"], "must be >= 0"),
        (["regularization=l1", "regularization.l2=1e-4"], "regularization.l2=0.0001 has no"),
        (["regularization.l1=1e-5"], "regularization.l1=1e-05 has no place in regularization=none"),
        (["model=cnn", "model.pool_after=[1,3]"], "model.pool_after=[1, 3] must number conv"),
        (
            ["model=cnn", "model.crop=10"],
            "model.crop=10 must be in [0, 10) (pixels cut from each side",
        ),
        (["model=cnn", "model.kernel_size=[3,0]"], "model.kernel_size has 0; each entry must"),
        (["trainer.label_smoothing=1.5"], "trainer.label_smoothing=1.5 must be in [0, 1)"),
        (["trainer.steps_per_execution=0"], "trainer.steps_per_execution=0 must be >= 1"),
        (["trainer.sample_grid=0"], "trainer.sample_grid=0 must be >= 1"),
        (["trainer.intra_op_threads=-3"], "trainer.intra_op_threads=-3 must be >= 1 (or null"),
        (["tuner=hyperband", "tuner.max_epochs=0"], "tuner.max_epochs=0 must be >= 1"),
        (
            ["data.val_size=0", "lr_schedule=reduce_on_plateau"],
            "lr_schedule.monitor=val_loss needs validation images, but data.val_size=0; watch loss",
        ),
        (["data.val_size=0", "tuner=random"], "tuner.objective=val_accuracy needs validation"),
        (["tuner=hyperband", "tuner.factor=1"], "tuner.factor=1 must be >= 2 (the models divided"),
        (["data.subset=0"], "data.subset=0 must be >= 1 (images per class, or null"),
        (["augment=light", "augment.shift=1.5"], "augment.shift=1.5 must be in [0, 1) (a fr"),
        (["optimizer=sgd", "optimizer.momentum=1.2"], "optimizer.momentum=1.2 must be in [0, 1)"),
        (["lr_schedule=one_cycle", "lr_schedule.warmup_fraction=2"], "warmup_fraction=2.0 must"),
        (["lr_schedule=reduce_on_plateau", "lr_schedule.factor=2"], "factor=2.0 must be > 0 and"),
        (["lr_schedule=step_decay", "lr_schedule.drop=0"], "lr_schedule.drop=0.0 must be > 0"),
        (["optimizer=sgd", "optimizer.name=adam"], "optimizer.name=adam does not take the keys"),
        (["lr_schedule.name=cosine"], "choose lr_schedule=cosine instead"),
    ],
)
def test_wrong_values_are_refused_with_their_message(overrides, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        config_lib.validate(compose_config(overrides))


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["optimizer=adamm"], "unknown optimizer option 'adamm'; choose one of: adadelta"),
        (
            ["model=mlp", "model.hidden_units=[64,32]"],
            "model.hidden_units has 2 entries; an MLP needs at least 3",
        ),
        (["dropout.rate=1.5"], "dropout.rate=1.5 must be in [0, 1)"),
        (["trainer.epochs=-3"], "trainer.epochs=-3 must be >= 0"),
        (["model=cnn", "model.kernel_size=0"], "model.kernel_size=0 must be >= 1"),
        (["optimizer.name=adamm"], "optimizer.name=adamm: Invalid value 'adamm', expected one"),
        (["activation.name=rellu"], "activation.name=rellu: Invalid value 'rellu', expected"),
        # Types and key names are the schema's to check (emnist_bench.schema).
        (["trainer.epochs=abc"], "trainer.epochs=abc: Value 'abc' of type 'str' could not be"),
        (["trainer.epoch=3"], "Could not override 'trainer.epoch': Key 'epoch' not in"),
        (["model.hidden_units=[a,b,c]"], "model.hidden_units=[a,b,c]: Value 'a' of type 'str'"),
        (["dropout.enabled=maybe"], "dropout.enabled=maybe: Value 'maybe' is not a valid bool"),
    ],
)
def test_cli_refuses_wrong_values_in_one_line_with_exit_code_2(tmp_path, arguments, message):
    result = run_cli(*arguments, f"hydra.run.dir={tmp_path}", "data.root=/nonexistent")
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "metrics.json").exists()


def test_multirun_flag_may_follow_overrides(tmp_path):
    """``model=cnn -m optimizer=sgd,adam``: Hydra's parser alone says "unrecognized arguments"."""
    result = run_cli(
        "model=cnn", "-m", "optimizer=sgd,adam", "trainer.epochs=-1", f"hydra.sweep.dir={tmp_path}"
    )
    assert result.returncode == 2 and "unrecognized arguments" not in result.stderr
    assert result.stderr.splitlines()[-1] == "error: trainer.epochs=-1 must be >= 0"
    assert (tmp_path / "model=cnn,optimizer=sgd,trainer.epochs=-1").is_dir()  # a sweep's job


def test_two_modes_at_once_are_refused_in_one_line(tmp_path):
    result = run_cli("-m", "--cfg", "job", f"hydra.sweep.dir={tmp_path}")
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: Only one of --run, --multirun, --cfg")
    assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) == 1


def test_technique_choices_name_every_group():
    cfg = compose_config(
        [
            "model=cnn",
            "optimizer=rmsprop",
            "activation=elu",
            "batch_norm=on",
            "regularization=l2",
            "dropout=off",
            "lr_schedule=reduce_on_plateau",
        ]
    )
    choices = config_lib.technique_choices(cfg)
    assert choices | {"learning_rate": 0, "batch_size": 0, "augment": ""} == {
        "model": "cnn",
        "family": "cnn",
        "optimizer": "rmsprop",
        "activation": "elu",
        "batch_norm": "on",
        "regularization": "l2",
        "dropout": "off",
        "lr_schedule": "reduce_on_plateau",
        "learning_rate": 0,
        "batch_size": 0,
        "augment": "",
    }


@pytest.mark.parametrize(
    ("overrides", "penalties"),
    [
        (["regularization=l2", "regularization.l2=3e-4"], (0.0, 3e-4)),
        (["regularization=l1_l2"], (1e-5, 1e-4)),
        (["regularization=none"], (0.0, 0.0)),
    ],
)
def test_model_arguments_carry_the_regularization_as_validated(overrides, penalties):
    cfg = compose_config(overrides)
    config_lib.validate(cfg)
    arguments = config_lib.model_arguments(cfg, 47)
    assert (arguments["l1"], arguments["l2"]) == penalties


# One wrong value per config group, refused by Hydra or OmegaConf as the config composes.
@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["optimizer.name=adamm"], "Invalid value 'adamm', expected one of [adadelta, adagrad"),
        (["optimizer.momentum=0.9"], "Key 'momentum' not in 'OptimizerSchema'"),
        (["optimizer=sgd", "optimizer.nesterov=sometimes"], "'sometimes' is not a valid bool"),
        (["activation.name=rellu"], "Invalid value 'rellu', expected one of [elu, gelu, leaky"),
        (["activation=leaky_relu", "activation.negative_slope=x"], "could not be converted"),
        (["lr_schedule.name=cosin"], "Invalid value 'cosin', expected one of [constant"),
        (["lr_schedule=cosine", "lr_schedule.warmup_epochs=one"], "could not be converted"),
        (["tuner.name=grid"], "Invalid value 'grid', expected one of [none, random, bayesian"),
        (["tuner=bayesian", "tuner.alpha=small"], "could not be converted to Float"),
        (["tuner.max_trial=3"], "Key 'max_trial' not in 'TunerSchema'"),
        (["regularization.name=l3"], "Invalid value 'l3', expected one of [l1, l1_l2, l2, none]"),
        (["augment.name=medium"], "Invalid value 'medium', expected one of [light, none, strong]"),
        (["model.family=rnn"], "Invalid value 'rnn', expected one of [mlp, cnn]"),
        (["model.activations=[relu,relu,rellu]"], "Invalid value 'rellu'"),
        (["model=cnn", "model.pooling=min"], "Invalid value 'min', expected one of [max, average"),
        (["data.split=bylass"], "Invalid value 'bylass', expected one of [balanced, byclass"),
        (["data.class_weight=inverse"], "Invalid value 'inverse', expected one of [balanced, lo"),
        (["trainer.precision=fp8"], "Invalid value 'fp8', expected one of [auto, float32"),
        (["trainer.early_stopping.monitor=val_acc"], "Invalid value 'val_acc', expected one"),
        (["lr_schedule=reduce_on_plateau", "lr_schedule.monitor=acc"], "Invalid value 'acc'"),
        (["tuner=random", "tuner.objective=acc"], "Invalid value 'acc', expected one of [val_"),
        (["dropout.enabled=maybe"], "'maybe' is not a valid bool"),
        (["batch_norm.momentum=high"], "could not be converted to Float"),
        *[([f"{group}=typo"], f"Could not find '{group}/typo'") for group in USER_GROUPS[:-2]],
        (["+experiment=typo"], "Could not find 'experiment/typo'"),
        (["+sweep=typo"], "Could not find 'sweep/typo'"),
        # A preset's own keys must fit the option chosen over its own.
        (["+experiment=speedrun_cnn", "model=mlp"], "Key 'conv_filters' not in 'MLPSchema'"),
        (["optimizer=adamw", "optimizer.weight_decay=null"], "is not Optional"),
    ],
)
def test_every_group_refuses_a_wrong_value_as_it_composes(overrides, message):
    with pytest.raises(Exception) as raised:  # noqa: B017  (Hydra's and OmegaConf's own errors)
        compose_config(overrides)
    line = str(composition_error(raised.value))
    assert message in line and "\n" not in line


def test_the_code_knows_every_name_a_schema_allows():
    from emnist_bench.schema import LrScheduleName
    from emnist_bench.training import schedules

    assert {name.value for name in LrScheduleName} == set(schedules.ALL)


def test_a_hparams_file_group_is_checked_against_its_schema(tmp_path):
    path = tmp_path / "best_hparams.yaml"
    path.write_text("optimizer: {name: sgd, learning_rate: 0.1, momentum: 0.9, nesterov: maybe}\n")
    with pytest.raises(ConfigError, match="hparams_file=.*'maybe' is not a valid bool"):
        config_lib.with_hparams_file(compose_config([f"hparams_file={path}"]))
    path.write_text("dropout: {enabled: true, rate: 1.5}\n")
    applied = config_lib.with_hparams_file(compose_config([f"hparams_file={path}"]))
    with pytest.raises(ConfigError, match=re.escape("dropout.rate=1.5 must be in [0, 1)")):
        config_lib.validate(applied)


def test_overrides_of_a_saved_config_are_typed_and_a_plain_key_is_taken_as_it_is():
    saved = OmegaConf.create(OmegaConf.to_container(compose_config([]), resolve=True))
    merged = config_lib.with_overrides(saved, ["hparams_file=x", "data.subset=5"], "usage")
    assert (merged.hparams_file, merged.data.subset) == ("x", 5)
    with pytest.raises(ConfigError, match=r"^data.subset=x: Value 'x' of type 'str' could not"):
        config_lib.with_overrides(saved, ["data.subset=x"], "usage")
