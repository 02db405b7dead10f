"""Raw dataset layouts: detect, list, validate — everything that needs no image decoding.

``scan(root, fmt)`` returns a :class:`Plan`: the classes (sorted folder order,
as the recipes' ``create_imagenet2012_label.py`` numbers them), the items of
each split, and the listing (path, size, mtime) the content hash is made of.
Every structural problem is a one-line :class:`DataError` raised here, before
anything is converted or published; only undecodable images are left for the
conversion workers, which quarantine them.

Layouts:

- ``cifar10``: ``data_batch_1..5.bin`` + ``test_batch.bin`` (see :mod:`.cifar`);
- ``cifar100``: ``train.bin`` + ``test.bin`` (fine or coarse labels, see :mod:`.cifar`);
- ``imagefolder``: ``train/<class>/*`` and ``val/<class>/*``; ``val/`` may
  instead be flat (images directly inside) with a label file, as the recipes'
  Ascend 310 flow has it;
- ``flat``: the folder itself holds images, labelled by a label file; it
  becomes the ``val`` split.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from mindzoo.data import labels as labelfile
from mindzoo.data.images import IMAGE_EXTENSIONS, is_image_name
from mindzoo.data.walk import entries, files_under
from mindzoo.errors import DataError

VAL_NAMES = ("val", "validation", "validation_preprocess")
EXPECTED = ("expected CIFAR-10 binaries (data_batch_*.bin), CIFAR-100 binaries (train.bin, test.bin), "
            "train/ and val/ class folders, or a flat folder of images with a label file")
FORMATS = ("cifar10", "cifar100", "imagefolder", "flat")


class Item(NamedTuple):
    file_id: str  # written to the record: the relative path, or "<batch file>:<record index>"
    label: int
    path: str  # relative path of the file that holds the image
    offset: int = -1  # byte offset of a CIFAR record's pixels; -1: the whole file is the image


@dataclass(frozen=True)
class Plan:
    format: str
    root: Path
    classes: tuple[str, ...]
    splits: dict[str, tuple[Item, ...]]
    listing: tuple[tuple[str, int, int], ...]  # (relative path, size, mtime_ns) of every input file
    label_file: Path | None = None
    skipped: tuple[str, ...] = ()  # operating-system junk left out (see mindzoo.data.walk)

    @property
    def total(self) -> int:
        return sum(len(items) for items in self.splits.values())


def detect_format(names: Iterable[str]) -> str | None:
    """The layout suggested by relative paths (the first two levels are enough)."""
    from mindzoo.data.cifar import is_cifar100_name, is_cifar_name

    names = list(names)
    if any(is_cifar_name(n) for n in names):
        return "cifar10"
    if any(is_cifar100_name(n) for n in names):
        return "cifar100"
    tops = {n.split("/", 1)[0] for n in names if "/" in n}
    if "train" in tops or tops & set(VAL_NAMES):
        return "imagefolder"
    if any("/" not in n and is_image_name(n) for n in names):
        return "flat"
    return None


def shallow_names(root: Path) -> list[str]:
    """Relative names of ``root``'s entries and of its subfolders' entries."""
    names = []
    for path, is_dir in entries(root, root):
        names.append(path.name)
        if is_dir:
            names.extend(f"{path.name}/{child.name}" for child, _ in entries(path, root))
    return names


def scan(root: Path, fmt: str = "auto", label_file: Path | None = None, *, train_only: bool = False,
         cifar100_labels: str = "fine") -> Plan:
    """List and validate the dataset at ``root`` (see the module docstring)."""
    from dataclasses import replace

    from mindzoo.data.walk import collect_skipped

    with collect_skipped() as skipped:
        plan = _scan(root, fmt, label_file, train_only, cifar100_labels)
    return replace(plan, skipped=tuple(sorted(skipped)))


def _scan(root: Path, fmt: str, label_file: Path | None, train_only: bool, cifar100_labels: str) -> Plan:
    if not root.exists():
        raise DataError(f"source {root} does not exist")
    if not root.is_dir():
        raise DataError(f"source {root} is not a folder")
    if fmt == "auto":
        detected = detect_format(shallow_names(root))
        if detected is None:
            raise DataError(f"no dataset found in {root}: {EXPECTED}")
        fmt = detected
    if fmt == "cifar10":
        from mindzoo.data.cifar import scan_cifar

        plan = scan_cifar(root, train_only)
    elif fmt == "cifar100":
        from mindzoo.data.cifar import scan_cifar100

        plan = scan_cifar100(root, train_only, cifar100_labels)
    elif fmt == "imagefolder":
        plan = _scan_imagefolder(root, label_file)
    else:
        plan = _scan_flat(root, label_file)
    if plan.total == 0:
        raise DataError(f"empty dataset: no images found in {root}")
    return plan


def _scan_imagefolder(root: Path, label_file: Path | None) -> Plan:
    train_dir = root / "train"
    val_dir = next((root / n for n in VAL_NAMES if (root / n).is_dir()), None)
    if not train_dir.is_dir() and val_dir is None:
        raise DataError(f"{root} has no train/ or val/ folder (ImageNet layout: train/<class>/*, val/<class>/*)")
    splits: dict[str, tuple[Item, ...]] = {}
    listing: list[tuple[str, int, int]] = []
    classes: tuple[str, ...] | None = None
    if train_dir.is_dir():
        classes, splits["train"] = _class_tree(train_dir, root, None, listing)
    used_label_file = None
    if val_dir is not None:
        listed = entries(val_dir, root)
        if not listed:
            raise DataError(f"{val_dir.name}/ is empty")
        if any(is_dir for _, is_dir in listed):
            val_classes, splits["val"] = _class_tree(val_dir, root, classes, listing)
            classes = classes or val_classes
        else:
            used_label_file, classes, splits["val"] = _flat_split(val_dir, root, classes, label_file, listing)
    return Plan("imagefolder", root, classes or (), splits, tuple(listing), used_label_file)


def _class_tree(split_dir: Path, root: Path, known: tuple[str, ...] | None,
                listing: list[tuple[str, int, int]]) -> tuple[tuple[str, ...], tuple[Item, ...]]:
    """Items of ``<split>/<class>/...``; labels index ``known`` classes (train) or this tree's own."""
    split = split_dir.name
    listed = entries(split_dir, root)
    stray = [p for p, is_dir in listed if not is_dir]
    if stray:
        raise DataError(f"{split}/{stray[0].name} is not inside a class folder ({split}/<class>/<image>)")
    names = tuple(p.name for p, _ in listed)
    if not names:
        raise DataError(f"{split}/ has no class folders")
    if known is not None:
        missing = [n for n in names if n not in known]
        if missing:
            raise DataError(f"{split} class {missing[0]!r} is not a train class "
                            f"({len(missing)} {split} classes missing from train/)")
    index = {name: i for i, name in enumerate(known or names)}
    items = []
    for name in names:
        found = _images(split_dir / name, root, listing)
        if not found:
            raise DataError(f"class folder {split}/{name} is empty")
        items.extend(Item(rel, index[name], rel) for rel in found)
    return names, tuple(items)


