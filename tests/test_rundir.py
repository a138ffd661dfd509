"""The run folder's one writer (whole or not at all, never through a planted link) and its one
opener of a saved run (a missing or damaged run is one line)."""

from __future__ import annotations

import errno
import os
import stat
import tempfile

import pytest

from emnist_bench import rundir
from emnist_bench.rundir import atomic_open, atomic_path, write_json, write_text

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
                offenders += [path for word in ("os.replace", ".partial", "mkstemp") if word in text]
    assert offenders == []
