"""Shared fixtures: the offline Jena series, written once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from seqlight.data.jena_synthetic import SYNTHETIC_ROWS, write_jena_csv

SHARED_DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"

# Two cores: one intra-op thread keeps the suite fast and free of OpenMP oversubscription.
torch.set_num_threads(1)
os.environ.setdefault("SEQLIGHT_NUM_THREADS", "1")


@pytest.fixture(scope="session", autouse=True)
def session_cache(tmp_path_factory):
    """One seqlight cache (IMDB corpus cache, downloads' fallbacks) for the whole session, in its temporary
    folder: tests, and the CLI processes they start, never read or fill the user's ~/.cache/seqlight."""
    before = os.environ.get("SEQLIGHT_CACHE")
    os.environ["SEQLIGHT_CACHE"] = str(tmp_path_factory.mktemp("seqlight-cache"))
    yield Path(os.environ["SEQLIGHT_CACHE"])
    if before is None:
        os.environ.pop("SEQLIGHT_CACHE", None)
    else:
        os.environ["SEQLIGHT_CACHE"] = before


@pytest.fixture(scope="session")
def jena_dir(tmp_path_factory) -> Path:
    """A data_dir holding the full-size synthetic series under the name JenaDataModule looks for."""
    d = tmp_path_factory.mktemp("jena")
    write_jena_csv(d / "jena_climate_synthetic.csv", SYNTHETIC_ROWS)
    return d


@pytest.fixture(scope="session")
def jena_dm(jena_dir):
    from seqlight.data import JenaDataModule

    dm = JenaDataModule(data_dir=str(jena_dir), source="synthetic", seed=0)
    dm.setup()
    return dm


@pytest.fixture(scope="session")
def shared_dataset():
    """``shared_dataset(*parts)``: a file under ../shared/datasets, or skip the test where it is absent."""

    def find(*parts: str) -> Path:
        p = SHARED_DATASETS.joinpath(*parts)
        if not p.exists():
            pytest.skip(f"real data not available: {p}")
        return p

    return find
