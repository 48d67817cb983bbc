"""``seqlight report`` and ``seqlight reproduce``: the chapter's results against the book's.

- :func:`write_report` reads the runs under a folder (``runs/<experiment>/version_N/metrics.json``, written by
  :class:`seqlight.callbacks.RunSummary`) and writes, per experiment, ``<out>/<experiment>.png`` (training and
  validation loss, and accuracy or MAE, per epoch, with the book's validation curve where the reference lists
  it) and ``<out>/results.md``: best and final metric per experiment against the author's run (FC) and the
  Korean edition's re-run (GB), inside or outside the reference band (:mod:`seqlight.book_results`), with the
  epoch of the best, the data source, the epochs run and the wall time.
- :func:`reproduce` runs a set of the chapter's configs one after another (each as ``python -m seqlight
  fit|validate`` in a subprocess): it skips the finished ones, resumes an interrupted one with ``--ckpt_path
  last``, optionally tests each fit's ``last.ckpt``, prints a progress line per run, and ends with the report.

Epochs are shown 1-based, as Keras prints them (``metrics.json`` counts from 0, as Lightning does).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from seqlight.book_results import TOLERANCE, BookResult, book_result
from seqlight.errors import SeqlightError
from seqlight.home import resolve_home_path

__all__ = [
    "Run",
    "find_runs",
    "plot_run",
    "report_main",
    "reproduce",
    "reproduce_main",
    "results_table",
    "run_subprocess",
    "write_report",
]

BASELINE = "jena_naive"  # the one config that is validated, not fitted


# ---------------------------------------------------------------------------------------------------------
# reading runs


@dataclass
class Run:
    experiment: str
    folder: Path  # runs/<experiment>/version_N
    summary: dict[str, Any]  # metrics.json
    test: Run | None = None  # the newest `test` run of one of this run's checkpoints (set by find_runs)

    @property
    def finished(self) -> bool:
        return bool(self.summary.get("finished"))

    @cached_property  # read once: the report asks for it while matching tests and again in the table
    def tested_checkpoint(self) -> Path | None:
        """The ``--ckpt_path`` this run was started with, as LightningCLI saved it in ``config.yaml``."""
        import yaml

        try:
            config = yaml.safe_load((self.folder / "config.yaml").read_text(encoding="utf-8"))
        except (OSError, ValueError, yaml.YAMLError):
            return None
        ckpt = config.get("ckpt_path") if isinstance(config, dict) else None
        return Path(ckpt) if isinstance(ckpt, str) else None


def _version(folder: Path) -> int:
    try:
        return int(folder.name.removeprefix("version_"))
    except ValueError:
        return -1


def experiment_runs(experiment_dir: Path) -> list[Run]:
    """The runs with a readable ``metrics.json`` under ``runs/<experiment>``, oldest version first."""
    runs = []
    folders = sorted((p for p in experiment_dir.glob("version_*") if p.is_dir()), key=_version)
    for folder in folders:
        try:
            summary = json.loads((folder / "metrics.json").read_text())
        except (OSError, ValueError):
            continue
        runs.append(Run(experiment_dir.name, folder, summary))
    return runs


def _pick(runs: list[Run], experiment: str) -> Run | None:
    """The newest finished run, else the newest one, among the experiment's own kind of run (``fit``;
    ``validate`` for the baseline) when there is one: a later ``test`` of a checkpoint has no validation
    curve to compare."""
    kind = "validate" if experiment == BASELINE else "fit"
    runs = [r for r in runs if r.summary.get("subcommand") == kind] or runs
    finished = [r for r in runs if r.finished]
    return (finished or runs or [None])[-1]


def _test_of(runs: list[Run], fitted: Run) -> Run | None:
    """The newest finished ``test`` run among ``runs`` of a checkpoint written by ``fitted``."""
    from seqlight.checkpoints import run_folder_of

    folder = fitted.folder.resolve()
    tests = [
        r
        for r in runs
        if r.summary.get("subcommand") == "test"
        and r.finished
        and r.tested_checkpoint is not None
        and run_folder_of(r.tested_checkpoint) == folder
    ]
    return tests[-1] if tests else None


def find_runs(runs_dir: str | Path) -> dict[str, Run]:
    """For each experiment folder under ``runs_dir``, the run the report shows: the newest ``fit`` run
    (``validate`` for the naive baseline; any run where there is none) with a ``metrics.json`` that
    finished, else the newest such run; with, as its ``test``, the newest ``test`` run of one of its
    checkpoints."""
    runs_dir = Path(runs_dir)
    out = {}
    for exp in sorted(p for p in runs_dir.iterdir() if p.is_dir()) if runs_dir.is_dir() else []:
        runs = experiment_runs(exp)
        run = _pick(runs, exp.name)
        if run is not None:
            run.test = _test_of(runs, run) if run.summary.get("subcommand") == "fit" else None
            out[exp.name] = run
    return out


def _book_order(names) -> list[str]:
    from seqlight.commands import config_infos

    order = [i.name for i in config_infos()]
    return sorted(names, key=lambda n: (order.index(n) if n in order else len(order), n))


def _sections() -> dict[str, str]:
    from seqlight.commands import config_infos

    return {i.name: i.section for i in config_infos()}


# ---------------------------------------------------------------------------------------------------------
# the table


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


def _metric_of(run: Run, ref: BookResult | None) -> str | None:
    metrics = run.summary.get("metrics") or {}
    if ref is not None and ref.metric in metrics:
        return ref.metric
    monitor = run.summary.get("monitor")
    if monitor in metrics:
        return monitor
    return next((m for m in ("val/mae", "val/acc") if m in metrics), None)


def _real(run: Run) -> bool:
    return bool(run.summary.get("real_data"))


def table_row(run: Run) -> dict[str, str]:
    """One row of ``results.md`` (column name -> text)."""
    ref = book_result(run.experiment)
    s = run.summary
    metric = _metric_of(run, ref)
    entry = (s.get("metrics") or {}).get(metric) if metric else None
    validate = s.get("subcommand") != "fit"
    section = _sections().get(run.experiment, "")
    row = {
        "experiment": run.experiment,
        "book section": f"{section} ({ref.row})" if ref else (section or "-"),
        "metric": metric or "-",
        "ours best (epoch)": "-",
        "ours final": "-",
        "FC best (epoch) / final": "-",
        "GB best (epoch) / final": "-",
        "band": "-",
        "in band?": "-",
        "test: ours (checkpoint) / FC / GB": "-",
        "data": "real" if _real(run) else "synthetic",
        "epochs run": f"{s.get('subcommand')}" if validate else str(s.get("epochs_run", "-")),
        "wall time (per epoch)": _duration(s.get("wall_time_s")),
    }
    if not s.get("finished"):
        row["epochs run"] += " (unfinished)"
    if s.get("epoch_time_s"):
        row["wall time (per epoch)"] += f" ({s['epoch_time_s']:.1f} s)"
    if entry is not None:
        epoch = "" if validate else f" ({int(entry['best_epoch']) + 1})"
        row["ours best (epoch)"] = f"{entry['best']:.4f}{epoch}"
        row["ours final"] = f"{entry['last']:.4f}"
    if ref is not None:

        def ep(e):
            return f" ({e})" if e is not None else ""

        row["FC best (epoch) / final"] = f"{ref.fc_best:.4f}{ep(ref.fc_best_epoch)} / {ref.fc_final:.4f}"
        row["GB best (epoch) / final"] = f"{ref.gb_best:.4f}{ep(ref.gb_best_epoch)} / {ref.gb_final:.4f}"
        low, high = ref.band()
        row["band"] = f"{low:.4f}-{high:.4f}"
        if not _real(run):
            row["in band?"] = "n/a (synthetic)"
        elif entry is not None and metric == ref.metric:
            row["in band?"] = _band_verdict(ref, entry["best"])
    row["test: ours (checkpoint) / FC / GB"] = _test_cell(run, metric, ref)
    return row


def _band_verdict(ref: BookResult, best: float) -> str:
    """``yes``, or ``no`` with the side: a run can miss the band by doing better than both of the book's."""
    if ref.in_band(best):
        return "yes"
    above = best > ref.band()[1]
    return "no (better)" if above == (ref.mode == "max") else "no (worse)"


