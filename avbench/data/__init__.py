"""The data layer: feature stores, the synthetic corpus, splits and corpus lookup."""

from avbench.data.corpora import open_corpus
from avbench.data.crema_d import crema_d_labels
from avbench.data.splits import Split, check_split, load_splits, make_split, make_splits
from avbench.data.store import FeatureStore, StoreWriter, import_arrays
from avbench.data.synthetic import default_synthetic, generate_synthetic

__all__ = [
    "FeatureStore", "StoreWriter", "import_arrays", "crema_d_labels", "open_corpus",
    "generate_synthetic", "default_synthetic",
    "Split", "make_split", "make_splits", "check_split", "load_splits",
]