def _images(folder: Path, root: Path, listing: list[tuple[str, int, int]],
            skip: tuple[str, ...] = ()) -> list[str]:
    """Relative paths of the images below ``folder``; any other file is an error."""
    found = []
    for path, st in files_under(folder, root):
        rel = path.relative_to(root).as_posix()
        if path.name in skip:
            continue
        if not is_image_name(path.name):
            raise DataError(f"{rel} is not an image file (expected {', '.join(IMAGE_EXTENSIONS)}); "
                            "remove it from the dataset")
        found.append(rel)
        listing.append((rel, st.st_size, st.st_mtime_ns))
    return found


def _flat_split(folder: Path, root: Path, classes: tuple[str, ...] | None, label_file: Path | None,
                listing: list[tuple[str, int, int]]) -> tuple[Path, tuple[str, ...], tuple[Item, ...]]:
    """A folder of images labelled by a label file."""
    rel_dir = folder.relative_to(root).as_posix() or "."
    label_file = label_file or _find_label_file(folder, root)
    if label_file is None:
        raise DataError(f"{rel_dir}/ holds images directly (a flat folder): give --label-file "
                        f"({' or '.join(labelfile.DEFAULT_NAMES)}: `<stem>:<label>` lines)")
    if not label_file.is_file():
        raise DataError(f"label file {label_file} does not exist")
    subdirs = [p.name for p, is_dir in entries(folder, root) if is_dir]
    if subdirs:
        raise DataError(f"{rel_dir}/ mixes images and folders ({subdirs[0]}/); use class folders or a flat folder")
    table = labelfile.parse(label_file)
    found = _images(folder, root, listing, skip=(*labelfile.DEFAULT_NAMES, label_file.name))
    items, unlabelled = [], []
    for rel in found:
        label = labelfile.lookup(table, Path(rel).name)
        if label is None:
            unlabelled.append(rel)
        else:
            items.append(Item(rel, label, rel))
    if unlabelled:
        raise DataError(f"{len(unlabelled)} images in {rel_dir}/ have no label in {label_file.name} "
                        f"(first: {unlabelled[0]})")
    top = max((it.label for it in items), default=-1)
    bad = next((it for it in items if it.label < 0 or (classes is not None and it.label >= len(classes))), None)
    if bad is not None:
        limit = f"0..{len(classes) - 1} ({len(classes)} train classes)" if classes else ">= 0"
        raise DataError(f"{label_file.name}: {Path(bad.path).name} has label {bad.label}, expected {limit}")
    return label_file, classes or tuple(str(i) for i in range(top + 1)), tuple(items)


def _find_label_file(folder: Path, root: Path) -> Path | None:
    for where in (folder, root):
        for name in labelfile.DEFAULT_NAMES:
            if (where / name).is_file():
                return where / name
    return None


def _scan_flat(root: Path, label_file: Path | None) -> Plan:
    listing: list[tuple[str, int, int]] = []
    used, classes, items = _flat_split(root, root, None, label_file, listing)
    return Plan("flat", root, classes, {"val": items}, tuple(listing), used)
