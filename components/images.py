"""The only place container image references live (components and pipelines read these).

Podman stores locally built images as ``localhost/<name>``; kfp.local's
DockerRunner compares exact tags, so local builds are referenced that way.
Set ``MINDZOO_IMAGE_REGISTRY`` at compile time to point at a real registry, and
``MINDZOO_IMAGE_DIGESTS`` (``cpu=sha256:...,gpu=sha256:...``: the digests the
registry gave the pushed images) to pin them: each reference becomes
``<name>:<version>@sha256:...``, so a pod runs exactly that image, and every step
is told the digests (``STEP_DIGESTS``) to record the one it runs in.
"""

import os

VERSION = "0.1.0"
REGISTRY = os.environ.get("MINDZOO_IMAGE_REGISTRY", "localhost")
NAMES = {"cpu": f"mindzoo-cpu:{VERSION}", "gpu": f"mindzoo-gpu:{VERSION}", "ascend": f"mindzoo-ascend:{VERSION}"}
# `mindzoo pipeline compile` checks the value first (mindzoo.pipeline.compile), with one error line.
_PINS = [part.split("=", 1) for part in os.environ.get("MINDZOO_IMAGE_DIGESTS", "").split(",") if part.strip()]
DIGESTS = {kind.strip(): digest.strip() for kind, digest in _PINS}


def _reference(kind: str) -> str:
    pin = f"@{DIGESTS[kind]}" if kind in DIGESTS else ""
    return f"{REGISTRY}/{NAMES[kind]}{pin}"


CPU = _reference("cpu")
GPU = _reference("gpu")
ASCEND = _reference("ascend")

BY_DEVICE = {"cpu": CPU, "gpu": GPU, "ascend": ASCEND}
# What steps get in $MINDZOO_IMAGE_DIGESTS: pins by the image's own name ($MINDZOO_IMAGE in each image).
STEP_DIGESTS = ",".join(f"{NAMES[kind]}={digest}" for kind, digest in sorted(DIGESTS.items()))
