"""JenaDataModule against the book's generator (a NumPy transcription of listing 6.33)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seqlight.data import JenaDataError, JenaDataModule
from seqlight.data.book_generator import evaluate_naive_method, generator
from seqlight.data.windows import RandomRowSampler, WindowDataset, book_sequential_rows
from seqlight.errors import SeqlightError


def book_standardize(values):
    mean = values[:200000].mean(axis=0)
    std = values[:200000].std(axis=0)
    return (values - mean) / std, mean, std


def test_standardization_uses_training_rows_only(jena_dm):
    v = jena_dm.series.values
    np.testing.assert_allclose(jena_dm.mean, v[:200000].mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(jena_dm.std, v[:200000].std(axis=0), rtol=1e-12)
    assert not np.allclose(jena_dm.mean, v.mean(axis=0))  # the whole series would give another mean
    assert jena_dm.target_std == pytest.approx(v[:200000, 1].std())


def test_windows_and_targets_match_book_generator(jena_dm):
    data, _, _ = book_standardize(jena_dm.series.values)
    rng = np.random.default_rng(3)
    rows = rng.integers(0 + 1440, 200000, size=64)
    x, y = jena_dm.dataset.batch(jena_dm.dataset.items(rows))
    assert x.shape == (64, 240, 14) and x.dtype == torch.float32
    for j, row in enumerate(rows):
        np.testing.assert_allclose(x[j].numpy(), data[range(row - 1440, row, 6)], atol=1e-6)
        assert y[j].item() == pytest.approx(data[row + 144][1], abs=1e-6)
    # the very first and last rows a split can use
    for row in (1440, 199999, 420551 - 145):
        xr, yr = jena_dm.dataset[row - 1440]
        np.testing.assert_allclose(xr.numpy(), data[range(row - 1440, row, 6)], atol=1e-6)
        assert yr.item() == pytest.approx(data[row + 144][1], abs=1e-6)


def test_rows_outside_the_series_are_refused(jena_dm):
    with pytest.raises(IndexError, match=r"rows must lie in \[1440, 420407\)"):
        jena_dm.dataset.items([1439])
    with pytest.raises(IndexError):
        jena_dm.dataset.items([420551 - 144])
    n = len(jena_dm.dataset)
    with pytest.raises(IndexError, match="indices must lie in"):
        jena_dm.dataset.batch([n])
    with pytest.raises(IndexError):
        jena_dm.dataset[-n - 1]


def test_dataset_protocol_len_getitem_and_iteration_agree():
    """len() counts the windows, dataset[i] serves every i < len, and iteration yields exactly those.

    (The dataset used to be indexed by the book's row with len() = the number of rows: dataset[0] raised,
    so list(dataset) was empty and a plain DataLoader failed at once.)"""
    n_rows, lookback, step, delay = 60, 12, 3, 5
    data = np.arange(n_rows * 2, dtype=np.float32).reshape(n_rows, 2)  # data[r, 0] = 2r: windows name rows
    ds = WindowDataset(data, lookback, step, delay, target_index=1)
    rows = range(lookback, n_rows - delay)  # the book's rows with a whole window and a target
    assert len(ds) == len(rows) == 43 and ds.first_row == lookback
    items = list(ds)
    assert len(items) == len(ds)
    for i, ((x, y), row) in enumerate(zip(items, rows)):
        np.testing.assert_array_equal(x.numpy(), data[row - lookback : row : step])
        assert y.item() == data[row + delay, 1]
        torch.testing.assert_close(ds[i], (x, y))
    torch.testing.assert_close(ds[-1], items[-1])
    np.testing.assert_array_equal(ds.items(rows), np.arange(len(ds)))
    # and a plain DataLoader (default sampler, no collate trick) sees every window once
    loader = torch.utils.data.DataLoader(ds, batch_size=10)
    batches = list(loader)
    assert sum(len(y) for _, y in batches) == len(ds)
    torch.testing.assert_close(torch.cat([y for _, y in batches]), torch.stack([y for _, y in items]))


def test_validation_batches_are_the_book_generators(jena_dm):
    data, _, _ = book_standardize(jena_dm.series.values)
    gen = generator(data, 1440, 144, 200001, 300000, batch_size=128, step=6)
    batches = iter(jena_dm.val_dataloader())
    for _ in range(3):
        (bx, by), (x, y) = next(gen), next(batches)
        np.testing.assert_allclose(x.numpy(), bx, atol=1e-6)
        np.testing.assert_allclose(y.numpy(), by, atol=1e-6)
    assert len(jena_dm.val_dataloader()) == 769


def test_sequential_rows_wrap_like_the_book():
    data = np.arange(3000 * 2, dtype=float).reshape(3000, 2)
    gen = generator(data, 100, 10, 0, 1000, batch_size=128, step=5)
    rows = book_sequential_rows(0, 1000, 100, 128, steps=20)
    for k in range(20):
        samples, _ = next(gen)
        # recover each row from the first sample: data[row - lookback, 0] = 2 * (row - lookback)
        np.testing.assert_array_equal(samples[:, 0, 0] / 2 + 100, rows[k * 128 : (k + 1) * 128])


def test_naive_baseline_matches_book_to_1e6(jena_dm):
    data, _, _ = book_standardize(jena_dm.series.values)
    for split, (lo, hi), steps in (("val", (200001, 300000), 769), ("test", (300001, None), 930)):
        gen = generator(data, 1440, 144, lo, hi, batch_size=128, step=6)
        book = evaluate_naive_method(gen, steps)
        assert jena_dm.naive_mae(split) == pytest.approx(book, abs=1e-6)


def data_std_of_target(dm) -> float:
    return float(dm.series.values[:200000, 1].std())


def test_naive_forecaster_through_lightning_matches_book(jena_dm):
    from lightning.pytorch import Trainer

    from seqlight.models import NaiveForecaster

    data, _, _ = book_standardize(jena_dm.series.values)
    book = evaluate_naive_method(generator(data, 1440, 144, 200001, 300000), 769)
    model = NaiveForecaster(num_features=14, target_index=1)
    trainer = Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    (res,) = trainer.validate(model, datamodule=jena_dm, verbose=False)
    assert res["val/mae"] == pytest.approx(book, abs=1e-6)
    # the scale comes with the DataModule's preprocessing, which the model takes at setup
    assert model.preprocessing is jena_dm.preprocessing
    assert res["val/mae_degC"] == pytest.approx(book * data_std_of_target(jena_dm), rel=1e-5)


@pytest.mark.parametrize("n_rows,test_steps", [(420551, 930), (420451, 929)])
def test_splits_and_step_counts_for_both_official_row_counts(tmp_path, jena_dm, n_rows, test_steps):
    if n_rows == 420551:
        dm = jena_dm
    else:  # today's download: 100 rows fewer. Reuse the series' first rows in the official format.
        src = jena_dm.data_dir / "jena_climate_synthetic.csv"
        dst = tmp_path / "short.csv"
        with open(src) as f, open(dst, "w") as out:
            for i, line in enumerate(f):
                if i > n_rows:
                    break
                out.write(line)
        dm = JenaDataModule(path=str(dst))
        dm.setup()
    assert len(dm.series.values) == n_rows
    assert dm.steps("train") == 500 and dm.steps("val") == 769 and dm.steps("test") == test_steps
    assert dm.split_bounds("train") == (1440, 200000)
    assert dm.split_bounds("val") == (201441, 300000)
    assert dm.split_bounds("test") == (301441, n_rows - 145)
    assert len(dm.train_dataloader()) == 500
    assert len(dm.test_dataloader()) == test_steps
    # the book's test generator wraps around before test_steps batches: rows repeat
    rows = dm.eval_row_indices("test")
    assert rows.max() < n_rows - 145 and len(rows) == test_steps * 128


def test_training_sampler_with_replacement_is_seeded_and_in_range():
    s = RandomRowSampler(1440, 200000, 500 * 128, replacement=True, seed=7)
    a, b = list(s), list(s)
    assert len(a) == 64000 and min(a) >= 1440 and max(a) < 200000
    assert a != b  # a new draw every epoch
    s2 = RandomRowSampler(1440, 200000, 500 * 128, replacement=True, seed=7)
    s2.set_epoch(0)
    assert list(s2) == a  # same seed and epoch, same rows: every DDP rank agrees
    assert len(set(a)) < len(a)  # with replacement


def test_permutation_sampler_visits_each_row_once():
    s = RandomRowSampler(10, 1000, None, replacement=False, seed=1)
    rows = list(s)
    assert sorted(rows) == list(range(10, 1000))
    assert list(s) != rows


def test_reverse_flips_time(jena_dm):
    ds = jena_dm.dataset
    rev = WindowDataset(ds._phases.transpose(1, 0, 2).reshape(-1, 14)[: ds.n_rows], 1440, 6, 144, 1, reverse=True)
    rows = [5000, 6000]
    x, y = ds.batch(ds.items(rows))
    xr, yr = rev.batch(rev.items(rows))
    torch.testing.assert_close(xr, x.flip(1))
    torch.testing.assert_close(yr, y)


def test_permutation_sampling_through_the_datamodule(jena_dir):
    dm = JenaDataModule(data_dir=str(jena_dir), source="synthetic", sampling="permutation", steps_per_epoch=None)
    dm.setup()
    assert len(dm.train_dataloader()) == (200000 - 1440) // 128 + 1


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"batch_size": 0}, "batch_size must be an integer >= 1, got 0"),
        ({"batch_size": True}, "batch_size must be an integer >= 1, got True"),
        ({"lookback": 0}, "lookback must be an integer >= 1, got 0"),
        ({"step": -1}, "step must be an integer >= 1, got -1"),
        ({"delay": 0}, "delay must be an integer >= 1, got 0"),
        ({"delay": 1.5}, "delay must be an integer >= 1, got 1.5"),
        ({"step": 7, "lookback": 6}, "step (7) must not exceed lookback (6)"),
        ({"steps_per_epoch": 0}, "steps_per_epoch must be an integer >= 1 or None, got 0"),
        ({"steps_per_epoch": None}, "steps_per_epoch is required with sampling='replacement'"),
        ({"val_steps": 0}, "val_steps must be an integer >= 1 or None, got 0"),
        ({"standardize_rows": 0}, "standardize_rows must be an integer >= 1 or None, got 0"),
        ({"num_workers": -1}, "num_workers must be an integer >= 0, got -1"),
        ({"synthetic_rows": 0}, "synthetic_rows must be an integer >= 1, got 0"),
        ({"train_range": (10, 10)}, "train_range must be (min_index, max_index) with 0 <= min_index < max_index"),
        ({"val_range": (-1, None)}, "val_range must be (min_index, max_index)"),
        ({"test_range": (300001,)}, "test_range must be (min_index, max_index)"),
        ({"download_timeout": 0}, "download_timeout must be a number of seconds > 0, got 0"),
        ({"source": "web"}, "source must be one of ['auto', 'real', 'synthetic'], got 'web'"),
        ({"eval_rows": "some"}, "eval_rows must be one of ['book', 'all'], got 'some'"),
        ({"timestamp_check": "lax"}, "timestamp_check must be one of ['strict', 'warn'], got 'lax'"),
        ({"wind_errors": "drop"}, "wind_errors must be one of ['zero', 'keep'], got 'drop'"),
        ({"features": []}, "features must name distinct columns, at least one"),
        ({"target": "T (K)"}, "target 'T (K)' is not one of the features"),
    ],
)
def test_bad_arguments_are_refused_before_any_file_is_read(tmp_path, kwargs, message):
    # source='real' on an empty folder: reading anything would fail differently (no such file, download)
    with pytest.raises(SeqlightError) as e:
        JenaDataModule(data_dir=str(tmp_path / "nothing_here"), source=kwargs.pop("source", "real"), **kwargs)
    assert message in str(e.value)
    assert isinstance(e.value, ValueError)  # (JenaDataError: existing `except ValueError` still catches it)
    assert not (tmp_path / "nothing_here").exists()


def test_lookback_longer_than_the_file_names_file_rows_and_argument(jena_dir):
    # valid by itself, so only setup() can tell: the message names the file, its rows and the argument
    dm = JenaDataModule(data_dir=str(jena_dir), source="synthetic", lookback=500_000, step=6)
    with pytest.raises(
        JenaDataError,
        match=r"jena_climate_synthetic\.csv has 420551 rows, too few for lookback "
        r"500000 \+ delay 144",
    ):
        dm.setup()
