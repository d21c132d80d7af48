"""Data: the bundled datasets, and simulated data with known parameters.

``catalogue`` has :func:`load_dataset` and :func:`list_datasets`; ``simulate`` draws data from a model
with known parameters. The CSV files live beside these modules.
"""

from bayesmlm.datasets.catalogue import list_datasets, load_dataset

__all__ = ["list_datasets", "load_dataset"]
