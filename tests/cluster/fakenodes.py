"""The fake nodes kwok runs for the cluster test harness: what the Ascend and NVIDIA
device plugins make real nodes look like (resources, labels, taints), plus plain
CPU nodes for the services."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class FakeNode:
    """A node kwok pretends to run: labels, taints and what it can offer."""

    name: str
    labels: dict[str, str] = field(default_factory=dict)
    taints: tuple[tuple[str, str], ...] = ()  # (key, effect); value empty, as the device plugins' docs use
    resources: dict[str, str] = field(default_factory=dict)  # extended resources on top of cpu/memory/pods

    def manifest(self) -> dict[str, Any]:
        capacity = {"cpu": "64", "memory": "256Gi", "pods": "110", "ephemeral-storage": "1Ti", **self.resources}
        return {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {
                "name": self.name,
                "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                "labels": {"type": "kwok", "kubernetes.io/hostname": self.name, "kubernetes.io/os": "linux",
                           "kubernetes.io/arch": "amd64", **self.labels},
            },
            "spec": {"taints": [{"key": k, "effect": e} for k, e in self.taints]},
            "status": {"allocatable": capacity, "capacity": capacity},
        }


def _ascend(name: str, chip: str, count: int) -> FakeNode:
    resource = f"huawei.com/{chip}"
    return FakeNode(name, {"accelerator": f"huawei-{chip}", "node.kubernetes.io/instance-type": f"atlas-{chip.lower()}"},
                    ((resource, "NoSchedule"),), {resource: str(count)})


#: The fake cluster: two 8-chip Ascend 910 training nodes, an Ascend 310 inference
#: node, an 8-GPU node and two plain CPU nodes for the services.
NODES: tuple[FakeNode, ...] = (
    _ascend("ascend910-0", "Ascend910", 8),
    _ascend("ascend910-1", "Ascend910", 8),
    _ascend("ascend310-0", "Ascend310", 4),
    FakeNode("gpu-0", {"nvidia.com/gpu.present": "true", "accelerator": "nvidia-gpu"},
             (("nvidia.com/gpu", "NoSchedule"),), {"nvidia.com/gpu": "8"}),
    FakeNode("cpu-0"),
    FakeNode("cpu-1"),
)
