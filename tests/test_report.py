"""``seqlight report`` and ``seqlight reproduce`` on hand-written run folders: the table's values, the band
verdicts, the figures, and what reproduce runs, skips and resumes."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from seqlight import results
from seqlight.book_results import BOOK_RESULTS, TOLERANCE, book_result
from seqlight.commands import config_infos, config_names, run_command

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _metric(history: list[tuple[int, float]], mode: str) -> dict:
    pick = max if mode == "max" else min
    best_epoch, best = pick(history, key=lambda item: item[1])
    return {
        "best": best,
        "best_epoch": best_epoch,
        "last": history[-1][1],
        "last_epoch": history[-1][0],
        "history": [list(p) for p in history],
    }


def write_run(
    runs: Path,
    experiment: str,
    version: int,
    *,
    val: list[float],
    metric: str,
    real: bool = True,
    finished: bool = True,
    subcommand: str = "fit",
    wall: float = 125.0,
    last_ckpt: bool = False,
    ckpt_path: Path | None = None,
) -> Path:
    """A run folder with a metrics.json in RunSummary's schema (epochs 0-based); with ``ckpt_path``, the
    ``config.yaml`` LightningCLI saves, naming the checkpoint the run started from."""
    folder = runs / experiment / f"version_{version}"
    folder.mkdir(parents=True)
    mode = "max" if metric.endswith("acc") else "min"
    short = metric.split("/")[1]
    hist = list(enumerate(val))
    train = [(e, v * 0.9 if mode == "min" else min(1.0, v + 0.05)) for e, v in hist]
    metrics = {metric: _metric(hist, mode), f"train/{short}": _metric(train, mode)}
    metrics["val/loss"] = _metric([(e, 1.0 - v if mode == "max" else v) for e, v in hist], "min")
    metrics["train/loss"] = _metric([(e, 0.5 / (e + 1)) for e, _ in hist], "min")
    if subcommand == "test":  # a test run logs test/* once
        metrics = {f"test/{short}": _metric([(0, val[-1])], mode), "test/loss": _metric([(0, 0.5)], "min")}
    source = "real aclImdb datasets/aclImdb" if real else "SYNTHETIC offline stand-in datasets/x.csv (not real)"
    summary = {
        "experiment": experiment,
        "version": version,
        "subcommand": subcommand,
        "data_source": source,
        "real_data": real,
        "monitor": metric if subcommand == "fit" else None,
        "mode": mode if subcommand == "fit" else None,
        "metrics": metrics,
        "baseline": None,
        "epochs_run": len(val) if subcommand == "fit" else 0,
        "wall_time_s": wall,
        "epoch_time_s": wall / len(val) if subcommand == "fit" else None,
        "seed": 0,
        "hardware": {"cpu": "AMD EPYC", "cores": 2, "accelerator": "cpu", "devices": 1, "precision": "32-true"},
        "finished": finished,
    }
    (folder / "metrics.json").write_text(json.dumps(summary))
    if ckpt_path is not None:
        (folder / "config.yaml").write_text(f"seed_everything: 0\nckpt_path: {ckpt_path}\n")
    if last_ckpt:
        (folder / "checkpoints").mkdir()
        (folder / "checkpoints" / "last.ckpt").write_bytes(b"not read by reproduce")
    return folder


# ---------------------------------------------------------------------------------------------------------
# the book's numbers


def test_book_results_cover_every_config_and_agree_with_their_curves():
    assert set(BOOK_RESULTS) == set(config_names())
    for name, ref in BOOK_RESULTS.items():
        assert ref.metric in TOLERANCE, name
        for curve, best, final, epoch in (
            (ref.fc_curve, ref.fc_best, ref.fc_final, ref.fc_best_epoch),
            (ref.gb_curve, ref.gb_best, ref.gb_final, ref.gb_best_epoch),
        ):
            if curve is None:
                continue
            pick = max if ref.mode == "max" else min
            assert pick(curve) == best and curve[-1] == final and curve.index(best) + 1 == epoch, name


REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "book_chapter6.md"


@pytest.mark.skipif(not REFERENCE.is_file(), reason="reference/book_chapter6.md is not beside the project")
def test_book_results_are_transcribed_from_the_reference():
    """Every curve appears verbatim in the reference (its per-epoch series), every best and final value in
    the row it cites."""
    text = REFERENCE.read_text(encoding="utf-8")
    plain = re.sub(r"\*\*(\.\d{4})\*\*\(ep\d+\)", r"\1", text)  # ".8460**(ep4)" marks the best
    for name, ref in BOOK_RESULTS.items():
        for curve in (ref.fc_curve, ref.gb_curve):
            if curve:
                full, short = (" ".join(f"{v:.4f}"[cut:] for v in curve) for cut in (0, 1))
                assert full in plain or short in plain, name
        row = re.search(r"^\| " + re.escape(ref.row) + r" \|.*$", text, re.MULTILINE).group(0)
        for value in (ref.fc_best, ref.fc_final, ref.gb_best, ref.gb_final):
            assert f"{value:.4f}" in row or f"{value:.4f}"[1:] in row, (name, value)


def test_band_is_the_fc_gb_range_widened_by_the_tolerance():
    ref = book_result("imdb_lstm")  # FC 0.8928, GB 0.8884
    assert ref.band() == pytest.approx((0.8784, 0.9028))
    assert ref.in_band(0.8784) and ref.in_band(0.9028) and not ref.in_band(0.9029) and not ref.in_band(0.878)
    gru = book_result("jena_gru")  # FC 0.2644, GB 0.2628
    assert gru.band() == pytest.approx((0.2578, 0.2694))


# ---------------------------------------------------------------------------------------------------------
# seqlight report


@pytest.fixture
def fake_runs(tmp_path) -> Path:
    runs = tmp_path / "runs"
    # imdb_lstm: an older finished run (outside the band) and a newer unfinished one: the newest finished wins
    write_run(runs, "imdb_lstm", 0, val=[0.85, 0.8900, 0.8800], metric="val/acc", wall=3725.0)
    write_run(runs, "imdb_lstm", 1, val=[0.50], metric="val/acc", finished=False)
    # ... and later `test`s of its checkpoints, which have no validation curve: not the run shown, but its test
    # (the newest finished test of a checkpoint of the run shown: not version 3, which tested version 1's)
    lstm0 = runs / "imdb_lstm" / "version_0" / "checkpoints"
    write_run(runs, "imdb_lstm", 2, val=[0.70], metric="val/acc", subcommand="test", ckpt_path=lstm0 / "last.ckpt")
    write_run(
        runs,
        "imdb_lstm",
        3,
        val=[0.60],
        metric="val/acc",
        subcommand="test",
        ckpt_path=runs / "imdb_lstm" / "version_1" / "checkpoints" / "last.ckpt",
    )
    # imdb_glove: above the band (better than both runs of the book), tested on its best checkpoint
    write_run(runs, "imdb_glove", 0, val=[0.55, 0.6100, 0.58], metric="val/acc")
    glove = runs / "imdb_glove" / "version_0" / "checkpoints" / "best-epoch=01.ckpt"
    write_run(runs, "imdb_glove", 1, val=[0.5555], metric="val/acc", subcommand="test", ckpt_path=glove)
    # imdb_simple_rnn: real data, best 0.80 at epoch 2: below the band 0.8360-0.8840
    write_run(runs, "imdb_simple_rnn", 0, val=[0.78, 0.80, 0.79], metric="val/acc", wall=61.0)
    # jena_gru: synthetic data, never in band
    write_run(runs, "jena_gru", 0, val=[0.30, 0.27, 0.2650, 0.28], metric="val/mae", real=False, wall=40.0)
    # jena_naive: a validate run
    write_run(runs, "jena_naive", 0, val=[0.2900], metric="val/mae", subcommand="validate", wall=9.0)
    # an experiment the book has not, and a folder without any metrics.json
    write_run(runs, "my_model", 0, val=[0.5, 0.4], metric="val/mae")
    (runs / "empty" / "version_0").mkdir(parents=True)
    return runs


def test_report_table_values(fake_runs, tmp_path):
    out = tmp_path / "out"
    path = results.write_report(fake_runs, out)
    rows = {r["experiment"]: r for r in results.parse_table(path.read_text())}
    assert list(rows) == ["imdb_glove", "imdb_simple_rnn", "imdb_lstm", "jena_naive", "jena_gru", "my_model"]

    lstm = rows["imdb_lstm"]
    assert lstm["book section"] == "6.2.4 (6.2-d)"
    assert lstm["metric"] == "val/acc"
    assert lstm["ours best (epoch)"] == "0.8900 (2)"  # 1-based
    assert lstm["ours final"] == "0.8800"
    assert lstm["FC best (epoch) / final"] == "0.8928 (8) / 0.8758"
    assert lstm["GB best (epoch) / final"] == "0.8884 (2) / 0.8836"
    assert lstm["band"] == "0.8784-0.9028"
    assert lstm["in band?"] == "yes"
    assert lstm["data"] == "real"
    assert lstm["epochs run"] == "3"
    assert lstm["wall time (per epoch)"] == "1h02m05s (1241.7 s)"

    rnn = rows["imdb_simple_rnn"]
    assert rnn["ours best (epoch)"] == "0.8000 (2)"
    assert rnn["band"] == "0.8360-0.8840"
    assert rnn["in band?"] == "no (worse)"
    assert rnn["test: ours (checkpoint) / FC / GB"] == "-"  # never tested, and the book has no test number

    assert lstm["test: ours (checkpoint) / FC / GB"] == "0.7000 (last.ckpt) / - / -"
    glove = rows["imdb_glove"]
    assert glove["in band?"] == "no (better)"  # band 0.5623-0.5935
    assert glove["test: ours (checkpoint) / FC / GB"] == "0.5555 (best-epoch=01.ckpt) / 0.5366 / 0.5041"
    assert rnn["wall time (per epoch)"] == "1m01s (20.3 s)"

    gru = rows["jena_gru"]
    assert gru["ours best (epoch)"] == "0.2650 (3)" and gru["ours final"] == "0.2800"
    assert gru["FC best (epoch) / final"] == "0.2644 (6) / 0.3034"
    assert gru["in band?"] == "n/a (synthetic)"  # 0.2650 is inside 0.2578-0.2694, but not on the real data
    assert gru["data"] == "synthetic"

    naive = rows["jena_naive"]
    assert naive["ours best (epoch)"] == "0.2900" and naive["epochs run"] == "validate"
    assert naive["FC best (epoch) / final"] == "0.2897 / 0.2897"
    assert naive["in band?"] == "yes"

    text = path.read_text()
    assert "- imdb_lstm: `imdb_lstm/version_0`; real aclImdb datasets/aclImdb; cpu, AMD EPYC, 2 cores" in text

    mine = rows["my_model"]
    assert mine["FC best (epoch) / final"] == "-" and mine["in band?"] == "-"
    assert mine["ours best (epoch)"] == "0.4000 (2)"

    for name in rows:
        png = out / f"{name}.png"
        assert png.read_bytes()[:8] == PNG_SIGNATURE, name
    assert not (out / "empty.png").exists()


def test_report_command(fake_runs, tmp_path, capsys):
    out = tmp_path / "docs"
    assert run_command(["report", str(fake_runs), "--out", str(out)])
    assert "results.md" in capsys.readouterr().out
    assert (out / "results.md").is_file() and (out / "imdb_lstm.png").is_file()


def test_report_of_a_missing_folder_is_a_users_mistake(tmp_path):
    from seqlight.errors import SeqlightError

    with pytest.raises(SeqlightError, match="not a folder of runs"):
        run_command(["report", str(tmp_path / "nowhere")])


def test_report_unfinished_run_is_marked(tmp_path):
    runs = tmp_path / "runs"
    write_run(runs, "imdb_lstm", 0, val=[0.85, 0.88], metric="val/acc", finished=False)
    rows = results.parse_table(results.write_report(runs, tmp_path / "o").read_text())
    assert rows[0]["epochs run"] == "2 (unfinished)"
    assert rows[0]["in band?"] == "yes"


# ---------------------------------------------------------------------------------------------------------
# seqlight reproduce


def test_reproduce_skips_resumes_and_starts(tmp_path, monkeypatch, capsys):
    runs = tmp_path / "runs"
    write_run(runs, "jena_gru", 0, val=[0.27, 0.26], metric="val/mae")  # finished
    write_run(runs, "jena_dense", 0, val=[0.31], metric="val/mae", finished=False, last_ckpt=True)  # interrupted
    calls: list[list[str]] = []

    def fake_run(cmd):
        calls.append(cmd)
        name = cmd[cmd.index("--config") + 1]
        fn = cmd[3]
        if fn == "validate":
            write_run(runs, name, 0, val=[0.29], metric="val/mae", subcommand="validate")
        elif "--ckpt_path" in cmd:
            summary = json.loads((runs / name / "version_0" / "metrics.json").read_text())
            summary["finished"] = True
            summary["epochs_run"] = int(cmd[cmd.index("--trainer.max_epochs") + 1])
            (runs / name / "version_0" / "metrics.json").write_text(json.dumps(summary))
        else:
            write_run(runs, name, 0, val=[0.5, 0.4], metric="val/mae")
        return 0

    monkeypatch.setattr(results, "run_subprocess", fake_run)
    names = ["jena_naive", "jena_dense", "jena_gru", "jena_conv1d"]
    code = results.reproduce(names, runs=str(runs), max_epochs=2, source="synthetic", report_out=str(tmp_path / "r"))
    assert code == 0
    assert [c[:4] for c in calls] == [
        [sys.executable, "-m", "seqlight", "validate"],
        [sys.executable, "-m", "seqlight", "fit"],
        [sys.executable, "-m", "seqlight", "fit"],
    ]
    naive, dense, conv = calls
    assert naive[4:6] == ["--config", "jena_naive"] and "--ckpt_path" not in naive
    assert "--trainer.max_epochs" not in naive  # nothing to train
    assert dense[dense.index("--ckpt_path") + 1] == "last"
    assert conv[4:6] == ["--config", "jena_conv1d"] and "--ckpt_path" not in conv
    for cmd in calls:
        assert cmd[cmd.index("--trainer.logger.init_args.save_dir") + 1] == str(runs)
        assert cmd[cmd.index("--data.init_args.source") + 1] == "synthetic"
    assert conv[conv.index("--trainer.max_epochs") + 1] == "2"

    out = capsys.readouterr().out
    assert "[3/4] jena_gru: finished already" in out
    assert "[4/4] jena_conv1d: done in" in out and "elapsed" in out
    assert "[2/4] jena_dense: done in" in out and "about" in out and "left (2 epochs)" in out
    rows = {r["experiment"] for r in results.parse_table((tmp_path / "r" / "results.md").read_text())}
    assert rows == set(names)

    # run again: everything is finished now, nothing runs
    calls.clear()
    assert results.reproduce(names, runs=str(runs), max_epochs=2, report_out=None) == 0
    assert calls == []

    # asking for more epochs than the finished jena_gru ran resumes it from its last.ckpt, if it has one
    (runs / "jena_gru" / "version_0" / "checkpoints").mkdir()
    (runs / "jena_gru" / "version_0" / "checkpoints" / "last.ckpt").write_bytes(b"x")
    assert results.reproduce(["jena_gru"], runs=str(runs), max_epochs=5, report_out=None) == 0
    assert "--ckpt_path" in calls[0] and calls[0][calls[0].index("--trainer.max_epochs") + 1] == "5"


def test_reproduce_tests_the_last_checkpoint_once(tmp_path, monkeypatch, capsys):
    """--test scores the last.ckpt of the newest finished fit (6.1-i tests the weights after the last epoch)
    with `seqlight test`, with the same overrides, and does not test a run twice."""
    runs = tmp_path / "runs"
    write_run(runs, "imdb_glove", 0, val=[0.55, 0.58], metric="val/acc", last_ckpt=True)  # finished
    calls: list[list[str]] = []

    def fake_run(cmd):
        calls.append(cmd)
        name, fn = cmd[cmd.index("--config") + 1], cmd[3]
        if fn == "test":
            ckpt = Path(cmd[cmd.index("--ckpt_path") + 1])
            write_run(runs, name, 9, val=[0.54], metric="val/acc", subcommand="test", ckpt_path=ckpt)
        elif fn == "validate":
            write_run(runs, name, 0, val=[0.29], metric="val/mae", subcommand="validate")
        else:
            write_run(runs, name, 0, val=[0.5, 0.52], metric="val/acc", last_ckpt=True)
        return 0

    monkeypatch.setattr(results, "run_subprocess", fake_run)
    names = ["imdb_glove", "imdb_glove_scratch", "jena_naive"]
    extra = ["--data.init_args.embedding_dim", "50"]
    code = results.reproduce(names, runs=str(runs), source="real", report_out=str(tmp_path / "r"), extra=extra)
    assert code == 0 and [c[3] for c in calls] == ["fit", "validate"]  # no --test: nothing tested
    calls.clear()
    monkeypatch.chdir(tmp_path)  # a relative runs folder, as `seqlight reproduce --runs runs` gives
    assert results.reproduce(names, runs="runs", source="real", report_out=None, extra=extra, test=True) == 0
    assert [(c[3], c[c.index("--config") + 1]) for c in calls] == [
        ("test", "imdb_glove"),
        ("test", "imdb_glove_scratch"),
    ]
    for cmd, name in zip(calls, ("imdb_glove", "imdb_glove_scratch"), strict=True):
        assert cmd[cmd.index("--ckpt_path") + 1] == str(
            (runs / name / "version_0" / "checkpoints" / "last.ckpt").resolve()
        )
        assert cmd[cmd.index("--data.init_args.source") + 1] == "real" and cmd[-2:] == extra
        assert "--trainer.max_epochs" not in cmd
    # the tested checkpoint is named absolutely, so a report made from another folder still finds the test
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    report = results.write_report(runs, tmp_path / "r")
    rows = {r["experiment"]: r for r in results.parse_table(report.read_text())}
    assert rows["imdb_glove"]["test: ours (checkpoint) / FC / GB"] == "0.5400 (last.ckpt) / 0.5366 / 0.5041"
    calls.clear()
    assert results.reproduce(names, runs=str(runs), report_out=None, test=True) == 0
    assert calls == []
    assert "imdb_glove: tested already, skipped" in capsys.readouterr().out


def test_reproduce_stops_at_a_failing_run(tmp_path, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(results, "run_subprocess", lambda cmd: calls.append(cmd) or 3)
    code = results.reproduce(["jena_dense", "jena_gru"], runs=str(tmp_path / "runs"), report_out=None)
    assert code == 3 and len(calls) == 1
    assert "jena_dense: failed with exit code 3" in capsys.readouterr().out
    with pytest.raises(SystemExit) as info:
        run_command(["reproduce", "jena_dense", "--runs", str(tmp_path / "runs"), "--no_report"])
    assert info.value.code == 3


def test_reproduce_default_is_every_config_in_book_order(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(results, "run_subprocess", lambda cmd: calls.append(cmd) or 0)
    assert results.reproduce(runs=str(tmp_path / "runs"), report_out=None) == 0
    assert [c[c.index("--config") + 1] for c in calls] == [i.name for i in config_infos()]


def test_reproduce_passes_extra_overrides_and_rejects_unknown_configs(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(results, "run_subprocess", lambda cmd: calls.append(cmd) or 0)
    args = ["reproduce", "jena_dense", "--runs", str(tmp_path), "--no_report", "--accelerator", "cpu"]
    assert run_command([*args, "--data_dir", "d", "--", "--data.init_args.steps_per_epoch", "2"])
    cmd = calls[0]
    assert cmd[-2:] == ["--data.init_args.steps_per_epoch", "2"]
    assert cmd[cmd.index("--trainer.accelerator") + 1] == "cpu"
    assert cmd[cmd.index("--data.init_args.data_dir") + 1] == "d"
    from seqlight.commands import UnknownConfigError

    with pytest.raises(UnknownConfigError):
        results.reproduce(["jena_gruu"], runs=str(tmp_path), report_out=None)


def test_reproduce_for_real_tiny(tmp_path, jena_dir):
    """One real `seqlight reproduce` of jena_dense (1 epoch of 2 batches on the synthetic series), then again:
    the second call finds it finished and skips it."""
    import os
    import subprocess

    env = {k: v for k, v in os.environ.items() if k != "SEQLIGHT_HOME"}
    cmd = [sys.executable, "-m", "seqlight", "reproduce", "jena_dense", "--runs", "myruns", "--max_epochs", "1"]
    cmd += ["--source", "synthetic", "--data_dir", str(jena_dir), "--report_out", "rep", "--"]
    cmd += ["--data.init_args.steps_per_epoch", "2", "--trainer.limit_val_batches", "2"]
    first = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "[1/1] jena_dense: done in" in first.stdout
    summary = json.loads((tmp_path / "myruns" / "jena_dense" / "version_0" / "metrics.json").read_text())
    assert summary["finished"] and summary["epochs_run"] == 1
    (row,) = results.parse_table((tmp_path / "rep" / "results.md").read_text())
    assert row["experiment"] == "jena_dense" and row["data"] == "synthetic" and row["epochs run"] == "1"
    assert row["ours best (epoch)"] == f"{summary['metrics']['val/mae']['best']:.4f} (1)"
    assert (tmp_path / "rep" / "jena_dense.png").read_bytes()[:8] == PNG_SIGNATURE

    second = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "[1/1] jena_dense: finished already" in second.stdout
    assert not (tmp_path / "myruns" / "jena_dense" / "version_1").exists()
