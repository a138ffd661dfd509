"""Faults a user meets, each one line on stderr and a non-zero exit (never a traceback), and logs
a person can read when stdout is not a terminal."""

from __future__ import annotations

import errno
import json
import logging
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from emnist_bench.errors import ConfigError, UserError, exit_on_user_error
from emnist_bench.run import run
from emnist_bench.rundir import completed_metrics
from tests.configs import compose_config, smoke_overrides

TINY = ("model=mlp",)


def command(*arguments: str, cwd: Path, prelude: str | None = None, timeout: int = 240):
    """``python -m emnist_bench ARGUMENTS``, after the Python statement ``prelude`` if given."""
    entry = ["-m", "emnist_bench"]
    if prelude:
        entry = ["-c", f"import sys; {prelude}; from emnist_bench.cli import main; main()"]
    return subprocess.run(
        [sys.executable, *entry, *arguments],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
    )


# --- a run piped to a file -------------------------------------------------------------------


@pytest.fixture(scope="module")
def piped_run(smoke_data, tmp_path_factory):
    """A 1-epoch run from the command line with stdout to a file, whose training-data cache
    file was truncated: (its folder, the exit code, stdout, stderr)."""
    from emnist_bench.data.load import load_part

    folder = tmp_path_factory.mktemp("piped")
    cache = folder / "cache"
    load_part(smoke_data, "balanced", "train", cache_dir=cache)
    [cached] = cache.glob("*.npz")
    cached.write_bytes(cached.read_bytes()[:1000])
    out = folder / "run"
    overrides = smoke_overrides(smoke_data, cache, *TINY)
    with (folder / "stdout.txt").open("w") as stdout:
        result = subprocess.run(
            [sys.executable, "-m", "emnist_bench", *overrides, f"hydra.run.dir={out}"],
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
            timeout=300,
            cwd=folder,
        )
    return out, result.returncode, (folder / "stdout.txt").read_text(), result.stderr


EPOCH_LINE = re.compile(
    r"epoch (\d)/1: loss \d+\.\d{4}, accuracy \d\.\d{4}, val_accuracy \d\.\d{4}, "
    r"learning rate [\d.e+-]+, \d+\.\d s$"
)


def test_a_run_piped_to_a_file_prints_one_line_per_epoch(piped_run):
    out, returncode, stdout, stderr = piped_run
    assert returncode == 0, stderr[-3000:]
    epochs = [m[1] for line in stdout.splitlines() if (m := EPOCH_LINE.search(line))]
    assert epochs == ["1"]
    assert "━" not in stdout  # no progress bar drawn into the file
    # The run's log file has the same lines, the overrides, the result and where it went.
    log = (out / "emnist_bench.log").read_text()
    assert [m[1] for line in log.splitlines() if (m := EPOCH_LINE.search(line))] == ["1"]
    assert "Overrides: " in log and "trainer.epochs=1" in log
    assert "Result: completed, test accuracy 0." in log and f"written to {out}" in log
    # TensorFlow's start-up noise is silenced.
    assert not re.search(r"absl|oneDNN|cpu_feature_guard|Traceback", stderr), stderr


def test_a_truncated_cache_file_is_rebuilt_and_the_run_completes(piped_run):
    from emnist_bench.data.files import read_mapping
    from emnist_bench.data.load import read_cache

    out, returncode, stdout, _ = piped_run
    assert returncode == 0
    assert re.search(r"Cache file \S+\.npz is damaged: unreadable .*; rebuilding it", stdout)
    assert json.loads((out / "metrics.json").read_text())["status"] == "completed"
    [cached] = (out.parent / "cache").glob("emnist-balanced-train-*.npz")
    mapping = read_mapping(
        Path(OmegaConf.load(out / "config.yaml").data.root) / "emnist-balanced-mapping.txt"
    )
    images, labels = read_cache(cached, mapping)
    assert images.shape == (2350, 28, 28) and labels.shape == (2350,)


