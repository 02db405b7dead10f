"""A tiny trained-looking checkpoint (GoogLeNet, CIFAR head, 32 px) in the train step's folder layout."""

from __future__ import annotations

import json

import pytest


def make_checkpoint(folder, *, input_size=32, num_classes=10, seed=0):
    import mindspore as ms

    from mindzoo.export import source
    from mindzoo.registry import create_model

    source.setup("cpu")
    ms.set_seed(seed)
    net = create_model("googlenet", num_classes=num_classes, input_size=input_size)
    folder.mkdir(parents=True, exist_ok=True)
    ms.save_checkpoint(net, str(folder / "model.ckpt"))
    identity = {"format": "mindzoo.checkpoint/1", "framework": "mindspore", "model": "googlenet",
                "num_classes": num_classes, "input_size": input_size, "data_config": "googlenet_cifar10",
                "recipe": "googlenet_cifar10", "run_id": "test-run", "dataset_hash": "0" * 64,
                "classes": [f"c{i}" for i in range(num_classes)], "model_kwargs": {}}
    (folder / "model.json").write_text(json.dumps(identity))
    (folder / "state.json").write_text(json.dumps({"epoch": 1, "history": [{"epoch": 1, "eval/top1": 0.5}]}))
    return folder


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "model")
