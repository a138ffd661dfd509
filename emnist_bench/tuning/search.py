"""Hyperparameter search with keras-tuner, driven by ``tuner`` and ``search_space`` in config.

Each trial's model is built and compiled from the run's config with the trial's fragment
applied (``tuning.space.hparams_fragment``), by the same code as a normal run, and the best
trial's fragment is written as ``best_hparams.yaml``: re-training it needs no tuner.

keras-tuner keeps its state in ``tuner/`` and reloads it, so running the same command in the
same folder keeps every finished trial and runs only the missing ones. With keras-tuner's
``KERASTUNER_*`` variables the search is distributed: one chief, N workers (``distributed``).
"""

from __future__ import annotations

import csv
import dataclasses
import gc
import io
import json
import logging
from pathlib import Path
from typing import Any

import keras
import keras_tuner as kt
import numpy as np
from omegaconf import DictConfig, OmegaConf

from emnist_bench import config as config_lib
from emnist_bench.errors import ConfigError, UserError
from emnist_bench.rundir import BEST_HPARAMS, TRIALS, TUNER, write_text
from emnist_bench.schema import TunerSchema
from emnist_bench.training.fit import build_model, compile_model
from emnist_bench.training.inputs import fit_inputs
from emnist_bench.training.losses import class_prior
from emnist_bench.tuning import distributed
from emnist_bench.tuning.space import declare_space, hparams_fragment, plain

log = logging.getLogger(__name__)

# The keys every tuner shares; those a tuner's schema adds are its keras-tuner arguments.
SHARED_TUNER_KEYS = frozenset(field.name for field in dataclasses.fields(TunerSchema))
# What keras-tuner raises when its saved JSON state is damaged (KeyError comes as RuntimeError).
RELOAD_ERRORS = (ValueError, KeyError, TypeError, AttributeError, IndexError, RuntimeError, OSError)


class ConfigHyperModel(kt.HyperModel):
    """Declares the search space from config; builds and fits a trial's model like a normal run."""

    def __init__(self, cfg: DictConfig, num_classes: int, prior: np.ndarray | None = None):
        super().__init__(name=f"{cfg.model.family}_search")
        self.cfg, self.num_classes, self.prior = cfg, num_classes, prior

    def declare_hyperparameters(self, hp: kt.HyperParameters) -> None:
        declare_space(hp, self.cfg)

    def build(self, hp: kt.HyperParameters) -> keras.Model:
        trial_cfg = config_lib.apply_hparams(self.cfg, hparams_fragment(self.cfg, hp.values))
        config_lib.validate(trial_cfg)
        keras.utils.set_random_seed(int(self.cfg.trainer.seed))
        model = build_model(trial_cfg, self.num_classes)
        compile_model(model, trial_cfg, self.prior)
        return model

    def fit(self, hp: kt.HyperParameters, model: keras.Model, *args, **kwargs):
        history = model.fit(*args, shuffle=False, verbose=0, **kwargs)
        # Kept with the epoch metrics, so that trials.csv shows each trial's model size.
        history.history["params"] = [model.count_params()] * len(history.epoch)
        return history


def gradient_registry() -> dict[str, Any]:
    """TensorFlow's global registry of gradient functions (empty if its internals moved)."""
    from tensorflow.python.framework import ops

    return getattr(getattr(ops, "gradient_registry", None), "_registry", {})


class _ConfigTuner:
    """Mixed into each keras-tuner tuner: declares the whole space up front, and after each
    trial frees its Keras state and rewrites ``trials.csv``. In a distributed search the chief
    serves the oracle (``distributed.serve``) and a worker reports that it is alive."""

    def __init__(self, *, trials_csv: Path, distribution: DictConfig, **kwargs):
        self.trials_csv = trials_csv
        self.distribution = distribution
        self._gradients_before: set[str] = set()
        self._heartbeat: distributed.Heartbeat | None = None
        super().__init__(**kwargs)
        distributed.wait_when_idle(self.oracle)

    def search(self, *fit_args, **fit_kwargs):
        if distributed.role() != distributed.CHIEF:
            return super().search(*fit_args, **fit_kwargs)
        self.save()
        distributed.serve(
            self.oracle,
            self.distribution,
            on_trial_end=lambda: write_trials_csv(self.oracle, self.trials_csv),
        )

    def _populate_initial_space(self):
        # keras-tuner would build models here to find conditional hyperparameters. The space
        # declares them all, and a value that makes an invalid model must fail only its trial.
        hp = self.oracle.get_space()
        self.hypermodel.declare_hyperparameters(hp)
        self.oracle.update_space(hp)

    def on_trial_begin(self, trial):
        super().on_trial_begin(trial)
        self._gradients_before = set(gradient_registry())
        every = self.distribution.heartbeat
        self._heartbeat = distributed.heartbeat(self.oracle, trial.trial_id, every)

    def on_trial_end(self, trial):
        if self._heartbeat is not None:
            self._heartbeat.stop()
        super().on_trial_end(trial)
        trial = self.oracle.get_trial(trial.trial_id)
        if trial.status == "FAILED":  # keras-tuner printed the traceback; trial.json keeps it
            log.warning("Trial %s failed: %s", trial.trial_id, _last_line(trial.message))
        # Each traced train step registers a global "CustomGradient-<uid>" function (the Keras
        # TensorFlow optimizer's gradient all-reduce uses tf.custom_gradient) that holds the
        # whole step graph, which clear_session() leaves behind: about 17 MiB per MLP trial.
        # The trial's graphs are dead by now, so are their gradient functions.
        registry = gradient_registry()
        for name in set(registry) - self._gradients_before:
            if name.startswith("CustomGradient-"):
                del registry[name]
        keras.backend.clear_session()
        gc.collect()
        if distributed.role() != distributed.WORKER:  # the chief writes it for the workers
            write_trials_csv(self.oracle, self.trials_csv)


