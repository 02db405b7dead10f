"""The only place container image references live (components and pipelines read these).

Podman stores locally built images as ``localhost/<name>``; kfp.local's
DockerRunner compares exact tags, so local builds are referenced that way.
Set ``MINDZOO_IMAGE_REGISTRY`` at compile time to point at a real registry.
"""

import os

VERSION = "0.1.0"
REGISTRY = os.environ.get("MINDZOO_IMAGE_REGISTRY", "localhost")

CPU = f"{REGISTRY}/mindzoo-cpu:{VERSION}"
GPU = f"{REGISTRY}/mindzoo-gpu:{VERSION}"
ASCEND = f"{REGISTRY}/mindzoo-ascend:{VERSION}"

BY_DEVICE = {"cpu": CPU, "gpu": GPU, "ascend": ASCEND}