def test_a_completed_run_with_a_truncated_model_is_not_skipped(piped_run, caplog):
    """The next run of its command trains it again and leaves a loadable model. (This test
    changes the module's run folder: it comes after the others that read it.)"""
    import keras

    from emnist_bench.evaluate.command import evaluate

    out = piped_run[0]
    cfg = compose_config([*OmegaConf.load(out / ".hydra" / "overrides.yaml")], output_dir=out)
    assert completed_metrics(cfg, out) is not None  # the command line's config, composed again
    model = out / "model.keras"
    model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    # evaluate refuses the damaged model in one line...
    with pytest.raises(UserError, match=r"model\.keras: damaged \(not a whole \.keras file"):
        evaluate(out)
    # ... and the run's own command does not skip it: it trains again.
    with caplog.at_level(logging.WARNING, logger="emnist_bench.rundir"):
        again = run(cfg)

    assert "model.keras is missing or damaged; running it again" in caplog.text
    assert again["status"] == "completed"
    assert keras.saving.load_model(model, compile=False).output_shape[-1] == 47
    assert completed_metrics(cfg, out) is not None  # and the next one skips it


# --- hparams_file ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fragment",
    [
        {"output_dir": "/elsewhere"},
        {"data": {"urls": ["https://example.com/emnist.zip"], "md5": None}},
        {"model": {"name": "mlp"}, "hydra": {"run": {"dir": "/elsewhere"}}},
        {"optimizer": 0.1},
        ["model"],
    ],
)
def test_hparams_file_sets_only_the_groups_a_search_chooses(fragment, tmp_path):
    hparams = tmp_path / "best_hparams.yaml"
    hparams.write_text(OmegaConf.to_yaml(OmegaConf.create(fragment)))
    cfg = compose_config([f"hparams_file={hparams}"], output_dir=tmp_path / "out")
    with pytest.raises(ConfigError, match=rf"^hparams_file={hparams}: ") as refused:
        run(cfg)
    assert "\n" not in str(refused.value)
    assert not (tmp_path / "out" / "metrics.json").exists()


def test_cli_refuses_an_hparams_file_with_output_dir_in_one_line(tmp_path):
    hparams = tmp_path / "best_hparams.yaml"
    hparams.write_text("model:\n  name: mlp\noutput_dir: /tmp/elsewhere\n")
    result = command(f"hparams_file={hparams}", f"hydra.run.dir={tmp_path / 'out'}", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == (
        f"error: hparams_file={hparams}: it sets output_dir, but a hparams file may set only the "
        "groups a search chooses: model, dropout, batch_norm, regularization, optimizer "
        "(give a search's best_hparams.yaml)\n"
    )


# --- the machine: TensorFlow, disks ------------------------------------------------------------


def test_missing_tensorflow_is_one_line_with_the_pip_command(smoke_data, proxy_cache, tmp_path):
    """A wheel installed without the [cpu] or [gpu] extra."""
    arguments = [*smoke_overrides(smoke_data, proxy_cache, *TINY), f"hydra.run.dir={tmp_path}"]
    result = command(*arguments, cwd=tmp_path, prelude="sys.modules['tensorflow'] = None")
    assert result.returncode == 2
    assert result.stderr == (
        "error: TensorFlow is not installed; install emnist_bench with it: "
        "pip install 'emnist_bench[cpu]' (or 'emnist_bench[gpu]' for an NVIDIA GPU)\n"
    )


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (
            OSError(errno.ENOSPC, "No space left on device", "/out/model.keras"),
            "error: /out/model.keras: no space left on the device; free some and run the same "
            "command again",
        ),
        (
            PermissionError(errno.EACCES, "Permission denied", "/out"),
            "error: /out: permission denied; write the outputs to a folder you own "
            "(hydra.run.dir=DIR)",
        ),
        (
            OSError(errno.EROFS, "Read-only file system", "/ro/run"),
            "error: /ro/run: read-only file system; write the outputs elsewhere "
            "(hydra.run.dir=DIR)",
        ),
        (  # h5py (model.keras's weights) names errno and file in its message only
            OSError(
                "Can't synchronously write data (file write failed: time = Mon Nov 23, "
                "filename = '/out/backup/epoch-1.weights.h5', file descriptor = 7, errno = 28, "
                "error message = 'No space left on device')"
            ),
            "error: /out/backup/epoch-1.weights.h5: no space left on the device; free some and "
            "run the same command again",
        ),
    ],
)
def test_disk_faults_are_one_line(error, line, capsys):
    with pytest.raises(SystemExit) as exited, exit_on_user_error():
        raise error
    assert exited.value.code == 2
    assert capsys.readouterr().err == line + "\n"


