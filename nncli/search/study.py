"""A study shared through a database: Optuna's samplers (TPE seeded from the spec's seed,
random, grid) and median pruner over the spec's ``search:`` space.

A study records the space it searches, the monitored metric and its direction (user
attributes), so a later run, or another process or machine naming the same storage and study,
continues it only when the spec still searches the same thing. Each process draws from its own
seed: ``SeedSequence([seed, trials already in the study, worker])``, so a continued study does
not repeat its first trials and two workers do not try the same values.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from nncli.errors import SpecError
from nncli.spec.loading import flow_yaml
from nncli.spec.search import Param, described, difference

SAMPLERS = ("tpe", "random", "grid")
STORAGE_TRIES = 5  # opening a new database that other processes are creating too
GRID_POINTS = 5  # values of a float range (or a wide int range) the grid sampler tries
SPACE, MONITOR = "nncli_space", "nncli_monitor"  # the user attributes a study records
STATES = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed", "RUNNING": "running"}
Objective = Callable[[int, dict[str, Any], Callable[[int, float], None]], tuple[float, dict]]


def _optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise SpecError(
            'nncli tune needs Optuna: pip install -e ".[tune]"', field="--trials"
        ) from None
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # trials.csv and our lines say it all
    logging.getLogger("optuna").propagate = False
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return optuna


def _storage(optuna: Any, url: str) -> Any:
    """SQLite waits for a busy database (workers write at once) instead of failing. Processes
    that start together on a new database may race to create its tables: the loser tries
    again and finds them."""
    kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    for attempt in range(STORAGE_TRIES):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
        except Exception as exc:  # SQLAlchemy's: a bad URL, a missing driver, no server, a race
            if attempt + 1 == STORAGE_TRIES or not _raced(exc):
                message = f"cannot open the study storage {url}: {exc}"
                raise SpecError(message, field="--storage") from None
            time.sleep(0.2 * (attempt + 1))


def _raced(exc: Exception) -> bool:
    """Another process created the tables (or held the database) while this one did."""
    text = str(exc).lower()
    return "already exists" in text or "locked" in text or "unique constraint" in text


class Study:
    """One Optuna study over ``params``, created or continued in ``storage`` under ``name``."""

    def __init__(
        self,
        storage: str,
        name: str,
        params: Sequence[Param],
        monitor: str,
        maximize: bool,
        sampler: str = "tpe",
        seed: int = 0,
        worker: int = 0,
        warmup: int = 0,
    ):
        """``warmup``: steps (epochs) every trial runs before the pruner may stop it."""
        optuna = self.optuna = _optuna()
        self.params, self.storage, self.name = list(params), storage, name
        self.study = optuna.create_study(
            storage=_storage(optuna, storage),
            study_name=name,
            direction="maximize" if maximize else "minimize",
            load_if_exists=True,
        )
        self._check(monitor, maximize)
        before = len(self.study.trials)
        seed_now = int(np.random.SeedSequence([seed, before, worker]).generate_state(1)[0])
        self.study.sampler = self._sampler(sampler, seed_now)
        self.study.pruner = optuna.pruners.MedianPruner(n_warmup_steps=warmup)

    def _check(self, monitor: str, maximize: bool) -> None:
        """A study of another space or metric stops the run (exit 2) naming the difference."""
        attrs, study = self.study.user_attrs, self.study
        where = f"study {self.name!r} in {self.storage}"
        if SPACE not in attrs:
            if study.trials:
                raise SpecError(f"{where} has trials but was not made by nncli tune")
            study.set_user_attr(SPACE, described(self.params))
            study.set_user_attr(MONITOR, monitor)
            return
        direction = "maximize" if maximize else "minimize"
        found = difference(attrs[SPACE], self.params)
        if found is None and attrs.get(MONITOR) != monitor:
            found = f"monitor: the study optimised {attrs.get(MONITOR)}, the spec now {monitor}"
        if found is None and study.direction.name.lower() != direction:
            found = f"direction: the study was to {study.direction.name.lower()}, now {direction}"
        if found is not None:
            raise SpecError(
                f"{where} searched another space ({found}); use another --study or --output"
            )

    def _sampler(self, kind: str, seed: int) -> Any:
        samplers = self.optuna.samplers
        if kind == "random":
            return samplers.RandomSampler(seed=seed)
        if kind == "grid":
            grid = {p.key: self._choices(p, p.grid(GRID_POINTS)) for p in self.params}
            return samplers.GridSampler(grid, seed=seed)
        return samplers.TPESampler(seed=seed)

    @staticmethod
    def _choices(param: Param, values: list[Any]) -> list[Any]:
        """Choices Optuna stores as they are (scalars), others as their YAML text."""
        plain = all(isinstance(v, (str, int, float, bool, type(None))) for v in values)
        return values if plain else [flow_yaml(v) for v in values]

    def _suggest(self, trial: Any) -> dict[str, Any]:
        values = {}
        for p in self.params:
            if p.kind == "float":
                values[p.key] = trial.suggest_float(p.key, p.low, p.high, log=p.log)
            elif p.kind == "int":
                values[p.key] = trial.suggest_int(p.key, int(p.low), int(p.high), log=p.log)
            else:
                shown = self._choices(p, list(p.choices))
                picked = trial.suggest_categorical(p.key, shown)
                values[p.key] = p.choices[shown.index(picked)]
        return values

    def optimize(
        self,
        trials: int,
        objective: Objective,
        after: Callable[[dict[str, Any]], None],
        timeout: float | None = None,
        catch: tuple[type[BaseException], ...] = (),
    ) -> None:
        """Run ``trials`` trials (fewer when ``timeout`` seconds pass). ``objective(number,
        values, report)`` trains and returns (value, attributes to record); ``report(step,
        value)`` prunes a hopeless trial. ``after(row)`` hears each trial that ended."""
        optuna = self.optuna

        def run(trial: Any) -> float:
            def report(step: int, value: float) -> None:
                trial.report(float(value), step)
                if trial.should_prune():
                    trial.set_user_attr("epochs", step)
                    raise optuna.TrialPruned(f"pruned at step {step}")

            value, attrs = objective(trial.number, self._suggest(trial), report)
            for key, item in attrs.items():
                trial.set_user_attr(key, item)
            return value

        def ended(study: Any, trial: Any) -> None:
            after(self.row(trial))

        self.study.optimize(run, n_trials=trials, timeout=timeout, catch=catch, callbacks=[ended])

    def row(self, trial: Any) -> dict[str, Any]:
        """number, state, value, each parameter, epochs, seconds (a row of ``trials.csv``)."""
        row: dict[str, Any] = {"number": trial.number}
        row["state"] = STATES.get(trial.state.name, trial.state.name.lower())
        row["value"] = trial.value if trial.value is not None else math.nan
        for p in self.params:  # a choice that is not a scalar shows as its YAML text
            row[p.key] = trial.params.get(p.key)
        row["epochs"] = trial.user_attrs.get("epochs")
        done, start = trial.datetime_complete, trial.datetime_start
        row["seconds"] = (done - start).total_seconds() if done and start else None
        return row

    def rows(self) -> list[dict[str, Any]]:
        return [self.row(t) for t in self.study.get_trials(deepcopy=False)]

    def best(self) -> tuple[int, dict[str, Any], float] | None:
        """(number, values, value) of the best complete trial, None before one completes."""
        try:
            trial = self.study.best_trial
        except ValueError:
            return None
        values = {}
        for p in self.params:
            value = trial.params[p.key]
            shown = self._choices(p, list(p.choices)) if p.kind == "choice" else None
            values[p.key] = p.choices[shown.index(value)] if shown else value
        return trial.number, values, float(trial.value)

    def count(self) -> int:
        return len(self.study.trials)
