"""Reading the Jena CSV: the official format, its variants, and every kind of bad input."""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pytest

from seqlight.data import JenaDataError, JenaDataModule, read_jena_csv
from seqlight.data.jena_synthetic import JENA_COLUMNS, JENA_FEATURES, generate_jena, write_jena_csv

SMALL = dict(
    lookback=60,
    step=6,
    delay=12,
    train_range=(0, 600),
    val_range=(601, 800),
    test_range=(801, None),
    steps_per_epoch=2,
    batch_size=8,
)


@pytest.fixture
def small_csv(tmp_path):
    return write_jena_csv(tmp_path / "jena.csv", n_rows=1000, seed=1)


def lines_of(path):
    return path.read_text().splitlines(keepends=True)


def rewrite(path, lines):
    path.write_text("".join(lines))
    return path


def test_official_format(small_csv):
    lines = lines_of(small_csv)
    assert lines[0] == ",".join(f'"{c}"' for c in JENA_COLUMNS) + "\n"
    assert lines[1].startswith("01.01.2009 00:10:00,") and lines[2].startswith("01.01.2009 00:20:00,")
    assert len(lines[1].split(",")) == 15
    s = read_jena_csv(small_csv)
    assert s.values.shape == (1000, 14) and s.columns == JENA_FEATURES and s.gaps == 0
    assert (np.diff(s.timestamps.asi8) == 600 * 10**9).all()


def test_synthetic_physics_is_consistent():
    df = generate_jena(5000, seed=2)
    T, p, rh = df["T (degC)"], df["p (mbar)"], df["rh (%)"]
    vpmax = 6.1078 * np.exp(17.27 * T / (T + 237.3))
    np.testing.assert_allclose(df["VPmax (mbar)"], vpmax, atol=0.02)
    np.testing.assert_allclose(df["VPact (mbar)"], rh / 100 * vpmax, atol=0.02)
    assert (df["Tdew (degC)"] <= T + 0.01).all()
    assert (df["max. wv (m/s)"] >= df["wv (m/s)"]).all() and (df["wv (m/s)"] >= 0).all()
    assert df["wd (deg)"].between(0, 360).all() and rh.between(0, 100).all()
    np.testing.assert_allclose(df["Tpot (K)"], (T + 273.15) * (1000 / p) ** 0.286, atol=0.02)


def test_crlf_and_unquoted_header_read_the_same(small_csv, tmp_path):
    lines = lines_of(small_csv)
    other = tmp_path / "crlf.csv"
    other.write_bytes(
        ("Date Time," + ",".join(JENA_FEATURES) + "\r\n").encode()
        + "".join(l.replace("\n", "\r\n") for l in lines[1:]).encode()
    )
    a, b = read_jena_csv(small_csv), read_jena_csv(other)
    np.testing.assert_array_equal(a.values, b.values)
    assert (a.timestamps == b.timestamps).all()


def test_real_january_subset_reads(tmp_path, shared_dataset):
    path = shared_dataset("jena_climate_2009_jan_subset", "jena_climate.csv")
    features = JENA_FEATURES[:11]
    s = read_jena_csv(path, features=features)
    assert s.values.shape == (4000, 11)
    np.testing.assert_allclose(s.values[0, :3], [996.52, -8.02, 265.40])  # the official first row
    dm = JenaDataModule(
        path=str(path),
        features=features,
        **{**SMALL, "lookback": 720, "train_range": (0, 2000), "val_range": (2001, 3000), "test_range": (3001, None)},
    )
    with pytest.warns(UserWarning, match=r"starts with the official Jena climate data but has 4,000 rows"):
        dm.setup()  # the first 4,000 rows of the real file: sound data, not the book's whole series
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (8, 120, 11)


def test_real_2024_export_with_extra_columns(tmp_path, shared_dataset):
    path = shared_dataset("jena_mpi_roof_2024", "mpi_roof.csv")
    s = read_jena_csv(path)  # Latin-1 header, 21+ columns: the official 14 are picked by name
    assert s.values.shape[1] == 14 and len(s.values) > 19000


def test_wind_error_values(tmp_path, small_csv):
    lines = lines_of(small_csv)
    cells = lines[5].rstrip("\n").split(",")
    cells[12] = "-9999.00"
    cells[13] = "-9999.00"
    lines[5] = ",".join(cells) + "\n"
    rewrite(small_csv, lines)
    zero = read_jena_csv(small_csv)
    keep = read_jena_csv(small_csv, wind_errors="keep")
    assert zero.wind_errors == 2
    assert zero.values[4, 11] == 0.0 and zero.values[4, 12] == 0.0  # list index 5 = file line 6 = data row 4
    assert keep.values[4, 11] == -9999.0


