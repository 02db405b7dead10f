"""The images to score, with labels, in the recipes' order (sorted class folders / sorted files).

Three layouts: a converted dataset (``mindzoo preprocess`` output: MindRecord
shards with the original image bytes), a folder of class subfolders (labels =
sorted folder position, as ``create_imagenet2012_label.py``), or a flat folder
with ``imagenet_label.json`` / ``<stem>:<label>`` lines.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mindzoo.data import labels as label_files
from mindzoo.data.images import is_image_name
from mindzoo.data.walk import entries, files_under
from mindzoo.errors import DataError


@dataclass
class Images:
    kind: str  # dataset | imagefolder | flat
    where: str
    count: int
    classes: list[str]
    samples: Callable[[], Iterator[tuple[str, int, bytes]]]  # (file, label, encoded bytes)


def open_images(data: str, *, split: str, label_file: str, storage: Callable[[], Any],
                cache_dir: Path | None) -> Images:
    if data.startswith("s3://") or (Path(data).expanduser() / "dataset.json").is_file():
        return _dataset(data, split, storage, cache_dir)
    root = Path(data).expanduser()
    if not root.is_dir():
        raise DataError(f"no such image folder: {data}")
    if (root / split).is_dir() and not label_file:
        root = root / split
    dirs = [p for p, is_dir in entries(root, root) if is_dir]
    if dirs and not label_file:
        return _imagefolder(root, dirs)
    return _flat(root, label_file)


def _dataset(data: str, split: str, storage: Callable[[], Any], cache_dir: Path | None) -> Images:
    from mindzoo.data import cache, manifest

    local = cache.local_dataset(data, storage=storage() if data.startswith("s3://") else None, cache_dir=cache_dir)
    info = manifest.load(local)
    files = [str(p) for p in manifest.shard_paths(local, info, split)]
    count = int(info["splits"][split]["images"])

    def samples() -> Iterator[tuple[str, int, bytes]]:
        import mindspore.dataset as ds

        reader = ds.MindDataset(files, columns_list=["image", "label", "file_id"], sampler=ds.SequentialSampler())
        for row in reader.create_dict_iterator(num_epochs=1, output_numpy=True):
            yield str(row["file_id"]), int(row["label"]), row["image"].tobytes()

    return Images("dataset", data, count, list(info["classes"]), samples)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""  # counted as undecodable, with the file named in the report


def _imagefolder(root: Path, dirs: list[Path]) -> Images:
    listed = [(path, label) for label, folder in enumerate(dirs)
              for path, _ in files_under(folder, root) if is_image_name(path.name)]
    if not listed:
        raise DataError(f"{root} has class folders but no images (.jpeg/.jpg/.png/.bmp)")

    def samples() -> Iterator[tuple[str, int, bytes]]:
        for path, label in listed:
            yield path.relative_to(root).as_posix(), label, _read(path)

    return Images("imagefolder", str(root), len(listed), [d.name for d in dirs], samples)


def _flat(root: Path, label_file: str) -> Images:
    images = sorted(p for p, is_dir in entries(root, root) if not is_dir and is_image_name(p.name))
    if not images:
        raise DataError(f"{root} holds no images (.jpeg/.jpg/.png/.bmp) and no class folders")
    path = Path(label_file).expanduser() if label_file else next(
        (root / n for n in label_files.DEFAULT_NAMES if (root / n).is_file()), None)
    if path is None:
        raise DataError(f"{root} is a flat folder without a label file; pass --label-file "
                        f"(imagenet_label.json or `<stem>:<label>` lines)")
    labels = label_files.parse(path)
    names = {p.name for p in images} | {p.stem for p in images}
    missing = sorted(k for k in labels if k not in names)
    if missing:
        raise DataError(f"label file {path.name} names {len(missing)} images that are not in {root}: "
                        f"{', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}")
    unlabeled = [p.name for p in images if label_files.lookup(labels, p.name) is None]
    if unlabeled:
        raise DataError(f"{len(unlabeled)} images in {root} have no label in {path.name}: {unlabeled[0]}")
    listed = [(p, int(label_files.lookup(labels, p.name))) for p in images]

    def samples() -> Iterator[tuple[str, int, bytes]]:
        for p, label in listed:
            yield p.name, label, _read(p)

    classes = [str(i) for i in range(max(lbl for _, lbl in listed) + 1)]
    return Images("flat", str(root), len(listed), classes, samples)
