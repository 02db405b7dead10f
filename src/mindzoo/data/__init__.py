"""Datasets: raw sources → validated MindRecord shards in MinIO → training/eval input pipelines.

The preprocess step reads a raw dataset (``sources``: CIFAR-10 binaries, an
ImageNet folder tree, or a flat folder plus a label file), converts it to
MindRecord shards in parallel worker processes (``convert``), and writes a
``dataset.json`` plus a data report (``report``) next to the shards. The
content hash (``hashing``) of the source listing and the conversion settings
names the published prefix, so the same data is never converted twice.

Training and evaluation read the shards back through ``pipeline.create_dataset``,
which fetches the published prefix into a local cache (``cache``) and applies
each recipe's transforms from its :class:`mindzoo.archs.DataConfig`
(``transforms``). ImageNet training batches are built per batch (``trainbatch``):
only each random crop's box is decoded (``cropdecode``, the native ``jpegcrop.c``),
and the colour jitter is drawn here (``jitter``) but applied, with the
normalisation, by the engine on the device.

Heavy libraries (MindSpore, Pillow, numpy) are imported by the modules that
need them, so importing this package stays cheap.
"""

SCHEMA = {"image": {"type": "bytes"}, "label": {"type": "int32"}, "file_id": {"type": "string"}}
SCHEMA_VERSION = "mindzoo.mindrecord/1"  # bump when the bytes written for the same input change
DATASET_FORMAT = "mindzoo.dataset/1"  # the layout of dataset.json
DATASET_JSON = "dataset.json"
SPLITS = ("train", "val")