def corrupt(path, line, column, value):
    lines = lines_of(path)
    cells = lines[line - 1].rstrip("\n").split(",")
    cells[JENA_COLUMNS.index(column)] = value
    lines[line - 1] = ",".join(cells) + "\n"
    return rewrite(path, lines)


@pytest.mark.parametrize(
    "value,what",
    [("abc", "'abc' is not a number"), ("", "empty cell or NaN"), ("NaN", "empty cell or NaN"), ("1,5", None)],
)
def test_bad_cells_name_file_line_and_column(small_csv, value, what):
    if value == "1,5":  # an extra field shifts the row: the parser names the line
        lines = lines_of(small_csv)
        lines[40] = lines[40].rstrip("\n") + ",1\n"
        rewrite(small_csv, lines)
        with pytest.raises(JenaDataError, match=r"jena\.csv.*line 41"):
            read_jena_csv(small_csv)
        return
    corrupt(small_csv, 101, "rh (%)", value)
    with pytest.raises(JenaDataError) as e:
        read_jena_csv(small_csv)
    msg = str(e.value)
    assert "jena.csv" in msg and "line 101" in msg and "'rh (%)'" in msg and what in msg


def test_missing_and_renamed_columns(small_csv):
    lines = lines_of(small_csv)
    rewrite(small_csv, [lines[0].replace('"T (degC)"', '"Temp"')] + lines[1:])
    with pytest.raises(JenaDataError, match=r"line 1 \(header\): missing column\(s\) \['T \(degC\)'\]"):
        read_jena_csv(small_csv)


def test_missing_file_says_where(tmp_path):
    with pytest.raises(JenaDataError, match="no such file"):
        read_jena_csv(tmp_path / "nope.csv")
    dm = JenaDataModule(data_dir=str(tmp_path), source="real", download_timeout=2)
    with pytest.raises(JenaDataError, match="jena_climate_2009_2016.csv") as e:
        dm.prepare_data()
    assert "source synthetic" in str(e.value)
    assert not any(tmp_path.iterdir())  # nothing half-written


def test_empty_and_header_only(tmp_path, small_csv):
    p = tmp_path / "empty.csv"
    p.write_text("")
    with pytest.raises(JenaDataError, match="empty.csv"):
        read_jena_csv(p)
    rewrite(small_csv, lines_of(small_csv)[:1])
    with pytest.raises(JenaDataError, match="no data rows"):
        read_jena_csv(small_csv)


@pytest.mark.parametrize("kind", ["duplicated", "out of order"])
def test_timestamps_duplicated_or_out_of_order(small_csv, kind):
    lines = lines_of(small_csv)
    if kind == "duplicated":
        lines[300] = lines[299].split(",")[0] + "," + lines[300].split(",", 1)[1]
    else:
        lines[299], lines[300] = lines[300], lines[299]
    rewrite(small_csv, lines)
    with pytest.raises(JenaDataError, match=rf"jena\.csv, line 301, column 'Date Time'.*{kind}"):
        read_jena_csv(small_csv)
    with pytest.warns(UserWarning, match=kind):
        read_jena_csv(small_csv, timestamp_check="warn")


def test_bad_timestamp(small_csv):
    corrupt(small_csv, 7, "Date Time", "2009-01-01 01:10")
    with pytest.raises(JenaDataError, match=r"line 7, column 'Date Time'.*not a timestamp"):
        read_jena_csv(small_csv)


def test_gaps_are_counted_not_refused(small_csv):
    lines = lines_of(small_csv)
    rewrite(small_csv, lines[:50] + lines[53:])
    assert read_jena_csv(small_csv).gaps == 1


def test_too_few_rows_for_lookback_and_delay(tmp_path):
    path = write_jena_csv(tmp_path / "short.csv", n_rows=70)
    dm = JenaDataModule(path=str(path), **SMALL)
    with pytest.raises(JenaDataError, match=r"short\.csv has 70 rows, too few for lookback 60 \+ delay 12"):
        dm.setup()


def test_split_without_windows(small_csv):
    dm = JenaDataModule(path=str(small_csv), **{**SMALL, "val_range": (601, 640)})
    with pytest.raises(JenaDataError, match="the val split"):
        dm.setup()


