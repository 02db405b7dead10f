"""`--device ascend` without the node's Ascend driver and CANN toolkit: one line naming what is missing, where
it was looked for and what to mount, before the step does any work (src/mindzoo/ascend.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mindzoo import ascend

BIN = Path(sys.executable).parent / "mindzoo"
DRIVER = ("the Ascend driver ({root}/driver/lib64: the Ascend Docker Runtime mounts it into containers that "
          "request an NPU)")
TOOLKIT = ("the CANN toolkit ({root}/ascend-toolkit/set_env.sh or {root}/cann/set_env.sh: mount the node's "
           "{root}/ascend-toolkit read-only at the same path)")
PREFIX = "--device {device} needs the node's Ascend driver and CANN toolkit inside the container; missing: "


def message(device: str, *parts: str, root: Path | str = "/usr/local/Ascend") -> str:
    return PREFIX.format(device=device) + "; ".join(p.format(root=root) for p in parts)


def test_nothing_mounted_names_both_pieces_and_where_they_were_looked_for(tmp_path):
    with pytest.raises(ascend.AscendMissing) as err:
        ascend.require_cann("ascend", root=tmp_path, environ={})
    assert str(err.value) == message("ascend", DRIVER, TOOLKIT, root=tmp_path)


@pytest.mark.parametrize("layout", ["ascend-toolkit", "cann"])
def test_driver_and_toolkit_mounted_and_loaded_is_ready(tmp_path, layout):
    (tmp_path / "driver" / "lib64").mkdir(parents=True)
    (tmp_path / layout).mkdir()
    (tmp_path / layout / "set_env.sh").write_text("export ASCEND_OPP_PATH=/x\n")
    with pytest.raises(ascend.AscendMissing) as err:  # mounted, but set_env.sh was not sourced
        ascend.require_cann("ascend310", root=tmp_path, environ={})
    assert str(err.value) == (PREFIX.format(device="ascend310") + "CANN's environment ($ASCEND_OPP_PATH is unset: "
                              f"start the image's own `mindzoo`, which sources {tmp_path / layout / 'set_env.sh'}, "
                              "or source it first)")
    ascend.require_cann("ascend310", root=tmp_path, environ={"ASCEND_OPP_PATH": "/x"})  # no error


def test_only_the_toolkit_missing_names_only_the_toolkit(tmp_path):
    (tmp_path / "driver" / "lib64").mkdir(parents=True)
    assert ascend.problems(tmp_path, {}) == [TOOLKIT.format(root=tmp_path)]


def test_the_cli_says_it_in_one_line_before_any_work():
    assert not ascend.ROOT.exists(), "this test needs a machine without /usr/local/Ascend"
    for step in (("train", "--dataset", "s3://nowhere/x", "--output", "s3://nowhere/runs"),
                 ("export", "--checkpoint", "s3://nowhere/x")):
        proc = subprocess.run([str(BIN), *step, "--device", "ascend"], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2
        assert proc.stderr.splitlines() == [f"error: {message('ascend', DRIVER, TOOLKIT)}"], proc.stderr


def test_the_image_wrapper_sources_the_same_set_env_paths():
    script = ascend.wrapper_script()
    assert script.startswith("#!/bin/bash\n") and script.endswith('exec /opt/mindzoo/bin/mindzoo "$@"\n')
    assert "for f in /usr/local/Ascend/ascend-toolkit/set_env.sh /usr/local/Ascend/cann/set_env.sh; do" in script
