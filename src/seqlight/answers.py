"""``seqlight forecast`` and ``seqlight classify``: a trained checkpoint answers new raw input.

Both load the model from its checkpoint alone (:func:`seqlight.checkpoints.load_model`: the class recorded
by the CLI, the preprocessing kept in the checkpoint), so no training data or config is needed::

    seqlight forecast --ckpt_path runs/jena_gru/version_0/checkpoints/last.ckpt --csv mpi_roof.csv
    seqlight forecast --ckpt_path last.ckpt --csv mpi_roof.csv --at "20.10.2024 08:10:00" --at "19.10.2024 08:10:00"
    seqlight classify --ckpt_path last.ckpt "This movie was wonderful, I loved it" "Dull and far too long."
    seqlight classify --ckpt_path last.ckpt --file reviews.txt --output scores.csv   # one review a line
    seqlight classify --ckpt_path last.ckpt aclImdb/test/pos                         # a folder of .txt files

Each prints one line per input on stdout; ``--output FILE.csv`` also writes a CSV.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from seqlight.checkpoints import load_model
from seqlight.errors import SeqlightError
from seqlight.files import atomic_path

__all__ = ["forecast_main", "classify_main"]


def _write_csv(table: pd.DataFrame, output: str | None) -> None:
    if output:
        with atomic_path(output) as tmp:
            table.to_csv(tmp, index=False, float_format="%.6f")
        print(f"seqlight: wrote {len(table)} row(s) to {Path(output).resolve()}", file=sys.stderr)


# ---------------------------------------------------------------------------------------------- forecast
def forecast_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="seqlight forecast",
        description="Forecast the target (the temperature, in degrees C) from a trained Jena checkpoint and a CSV in "
        "the Jena format: by default for the newest complete window of the file, i.e. step + delay rows (25 hours "
        "with the book's settings) after its last row.",
    )
    parser.add_argument("--ckpt_path", required=True, help="a checkpoint written by `seqlight fit` (a .ckpt file)")
    parser.add_argument("--csv", required=True, help="a CSV in the Jena format (e.g. a newer station export)")
    parser.add_argument(
        "--at",
        action="append",
        metavar="TIMESTAMP",
        help="the timestamp of a window's newest row, as in the file ('20.10.2024 08:10:00'); repeat for several "
        "forecasts (default: the file's last row)",
    )
    parser.add_argument("--output", metavar="FILE.csv", help="also write the forecasts to this CSV")
    args = parser.parse_args(argv)
    from seqlight.models.forecasting import Forecaster

    model = load_model(args.ckpt_path, Forecaster, "forecast")
    answers = model.forecast(args.csv, at=args.at if args.at else None)
    answers = answers if isinstance(answers, list) else [answers]
    target = model.preprocessing.target
    for a in answers:
        print(f"{a.window_end} -> {a.target_time}  {target} {a.value:.2f}")
    _write_csv(
        pd.DataFrame(
            {
                "window_end": [a.window_end for a in answers],
                "target_time": [a.target_time for a in answers],
                f"predicted {target}": [a.value for a in answers],
            }  # fmt: skip
        ),
        args.output,
    )
    return 0


# ---------------------------------------------------------------------------------------------- classify
def _read_text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise SeqlightError(f"{path}: byte {e.start} is not UTF-8 ({e.reason}); save the file as UTF-8") from None
    except OSError as e:
        raise SeqlightError(f"{path}: cannot be read ({e.strerror})") from None


def _inputs(texts: list[str], file: str | None) -> list[tuple[str, str]]:
    """``(name, text)`` for each review: arguments (a folder stands for its .txt files) and ``--file`` lines."""
    out = []
    for i, text in enumerate(texts):
        folder = Path(text)
        if len(text) < 4096 and folder.is_dir():
            files = sorted(folder.glob("*.txt"))
            if not files:
                raise SeqlightError(f"{folder} is a folder without .txt files: nothing to classify")
            out += [(str(p), _read_text(p)) for p in files]
        else:
            out.append((f"text {i + 1}", text))
    if file is not None:
        path = Path(file)
        if not path.is_file():
            raise SeqlightError(f"--file {path}: no such file")
        lines = _read_text(path).splitlines()
        out += [(f"{path}:{n}", line) for n, line in enumerate(lines, 1) if line.strip()]
        if not any(line.strip() for line in lines):
            raise SeqlightError(f"--file {path} has no review in it (one review a line)")
    if not out:
        raise SeqlightError("nothing to classify: give review texts, a folder of .txt files, or --file")
    for name, text in out:
        if not text.strip():
            raise SeqlightError(f"{name} is empty: there is nothing to classify")
    return out


def classify_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="seqlight classify",
        description="Score movie reviews with a trained IMDB checkpoint: the probability that each is positive, "
        "through the tokenizer the model was trained with.",
    )
    parser.add_argument("--ckpt_path", required=True, help="a checkpoint written by `seqlight fit` (a .ckpt file)")
    parser.add_argument("texts", nargs="*", help="review texts, or folders of .txt reviews")
    parser.add_argument("--file", help="a UTF-8 text file with one review a line")
    parser.add_argument("--output", metavar="FILE.csv", help="also write the scores to this CSV")
    args = parser.parse_args(argv)
    inputs = _inputs(args.texts, args.file)  # checked before the model is loaded
    from seqlight.models.classifiers import Classifier

    model = load_model(args.ckpt_path, Classifier, "classify")
    probs = model.classify([text for _, text in inputs])
    for (name, text), p in zip(inputs, probs):
        label = "positive" if p > 0.5 else "negative"
        shown = name if not name.startswith("text ") else " ".join(text.split())[:70]
        print(f"{p:.4f}  {label}  {shown}")
    _write_csv(
        pd.DataFrame(
            {"input": [n for n, _ in inputs], "probability": probs, "label": (probs > 0.5).astype(int)},
        ),
        args.output,
    )
    return 0
