"""The Examples in seqlight.nn's docstrings, docs/nn_masks.md and the README run and do what they say."""

from __future__ import annotations

import doctest
import importlib
import re
from pathlib import Path

import pytest
import torch
from torch.nn.utils.rnn import PackedSequence, pack_sequence

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


MASKS_DOC = Path(__file__).resolve().parents[2] / "docs" / "nn_masks.md"


def _python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), re.S)


@pytest.mark.parametrize("index", range(len(_python_blocks(MASKS_DOC))))
def test_masks_doc_examples_run(index):
    """Every example of docs/nn_masks.md runs; its asserts (packed, pre-padded and alone agree) hold."""
    torch.manual_seed(index)
    code = _python_blocks(MASKS_DOC)[index]
    assert "assert " in code
    exec(compile(code, str(MASKS_DOC), "exec"), {})


def test_readme_nn_example_bidirectional_with_a_packed_sequence():
    """The README's seqlight.nn example, its book GRU made bidirectional the torch way, fed a PackedSequence:
    torch's packed layout out, and each sequence's state as if it ran alone."""
    readme = MASKS_DOC.parents[1] / "README.md"
    (code,) = [b for b in _python_blocks(readme) if "from seqlight.nn import" in b]
    assert "recurrent_dropout=0.2," in code
    code = code.replace("recurrent_dropout=0.2,", "recurrent_dropout=0.2,\n    bidirectional=True,", 1)
    env: dict = {}
    exec(compile(code, "README.md", "exec"), env)
    torch.manual_seed(0)
    for layer in (env["book_gru"].eval(), env["gru"].eval(), env["bi"].eval()):
        n_in = 32 if layer is env["bi"] else 14
        seqs = [torch.randn(n, n_in) for n in (9, 4, 6)]
        packed = pack_sequence(seqs, enforce_sorted=False)
        out, state = layer(packed)
        h_n = state[0] if isinstance(state, tuple) else state
        assert isinstance(out, PackedSequence) and torch.equal(out.batch_sizes, packed.batch_sizes)
        for b, s in enumerate(seqs):
            alone = layer(s[None])[1]
            alone = alone[0] if isinstance(alone, tuple) else alone
            torch.testing.assert_close(h_n[:, b], alone[:, 0], atol=1e-5, rtol=0)
