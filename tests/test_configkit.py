"""Config dataclasses → CLI flags → config, and dotted-key errors (pure logic)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import click
import pytest
from click.testing import CliRunner

from mindzoo.config import DigitsConfig, StackConfig, StorageConfig
from mindzoo.configkit import build, check, click_options, coerce, iter_flags, option, to_flat_dict
from mindzoo.errors import ConfigError


@dataclass(frozen=True)
class Optim:
    lr: float = option(0.1, help="learning rate")
    kind: Literal["momentum", "rmsprop"] = option("momentum", help="optimizer")

    def __post_init__(self) -> None:
        check(self.lr > 0, "lr", "must be > 0")


@dataclass(frozen=True)
class Train:
    epochs: int = option(3, help="epochs")
    optim: Optim = field(default_factory=Optim)
    milestones: tuple[int, ...] = option((30, 60), help="milestones")


def test_nested_error_names_the_dotted_key():
    with pytest.raises(ConfigError, match=r"^train\.optim\.lr: must be > 0$"):
        build(Train, {"optim__lr": "-1"}, "train")


@pytest.mark.parametrize("values, message", [
    ({"epochs": "three"}, r"^train\.epochs: expected int, got 'three'$"),
    ({"optim__kind": "adam"}, r"^train\.optim\.kind: must be one of momentum, rmsprop"),
    ({"nope": 1}, r"^train\.nope: unknown key"),
])
def test_bad_values_name_their_key(values, message):
    with pytest.raises(ConfigError, match=message):
        build(Train, values, "train")


def test_flags_derive_from_fields_and_defaults_are_the_dataclass_defaults():
    flags = {spec.flag: spec.default for spec in iter_flags(Train)}
    assert flags == {"--epochs": 3, "--optim-lr": 0.1, "--optim-kind": "momentum", "--milestones": (30, 60)}

    @click.command()
    @click_options(Train)
    def cmd(**kw):
        cfg = build(Train, kw, "train")
        click.echo(repr(cfg))

    out = CliRunner().invoke(cmd, ["--optim-lr", "0.5", "--milestones", "1,2,3"])
    assert out.exit_code == 0, out.output
    assert "lr=0.5" in out.output and "milestones=(1, 2, 3)" in out.output
    assert CliRunner().invoke(cmd, []).output.strip() == repr(Train())


def test_secrets_are_neither_flags_nor_params():
    keys = {spec.key for spec in iter_flags(StorageConfig)}
    assert "access_key" not in keys and "secret_key" not in keys
    flat = to_flat_dict(StorageConfig(access_key="AK", secret_key="SK"))
    assert "AK" not in flat.values() and "SK" not in flat.values()
    assert "SK" not in repr(StorageConfig(secret_key="SK"))


@pytest.mark.parametrize("cls, values, key", [
    (StackConfig, {"minio_port": 0}, "stack.minio_port"),
    (StackConfig, {"mlflow_port": 19000}, "stack.mlflow_port"),
    (StackConfig, {"buckets": "UPPER"}, "stack.buckets"),
    (StorageConfig, {"endpoint": "http://x:9000"}, "storage.endpoint"),
    (StorageConfig, {"retry_seconds": -1}, "storage.retry_seconds"),
    (DigitsConfig, {"format": "cifar10", "size": 64}, "datasets.size"),
    (DigitsConfig, {"val_fraction": 1.5}, "datasets.val_fraction"),
])
def test_every_config_rejects_bad_values_by_key(cls, values, key):
    section = key.split(".")[0]
    with pytest.raises(ConfigError) as err:
        build(cls, values, section)
    assert err.value.key == key


def test_coerce_bools_and_optionals():
    assert coerce("yes", bool, "k") is True and coerce("0", bool, "k") is False
    assert coerce(None, int | None, "k") is None
    with pytest.raises(ConfigError, match="^k: "):
        coerce("maybe", bool, "k")
