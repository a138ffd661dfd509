"""The backup a killed run resumes from, written after every finished epoch under ``backup/``:
the weights and the optimizer's state (``EpochBackup``), and what early stopping and the plateau
schedule have counted (``CallbackState``)."""

from __future__ import annotations

import json
import logging
import zipfile
from pathlib import Path

import keras
import numpy as np

from emnist_bench.rundir import atomic_open, atomic_path, write_json

log = logging.getLogger(__name__)


class EpochBackup(keras.callbacks.BackupAndRestore):
    """Keras's BackupAndRestore under ``backup/``, written whole: at the end of every epoch the
    weights and optimizer state go to a new file, then ``state.json`` naming it and the number
    of finished epochs is renamed into place. At the start of training a backup is restored and
    Keras goes on from the next epoch; a damaged one is a warning and a start from epoch 1.

    The run removes the folder once it has finished (``rundir.remove_backup``).
    """

    STATE = "state.json"

    def __init__(self, folder: Path):
        super().__init__(str(folder), save_freq="epoch", delete_checkpoint=False)
        self.folder = Path(folder)
        self.resumed_epochs = 0

    def on_train_begin(self, logs=None):
        try:
            state = json.loads((self.folder / self.STATE).read_text())
            epoch, weights = int(state["epoch"]), self.folder / str(state["weights"])
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError) as error:
            log.warning("%s is damaged (%s); training from epoch 1", self.folder, error)
            return
        optimizer = self.model.optimizer
        if optimizer is not None and not optimizer.built:
            optimizer.build(self.model.trainable_variables)
        variables = [*self.model.weights, *(optimizer.variables if optimizer else [])]
        fresh = [keras.ops.convert_to_numpy(variable) for variable in variables]
        try:
            self.model.load_weights(weights)
        except (OSError, ValueError, KeyError, TypeError) as error:
            for variable, value in zip(variables, fresh, strict=True):
                variable.assign(value)
            log.warning("The backup %s is damaged (%s); training from epoch 1", weights, error)
            return
        self.model._initial_epoch = epoch  # what BackupAndRestore sets: fit starts there
        self.resumed_epochs = epoch
        done = "epoch 1" if epoch == 1 else f"epochs 1-{epoch}"
        log.info("Resumed from %s: %s done, going on with epoch %d", self.folder, done, epoch + 1)

    def on_epoch_end(self, epoch, logs=None):
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"epoch-{epoch + 1}.weights.h5"
        with atomic_path(self.folder / name) as temporary:  # a full disk leaves no half file
            self.model.save_weights(temporary, overwrite=True)
        write_json(self.folder / self.STATE, {"epoch": epoch + 1, "weights": name})
        for old in self.folder.glob("epoch-*.weights.h5"):
            if old.name != name:
                old.unlink(missing_ok=True)

    def on_train_batch_end(self, batch, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass


class CallbackState(keras.callbacks.Callback):
    """What ``EarlyStopping`` and ``ReduceLROnPlateau`` have counted, backed up beside the
    weights (``backup/callbacks.json``; early stopping's best weights in ``best.weights.npz``)
    so that a resumed run stops, and lowers its rate, after the epoch the uninterrupted run
    would have: Keras's callbacks start counting afresh in every ``fit``.

    It goes after the callbacks it watches, so that an epoch's file holds their state after
    that epoch, and the learning rate as the plateau schedule left it (the weights' backup
    holds the rate from before it was lowered). The state is restored as the first resumed
    epoch begins, once their own ``on_train_begin`` has reset them, and only if it belongs to
    the epoch the weights were backed up at (a kill between the two files leaves the counters
    fresh, with a warning).
    """

    FILE = "callbacks.json"
    BEST_WEIGHTS = "best.weights.npz"
    FIELDS = {
        keras.callbacks.EarlyStopping: ("wait", "stopped_epoch", "best", "best_epoch"),
        keras.callbacks.ReduceLROnPlateau: ("wait", "cooldown_counter", "best"),
    }

    def __init__(self, backup: EpochBackup, callbacks: list[keras.callbacks.Callback]):
        super().__init__()
        self.backup, self.folder = backup, backup.folder
        self.watched = [c for c in callbacks if isinstance(c, tuple(self.FIELDS))]
        self.restored = False

    def _fields(self, callback: keras.callbacks.Callback) -> tuple[str, ...]:
        return next(f for kind, f in self.FIELDS.items() if isinstance(callback, kind))

    def on_epoch_begin(self, epoch, logs=None):
        if self.restored or not self.watched:
            return
        self.restored = True
        if not self.backup.resumed_epochs:
            return
        try:
            state = json.loads((self.folder / self.FILE).read_text())
            if state["epoch"] != self.backup.resumed_epochs:
                raise ValueError(f"it is of epoch {state['epoch']}")
            restored = [
                (callback, field, values[field])
                for callback, values in zip(self.watched, state["callbacks"], strict=True)
                for field in self._fields(callback)
            ]
            rate = state.get("learning_rate")
            best_weights = None
            if (self.folder / self.BEST_WEIGHTS).is_file():
                with np.load(self.folder / self.BEST_WEIGHTS) as archive:
                    best_weights = [archive[f"arr_{i}"] for i in range(len(archive.files))]
        except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as error:
            log.warning(
                "Early stopping and plateau counters start afresh: %s/%s (%s)",
                self.folder,
                self.FILE,
                error,
            )
            return
        if rate is not None:  # lowered by the plateau schedule after the weights' backup
            self.model.optimizer.learning_rate = rate
        for callback, field, value in restored:
            setattr(callback, field, value)
            if field == "best_epoch" and best_weights is not None:
                callback.best_weights = best_weights

    def on_epoch_end(self, epoch, logs=None):
        if not self.watched:
            return
        saved = []
        for callback in self.watched:
            values = {field: getattr(callback, field) for field in self._fields(callback)}
            saved.append({key: _plain(value) for key, value in values.items()})
            best = getattr(callback, "best_weights", None)  # early stopping's, when it keeps them
            if best is not None and callback.best_epoch == epoch:  # new best weights
                with atomic_open(self.folder / self.BEST_WEIGHTS) as handle:
                    np.savez(handle, *best)
        state = {"epoch": epoch + 1, "callbacks": saved}
        if any(isinstance(c, keras.callbacks.ReduceLROnPlateau) for c in self.watched):
            state["learning_rate"] = float(self.model.optimizer.learning_rate)
        write_json(self.folder / self.FILE, state)


def _plain(value: object) -> int | float | None:
    """A counter or score as JSON holds it: an int stays an int, a NumPy float a float."""
    if value is None:
        return None
    return int(value) if isinstance(value, int | np.integer) else float(value)
