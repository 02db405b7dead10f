"""Where a torch process sits in a data-parallel job, from its environment (imports no torch).

Three ways to be launched, read in this order:

1. torchrun (``--workers N`` on one machine, or ``torchrun`` in a pod; Kubeflow's
   PyTorchJob too): ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``;
2. torchrun's own flags as variables, one process per pod (``PET_NODE_RANK``,
   ``PET_NNODES``, ``PET_MASTER_ADDR``, ``PET_MASTER_PORT``);
3. mindzoo's Kubernetes launcher, one process per pod (``MINDZOO_NODE_RANK``,
   ``MINDZOO_NUM_NODES``, ``MINDZOO_MASTER_ADDR``, ``MINDZOO_MASTER_PORT``).

In every case rank 0 — pod 0 — is the master the others rendezvous with.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from mindzoo.errors import ConfigError

__all__ = ["TorchClusterEnv"]

# (rank, world size, master address, master port) variable names per launcher, in priority order.
_SOURCES = (
    ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"),
    ("PET_NODE_RANK", "PET_NNODES", "PET_MASTER_ADDR", "PET_MASTER_PORT"),
    ("MINDZOO_NODE_RANK", "MINDZOO_NUM_NODES", "MINDZOO_MASTER_ADDR", "MINDZOO_MASTER_PORT"),
)


@dataclass(frozen=True)
class TorchClusterEnv:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1  # processes on this machine (torchrun's LOCAL_WORLD_SIZE; 1 per pod otherwise)
    master_addr: str = ""
    master_port: int = 0
    source: str = ""  # the rank variable it was read from; "" when not launched

    @property
    def launched(self) -> bool:
        """True when a launcher started this process as one member of a job (even a job of one)."""
        return bool(self.source)

    @property
    def init_method(self) -> str:
        return f"tcp://{self.master_addr}:{self.master_port}"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> TorchClusterEnv:
        env = os.environ if env is None else env
        for rank_var, world_var, addr_var, port_var in _SOURCES:
            if env.get(rank_var, "") == "" or env.get(world_var, "") == "":
                continue
            rank, world = _int(env, rank_var), _int(env, world_var)
            if world < 1 or not 0 <= rank < world:
                raise ConfigError(rank_var, f"rank {rank} is outside a world of {world} ({world_var})")
            by_torchrun = rank_var == "RANK"
            local = _int(env, "LOCAL_RANK") if by_torchrun and env.get("LOCAL_RANK") else 0
            local_world = _int(env, "LOCAL_WORLD_SIZE") if by_torchrun and env.get("LOCAL_WORLD_SIZE") else 1
            addr, port = env.get(addr_var, ""), env.get(port_var, "")
            if world > 1 and not (addr and port):
                raise ConfigError(addr_var, f"a job of {world} processes needs {addr_var} and {port_var} "
                                            "(the address of rank 0)")
            return cls(rank, world, local, local_world, addr, _int(env, port_var) if port else 0, rank_var)
        return cls()


def _int(env: Mapping[str, str], name: str) -> int:
    try:
        return int(env[name])
    except ValueError:
        raise ConfigError(name, f"must be an integer (got {env[name]!r})") from None
