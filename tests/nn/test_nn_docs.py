"""The Examples in seqlight.nn's docstrings run and print what they say."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "seqlight.nn.gru",
    "seqlight.nn.lstm",
    "seqlight.nn.simple_rnn",
    "seqlight.nn.bidirectional",
    "seqlight.nn.reference",
    "seqlight.nn.conv",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
