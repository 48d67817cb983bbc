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


# ---------------------------------------------------------------------------------------------------------
# the allocator (seqlight.threads.tune_malloc)

_FAULTS = """
import json, resource, sys, torch
from seqlight import threads
result = threads.tune_malloc() if sys.argv[1] == "tune" else "not asked"
def step():  # a training step's transient tensors: 4 x 20 MB, each written in full, then freed
    xs = [torch.empty(5_000_000) for _ in range(4)]
    for x in xs:
        x.fill_(1.0)
step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(100):
    step()
print(json.dumps([result, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before]))
"""


def _faults(*args: str, **env: str) -> tuple[bool | str, int]:
    import json
    import os
    import subprocess
    import sys

    keep = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    p = subprocess.run(
        [sys.executable, "-c", _FAULTS, *args], capture_output=True, text=True, timeout=120, env={**keep, **env}
    )
    assert p.returncode == 0, p.stderr[-2000:]
    result, faults = json.loads(p.stdout.strip().splitlines()[-1])
    return result, faults


def _glibc() -> bool:
    import os
    import sys

    try:
        return sys.platform.startswith("linux") and (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")
    except (ValueError, OSError):
        return False


@pytest.mark.skipif(not _glibc(), reason="glibc's malloc only")
def test_tuned_malloc_reuses_large_blocks_instead_of_faulting_them_in_again():
    """100 steps that each hold 4 x 20 MB at once, written in full, then free them. Untuned, glibc hands such
    blocks back to the kernel, which zero-fills them again on first touch; once tuned the memory is reused."""
    tuned, faults_tuned = _faults("tune")
    # The untuned reference pins glibc's starting mmap threshold (128 KiB, its default until its dynamic
    # thresholds move): how much and from which step on glibc's dynamic thresholds hand memory back depends on
    # the heap's layout (even on whether stdout is a pipe: 1.9 million faults in one run, 44,000 in another), so
    # the reference must not. Pinned, every 20 MB block is mapped and unmapped: ~20,000 faults a step.
    untuned, faults_default = _faults("keep", MALLOC_MMAP_THRESHOLD_=str(128 * 1024))
    assert tuned is True and untuned == "not asked"
    assert faults_default > 200_000
    # tuned: a constant ~5,000 (the heap growing once), whatever the number of steps
    assert faults_tuned < 20_000


@pytest.mark.skipif(not _glibc(), reason="glibc's malloc only")
@pytest.mark.parametrize(
    "env, reason",
    [
        ({"SEQLIGHT_MALLOC_TUNING": "0"}, "$SEQLIGHT_MALLOC_TUNING=0"),
        ({"MALLOC_TRIM_THRESHOLD_": "1000000"}, "set in the environment"),
        ({"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=1000000"}, "set in the environment"),
    ],
)
def test_malloc_is_left_alone_where_the_user_chose(env, reason):
    assert _faults("tune", **env)[0] == reason


def test_malloc_is_tuned_when_a_model_is_set_up_not_before_the_data(fresh, monkeypatch):
    calls = []
    monkeypatch.setattr(threads, "_malloc_tuned", None)
    monkeypatch.setattr(threads, "_tune_malloc", lambda: calls.append(1) or True)
    configure_threads(None)  # the CLI, before the DataModule reads anything
    configure_threads(2)
    assert calls == []
    RecurrentForecaster(num_features=3, units=[4]).setup("fit")
    RecurrentForecaster(num_features=3, units=[4]).setup("fit")
    assert calls == [1] and threads.tune_malloc() is True
