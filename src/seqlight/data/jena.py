"""Jena climate (book 6.3): reading and checking the CSV, and :class:`JenaDataModule`.

The official file is ``jena_climate_2009_2016.csv`` from
https://s3.amazonaws.com/keras-datasets/jena_climate_2009_2016.csv.zip: a "Date Time" column
(``dd.mm.yyyy HH:MM:SS``) and 14 float columns, one row every 10 minutes from 2009-01-01 00:10 to
2017-01-01 00:00. The book's copy has 420,551 rows; today's download has 420,451. Both work with the
book's splits.
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader

from seqlight.data.arguments import check_int
from seqlight.data.download import (
    DownloadError,
    extract_zip_member,
    fetch,
    zip_with_member,
)
from seqlight.data.jena_synthetic import JENA_FEATURES, SYNTHETIC_ROWS, write_jena_csv
from seqlight.data.preprocessing import JenaPreprocessing
from seqlight.data.windows import (
    RandomRowSampler,
    RowSampler,
    WindowDataset,
    book_sequential_rows,
    collate_batch,
    resolve_max_index,
    run_seed,
    shard_for_evaluation,
    window_timesteps,
)
from seqlight.errors import SeqlightError
from seqlight.files import file_lock, writable_or_cache
from seqlight.home import resolve_home_path

__all__ = ["JenaDataError", "JenaSeries", "read_jena_csv", "JenaDataModule", "JENA_URL", "JENA_FILENAME"]

log = logging.getLogger(__name__)

JENA_URL = "https://s3.amazonaws.com/keras-datasets/jena_climate_2009_2016.csv.zip"
JENA_FILENAME = "jena_climate_2009_2016.csv"
SYNTHETIC_FILENAME = "jena_climate_synthetic.csv"
TIME_FORMAT = "%d.%m.%Y %H:%M:%S"
WIND_COLUMNS = ("wv (m/s)", "max. wv (m/s)")
WIND_ERROR_VALUE = -9999.0
KNOWN_ROW_COUNTS = (420_551, 420_451)


class JenaDataError(SeqlightError, ValueError):
    """The Jena CSV is missing or malformed; the message names the file, line and column."""


@dataclass
class JenaSeries:
    """A checked Jena series: ``values[row, feature]`` (float64) with its timestamps and column names."""

    path: Path
    columns: list[str]
    values: np.ndarray
    timestamps: pd.DatetimeIndex
    wind_errors: int = 0
    gaps: int = 0


def _line(row: int) -> int:
    """1-based line number in the file of data row ``row`` (0-based; the header is line 1).

    Exact because :func:`_read_csv` keeps blank lines as rows (``skip_blank_lines=False``): row ``r`` is
    always the ``r + 2``-th line, however far into the file.
    """
    return row + 2


def _read_csv(path: Path) -> pd.DataFrame:
    """Parse with the C engine: floats as float64, timestamps as strings; CRLF and quoting handled.

    The C parser reads a large file in chunks and types each chunk on its own, so a column with one bad
    cell comes back mixing floats (the other chunks) and strings (the bad cell's chunk). That is expected
    and handled cell by cell in :func:`_numeric_column`; pandas' ``DtypeWarning`` about it is silenced.
    ``low_memory=False`` would type the whole column at once, but reads the file 2x slower.
    """
    for encoding in ("utf-8", "latin-1"):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", pd.errors.DtypeWarning)
                return pd.read_csv(
                    path, dtype={"Date Time": str}, skipinitialspace=True, skip_blank_lines=False, encoding=encoding
                )
        except UnicodeDecodeError:
            continue
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as e:
            raise JenaDataError(f"{path}: not a readable CSV: {e}") from e
    raise JenaDataError(f"{path}: neither UTF-8 nor Latin-1 text")  # pragma: no cover - latin-1 decodes anything


def _drop_blank_lines(path: Path, df: pd.DataFrame) -> pd.DataFrame:
    """Drop the blank lines at the end of the file; refuse one anywhere else, naming its line.

    A blank line parses as a row of NaN (``skip_blank_lines=False`` keeps line numbers exact). Only rows
    without a timestamp can be blank, so the full-row test runs on those few.
    """
    candidates = np.flatnonzero(df["Date Time"].isna().to_numpy())
    if not candidates.size:
        return df
    blank = candidates[df.iloc[candidates].isna().all(axis=1).to_numpy()]
    n = len(df)
    while blank.size and blank[-1] == n - 1:  # trailing blank lines: harmless, dropped
        blank, n = blank[:-1], n - 1
    if blank.size:
        raise JenaDataError(
            f"{path}, line {_line(int(blank[0]))}: the line is empty ({blank.size} empty line(s) before the last "
            "data row). Delete the empty lines; they are allowed only at the end of the file."
        )
    return df.iloc[:n]


def _numeric_column(column: pd.Series) -> tuple[np.ndarray | None, int | None]:
    """``(values, None)``: the column as float64; or ``(None, row)``: the row of its first cell that is not a
    number.

    The parser leaves a column unconverted when some cell of it is not a number; the floats of the chunks
    it did convert stay floats, and only the strings are parsed here. A column whose strings all turn out
    to be numbers (e.g. with trailing spaces) is accepted.
    """
    if pd.api.types.is_numeric_dtype(column):
        return column.to_numpy(dtype=np.float64), None
    num = pd.to_numeric(column, errors="coerce")  # floats pass through; unparsable strings -> NaN
    bad = (num.isna() & column.notna()).to_numpy()
    if bad.any():
        return None, int(np.argmax(bad))
    return num.to_numpy(dtype=np.float64), None


def _frame_as_read(frame: pd.DataFrame) -> pd.DataFrame:
    """A DataFrame in the form :func:`_read_csv` returns: a fresh copy with ``Date Time`` as strings."""
    df = frame.reset_index(drop=True).copy()
    stamps = df.get("Date Time")
    if stamps is not None and pd.api.types.is_datetime64_any_dtype(stamps):
        df["Date Time"] = stamps.dt.strftime(TIME_FORMAT)
    elif stamps is not None:
        df["Date Time"] = stamps.astype("string").astype(object).where(stamps.notna(), None)
    return df


def read_jena_csv(
    path: str | os.PathLike | pd.DataFrame,
    features: list[str] | None = None,
    timestamp_check: Literal["strict", "warn"] = "strict",
    wind_errors: Literal["zero", "keep"] = "zero",
) -> JenaSeries:
    """Read and check a CSV in the Jena format.

    Args:
        path: the CSV file. A quoted or unquoted header, LF or CRLF line endings, extra columns after the
            official ones (e.g. newer station exports) are all fine. A DataFrame with the same columns
            (``Date Time`` as strings or datetimes) is checked the same way.
        features: the columns to use, in order (default: the official 14).
        timestamp_check: ``"strict"`` rejects timestamps that go backwards or repeat; ``"warn"`` only
            warns (and keeps the rows as they are, as the book does, which ignores time).
        wind_errors: the real file has a few ``-9999`` error values in ``wv (m/s)`` and ``max. wv (m/s)``.
            ``"zero"`` (default) sets them to 0 m/s, as TensorFlow's time-series tutorial does, so that they
            do not dominate those columns' standard deviation; ``"keep"`` leaves them, as the book did.

    Raises:
        JenaDataError: naming the file, line and column of the first problem: missing file, missing or
            renamed columns, a non-numeric, empty or NaN cell, a malformed timestamp, timestamps out of
            order or duplicated (strict).
    """
    features = list(JENA_FEATURES if features is None else features)
    if not features:
        raise JenaDataError("features must name at least one column")
    if isinstance(path, pd.DataFrame):
        # checked like the CSV it would be written as: messages say "<DataFrame>, line N" with line = row + 2
        df, path = _frame_as_read(path), Path("<DataFrame>")
    else:
        path = Path(path)
        if not path.is_file():
            raise JenaDataError(f"{path}: no such file")
        df = _read_csv(path)
    df.columns = [str(c).strip() for c in df.columns]
    wanted = ["Date Time", *features]
    missing = [c for c in wanted if c not in df.columns]
    if missing:
        raise JenaDataError(
            f"{path}, line 1 (header): missing column(s) {missing}; the header has {list(df.columns)}. "
            f"Expected the official columns {['Date Time', *JENA_FEATURES]} (or pass features=[...])."
        )
    df = _drop_blank_lines(path, df)
    if len(df) == 0:
        raise JenaDataError(f"{path}: the file has a header but no data rows")

    values = np.empty((len(df), len(features)), dtype=np.float64)
    first_bad = None  # (row, column, cell): the first cell that is not a number, by line, then column
    for j, col in enumerate(features):
        column, row = _numeric_column(df[col])
        if row is not None and (first_bad is None or row < first_bad[0]):
            first_bad = (row, col, df[col].iloc[row])
        elif column is not None:
            values[:, j] = column
        del df[col]
    if first_bad is not None:
        row, col, cell = first_bad
        raise JenaDataError(f"{path}, line {_line(row)}, column {col!r}: {cell!r} is not a number")
    nonfinite = ~np.isfinite(values)
    if nonfinite.any():
        row, j = map(int, np.argwhere(nonfinite)[0])
        what = "an empty cell or NaN" if np.isnan(values[row, j]) else f"{values[row, j]}, which is not finite"
        raise JenaDataError(f"{path}, line {_line(row)}, column {features[j]!r}: {what}")

    stamps_raw = df["Date Time"].fillna("").str.strip()
    stamps = pd.to_datetime(stamps_raw, format=TIME_FORMAT, errors="coerce")
    bad = stamps.isna().to_numpy()
    if bad.any():
        row = int(np.argmax(bad))
        raise JenaDataError(
            f"{path}, line {_line(row)}, column 'Date Time': {stamps_raw.iloc[row]!r} is not a timestamp "
            f"like '01.01.2009 00:10:00' (format {TIME_FORMAT})"
        )
    stamps = pd.DatetimeIndex(stamps).as_unit("ns")
    diffs = np.diff(stamps.asi8)
    for kind, mask in (("out of order", diffs < 0), ("duplicated", diffs == 0)):
        if mask.any():
            row = int(np.argmax(mask)) + 1
            msg = (
                f"{path}, line {_line(row)}, column 'Date Time': timestamp {stamps_raw.iloc[row]!r} is {kind} "
                f"(previous row, line {_line(row - 1)}: {stamps_raw.iloc[row - 1]!r}); "
                f"{int(mask.sum())} such row(s) in all"
            )
            if timestamp_check == "strict":
                raise JenaDataError(msg + ". Fix the file, or pass timestamp_check='warn' to use the rows as they are.")
            warnings.warn(msg, stacklevel=2)
    gaps = int((diffs > 10 * 60 * 10**9).sum())

    n_wind = 0
    for col in WIND_COLUMNS:
        if col in features:
            j = features.index(col)
            err = values[:, j] == WIND_ERROR_VALUE
            n_wind += int(err.sum())
            if wind_errors == "zero":
                values[err, j] = 0.0
    return JenaSeries(path, features, values, stamps, wind_errors=n_wind, gaps=gaps)


# The official file's first row (01.01.2009 00:10:00), as printed in the official text: a fingerprint of
# the real data. The synthetic stand-in has the same schema and first timestamp, but other values.
OFFICIAL_FIRST_ROW = {
    "p (mbar)": 996.52, "T (degC)": -8.02, "Tpot (K)": 265.40, "Tdew (degC)": -8.90, "rh (%)": 93.30,
    "VPmax (mbar)": 3.33, "VPact (mbar)": 3.11, "VPdef (mbar)": 0.22, "sh (g/kg)": 1.94, "H2OC (mmol/mol)": 3.12,
    "rho (g/m**3)": 1307.75,
}  # fmt: skip
OFFICIAL_FIRST_TIME = pd.Timestamp("2009-01-01 00:10:00")
OFFICIAL_LAST_TIME = pd.Timestamp("2017-01-01 00:00:00")


def _official_file_problem(path: Path, series: JenaSeries) -> str | None:
    """Why a file that claims to be the official Jena file is not all of it, or ``None``.

    A file claims it by its name (``jena_climate_2009_2016.csv``) or by its content: its first row is the
    official first row (the timestamp and every fingerprinted column it has). The claim is then checked
    against the copies in circulation: 420,551 rows (the book's) or 420,451 (today's zip). The file's name
    or content decides, never how it was found (``--data.init_args.path`` or ``data_dir``).

    A warning, not an error: every row has been checked and the splits fit, so the data is sound, and a cut
    of the real file is a legitimate input (a quick run on the first years; ``../shared/datasets`` holds
    its first 4,000 rows). What is off is the comparison with the book: the splits, step counts and
    results differ. A file cut by an interrupted download or extraction is the usual cause, hence the advice.
    """
    n = len(series.values)
    if n in KNOWN_ROW_COUNTS:
        return None
    by_name = path.name == JENA_FILENAME
    shared = [c for c in series.columns if c in OFFICIAL_FIRST_ROW]
    by_content = (
        series.timestamps[0] == OFFICIAL_FIRST_TIME
        and bool(shared)
        and all(abs(series.values[0, series.columns.index(c)] - OFFICIAL_FIRST_ROW[c]) < 5e-3 for c in shared)
    )
    if not (by_name or by_content):
        return None
    claim = "is named like the official Jena climate file" if by_name else "starts with the official Jena climate data"
    return (
        f"{path} {claim} but has {n:,} rows, {series.timestamps[0]:%d.%m.%Y %H:%M:%S} to "
        f"{series.timestamps[-1]:%d.%m.%Y %H:%M:%S}; the official file has 420,551 rows (the book's copy) or 420,451 "
        f"(today's zip), to {OFFICIAL_LAST_TIME:%d.%m.%Y %H:%M:%S}. Results will not be comparable with the book's. "
        f"If the file was cut by accident (an interrupted download or unzip), download it again from {JENA_URL}."
    )


def _check_int(name: str, value, low: int, none_ok: bool = False) -> None:
    check_int(name, value, low, JenaDataError, none_ok)


def _check_range(name: str, value) -> None:
    """A split is ``(min_index, max_index)``: ``0 <= min_index < max_index``, ``max_index`` may be ``None``."""
    ok = isinstance(value, (tuple, list)) and len(value) == 2
    if ok:
        lo, hi = value
        ok = not isinstance(lo, bool) and isinstance(lo, (int, np.integer)) and lo >= 0
        ok = ok and (hi is None or (not isinstance(hi, bool) and isinstance(hi, (int, np.integer)) and hi > lo))
    if not ok:
        raise JenaDataError(
            f"{name} must be (min_index, max_index) with 0 <= min_index < max_index (max_index may be None), "
            f"got {value!r}"
        )


class JenaDataModule(LightningDataModule):
    """Jena climate windows exactly as the book's generators, gathered a batch at a time.

    Args:
        data_dir: where the CSV lives and downloads land (default ``datasets``).
        path: an explicit CSV path (overrides ``data_dir``/``source``).
        source: ``"real"`` uses ``data_dir/jena_climate_2009_2016.csv``, downloading the official zip when
            it is absent (a clear error when offline); ``"synthetic"`` writes (once) and uses the offline
            stand-in in the official format (:mod:`seqlight.data.jena_synthetic`); ``"auto"`` is real when
            the file is there or downloadable, else synthetic, with a warning.
        lookback, step, delay: history length, sampling period and target offset, in rows (book: 1440,
            6, 144 = 10 days of hourly points, predicting 24 h after the window's end).
        batch_size: windows per batch (book: 128).
        target: target column (book: ``T (degC)``, column 1).
        features: input columns (default: the official 14).
        train_range, val_range, test_range: ``(min_index, max_index)`` of each split, as the book's
            generator arguments (``None`` max = ``len - delay - 1``). Book: (0, 200000), (200001, 300000),
            (300001, None).
        standardize_rows: mean/std are computed over ``data[:standardize_rows]`` (book: 200000, the
            training rows; ``None`` = ``train_range[1]``).
        sampling: ``"replacement"`` draws training rows with replacement (the book); ``"permutation"``
            draws without replacement, a new permutation each epoch.
        steps_per_epoch: training batches per epoch (book: 500; ``None`` with permutation = every window).
        val_steps, test_steps: evaluation batches (``None`` = the book's formulas,
            ``(max - min - lookback) // batch_size`` = 769, and ``(len - 300001 - lookback) // batch_size``).
        eval_rows: ``"book"`` reproduces the book's consecutive generator (wrap-around included);
            ``"all"`` evaluates every valid row once (``val_steps``/``test_steps`` ignored).
        reverse: feed windows in reverse chronological order (book 6.3.8).
        timestamp_check, wind_errors: see :func:`read_jena_csv`.
        synthetic_rows: rows of the synthetic file (default 420,551 like the book's file).
        seed: training sampler seed (``None``: the one ``seed_everything`` set, else ``torch.initial_seed()``).
        num_workers: DataLoader workers. 0 (default) is right: a batch is one vectorized gather, and a
            worker process would only compete with the model for the cores.
        download_timeout: seconds before giving up on the network.
    """

    def __init__(
        self,
        data_dir: str = "datasets",
        path: str | None = None,
        source: Literal["auto", "real", "synthetic"] = "auto",
        lookback: int = 1440,
        step: int = 6,
        delay: int = 144,
        batch_size: int = 128,
        target: str = "T (degC)",
        features: list[str] | None = None,
        train_range: tuple[int, int | None] = (0, 200000),
        val_range: tuple[int, int | None] = (200001, 300000),
        test_range: tuple[int, int | None] = (300001, None),
        standardize_rows: int | None = None,
        sampling: Literal["replacement", "permutation"] = "replacement",
        steps_per_epoch: int | None = 500,
        val_steps: int | None = None,
        test_steps: int | None = None,
        eval_rows: Literal["book", "all"] = "book",
        reverse: bool = False,
        timestamp_check: Literal["strict", "warn"] = "strict",
        wind_errors: Literal["zero", "keep"] = "zero",
        synthetic_rows: int = SYNTHETIC_ROWS,
        seed: int | None = None,
        num_workers: int = 0,
        download_timeout: float = 20.0,
    ) -> None:
        super().__init__()
        # Every argument is checked here, before any file is read: a bad value fails at once, naming itself
        # (what needs the data, a lookback longer than the file say, is checked in setup()).
        for name, v in (
            ("lookback", lookback),
            ("step", step),
            ("delay", delay),
            ("batch_size", batch_size),
            ("synthetic_rows", synthetic_rows),
        ):
            _check_int(name, v, 1)
        for name, v in (
            ("steps_per_epoch", steps_per_epoch),
            ("val_steps", val_steps),
            ("test_steps", test_steps),
            ("standardize_rows", standardize_rows),
        ):
            _check_int(name, v, 1, none_ok=True)
        _check_int("num_workers", num_workers, 0)
        if step > lookback:
            raise JenaDataError(f"step ({step}) must not exceed lookback ({lookback})")
        for name, v, choices in (
            ("source", source, ("auto", "real", "synthetic")),
            ("sampling", sampling, ("replacement", "permutation")),
            ("eval_rows", eval_rows, ("book", "all")),
            ("timestamp_check", timestamp_check, ("strict", "warn")),
            ("wind_errors", wind_errors, ("zero", "keep")),
        ):
            if v not in choices:
                raise JenaDataError(f"{name} must be one of {list(choices)}, got {v!r}")
        if steps_per_epoch is None and sampling == "replacement":
            raise JenaDataError("steps_per_epoch is required with sampling='replacement' (book: 500)")
        for name, v in (("train_range", train_range), ("val_range", val_range), ("test_range", test_range)):
            _check_range(name, v)
        timeout_ok = isinstance(download_timeout, (int, float)) and not isinstance(download_timeout, bool)
        if not timeout_ok or download_timeout <= 0:
            raise JenaDataError(f"download_timeout must be a number of seconds > 0, got {download_timeout!r}")
        self.feature_names = list(JENA_FEATURES if features is None else features)
        if not self.feature_names or len(set(self.feature_names)) != len(self.feature_names):
            raise JenaDataError(f"features must name distinct columns, at least one; got {self.feature_names}")
        if target not in self.feature_names:
            raise JenaDataError(f"target {target!r} is not one of the features {self.feature_names}")
        self.save_hyperparameters()
        self.data_dir = resolve_home_path(data_dir)  # relative: under $SEQLIGHT_HOME when set
        self.path = Path(path) if path is not None else None
        self.source = source
        self.lookback, self.step, self.delay, self.batch_size = lookback, step, delay, batch_size
        self.target = target
        self.splits = {"train": tuple(train_range), "val": tuple(val_range), "test": tuple(test_range)}
        self.standardize_rows = standardize_rows if standardize_rows is not None else train_range[1]
        self.sampling, self.steps_per_epoch = sampling, steps_per_epoch
        self.eval_steps = {"val": val_steps, "test": test_steps}
        self.eval_rows = eval_rows
        self.reverse = reverse
        self.timestamp_check, self.wind_errors = timestamp_check, wind_errors
        self.synthetic_rows = synthetic_rows
        self.seed = seed
        self.num_workers = num_workers
        self.download_timeout = download_timeout
        self.series: JenaSeries | None = None
        self.source_description: str | None = None
        # what the model keeps to answer raw input (scaling, window): learned in setup()
        self.preprocessing: JenaPreprocessing | None = None

    # -- sizes the CLI links into the model (valid right after construction) ----------------------------
    @property
    def num_features(self) -> int:
        return len(self.feature_names)

    @property
    def target_index(self) -> int:
        return self.feature_names.index(self.target)

    @property
    def timesteps(self) -> int:
        return window_timesteps(self.lookback, self.step)

    @property
    def target_std(self) -> float:
        """Standard deviation of the target over the standardization rows (after :meth:`setup`)."""
        return self._fitted().target_std

    @property
    def target_mean(self) -> float:
        """Mean of the target over the standardization rows (after :meth:`setup`)."""
        return self._fitted().target_mean

    def _fitted(self) -> JenaPreprocessing:
        if self.preprocessing is None:
            raise RuntimeError("the scaling is learned from the data: call setup() first (the Trainer does)")
        return self.preprocessing

    # -- files --------------------------------------------------------------------------------------------
    def _real_path(self) -> Path:
        return self.data_dir / JENA_FILENAME

    def _home(self) -> Path:
        """Where downloads and the synthetic file go: ``data_dir``, or the cache when it is read-only."""
        return writable_or_cache(self.data_dir, "datasets")

    def _download_real(self) -> Path:
        """Download the official zip (length and content verified, see :func:`fetch`) and extract the CSV."""
        home = self._home()
        zip_path = fetch(
            JENA_URL, home / (JENA_FILENAME + ".zip"), None,
            timeout=self.download_timeout, validate=zip_with_member(JENA_FILENAME),
        )  # fmt: skip
        return extract_zip_member(zip_path, JENA_FILENAME, home / JENA_FILENAME)

    def _offline_message(self, err: Exception) -> str:
        return (
            f"The Jena climate file is not at {self._real_path()} and could not be downloaded ({err}).\n"
            f"  - Put jena_climate_2009_2016.csv (from {JENA_URL}) at {self._real_path()}, "
            "or pass --data.init_args.path;\n"
            "  - or use the offline stand-in in the same format: --data.init_args.source synthetic "
            "(results then show that the code works, not the book's numbers)."
        )

    def resolve_path(self) -> Path:
        """The CSV this DataModule reads, creating it first if needed (download or synthetic)."""
        if self.path is not None:
            self.source_description = f"{self.path}"
            return self.path
        if self.source in ("real", "auto"):
            for real in dict.fromkeys((self._real_path(), self._home() / JENA_FILENAME)):
                if real.is_file():  # read where it is, even in a read-only folder: nothing is written
                    self.source_description = f"real Jena climate file {real}"
                    return real
            try:
                out = self._download_real()
                self.source_description = f"real Jena climate file {out} (downloaded)"
                return out
            except DownloadError as e:
                if self.source == "real":
                    raise JenaDataError(self._offline_message(e)) from e
                warnings.warn(
                    self._offline_message(e) + "\nsource='auto': using the synthetic stand-in now.", stacklevel=2
                )
        rows = self.synthetic_rows
        name = SYNTHETIC_FILENAME if rows == SYNTHETIC_ROWS else f"jena_climate_synthetic_{rows}.csv"
        syn = self.data_dir / name
        if not syn.is_file():
            syn = self._home() / name
            with file_lock(syn):  # one process writes it; the others wait, then read it
                if not syn.is_file():
                    log.info("writing the synthetic Jena series to %s", syn)
                    write_jena_csv(syn, rows)
        self.source_description = f"SYNTHETIC offline stand-in {syn} (not the real Jena climate)"
        return syn

    def prepare_data(self) -> None:
        if self.series is None:
            self._csv = self.resolve_path()

    # -- data ---------------------------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self.series is not None:
            return
        path = getattr(self, "_csv", None) or self.resolve_path()
        series = read_jena_csv(path, self.feature_names, self.timestamp_check, self.wind_errors)
        n = len(series.values)
        self._check_splits(path, n)
        train = series.values[: self.standardize_rows]
        self.mean = train.mean(axis=0)
        self.std = train.std(axis=0)
        zero = self.std == 0
        if zero.any():
            cols = [self.feature_names[j] for j in np.flatnonzero(zero)]
            raise JenaDataError(
                f"{path}: column(s) {cols} are constant over the standardization rows; cannot standardize"
            )
        cadence = np.median(np.diff(series.timestamps.asi8[:10001])) / 60e9 if n > 1 else 10.0
        self.preprocessing = JenaPreprocessing(
            features=tuple(self.feature_names),
            mean=tuple(float(m) for m in self.mean),
            std=tuple(float(d) for d in self.std),
            target=self.target,
            lookback=self.lookback,
            step=self.step,
            delay=self.delay,
            reverse=self.reverse,
            cadence_minutes=float(cadence),
        )
        standardized = ((series.values - self.mean) / self.std).astype(np.float32)
        self.dataset = WindowDataset(
            standardized, self.lookback, self.step, self.delay, self.target_index, self.reverse
        )
        del standardized
        self.series = series
        if series.wind_errors:
            log.info("%s: %d wind error value(s) (-9999) treated as %s", path, series.wind_errors, self.wind_errors)
        problem = _official_file_problem(path, series)
        if problem:
            warnings.warn(problem, stacklevel=2)

    def _check_splits(self, path: Path, n: int) -> None:
        """What only the row count can tell: every split has a window and stays inside the file."""
        need = self.lookback + self.delay + 1
        if n < need:
            raise JenaDataError(
                f"{path} has {n} rows, too few for lookback {self.lookback} + delay {self.delay} (one window needs "
                f"{need} rows): lower lookback or delay, or use a longer file"
            )
        for split, (lo, hi) in self.splits.items():
            hi = resolve_max_index(hi, n, self.delay)
            if lo + self.lookback >= hi:
                raise JenaDataError(
                    f"{path} ({n} rows): the {split} split ({split}_range ({lo}, {hi})) has no window: it needs "
                    f"min_index + lookback ({lo} + {self.lookback}) < max_index ({hi}); widen {split}_range or lower "
                    "lookback"
                )
            if hi + self.delay >= n + 1:
                raise JenaDataError(
                    f"{path} ({n} rows): the {split} split's max_index {hi} + delay {self.delay} runs past the last "
                    f"row; lower {split}_range's max_index (None = {n - self.delay - 1}, the last row with a target)"
                )
        if self.standardize_rows is None:  # train_range (lo, None): the training rows as resolved for this file
            self.standardize_rows = resolve_max_index(None, n, self.delay)
        if self.standardize_rows > n:
            raise JenaDataError(f"{path} has {n} rows: standardize_rows {self.standardize_rows} is outside 1..{n}")

    def split_bounds(self, split: str) -> tuple[int, int]:
        """``(first_row, max_index)`` of a split's windows: rows ``first_row <= row < max_index``."""
        lo, hi = self.splits[split]
        return lo + self.lookback, resolve_max_index(hi, len(self.series.values), self.delay)

    def steps(self, split: str) -> int:
        """Batches per pass: ``steps_per_epoch`` for train, the book's formulas for val and test."""
        if split == "train":
            return (
                self.steps_per_epoch
                if self.steps_per_epoch is not None
                else ((self.split_bounds("train")[1] - self.split_bounds("train")[0]) // self.batch_size)
            )
        if self.eval_steps[split] is not None:
            return self.eval_steps[split]
        lo, hi = self.splits[split]
        # book: val_steps = (300000 - 200001 - lookback) // batch_size;
        #       test_steps = (len(float_data) - 300001 - lookback) // batch_size
        hi = len(self.series.values) if hi is None else hi
        return (hi - lo - self.lookback) // self.batch_size

    def eval_row_indices(self, split: str) -> np.ndarray:
        first, max_index = self.split_bounds(split)
        if self.eval_rows == "all":
            return np.arange(first, max_index)
        return book_sequential_rows(self.splits[split][0], max_index, self.lookback, self.batch_size, self.steps(split))

    def naive_mae(self, split: str = "val", batches: int | None = None) -> float:
        """The book's naive baseline on a split, in standardized units (6.3.3: 0.29 on the real data).

        ``mean(|data[row - step, target] - data[row + delay, target]|)`` over the split's evaluation rows,
        computed directly from the series in float64. ``batches``: only the rows of the loader's first
        ``batches`` batches, i.e. the rows a Trainer scored under ``limit_val_batches`` /
        ``limit_test_batches`` (pass ``trainer.num_val_batches`` / ``num_test_batches``); ``None``: all.
        """
        self.setup()
        rows = self.eval_row_indices(split)
        if batches is not None:
            if batches < 1:
                raise ValueError(f"batches must be >= 1, got {batches}")
            rows = rows[: batches * self.batch_size]
        z = (self.series.values[:, self.target_index] - self.mean[self.target_index]) / self.std[self.target_index]
        last = rows - self.lookback + (self.timesteps - 1) * self.step
        return float(np.abs(z[last] - z[rows + self.delay]).mean())

    # -- loaders ------------------------------------------------------------------------------------------
    def _loader(self, sampler) -> DataLoader:
        return DataLoader(
            self.dataset,
            batch_size=self.batch_size,
            sampler=sampler,
            collate_fn=collate_batch,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        self.setup()
        low, high = self.split_bounds("train")
        replacement = self.sampling == "replacement"
        num = self.steps_per_epoch * self.batch_size if self.steps_per_epoch is not None else None
        if not replacement and num is not None:
            num = min(num, high - low)
        seed = self.seed if self.seed is not None else run_seed()
        first = self.dataset.first_row  # the sampler draws dataset items: rows shifted by first_row
        return self._loader(RandomRowSampler(low - first, high - first, num, replacement=replacement, seed=seed))

    def val_dataloader(self) -> DataLoader:
        self.setup()
        rows = RowSampler(self.dataset.items(self.eval_row_indices("val")))
        return self._loader(shard_for_evaluation(rows, self.trainer))  # DDP: each window once, no padding

    def test_dataloader(self) -> DataLoader:
        self.setup()
        rows = RowSampler(self.dataset.items(self.eval_row_indices("test")))
        return self._loader(shard_for_evaluation(rows, self.trainer))  # DDP: each window once, no padding

    def predict_dataloader(self) -> DataLoader:
        return self.test_dataloader()

    def predict_items(self) -> np.ndarray:
        """The dataset items :meth:`predict_dataloader` yields, in order (the test split's windows)."""
        return self.dataset.items(self.eval_row_indices("test"))

    def prediction_table(self, items: np.ndarray, predictions: np.ndarray) -> pd.DataFrame:
        """One line per predicted window (``items`` of the dataset, in the units of the target column): the
        window's newest timestamp, the target's, and the predicted, true and naive (last seen) values."""
        prep, series = self._fitted(), self.series
        rows = self.dataset.first_row + np.asarray(items, dtype=np.int64)  # the book's row i
        newest, target = rows - self.step, rows + self.delay
        raw, name = series.values[:, self.target_index], self.target
        return pd.DataFrame(
            {
                "window_end": series.timestamps[newest].strftime(TIME_FORMAT),
                "target_time": series.timestamps[target].strftime(TIME_FORMAT),
                f"predicted {name}": np.asarray(predictions, dtype=np.float64) * prep.target_std + prep.target_mean,
                f"true {name}": raw[target],
                f"naive {name}": raw[newest],
            }
        )
