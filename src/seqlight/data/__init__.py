"""LightningDataModules and the file handling behind them."""

from seqlight.data.jena import JenaDataModule, JenaDataError, read_jena_csv