class RandomSearch(_ConfigTuner, kt.RandomSearch):
    pass


class BayesianOptimization(_ConfigTuner, kt.BayesianOptimization):
    pass


class Hyperband(_ConfigTuner, kt.Hyperband):
    pass


TUNERS = {"random": RandomSearch, "bayesian": BayesianOptimization, "hyperband": Hyperband}


def make_tuner(cfg: DictConfig, hypermodel: ConfigHyperModel, out: Path) -> kt.Tuner:
    """The configured tuner over ``out/tuner``, reloading the state found there (unless
    ``tuner.overwrite``, which starts the search over).

    The keys a tuner's schema adds to ``schema.TunerSchema`` are its keras-tuner arguments.
    Every tuner stops at ``tuner.max_trials`` trials in total (Hyperband has no budget of its own).

    Raises:
        UserError: naming the file, when the saved state cannot be reloaded.
    """
    project = out / TUNER / f"{cfg.model.family}_{cfg.tuner.name}"
    reloading = not cfg.tuner.get("overwrite") and project.is_dir()
    try:
        return _make_tuner(cfg, hypermodel, out)
    except RELOAD_ERRORS as error:
        if not reloading:
            raise
        raise damaged_state(project, error) from None


def damaged_state(project: Path, error: Exception) -> UserError:
    """The one-line error for a keras-tuner state that failed to reload with ``error``: it names
    the first state file that is not valid JSON (else the oracle's) and the two ways out."""
    files = [project / "oracle.json", *sorted(project.glob("trial_*/trial.json"))]
    files += sorted(project.glob("tuner*.json"))
    culprit, problem = project / "oracle.json", _last_line(str(error)) or type(error).__name__
    for path in files:
        try:
            json.loads(path.read_text())
        except (OSError, ValueError) as invalid:
            culprit, problem = path, _last_line(str(invalid)) or type(invalid).__name__
            break
    return UserError(
        f"{culprit}: the saved search state is damaged ({problem}); resume from a copy of "
        f"{project.parent} if you have one, or start the search over with tuner.overwrite=true"
    )


def _make_tuner(cfg: DictConfig, hypermodel: ConfigHyperModel, out: Path) -> kt.Tuner:
    tuner = cfg.tuner
    options = {key: value for key, value in tuner.items() if key not in SHARED_TUNER_KEYS}
    built = TUNERS[tuner.name](
        hypermodel=hypermodel,
        objective=str(tuner.objective),
        seed=int(tuner.seed),
        executions_per_trial=int(tuner.executions_per_trial),
        max_retries_per_trial=int(tuner.max_retries_per_trial),
        max_consecutive_failed_trials=tuner.max_consecutive_failed_trials,
        directory=str(out / TUNER),
        project_name=f"{cfg.model.family}_{tuner.name}",
        # A worker never starts over: it would delete the chief's state.
        overwrite=bool(tuner.get("overwrite")) and distributed.role() != distributed.WORKER,
        trials_csv=out / TRIALS,
        distribution=tuner.distributed,
        **options,
    )
    built.oracle.max_trials = int(tuner.max_trials)
    return built


