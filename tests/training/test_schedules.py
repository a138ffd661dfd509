"""Each learning-rate schedule gives the expected rate at given epochs."""

import math

import pytest

from emnist_bench.training import schedules
from tests.configs import compose_config, options


@pytest.mark.parametrize(
    ("name", "options_", "expected"),
    [
        ("step_decay", {"drop": 0.5, "every": 2}, {0: 0.1, 1: 0.1, 2: 0.05, 5: 0.025}),
        ("exponential", {"decay_rate": 0.9}, {0: 0.1, 1: 0.09, 3: 0.1 * 0.9**3}),
        # warm-up over 2 epochs: 1/3, 2/3 of the rate, then cosine from the full rate.
        (
            "cosine",
            {"warmup_epochs": 2, "min_fraction": 0.0},
            {0: 0.1 / 3, 1: 0.2 / 3, 2: 0.1, 6: 0.05, 10: 0.0},
        ),
        (
            "one_cycle",
            {"max_factor": 10.0, "warmup_fraction": 0.3, "final_div": 100.0},
            {0: 0.1, 3: 1.0, 10: 0.001},
        ),
    ],
)
def test_schedule_values(name, options_, expected):
    schedule = schedules.epoch_schedule(name, initial=0.1, epochs=11, **options_)
    for epoch, rate in expected.items():
        assert schedule(epoch) == pytest.approx(rate, abs=1e-12), (name, epoch)


def test_one_cycle_rises_then_falls():
    schedule = schedules.epoch_schedule(
        "one_cycle", initial=0.01, epochs=20, max_factor=10, warmup_fraction=0.3, final_div=100
    )
    rates = [schedule(epoch) for epoch in range(20)]
    peak = rates.index(max(rates))
    assert peak == 6
    assert all(a < b for a, b in zip(rates[:peak], rates[1 : peak + 1], strict=True))
    assert all(a > b for a, b in zip(rates[peak:-1], rates[peak + 1 :], strict=True))


@pytest.mark.parametrize("name", ["constant", "reduce_on_plateau"])
def test_callback_schedules_have_no_epoch_function(name):
    assert schedules.epoch_schedule(name, initial=0.1, epochs=5) is None


@pytest.mark.parametrize("option", options("lr_schedule"))
def test_every_schedule_option_is_known_and_gives_finite_rates(option):
    from emnist_bench.config import schedule_options

    cfg = compose_config([f"lr_schedule={option}", "trainer.epochs=12"])
    assert cfg.lr_schedule.name in schedules.ALL
    schedule = schedules.epoch_schedule(
        cfg.lr_schedule.name, initial=1e-3, epochs=12, **schedule_options(cfg)
    )
    if schedule is not None:
        assert all(math.isfinite(schedule(e)) and schedule(e) > 0 for e in range(12))
