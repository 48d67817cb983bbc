"""LightningModules for every model of chapter 6.

Forecasters (Jena, 6.3/6.4) are in :mod:`seqlight.models.forecasting` and
:mod:`seqlight.models.recurrent_forecasters`; the IMDB classifiers (6.1, 6.2, 6.3, 6.4) in
:mod:`seqlight.models.classifiers`. Import the submodules directly; this package imports them lazily so
that ``import seqlight.models`` stays cheap.
"""

from importlib import import_module

_LAZY = {
    "Forecaster": "forecasting",
    "NaiveForecaster": "forecasting",
    "DenseForecaster": "forecasting",
    "RecurrentForecaster": "recurrent_forecasters",
    "ConvForecaster": "recurrent_forecasters",
    "ConvGRUForecaster": "recurrent_forecasters",
    "Classifier": "classifiers",
    "EmbeddingClassifier": "classifiers",
    "RecurrentClassifier": "classifiers",
    "ConvClassifier": "classifiers",
}


def __getattr__(name):
    if name in _LAZY:
        return getattr(import_module(f"seqlight.models.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'seqlight.models' has no attribute {name!r}")