def _last_line(message: str | None) -> str:
    lines = [line for line in (message or "").splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def write_trials_csv(oracle: kt.Oracle, path: Path) -> list[dict[str, Any]]:
    """Writes one row per finished (completed or failed) trial: its id, status, score, every
    hyperparameter, the metrics of its best epoch, and the error of a failed one."""
    trials = sorted(oracle.trials.values(), key=lambda trial: int(trial.trial_id))
    finished = [trial for trial in trials if trial.status in ("COMPLETED", "FAILED")]
    names = [hp.name for hp in oracle.hyperparameters.space]
    for trial in finished:
        names += [name for name in trial.hyperparameters.values if name not in names]
    metrics = sorted({name for trial in finished for name in trial.metrics.metrics})
    rows = []
    for trial in finished:
        row = {"trial_id": trial.trial_id, "status": trial.status, "score": trial.score}
        row |= {name: plain(trial.hyperparameters.values.get(name)) for name in names}
        row |= {
            name: trial.metrics.get_last_value(name)
            for name in metrics
            if trial.metrics.exists(name)
        }
        if row.get("params") is not None:
            row["params"] = int(row["params"])  # a count (keras-tuner averages it as a float)
        row["error"] = _last_line(trial.message) if trial.status == "FAILED" else None
        rows.append(row)
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, ["trial_id", "status", "score", *names, *metrics, "error"])
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buffer.getvalue())
    return rows


def trial_name(trial_id: str) -> str:
    """A trial as trials.csv and tuner/ name it, with the number keras-tuner's output gave it:
    its ids count from 0 and its "Running Trial #" lines from 1."""
    return f"trial {trial_id}" + (f" (Trial #{int(trial_id) + 1})" if trial_id.isdigit() else "")


def write_best_hparams(path: Path, fragment: DictConfig, trial, objective: str) -> None:
    path = path.resolve()
    header = (
        f"# Best configuration of the search in {path.parent}: {trial_name(trial.trial_id)}, "
        f"{objective} {trial.score:.4f}.\n"
        "# Re-train it without the tuner (each group below replaces the run's own):\n"
        f"#   python -m emnist_bench hparams_file={path}\n"
    )
    write_text(path, header + OmegaConf.to_yaml(fragment))


def _check(cfg: DictConfig, data) -> None:
    """What the schema (names, types, ranges) cannot know: the data and the search space."""
    if not len(data.y_val):
        raise ConfigError("the tuner scores trials on validation data: set data.val_size > 0")
    declare_space(kt.HyperParameters(), cfg)


def _fit_arguments(cfg: DictConfig, data) -> dict[str, Any]:
    """What every trial's ``model.fit`` gets: the run's input pipelines, epochs and callbacks."""
    tuner = cfg.tuner
    callbacks = [keras.callbacks.TerminateOnNaN()]
    if tuner.early_stopping.enabled:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=str(tuner.objective), patience=int(tuner.early_stopping.patience)
            )
        )
    return {**fit_inputs(cfg, data), "epochs": int(tuner.epochs), "callbacks": callbacks}


def search(cfg: DictConfig, data, out: Path) -> DictConfig | None:
    """Runs (or resumes) the configured search on the training and validation data.

    Writes ``tuner/`` (keras-tuner's state), ``trials.csv`` and ``best_hparams.yaml`` in ``out``.

    Returns:
        ``cfg`` with the best trial's groups in place of its own, ready to re-train; None in a
        distributed search's worker, once the chief says the search is over.

    Raises:
        ConfigError: for a bad ``tuner`` or ``search_space`` value.
        UserError: when no trial completed.
    """
    _check(cfg, data)
    prior = class_prior(data.y_train, data.num_classes)
    tuner = make_tuner(cfg, ConfigHyperModel(cfg, data.num_classes, prior), out)
    try:
        tuner.search(**_fit_arguments(cfg, data))
    except RuntimeError as error:  # keras-tuner's max_consecutive_failed_trials
        if "consecutive failures" not in str(error):
            raise
        log.warning("Search stopped: %s", str(error).splitlines()[0])
    if distributed.role() == distributed.WORKER:
        return None
    rows = write_trials_csv(tuner.oracle, out / TRIALS)
    best = tuner.oracle.get_best_trials(1)
    if not best or best[0].status != "COMPLETED":
        first_error = next((row["error"] for row in rows if row["error"]), "no trial ran")
        raise UserError(
            f"all {len(rows)} tuner trials failed; first error: {first_error} "
            f"(every trial is in {out / 'trials.csv'})"
        )
    best = best[0]
    fragment = hparams_fragment(cfg, best.hyperparameters.values)
    write_best_hparams(out / BEST_HPARAMS, fragment, best, tuner.oracle.objective.name)
    log.info(
        "Best of %d trials: %s, %s %.4f",
        len(rows),
        trial_name(best.trial_id),
        tuner.oracle.objective.name,
        best.score,
    )
    keras.backend.clear_session()
    keras.utils.set_random_seed(int(cfg.trainer.seed))
    return config_lib.apply_hparams(cfg, fragment)
