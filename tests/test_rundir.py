"""The run folder's one writer (whole or not at all, never through a planted link) and its one
opener of a saved run (a missing or damaged run is one line)."""

from __future__ import annotations

import errno
import json
import os
import stat
import tempfile
import zipfile

import pytest

from emnist_bench import rundir
from emnist_bench.errors import UserError
from emnist_bench.rundir import (
    CONFIG,
    MODEL,
    atomic_open,
    atomic_path,
    load_saved_model,
    read_saved_config,
    write_json,
    write_text,
)

PREDICTABLE = (".metrics.partial.json", ".metrics.json.partial", "metrics.json.tmp",
               ".metrics.tmp.json", "metrics.json.part", ".metrics.json")  # fmt: skip


def test_a_write_replaces_the_file_whole_with_a_plain_mode(tmp_path):
    target = tmp_path / "metrics.json"
    write_text(target, "old")
    write_json(target, {"status": "completed", "accuracy": 0.5})
    assert target.read_text() == '{\n  "status": "completed",\n  "accuracy": 0.5\n}\n'
    assert os.listdir(tmp_path) == ["metrics.json"]
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask  # not mkstemp's 0600


def test_the_temporary_name_is_new_each_time_and_keeps_the_suffixes(tmp_path, monkeypatch):
    made = []
    real = tempfile.mkstemp

    def spy(*args, **kwargs):
        made.append(real(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(tempfile, "mkstemp", spy)
    for _ in range(2):
        with atomic_path(tmp_path / "epoch-1.weights.h5") as temporary:
            assert temporary.parent == tmp_path and temporary.name.endswith(".weights.h5")
            assert temporary.name.startswith(".epoch-1.")  # hidden from globs of final names
            temporary.write_bytes(b"weights")
    assert len(made) == 2 and made[0][1] != made[1][1]
    assert os.listdir(tmp_path) == ["epoch-1.weights.h5"]


def test_a_planted_symlink_is_never_followed(tmp_path, monkeypatch):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    run = tmp_path / "run"
    run.mkdir()
    for name in PREDICTABLE:  # every name a writer of a fixed pattern would pick
        (run / name).symlink_to(victim)
    # ... and the name mkstemp draws first: it must skip it (O_EXCL), not write through it.
    drawn = ".metrics.planted.tmp.json"
    (run / drawn).symlink_to(victim)
    names = iter(["planted", "fresh01"])
    monkeypatch.setattr(tempfile, "_get_candidate_names", lambda: names)
    (run / "metrics.json").symlink_to(victim)  # the final name: replaced, not written through

    write_json(run / "metrics.json", {"status": "completed"})

    assert victim.read_text() == "precious"
    assert all((run / name).readlink() == victim for name in (*PREDICTABLE, drawn))
    assert not (run / "metrics.json").is_symlink()
    assert (run / "metrics.json").read_text() == '{\n  "status": "completed"\n}\n'


def test_a_write_interrupted_midway_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "history.csv"
    write_text(target, "epoch,loss\n0,1.5\n")
    with pytest.raises(KeyboardInterrupt), atomic_open(target) as handle:
        handle.write(b"epoch,loss\n0,1.5\n1,")
        raise KeyboardInterrupt  # killed mid-write
    assert target.read_text() == "epoch,loss\n0,1.5\n"
    assert os.listdir(tmp_path) == ["history.csv"]


def test_a_folder_replaces_the_old_one_only_when_whole(tmp_path):
    final = tmp_path / "savedmodel" / "1"
    with atomic_path(final, folder=True) as temporary:
        (temporary / "saved_model.pb").write_bytes(b"one")
    with pytest.raises(ValueError), atomic_path(final, folder=True) as temporary:
        (temporary / "saved_model.pb").write_bytes(b"two")
        raise ValueError("its check failed")
    assert (final / "saved_model.pb").read_bytes() == b"one"
    assert os.listdir(final.parent) == ["1"]
    with atomic_path(final, folder=True) as temporary:
        (temporary / "variables").mkdir()
    assert os.listdir(final) == ["variables"]


def test_a_full_disk_names_the_file_not_its_temporary_name(tmp_path):
    target = tmp_path / "model.keras"
    with pytest.raises(OSError) as raised, atomic_path(target) as temporary:
        raise OSError(errno.ENOSPC, "No space left on device", str(temporary))
    assert raised.value.filename == str(target)
    assert os.listdir(tmp_path) == []


def test_only_rundir_renames_files_into_place():
    package = rundir.__file__.rsplit(os.sep, 1)[0]
    offenders = []
    for folder, _, files in os.walk(package):
        for name in files:
            path = os.path.join(folder, name)
            if name.endswith(".py") and path != rundir.__file__:
                with open(path) as handle:
                    text = handle.read()
                offenders += [
                    path for word in ("os.replace", ".partial", "mkstemp") if word in text
                ]
    assert offenders == []


# --- opening a saved run -----------------------------------------------------------------------


def saved_run(folder, config: bytes = b"data: {split: balanced, root: /d}\n", model=None):
    folder.mkdir()
    (folder / CONFIG).write_bytes(config)
    if model is None:
        with zipfile.ZipFile(folder / MODEL, "w") as archive:
            config = {"class_name": "NoSuchModel", "module": "nowhere", "config": {}}
            archive.writestr("config.json", json.dumps(config))
            archive.writestr("metadata.json", json.dumps({"keras_version": "3.0.0"}))
            archive.writestr("model.weights.h5", b"")  # whole, but a model Keras does not know
    else:
        (folder / MODEL).write_bytes(model)
    return folder


def one_line(raised) -> str:
    message = str(raised.value)
    assert "\n" not in message and isinstance(raised.value, UserError)
    return message


@pytest.mark.parametrize("missing", [CONFIG, MODEL])
def test_a_folder_that_is_not_a_run_is_one_line(tmp_path, missing):
    run = saved_run(tmp_path / "run")
    (run / missing).unlink()
    with pytest.raises(UserError) as raised:
        read_saved_config(run)
    assert one_line(raised) == (
        f"{run / missing}: not found; RUN_DIR must be the output folder of a run"
    )


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        (b"a: [b", "while parsing"),
        (b"- a list\n", "(not a mapping)"),
        (b"\xff\xfe\x00", "codec can't decode"),
        (b"data: {split: balanced}\n", "(data.root is missing)"),
    ],
)
def test_a_damaged_config_is_one_line(tmp_path, config, problem):
    run = saved_run(tmp_path / "run", config)
    with pytest.raises(UserError) as raised:
        read_saved_config(run, ("data.split", "data.root"))
    message = one_line(raised)
    assert message.startswith(f"{run / CONFIG}: damaged or not a run's config (")
    assert problem in message and message.endswith("restore the file")