@pytest.mark.parametrize("inside", ["", "sub"])
def test_an_output_folder_that_is_a_file_is_one_line(tmp_path, inside):
    """``hydra.run.dir`` naming a file (or a path through one): Hydra's own mkdir fails."""
    (tmp_path / "afile").write_text("not a folder")
    out = tmp_path / "afile" / inside if inside else tmp_path / "afile"
    done = command("model=mlp", "data.root=/nonexistent", f"hydra.run.dir={out}", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr == (
        f"error: {out}: a file is in the way of a folder"
        f"{' on this path' if inside else ''}; remove it or write the outputs elsewhere "
        "(hydra.run.dir=DIR)\n"
    )


def test_other_os_errors_still_raise():
    with pytest.raises(FileNotFoundError), exit_on_user_error():
        raise FileNotFoundError(errno.ENOENT, "No such file", "/x")


def test_a_disk_filling_while_the_model_is_saved_leaves_no_completed_run(
    smoke_data, proxy_cache, tmp_path, monkeypatch, capsys
):
    import keras

    def fill_the_disk(model, path, *args, **kwargs):
        Path(path).write_bytes(b"PK\x03\x04 half a model")
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(keras.Model, "save", fill_the_disk)
    cfg = compose_config(smoke_overrides(smoke_data, proxy_cache, *TINY), output_dir=tmp_path)
    with pytest.raises(SystemExit) as exited, exit_on_user_error():
        run(cfg)

    assert exited.value.code == 2
    assert capsys.readouterr().err == (
        f"error: {tmp_path / 'model.keras'}: no space left on the device; free some "
        "and run the same command again\n"
    )
    assert sorted(p.name for p in tmp_path.glob("*model*")) == []  # no half model anywhere
    assert json.loads((tmp_path / "metrics.json").read_text())["status"] == "failed"
    assert completed_metrics(cfg, tmp_path) is None  # the next run trains it again


# --- evaluate: a model Keras refuses -----------------------------------------------------------


def test_evaluate_refuses_a_model_keras_will_not_load(smoke_data, proxy_cache, tmp_path):
    from emnist_bench.evaluate.command import evaluate

    cfg = compose_config(smoke_overrides(smoke_data, proxy_cache), output_dir=tmp_path)
    OmegaConf.save(cfg, tmp_path / "config.yaml", resolve=True)
    config = {"class_name": "NoSuchModel", "module": "nowhere", "config": {}}
    with zipfile.ZipFile(tmp_path / "model.keras", "w") as archive:
        archive.writestr("config.json", json.dumps(config))
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.0.0"}))
        archive.writestr("model.weights.h5", b"")  # whole, but a model Keras does not know
    with pytest.raises(UserError, match=r"model\.keras: Keras cannot load this model") as refused:
        evaluate(tmp_path)
    assert "\n" not in str(refused.value)


# --- a saved model that would not serve its user ---------------------------------------------


def test_a_run_whose_model_file_would_not_load_is_not_completed(
    smoke_data, proxy_cache, tmp_path, monkeypatch, caplog
):
    """A saved batch-norm layer of this package's class (a regression once): caught when the run
    ends, not later by a user's Keras; the same command, fixed, resumes and completes."""
    from emnist_bench.evaluate.saved import SavedModelError
    from emnist_bench.training import fit

    cfg = compose_config(
        smoke_overrides(
            smoke_data,
            proxy_cache,
            "model=cnn",
            "model.conv_filters=[4,8]",
            "model.dense_units=[16]",
            "batch_norm=on",
        ),
        output_dir=tmp_path,
    )
    with monkeypatch.context() as patched:
        patched.setattr(fit, "savable_model", lambda model: model)  # this package's classes
        with pytest.raises(SavedModelError, match=r"does not know \(emnist_bench>\w*BatchNorm"):
            run(cfg)

    assert not list(tmp_path.glob("*model*.keras"))  # nothing unusable put in place
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["status"] == "failed" and "plain Keras does not know" in metrics["error"]
    assert completed_metrics(cfg, tmp_path) is None
    assert any((tmp_path / "backup").iterdir())  # the trained epoch: the fixed run resumes it
    with caplog.at_level(logging.INFO, logger="emnist_bench.run"):
        again = run(cfg)
    assert "Resuming the run" in caplog.text
    assert again["status"] == "completed" and again["epochs_run"] == 1
    assert completed_metrics(cfg, tmp_path) is not None
