"""Datasets (image folders, tar archives, WebDataset shards, CIFAR, Hugging Face, object
stores, the bundled sample), augmentation and batches. Each concept has one file:

- what ``--data`` names: ``config.py`` (DataConfig, the readers' table of formats),
  ``datasource.py`` (one DataSource per ``--data``), ``splits.py`` (train/val/test, held in
  memory or streamed, and the decode cache);
- the formats: ``folder.py``, ``tarindex.py``, ``shards.py``, ``streams.py`` (shards read as
  streams), ``cifar.py``, ``hfdata.py``, ``remote.py`` (URLs and object stores),
  ``members.py`` (an image inside another file), ``images.py`` (decoding one image);
- from data to batches: ``augment.py`` (the paper's augmentation and later policies),
  ``batches.py`` (training batches, held or streamed), ``pipeline.py`` (a data config to the
  training and evaluation batches), ``testtime.py`` (test-time views for eval and predict),
  ``model_transform.py`` (a model's input as a transform for one's own loader, timm's API);
- around them: ``check.py`` (``deepres data check``), ``progress.py``, ``errors.py``.
"""

from .._lazy import exports

__getattr__, __dir__, __all__ = exports(__name__, {
    "ArrayDataset": ".cifar",
    "read_cifar": ".cifar",
    "DataSource": ".datasource",
    "resolve": ".datasource",
    "load_data": ".datasource",
    "DatasetError": ".errors",
    "FolderIndex": ".folder",
    "check_index": ".folder",
    "holdout_split": ".folder",
    "scan_dataset": ".folder",
    "scan_folder": ".folder",
    "BadImageError": ".images",
    "decode_image": ".images",
    "ArrayLoader": ".batches",
    "FolderDataset": ".batches",
    "Splits": ".splits",
    "sample_root": ".splits",
    # timm's names (timm.data.*), so that timm code runs with `timm.` replaced by `deepres.`
    "create_transform": ".model_transform",
    "data_config": ".model_transform",
    "resolve_data_config": ".model_transform",
    "resolve_model_data_config": ".model_transform",
})
