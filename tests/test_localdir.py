"""mindzoo.localdir: a folder is replaced whole (export --local-dir), never left as a mix of two versions."""

from __future__ import annotations

import pytest

from mindzoo import localdir


def _folder(path, files):
    path.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (path / name).write_text(text)
    return path


@pytest.mark.parametrize("exchange", ["renameat2", "rename aside"])
@pytest.mark.parametrize("existing", [None, {"model.mindir": "old", "only-in-old.txt": "stale"}])
def test_replace_dir_leaves_exactly_the_new_folder(tmp_path, monkeypatch, exchange, existing):
    if exchange == "rename aside":
        monkeypatch.setattr(localdir, "_exchange", lambda a, b: False)
    target = tmp_path / "out" / "export"
    if existing:
        _folder(target, existing)
    staged = _folder(localdir.staging_for(target), {"model.mindir": "new", "labels.json": "{}"})
    localdir.replace_dir(staged, target)
    assert {p.name: p.read_text() for p in target.iterdir()} == {"model.mindir": "new", "labels.json": "{}"}
    assert sorted(p.name for p in target.parent.iterdir()) == ["export"]  # no staging or old copy left


def test_an_interrupted_copy_leaves_the_old_folder_untouched(tmp_path):
    target = _folder(tmp_path / "export", {"model.mindir": "old"})
    staged = localdir.staging_for(target)
    (staged / "model.mindir").write_text("half")  # killed here: replace_dir never ran
    assert (target / "model.mindir").read_text() == "old"
    assert localdir.staging_for(target) == staged and not list(staged.iterdir())  # the next run starts clean
