"""LightningDataModules and the file handling behind them."""

from seqlight.data.imdb import ImdbDataError, ImdbDataModule, KerasImdbDataModule
from seqlight.data.jena import JenaDataError, JenaDataModule, read_jena_csv

__all__ = [
    "JenaDataModule",
    "JenaDataError",
    "read_jena_csv",
    "ImdbDataModule",
    "KerasImdbDataModule",
    "ImdbDataError",
]