def test_a_truncated_model_is_one_line_before_tensorflow_is_loaded(tmp_path):
    run = saved_run(tmp_path / "run", model=b"PK\x03\x04 not a whole zip")
    with pytest.raises(UserError) as raised:
        load_saved_model(run)
    assert one_line(raised) == (
        f"{run / MODEL}: damaged (not a whole .keras file); run its training command again, "
        "which trains it again"
    )
    assert read_saved_config(run, ("data.split",)).data.split == "balanced"


def test_a_model_keras_refuses_is_one_line(tmp_path):
    run = saved_run(tmp_path / "run")
    with pytest.raises(UserError) as raised:
        load_saved_model(run)
    message = one_line(raised)
    assert message.startswith(f"{run / MODEL}: Keras cannot load this model (")
    # A whole file makes the run done, so its command alone would skip it.
    assert message.endswith(f"to train it again, delete {run} and run its training command")


@pytest.mark.parametrize(
    ("metrics", "read"),
    [
        ({"status": "completed", "test_accuracy": 0.5, "val_accuracy": None}, True),
        ({"status": "completed", "test_accuracy": "abc"}, False),
        ({"status": "completed", "test_accuracy": True}, False),
        ({"status": "completed", "test_accuracy": 1.5}, False),
        ({"status": "completed", "test_accuracy": 0.5, "macro_f1": "high"}, False),
        ({"status": "completed"}, False),
        ({"status": "failed", "error": "ValueError: x"}, True),  # no scores to check
    ],
)
def test_a_completed_run_s_metrics_must_hold_its_scores_as_numbers(tmp_path, metrics, read):
    """Otherwise the run counts as not done (the same command redoes it; a report shows it
    unfinished)."""
    from emnist_bench.rundir import read_metrics

    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    assert (read_metrics(tmp_path) == metrics) is read
