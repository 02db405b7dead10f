"""The ModelZoo name map of every recipe variant against the ModelZoo's own parameter lists.

``modelzoo_names/<variant>.tsv``: every parameter the ModelZoo network defines, name and
shape, in checkpoint order (see its README). Each family's map must cover exactly
those names and shapes, one-to-one, and translate both ways without loss.
"""

import pytest

pytestmark = pytest.mark.runtime

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from mindzoo.engine import modelzoo  # noqa: E402
from mindzoo.engine.checkpoint import CheckpointMismatch  # noqa: E402
from mindzoo.recipes import list_recipes, load_recipe  # noqa: E402

LISTS = Path(__file__).parent / "modelzoo_names"
# reference list -> (recipe, classes, input side the list was built at)
VARIANTS = {
    "zfnet": ("zfnet", 1000, 224), "sppnet_single": ("sppnet", 1000, 224), "sppnet_mult": ("sppnet_mult", 1000, 224),
    "resnet50_bam": ("resnet50_bam", 1000, 224), "googlenet_cifar10": ("googlenet_cifar10", 10, 224),
    "googlenet_imagenet": ("googlenet_imagenet", 1000, 224),
    "genet_res50_theta_minus": ("genet_res50_theta_minus", 1000, 224),
    "genet_res50_theta": ("genet_res50_theta", 1000, 224), "genet_res50_theta_plus": ("genet_res50_theta_plus", 1000, 224),
    "inception_v4": ("inception_v4", 1000, 299),
}


def reference(variant: str) -> dict[str, tuple[int, ...]]:
    rows = [line.rstrip("\n").split("\t") for line in (LISTS / f"{variant}.tsv").read_text().splitlines()
            if line and not line.startswith("#")][1:]
    return {name: tuple(int(d) for d in shape.split("x")) if shape else () for name, shape, _ in rows}


def ours(variant: str) -> tuple[str, dict[str, tuple[int, ...]]]:
    recipe_name, classes, size = VARIANTS[variant]
    recipe = load_recipe(recipe_name)
    return recipe.model, modelzoo.model_shapes(recipe.model, num_classes=classes, input_size=size,
                                               model_kwargs=recipe.model_kwargs)


def test_every_reference_list_and_every_modelzoo_model_is_covered():
    assert sorted(p.stem for p in LISTS.glob("*.tsv")) == sorted(VARIANTS)
    assert {load_recipe(r).model for r, _, _ in VARIANTS.values()} == set(modelzoo.FAMILIES)
    assert all(r in list_recipes() for r, _, _ in VARIANTS.values())


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_map_covers_exactly_the_modelzoo_names_and_shapes(variant):
    model, shapes = ours(variant)
    ref = reference(variant)
    mapping = modelzoo.name_map(model, list(shapes))
    assert sorted(mapping.values()) == sorted(ref)  # every name, none twice, nothing else
    assert {mapping[n]: s for n, s in shapes.items()} == ref  # and every shape


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_names_translate_both_ways_without_loss(variant):
    model, shapes = ours(variant)
    ref = reference(variant)
    # A ModelZoo training checkpoint: weights plus what its optimizer and callback save.
    saved = {n: np.full(s, i, np.float32) for i, (n, s) in enumerate(ref.items())}
    extra = {f"moments.{n}": np.zeros(1, np.float32) for n in list(ref)[:3]}
    extra.update(learning_rate=np.zeros(1, np.float32), global_step=np.zeros(1, np.int32))
    named, ignored = modelzoo.from_modelzoo({**saved, **extra}, model, list(shapes), "x.ckpt")
    assert sorted(ignored) == sorted(extra)
    assert list(named) == list(shapes)
    back = modelzoo.to_modelzoo(named, model)
    assert list(back) == list(saved) and all(back[n] is saved[n] for n in saved)  # the ModelZoo's order too


def test_a_map_that_leaves_a_parameter_unmatched_is_refused():
    _, shapes = ours("googlenet_cifar10")
    with pytest.raises(CheckpointMismatch, match="leaves parameter 'features.extra.weight' unmatched"):
        modelzoo.name_map("googlenet", [*shapes, "features.extra.weight"])
    with pytest.raises(CheckpointMismatch, match="has no ModelZoo counterpart"):
        modelzoo.name_map("resnet50", list(shapes))
