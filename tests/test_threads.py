"""One torch thread where seqlight is in charge, unless the user chose (README, "Threads")."""

from __future__ import annotations

import pytest
import torch

from seqlight import threads
from seqlight.cli import configure_threads as cli_configure_threads
from seqlight.models import RecurrentForecaster
from seqlight.threads import ThreadsError, configure_threads, default_threads

ENVS = ("SEQLIGHT_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


@pytest.fixture
def fresh(monkeypatch):
    """A process as a user's script sees it: torch at its default of 2 threads when seqlight was imported,
    no thread variables set, nothing decided yet. Returns the list of messages seqlight logs."""
    before = torch.get_num_threads()
    for name in ENVS:
        monkeypatch.delenv(name, raising=False)
    torch.set_num_threads(2)
    monkeypatch.setattr(threads, "_at_import", 2)
    monkeypatch.setattr(threads, "_decided", None)
    logged: list[str] = []
    monkeypatch.setattr(threads, "rank_zero_info", logged.append)
    yield logged
    torch.set_num_threads(before)


def test_default_is_one_thread_and_says_so_once(fresh):
    assert default_threads() == 1 and torch.get_num_threads() == 1
    assert default_threads() == 1
    assert len(fresh) == 1 and "1 intra-op thread" in fresh[0] and "SEQLIGHT_NUM_THREADS" in fresh[0]


def test_a_seqlight_model_takes_the_default_when_set_up(fresh):
    """The hook sits in KerasStyleModule.setup, which the Trainer calls for fit/validate/test/predict."""
    RecurrentForecaster(num_features=3, units=[4]).setup("fit")
    assert torch.get_num_threads() == 1


def test_set_num_threads_after_import_is_kept(fresh):
    torch.set_num_threads(3)
    assert default_threads() == 3 and torch.get_num_threads() == 3
    assert "torch.set_num_threads" in fresh[0]


def test_set_num_threads_after_seqlight_decided_is_kept(fresh):
    default_threads()
    torch.set_num_threads(2)  # between two fits
    RecurrentForecaster(num_features=3, units=[4]).setup("fit")
    assert torch.get_num_threads() == 2
    assert len(fresh) == 2


def test_seqlight_num_threads(fresh, monkeypatch):
    monkeypatch.setenv("SEQLIGHT_NUM_THREADS", "3")
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # seqlight's own variable is the more specific
    assert default_threads() == 3 and torch.get_num_threads() == 3


@pytest.mark.parametrize("name", ["OMP_NUM_THREADS", "MKL_NUM_THREADS"])
def test_omp_num_threads_is_left_to_torch(fresh, monkeypatch, name):
    monkeypatch.setenv(name, "2")
    assert default_threads() == 2 and torch.get_num_threads() == 2
    assert f"${name}" in fresh[0]


@pytest.mark.parametrize("value", ["0", "two", "1.5", "-1"])
def test_bad_seqlight_num_threads(fresh, monkeypatch, value):
    monkeypatch.setenv("SEQLIGHT_NUM_THREADS", value)
    with pytest.raises(ThreadsError, match=r"\$SEQLIGHT_NUM_THREADS must be a whole number >= 1"):
        default_threads()


def test_cli_num_threads_wins_and_is_not_overridden_by_the_model(fresh):
    assert cli_configure_threads is configure_threads  # seqlight.cli.configure_threads still importable
    assert configure_threads(2) == 2
    RecurrentForecaster(num_features=3, units=[4]).setup("fit")
    assert torch.get_num_threads() == 2
    assert fresh == []  # the command line's choice is not announced
    with pytest.raises(ThreadsError, match="--num_threads must be a whole number >= 1, got 0"):
        configure_threads(0)


def test_cli_without_num_threads_uses_the_same_default(fresh, monkeypatch):
    assert configure_threads(None) == 1
    monkeypatch.setattr(threads, "_decided", None)  # a new process
    torch.set_num_threads(2)
    monkeypatch.setenv("SEQLIGHT_NUM_THREADS", "3")
    assert configure_threads(None) == 3