def _test_cell(run: Run, metric: str | None, ref: BookResult | None) -> str:
    """``ours (checkpoint file) / FC / GB`` for the test split, ``-`` for what is not there."""
    ours = "-"
    if run.test is not None and metric:
        entry = (run.test.summary.get("metrics") or {}).get(metric.replace("val/", "test/", 1))
        if entry is not None:
            ours = f"{entry['last']:.4f} ({run.test.tested_checkpoint.name})"
    fc, gb = (ref.fc_test, ref.gb_test) if ref is not None else (None, None)
    if ours == "-" and fc is None and gb is None:
        return "-"
    return " / ".join([ours] + [f"{v:.4f}" if v is not None else "-" for v in (fc, gb)])


def results_table(runs: dict[str, Run]) -> str:
    """The markdown table of :func:`table_row` for every run, in the book's order."""
    rows = [table_row(runs[name]) for name in _book_order(runs)]
    if not rows:
        return "(no runs with a metrics.json)\n"
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(r[c] for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def parse_table(text: str) -> list[dict[str, str]]:
    """The rows of the first markdown table in ``text`` as dicts (what :func:`results_table` wrote)."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip().startswith("|")]
    if len(lines) < 2:
        return []
    cells = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines]
    return [dict(zip(cells[0], row, strict=True)) for row in cells[2:]]


# ---------------------------------------------------------------------------------------------------------
# the figures


def _history(summary: dict[str, Any], name: str) -> tuple[list[int], list[float]]:
    entry = (summary.get("metrics") or {}).get(name)
    if not entry:
        return [], []
    pairs = sorted((int(e) + 1, float(v)) for e, v in entry.get("history", []))
    return [e for e, _ in pairs], [v for _, v in pairs]


def plot_run(run: Run, path: str | Path) -> Path:
    """``path`` (a PNG): loss, and accuracy or MAE, train and validation per epoch (1-based), with the book's
    validation curves (FC, GB) on the second panel where the reference lists them."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    ref = book_result(run.experiment)
    metric = _metric_of(run, ref) or "val/loss"
    short = metric.split("/", 1)[1]
    label = {"acc": "accuracy", "mae": "MAE (standardized)"}.get(short, short)
    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(11, 4))
    for ax, name, title in ((ax_loss, "loss", "loss"), (ax_metric, short, label)):
        for split, style in (("train", "o-"), ("val", "s-")):
            x, y = _history(run.summary, f"{split}/{name}")
            if x:
                ax.plot(x, y, style, markersize=4, label=f"{'training' if split == 'train' else 'validation'} (ours)")
        ax.set_xlabel("epoch")
        ax.set_title(title)
    if ref is not None and ref.metric == metric:
        for curve, who in ((ref.fc_curve, "FC, the author's run"), (ref.gb_curve, "GB, Korean edition's re-run")):
            if curve:
                ax_metric.plot(range(1, len(curve) + 1), curve, "--", alpha=0.8, label=f"validation (book: {who})")
    naive = (run.summary.get("baseline") or {}).get(metric)
    if naive is not None and run.experiment != BASELINE:
        ax_metric.axhline(naive, color="gray", linestyle=":", label=f"naive baseline, same rows ({naive:.4f})")
    from matplotlib.ticker import MaxNLocator

    for ax in (ax_loss, ax_metric):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    data = "real data" if _real(run) else "SYNTHETIC data"
    fig.suptitle(f"{run.experiment} ({data}, {run.folder.name})")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# ---------------------------------------------------------------------------------------------------------
