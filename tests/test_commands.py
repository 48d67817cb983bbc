"""Packaged configs: resolved by name on the command line, listed by ``seqlight configs``."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

from seqlight import commands
from seqlight.cli import main
from seqlight.commands import (
    CONFIG_DIR,
    UnknownConfigError,
    config_infos,
    config_names,
    packaged_config,
    resolve_config_args,
    run_command,
)
from seqlight.errors import SeqlightError

REPO_CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_configs_ship_inside_the_package_and_the_repo_symlink_points_there():
    assert CONFIG_DIR.parent == Path(commands.__file__).resolve().parent
    assert {"jena_naive", "jena_dense", "jena_gru", "imdb_lstm"} <= set(config_names())
    assert REPO_CONFIGS.resolve() == CONFIG_DIR.resolve()  # `--config configs/jena_gru.yaml` keeps working
    assert sorted(p.name for p in REPO_CONFIGS.glob("*.yaml")) == sorted(f"{n}.yaml" for n in config_names())


@pytest.mark.parametrize("name", ["jena_gru", "jena_gru.yaml", "jena_gru.yml"])
def test_packaged_config_by_name(name):
    assert packaged_config(name) == CONFIG_DIR / "jena_gru.yaml"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["fit", "--config", "jena_gru"], ["fit", "--config", "{path}"]),
        (["fit", "--config", "jena_gru.yaml", "--print_config"], ["fit", "--config", "{path}", "--print_config"]),
        (["fit", "-c", "jena_gru"], ["fit", "-c", "{path}"]),
        (["fit", "--config=jena_gru"], ["fit", "--config={path}"]),
        (["fit", "-c=jena_gru.yaml"], ["fit", "-c={path}"]),
        (["--config", "jena_gru", "fit"], ["--config", "{path}", "fit"]),
    ],
)  # fmt: skip
def test_resolve_config_args_spellings(args, expected, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no file of that name here
    path = str(CONFIG_DIR / "jena_gru.yaml")
    assert resolve_config_args(args) == [a.replace("{path}", path) for a in expected]


def test_resolve_config_args_leaves_paths_and_other_options_alone(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "jena_gru.yaml").write_text("seed_everything: 1\n")  # a file here wins over the packaged one
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "exp.yaml").write_text("seed_everything: 1\n")
    args = [
        "fit",
        "--config", "jena_gru.yaml",
        "--config", "mine/exp.yaml",
        "--config", str(REPO_CONFIGS / "jena_dense.yaml"),
        "--config", "{trainer: {max_epochs: 1}}",  # an inline config
        "--data.init_args.data_dir", "jena_gru",  # not a --config value
        "--print_config",
    ]  # fmt: skip
    assert resolve_config_args(args) == args
    assert resolve_config_args(["fit", "--config", "missing/dir.yaml"]) == ["fit", "--config", "missing/dir.yaml"]


def test_unknown_name_is_one_paragraph_listing_the_configs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UnknownConfigError) as e:
        resolve_config_args(["fit", "--config", "jena_gr"])
    message = str(e.value)
    assert isinstance(e.value, SeqlightError)
    assert "\n" not in message
    assert "--config jena_gr" in message and "Did you mean jena_gru?" in message
    assert all(name in message for name in config_names())


def test_cli_unknown_config_exits_2_with_the_list(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:
        main(["fit", "--config", "no_such_experiment"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("seqlight: error: --config no_such_experiment") and "jena_gru" in err
    assert err.count("\n") == 1  # one paragraph, no traceback


def test_cli_reads_a_packaged_config_by_name(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no configs/ folder here
    with pytest.raises(SystemExit) as e:
        main(["validate", "-c", "jena_naive", "--data.init_args.source", "synthetic", "--print_config"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "seqlight.models.NaiveForecaster" in out and "name: jena_naive" in out


def test_every_config_has_a_book_section_and_title():
    infos = config_infos()
    assert [i.name for i in infos] != sorted(i.name for i in infos), "listed in the book's order, not by name"
    for info in infos:
        first = info.path.read_text().splitlines()[0]
        assert re.fullmatch(r"6\.\d(\.\d)?", info.section), (info.name, first)
        assert f'"{info.title}"' in first, f"{info.name}: the first line should quote the book's section title"
    by_name = {i.name: i for i in infos}
    assert by_name["jena_gru"][1:3] == ("6.3.5", "A first recurrent baseline")
    assert by_name["jena_naive"][1:3] == ("6.3.3", "A common-sense, non-machine-learning baseline")
    sections = [tuple(map(int, i.section.split("."))) for i in infos]
    assert sections == sorted(sections)


def test_seqlight_configs_lists_name_section_and_title(capsys):
    assert main(["configs"]) is None
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["config", "section", "title"]
    assert re.search(r"^jena_gru +6\.3\.5 +A first recurrent baseline$", out, re.M)
    assert re.search(r"^imdb_lstm_bidirectional +6\.3\.8 +Using bidirectional RNNs$", out, re.M)
    assert len([line for line in lines if re.match(r"\w+ +6\.\d", line)]) == len(config_names())


def test_dispatcher():
    assert run_command(["fit", "--config", "jena_gru"]) is False
    assert run_command([]) is False
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert run_command(["configs", "--help"]) is True
    assert "usage: seqlight configs" in out.getvalue()
    with pytest.raises(SeqlightError, match="takes no arguments"):
        run_command(["configs", "extra"])
