"""LightningDataModules and the file handling behind them."""

from seqlight.data.jena import JenaDataModule, JenaDataError, read_jena_csv
from seqlight.data.imdb import ImdbDataModule, KerasImdbDataModule, ImdbDataError

__all__ = [
    "JenaDataModule",
    "JenaDataError",
    "read_jena_csv",
    "ImdbDataModule",
    "KerasImdbDataModule",
    "ImdbDataError",
]