# seqlight report


def _provenance(run: Run, runs_dir: Path) -> str:
    s, hw = run.summary, run.summary.get("hardware") or {}
    where = run.folder.relative_to(runs_dir) if run.folder.is_relative_to(runs_dir) else run.folder
    parts = [hw.get("accelerator"), hw.get("cpu"), hw.get("cores") and f"{hw['cores']} cores"]
    parts += [
        hw.get("precision"),
        hw.get("torch") and f"torch {hw['torch']}",
        s.get("seed") is not None and f"seed {s['seed']}",
    ]
    machine = ", ".join(str(p) for p in parts if p) or "hardware not recorded"
    return f"{run.experiment}: `{where}`; {s.get('data_source') or 'data source not recorded'}; {machine}"


def write_report(runs_dir: str | Path = "runs", out: str | Path = "docs/results") -> Path:
    """Write ``<out>/<experiment>.png`` for every experiment under ``runs_dir`` and ``<out>/results.md``;
    return the path of ``results.md``."""
    shown, runs_dir, out = str(runs_dir), resolve_home_path(runs_dir), Path(out)
    runs = find_runs(runs_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name in _book_order(runs):
        plot_run(runs[name], out / f"{name}.png")
    tol = ", ".join(f"{m} +-{t}" for m, t in TOLERANCE.items())
    text = [
        "# Chapter 6 results against the book",
        "",
        f"Written by `seqlight report {shown}`: per experiment the newest finished run (else the newest run) "
        "under that folder. Epochs are 1-based, as Keras prints them. FC: the author's run (Keras 2.0.8); GB: "
        "the Korean edition's re-run (Keras 2.2.2); both from `reference/book_chapter6.md` (the row id is in "
        "the section column).",
        "",
        f"Band: from the lower to the higher of the FC and GB best values, widened by {tol} on each side "
        '(`seqlight.book_results`). "in band?" compares our best with it, for runs on the real data only.',
        "",
        results_table(runs),
    ]
    text += ["Runs shown (folder; data; hardware):", ""]
    text += [f"- {_provenance(runs[name], runs_dir)}" for name in _book_order(runs)]
    text += [""] + [f"![{name}]({name}.png)\n" for name in _book_order(runs)]
    path = out / "results.md"
    path.write_text("\n".join(text), encoding="utf-8")
    return path


def report_main(args: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="seqlight report",
        description="Compare the runs under RUNS_DIR with the book: for each experiment folder "
        "(RUNS_DIR/<experiment>/version_N/metrics.json) take the newest finished run (else the newest), draw "
        "OUT/<experiment>.png (loss, and accuracy or MAE, train and validation per epoch, beside the book's "
        "validation curve where the reference lists it) and write OUT/results.md: best and final metric "
        "against the author's run (FC) and the Korean edition's re-run (GB), inside or outside the band "
        "[min(FC, GB best) - tol, max(FC, GB best) + tol] (tol 0.01 accuracy, 0.005 MAE; real data only; a miss "
        "says whether it is better or worse), the test result of the run's checkpoint where a `seqlight test` "
        "run names one (beside the book's, for 6.1.3's GloVe model), with the epoch of the best, the data "
        "source, the epochs run and the wall time.",
    )
    parser.add_argument("runs_dir", nargs="?", default="runs", help="the runs folder (default: runs)")
    parser.add_argument("--out", default="docs/results", help="where to write (default: docs/results)")
    ns = parser.parse_args(args)
    if not resolve_home_path(ns.runs_dir).is_dir():
        raise SeqlightError(f"seqlight report: {resolve_home_path(ns.runs_dir)} is not a folder of runs")
    path = write_report(ns.runs_dir, ns.out)
    print(f"seqlight report: wrote {path} and the figures beside it")
    return 0


# ---------------------------------------------------------------------------------------------------------
# seqlight reproduce


def run_subprocess(cmd: list[str]) -> int:
    """Run one seqlight command, its output on ours; its exit code. (Tests replace this function.)"""
    return subprocess.call(cmd)


def _planned_epochs(name: str, max_epochs: int | None) -> int:
    if name == BASELINE:
        return 0
    if max_epochs is not None:
        return max_epochs
    import yaml

    from seqlight.commands import packaged_config

    config = yaml.safe_load(packaged_config(name).read_text()) or {}
    return int((config.get("trainer") or {}).get("max_epochs") or 1)


def _state(experiment_dir: Path, name: str, max_epochs: int | None) -> tuple[str, int]:
    """``("done" | "resume" | "new", epochs already run)`` for one config."""
    fn = "validate" if name == BASELINE else "fit"
    runs = [r for r in experiment_runs(experiment_dir) if r.summary.get("subcommand") == fn]
    for run in reversed(runs):
        if run.finished and (max_epochs is None or fn != "fit" or int(run.summary.get("epochs_run", 0)) >= max_epochs):
            return "done", int(run.summary.get("epochs_run", 0))
    if fn == "fit":
        from seqlight.checkpoints import latest_checkpoint

        last = latest_checkpoint(experiment_dir)
        if last is not None:
            folder = last.parent.parent
            run = next((r for r in runs if r.folder == folder), None)
            return "resume", int(run.summary.get("epochs_run", 0)) if run else 0
    return "new", 0


def _test_state(experiment_dir: Path) -> tuple[Path | None, bool]:
    """``(last.ckpt of the newest finished fit run, whether a finished test of that run exists)``."""
    runs = experiment_runs(experiment_dir)
    fits = [r for r in runs if r.summary.get("subcommand") == "fit" and r.finished]
    if not fits:
        return None, False
    last = fits[-1].folder / "checkpoints" / "last.ckpt"
    return (last if last.is_file() else None), _test_of(runs, fits[-1]) is not None


def reproduce(
    configs: list[str] | None = None,
    runs: str = "runs",
    max_epochs: int | None = None,
    source: str | None = None,
    data_dir: str | None = None,
    accelerator: str | None = None,
    report_out: str | None = "docs/results",
    extra: list[str] | None = None,
    test: bool = False,
) -> int:
    """Run ``configs`` (default: all, in the book's order); 0, or the exit code of the first run that failed.
    With ``test``, each fitted config's ``last.ckpt`` (the weights after the last epoch, as the book tests in
    6.1-i) is then scored with ``seqlight test``, unless a test of that run exists."""
    from seqlight.commands import config_infos, packaged_config

    names = list(configs) if configs else [i.name for i in config_infos()]
    for name in names:
        packaged_config(name)  # an unknown name fails before anything runs
    runs_dir = resolve_home_path(runs)
    plan = []
    for name in names:
        state, done = _state(runs_dir / name, name, max_epochs)
        plan.append((name, state, max(_planned_epochs(name, max_epochs) - done, 0)))

    def command(fn: str, name: str, ckpt_path: str | None) -> list[str]:
        cmd = [sys.executable, "-m", "seqlight", fn, "--config", name]
        if ckpt_path is not None:
            cmd += ["--ckpt_path", ckpt_path]
        cmd += ["--trainer.logger.init_args.save_dir", str(runs)]
        if max_epochs is not None and fn == "fit":
            cmd += ["--trainer.max_epochs", str(max_epochs)]
        for option, value in (
            ("--data.init_args.source", source),
            ("--data.init_args.data_dir", data_dir),
            ("--trainer.accelerator", accelerator),
        ):
            if value is not None:
                cmd += [option, value]
        return cmd + list(extra or [])

    started = time.perf_counter()
    trained_s, trained_epochs = 0.0, 0
    for i, (name, state, epochs) in enumerate(plan, 1):
        head = f"[{i}/{len(plan)}] {name}"
        if state == "done":
            print(f"{head}: finished already (in {runs_dir / name}), skipped", flush=True)
        else:
            fn = "validate" if name == BASELINE else "fit"
            cmd = command(fn, name, "last" if state == "resume" else None)
            verb = "resuming (--ckpt_path last)" if state == "resume" else f"{fn}"
            print(f"{head}: {verb}: {' '.join(cmd[1:])}", flush=True)
            t0 = time.perf_counter()
            code = run_subprocess(cmd)
            took = time.perf_counter() - t0
            if code:
                print(f"{head}: failed with exit code {code}; stopping (run `seqlight reproduce` again to resume)")
                return code
            if epochs:
                trained_s, trained_epochs = trained_s + took, trained_epochs + epochs
            left_epochs = sum(e for _, st, e in plan[i:] if st != "done")
            elapsed = time.perf_counter() - started
            epochs_word = f"{left_epochs} epoch{'s' if left_epochs != 1 else ''}"
            if trained_epochs and left_epochs:
                rest = f"about {_duration(trained_s / trained_epochs * left_epochs)} left ({epochs_word})"
            elif left_epochs:
                rest = f"{epochs_word} left"
            else:
                rest = "nothing left"
            print(f"{head}: done in {_duration(took)}; elapsed {_duration(elapsed)}; {rest}", flush=True)
        if test and name != BASELINE:
            last, tested = _test_state(runs_dir / name)
            if tested:
                print(f"{head}: tested already, skipped", flush=True)
            elif last is None:
                print(f"{head}: no finished fit with a last.ckpt to test", flush=True)
            else:
                # absolute: the test run's config.yaml keeps it, and the report may run from another folder
                cmd = command("test", name, str(last.resolve()))
                print(f"{head}: test: {' '.join(cmd[1:])}", flush=True)
                code = run_subprocess(cmd)
                if code:
                    print(f"{head}: test failed with exit code {code}; stopping")
                    return code
    if report_out:
        path = write_report(runs, report_out)
        print(f"seqlight reproduce: wrote {path}", flush=True)
    return 0


def reproduce_main(args: list[str]) -> int:
    extra: list[str] = []
    if "--" in args:
        cut = args.index("--")
        args, extra = args[:cut], args[cut + 1 :]
    parser = argparse.ArgumentParser(
        prog="seqlight reproduce",
        usage="seqlight reproduce [CONFIG ...] [options] [-- CLI OVERRIDES]",
        description="Run the chapter's experiments one after another (default: every packaged config, in the "
        "book's order; `seqlight configs` lists them), each as `python -m seqlight fit --config NAME` "
        "(jena_naive: validate). A config whose newest run under RUNS/<config> finished (with at least "
        "--max_epochs epochs, if given) is skipped; one with a last.ckpt and no finished run is resumed "
        "exactly with --ckpt_path last; the others start. A progress line follows each run (elapsed time, "
        "an estimate of the rest from the seconds per epoch so far). A failing run stops reproduce with its "
        "exit code; run the same command again to go on. With --test, each fitted config's last.ckpt is then "
        "scored on the test split. Ends with `seqlight report RUNS --out REPORT_OUT`. "
        "Arguments after `--` are passed to every run (e.g. -- --data.init_args.steps_per_epoch 50).",
    )
    parser.add_argument("configs", nargs="*", metavar="CONFIG", help="config names (default: all)")
    parser.add_argument("--runs", default="runs", help="the runs folder, the logger's save_dir (default: runs)")
    parser.add_argument("--max_epochs", type=int, default=None, help="epochs per run (default: the book's)")
    parser.add_argument("--source", choices=("auto", "real", "synthetic"), default=None, help="data source")
    parser.add_argument("--data_dir", default=None, help="the DataModules' data folder")
    parser.add_argument("--accelerator", default=None, help="Lightning's accelerator (cpu, gpu, auto...)")
    parser.add_argument("--report_out", default="docs/results", help="where the report goes (default: docs/results)")
    parser.add_argument("--no_report", action="store_true", help="do not write the report at the end")
    parser.add_argument(
        "--test",
        action="store_true",
        help="after each fit, score its last.ckpt (the weights after the last epoch, as the book does in 6.1.3) "
        "on the test split with `seqlight test`, unless that run was tested already; the report shows it",
    )
    ns = parser.parse_args(args)
    if ns.max_epochs is not None and ns.max_epochs < 1:
        raise SeqlightError(f"seqlight reproduce: --max_epochs must be at least 1, got {ns.max_epochs}")
    return reproduce(
        ns.configs,
        runs=ns.runs,
        max_epochs=ns.max_epochs,
        source=ns.source,
        data_dir=ns.data_dir,
        accelerator=ns.accelerator,
        report_out=None if ns.no_report else ns.report_out,
        extra=extra,
        test=ns.test,
    )