def test_small_custom_splits_and_other_target(small_csv):
    dm = JenaDataModule(path=str(small_csv), target="p (mbar)", **SMALL)
    dm.setup()
    assert dm.target_index == 0 and dm.timesteps == 10
    x, y = next(iter(dm.val_dataloader()))
    row = 601 + 60
    z = (dm.series.values - dm.mean) / dm.std
    np.testing.assert_allclose(y[0].item(), z[row + 12, 0], atol=1e-6)
    np.testing.assert_allclose(x[0].numpy(), z[row - 60 : row : 6], atol=1e-6)


def test_bad_cell_deep_in_a_full_size_file_names_its_true_line(jena_dir, tmp_path):
    """The parser types a big file chunk by chunk: a bad cell deep inside left the column mixing floats and
    strings, and the old check reported 'line 2 ... 1.19 is not a number' (and leaked a DtypeWarning)."""
    path = shutil.copy(jena_dir / "jena_climate_synthetic.csv", tmp_path / "jena.csv")
    corrupt(path, 123457, "T (degC)", "12.3.4")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no pandas warning may leak out
        with pytest.raises(JenaDataError) as e:
            read_jena_csv(path)
    assert str(e.value) == f"{path}, line 123457, column 'T (degC)': '12.3.4' is not a number"


def test_first_bad_cell_is_the_first_by_line_not_by_column(small_csv):
    corrupt(small_csv, 300, "p (mbar)", "x300")  # first column, later line
    corrupt(small_csv, 101, "rh (%)", "x101")  # later column, earlier line: this one is reported
    with pytest.raises(JenaDataError, match=r"line 101, column 'rh \(%\)': 'x101' is not a number"):
        read_jena_csv(small_csv)


def test_blank_lines_keep_line_numbers_exact(small_csv):
    lines = lines_of(small_csv)
    rewrite(small_csv, lines + ["\n", "\n"])  # trailing blank lines are harmless
    assert read_jena_csv(small_csv).values.shape == (1000, 14)
    # a blank line inside would shift every later line number if skipped: it is refused, by its line
    rewrite(small_csv, lines[:500] + ["\n"] + lines[500:])
    with pytest.raises(JenaDataError, match=r"jena\.csv, line 501: the line is empty"):
        read_jena_csv(small_csv)
    rewrite(small_csv, lines)
    corrupt(small_csv, 777, "VPdef (mbar)", "?")
    with pytest.raises(JenaDataError, match=r"line 777, column 'VPdef \(mbar\)': '\?' is not a number"):
        read_jena_csv(small_csv)


OFFICIAL_FIRST_LINE = (
    "01.01.2009 00:10:00,996.52,-8.02,265.40,-8.90,93.30,3.33,3.11,0.22,1.94,3.12,1307.75,1.03,1.75,152.30\n"
)


def test_official_file_cut_at_a_line_break_warns_wherever_it_comes_from(jena_dir, tmp_path):
    """A copy of the real file cut at 350,000 rows, passed with --data.init_args.path: the row-count check
    is about the file (its first row is the official one), not about how it was found."""
    lines = lines_of(jena_dir / "jena_climate_synthetic.csv")[:350_001]
    lines[1] = OFFICIAL_FIRST_LINE  # the rows after it are synthetic: the check looks at the first row only
    path = rewrite(tmp_path / "my_copy.csv", lines)
    dm = JenaDataModule(path=str(path))
    with pytest.warns(
        UserWarning,
        match=r"my_copy\.csv starts with the official Jena climate data but has 350,000 "
        r"rows, 01\.01\.2009 00:10:00 to .*420,551 rows",
    ):
        dm.setup()


def test_row_count_check_by_name_and_not_for_stand_ins(tmp_path, small_csv):
    named = shutil.copy(small_csv, tmp_path / "jena_climate_2009_2016.csv")
    with pytest.warns(UserWarning, match=r"is named like the official Jena climate file but has 1,000 rows"):
        JenaDataModule(path=str(named), **SMALL).setup()
    # the synthetic stand-in (official schema and first timestamp, other values) of another size: no warning
    # (the old check fired on the words "not the real Jena climate" in its description)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        JenaDataModule(data_dir=str(tmp_path), source="synthetic", synthetic_rows=1000, **SMALL).setup()
        JenaDataModule(path=str(small_csv), **SMALL).setup()
