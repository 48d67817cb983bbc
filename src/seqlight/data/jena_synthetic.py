"""Offline Jena climate data: a deterministic generator that writes a CSV in the official format.

The real file (``jena_climate_2009_2016.csv``, 420,551 rows, Max Planck Institute for Biogeochemistry)
cannot be fetched without the internet. This module writes a stand-in with exactly the official layout:
the same quoted 15-column header, ``dd.mm.yyyy HH:MM:SS`` timestamps every 10 minutes from
``01.01.2009 00:10:00``, two decimals, LF line endings, and by default 420,551 rows so that the book's
splits (train 0..200000, validation 200001..300000, test 300001..end) work unchanged.

The weather is physically plausible and built so that the chapter's lesson holds on it:

- temperature = annual cycle + daily cycle (its amplitude following cloudiness and season) + multi-day
  weather anomalies + short-lived noise: persistence ("tomorrow is like today", the naive baseline) is
  a strong forecast, with an error of the same order as the real data's;
- air pressure moves with the large-scale weather *ahead of* the temperature (a falling barometer
  announces warm air some 8 hours later, as fronts do): a model that reads the sequence in order can use
  it and beat the baseline, while a convnet that pools the whole window away from its order cannot;
- the other 12 columns are derived from temperature, pressure and humidity by the same physics the
  station's own derived columns follow (Magnus formula for vapour pressure and dew point, potential
  temperature, specific humidity, air density), plus wind speed, gusts and direction.

It is *not* the real climate of Jena; results on it show that the code works, not the book's numbers.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from seqlight.files import atomic_path

__all__ = ["JENA_COLUMNS", "JENA_FEATURES", "SYNTHETIC_ROWS", "generate_jena", "write_jena_csv"]

JENA_FEATURES = [
    "p (mbar)",
    "T (degC)",
    "Tpot (K)",
    "Tdew (degC)",
    "rh (%)",
    "VPmax (mbar)",
    "VPact (mbar)",
    "VPdef (mbar)",
    "sh (g/kg)",
    "H2OC (mmol/mol)",
    "rho (g/m**3)",
    "wv (m/s)",
    "max. wv (m/s)",
    "wd (deg)",
]
JENA_COLUMNS = ["Date Time", *JENA_FEATURES]
SYNTHETIC_ROWS = 420_551
STEPS_PER_DAY = 144
LEAD_HOURS = 8


def _correlated_noise(n: int, tau: float, rng: np.random.Generator) -> np.ndarray:
    """Unit-variance noise with autocorrelation exp(-lag/tau) (an Ornstein-Uhlenbeck process), via FFT."""
    k = np.arange(int(6 * tau) + 1)
    kernel = np.exp(-k / tau)
    kernel /= np.sqrt((kernel**2).sum())
    eps = rng.standard_normal(n + len(kernel) - 1)
    size = 1 << int(np.ceil(np.log2(len(eps) + len(kernel))))
    out = np.fft.irfft(np.fft.rfft(eps, size) * np.fft.rfft(kernel, size), size)
    return out[len(kernel) - 1 : len(kernel) - 1 + n]


def _shift(x: np.ndarray, lag: int) -> np.ndarray:
    """x delayed by ``lag`` steps (the first values repeat x[0])."""
    return np.concatenate([np.full(lag, x[0]), x[:-lag]]) if lag > 0 else x


def generate_jena(n_rows: int = SYNTHETIC_ROWS, seed: int = 0) -> pd.DataFrame:
    """The synthetic series as a DataFrame with the official columns (values rounded to 2 decimals)."""
    if n_rows < 1:
        raise ValueError(f"n_rows must be >= 1, got {n_rows}")
    rng = np.random.default_rng(seed)
    n = n_rows
    t = np.arange(1, n + 1) / STEPS_PER_DAY  # days since 2009-01-01 00:00 (first row is 00:10)
    doy = t % 365.25
    hour = (t % 1.0) * 24.0
    season = -np.cos(2 * np.pi * (doy - 15) / 365.25)  # -1 mid-January .. +1 mid-July

    # large-scale weather: a slow process that shows in pressure first and in temperature LEAD_HOURS later.
    # The lead sets how much a model that reads the sequence can gain over persistence: with 8 h, a dense
    # net about ties the naive baseline and a GRU beats it by ~10%, as on the real data.
    lead = LEAD_HOURS * 6
    synoptic = _correlated_noise(n + lead, tau=2.5 * STEPS_PER_DAY, rng=rng)
    pressure_signal = synoptic[lead:]
    temp_signal = synoptic[:n]  # = pressure_signal delayed by `lead` steps
    slow = _correlated_noise(n, tau=12 * STEPS_PER_DAY, rng=rng)  # persistent warm/cold spells
    fast = _correlated_noise(n, tau=18, rng=rng)  # passing clouds, showers (~3 h)
    cloud = 1 / (1 + np.exp(-(1.2 * _correlated_noise(n, tau=1.5 * STEPS_PER_DAY, rng=rng) + 0.8 * pressure_signal)))

    daily_amp = (3.0 + 2.2 * (season + 1) / 2) * (1.25 - 0.8 * cloud)
    T = (
        9.4
        + 9.8 * season
        + daily_amp * np.cos(2 * np.pi * (hour - 15) / 24)
        - 3.2 * temp_signal
        + 2.4 * slow
        + 0.55 * fast
        + 0.08 * rng.standard_normal(n)
    )
    p = 989.2 + 7.5 * pressure_signal - 1.5 * slow + 0.4 * fast + 0.05 * rng.standard_normal(n)

    rh = 76 - 12 * np.cos(2 * np.pi * (hour - 15) / 24) * (1.1 - cloud) + 14 * (cloud - 0.5) - 4 * season
    rh = np.clip(rh + 6 * _correlated_noise(n, tau=36, rng=rng), 18, 100)

    vp_max = 6.1078 * np.exp(17.27 * T / (T + 237.3))
    vp_act = rh / 100 * vp_max
    g = np.log(vp_act / 6.1078)
    t_dew = 237.3 * g / (17.27 - g)
    sh = 622 * vp_act / (p - 0.378 * vp_act)
    h2oc = 1000 * vp_act / p
    t_pot = (T + 273.15) * (1000 / p) ** 0.286
    rho = (p * 100 - 37.8 * vp_act) / (287.05 * (T + 273.15)) * 1000

    wind = np.log1p(np.exp(1.1 * _correlated_noise(n, tau=30, rng=rng) + 0.6 * np.abs(pressure_signal)))
    wv = 2.1 * wind * (0.8 + 0.4 * cloud)
    max_wv = wv * (1.45 + 0.25 * np.abs(rng.standard_normal(n)))
    wd = (200 + 70 * _correlated_noise(n, tau=60, rng=rng) + 40 * pressure_signal) % 360

    stamps = pd.date_range("2009-01-01 00:10:00", periods=n, freq="10min")
    values = np.column_stack([p, T, t_pot, t_dew, rh, vp_max, vp_act, vp_max - vp_act, sh, h2oc, rho, wv, max_wv, wd])
    df = pd.DataFrame(np.round(values, 2), columns=JENA_FEATURES)
    df.insert(0, "Date Time", stamps.strftime("%d.%m.%Y %H:%M:%S"))
    return df


def write_jena_csv(path: str | os.PathLike, n_rows: int = SYNTHETIC_ROWS, seed: int = 0) -> Path:
    """Write the synthetic series to ``path`` in the official CSV format, atomically; return the path.

    The file appears complete or not at all, readable by others as the umask allows (see :mod:`seqlight.files`).
    To have it written once when several processes may need it, use ``create_once`` as ``JenaDataModule`` does.
    """
    path = Path(path)
    df = generate_jena(n_rows, seed)
    header = ",".join(f'"{c}"' for c in JENA_COLUMNS)
    with atomic_path(path) as tmp, open(tmp, "w", newline="\n") as f:
        f.write(header + "\n")
        df.to_csv(f, header=False, index=False, float_format="%.2f", lineterminator="\n")
    return path
