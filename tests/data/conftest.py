"""tests/data: every test gets its own seqlight cache (the IMDB corpus cache, GloVe fallbacks), so tests never
share entries with each other or with the user's ~/.cache/seqlight."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    cache = tmp_path / "seqlight-cache"
    monkeypatch.setenv("SEQLIGHT_CACHE", str(cache))
    return cache
