"""Every bundled recipe's LR schedule against the formulas of modelzoo_facts.md, written out here again.

The reference functions below are independent of ``mindzoo.engine.schedules``: each
follows the facts sheet's wording for its recipe (§1.3, §2.3, §3.3, §4.3, §5.3) and is
checked at several steps (first, warmup edge, milestones, middle, last).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from mindzoo.engine.schedules import base_lr, lr_array, world_schedule
from mindzoo.recipes import list_recipes, load_recipe

SPE = 7  # steps per epoch; small, and not a divisor of anything in the recipes


def sppnet_family(base, warmup_epochs, t_max=150, eta_min=0.0):
    """§1.3: lr = base*(i+1)/W for i < W; then eta_min + (base-eta_min)(1+cos(pi*e/150))/2, e = floor(i/spe)."""
    def lr(i, total):
        warm = warmup_epochs * SPE
        if i < warm:
            return base * (i + 1) / warm
        e = i // SPE
        return eta_min + (base - eta_min) * (1 + math.cos(math.pi * e / t_max)) / 2
    return lr


def googlenet_imagenet(i, total):
    """§3.3: 0.1, times 0.3 at each of epochs 70, 140, 210, 280."""
    e = i // SPE
    return 0.1 * 0.3 ** sum(e >= m for m in (70, 140, 210, 280))


def googlenet_cifar10(i, total):
    """§3.3: lr x1 for steps < 0.3T, x0.1 until 0.6T, x0.01 until 0.8T, x0.001 after."""
    if i < 0.3 * total:
        return 0.1
    if i < 0.6 * total:
        return 0.01
    if i < 0.8 * total:
        return 0.001
    return 0.0001


def genet_linear(i, total):
    """§4.3 linear: lr_init - (lr_init - lr_end) * i / T with 0.8 -> 0."""
    return 0.8 - 0.8 * i / total


def genet_cosine(i, total):
    """§4.3 cosine: lr_init * [((T-i)/T) * 0.5 * (1 + cos(2*pi*0.47*i/T)) + 1e-5]."""
    return 0.8 * (((total - i) / total) * 0.5 * (1 + math.cos(2 * math.pi * 0.47 * i / total)) + 1e-5)


def inception_v4(i, total):
    """§5.3: i < W: lr_init + (lr_max-lr_init)(i+1)/W; else lr_end + (lr_max-lr_end)*0.5*(1+cos(pi(i-W)/(T-W)))."""
    warm = 1 * SPE
    if i < warm:
        return 4e-5 + (0.4 - 4e-5) * (i + 1) / warm
    return 4e-6 + (0.4 - 4e-6) * 0.5 * (1 + math.cos(math.pi * (i - warm) / (total - warm)))


EXPECTED = {
    "zfnet": ("cosine_per_epoch", sppnet_family(0.035, 5)),
    "sppnet": ("cosine_per_epoch", sppnet_family(0.01, 0)),
    "sppnet_mult": ("cosine_per_epoch", sppnet_family(0.01, 0)),  # §1.3: the README's warm-up, 0 epochs
    "resnet50_bam": ("cosine_per_epoch", sppnet_family(0.02, 0)),
    "resnet50": ("cosine_per_epoch", sppnet_family(0.02, 0)),
    "googlenet_imagenet": ("multistep", googlenet_imagenet),
    "googlenet_cifar10": ("step_fraction", googlenet_cifar10),
    "genet_res50_theta_plus": ("linear", genet_linear),
    "genet_res50_theta": ("linear", genet_linear),
    "genet_res50_theta_minus": ("genet_cosine", genet_cosine),
    "inception_v4": ("warmup_cosine", inception_v4),
}


def _probe_steps(total: int) -> list[int]:
    epochs = total // SPE
    marks = {0, 1, SPE - 1, SPE, 2 * SPE, 5 * SPE - 1, 5 * SPE, total // 2, total - 1}
    for m in (70, 140, 150, 151, 210, 280):  # milestones, and SPPNet's cosine period edge
        if m < epochs:
            marks |= {m * SPE - 1, m * SPE}
    for f in (0.3, 0.6, 0.8):
        marks |= {math.ceil(f * total) - 1, math.ceil(f * total)}
    return sorted(s for s in marks if 0 <= s < total)


def test_every_bundled_recipe_has_a_reference():
    assert sorted(EXPECTED) == list_recipes()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_recipe_schedule_matches_the_facts_sheet(name):
    recipe = load_recipe(name)
    kind, reference = EXPECTED[name]
    assert recipe.schedule.kind == kind
    lr = lr_array(recipe.schedule, epochs=recipe.epochs, steps_per_epoch=SPE)
    total = recipe.epochs * SPE
    assert lr.shape == (total,) and lr.dtype == np.float32
    for step in _probe_steps(total):
        assert lr[step] == pytest.approx(reference(step, total), rel=1e-5, abs=1e-9), (name, step)


def test_sppnet_cosine_rises_again_after_t_max():
    """§1.3: 160 epochs with T = 150: past pi the rate climbs in epochs 151-159."""
    recipe = load_recipe("sppnet")
    lr = lr_array(recipe.schedule, epochs=recipe.epochs, steps_per_epoch=SPE)
    at = lambda epoch: lr[epoch * SPE]  # noqa: E731
    assert at(150) == pytest.approx(0.0, abs=1e-9)
    assert at(151) > at(150) and at(159) > at(151)
    assert lr[150 * SPE] == lr[151 * SPE - 1]  # constant within an epoch


def test_zfnet_warmup_starts_near_zero_and_is_not_shifted():
    recipe = load_recipe("zfnet")
    lr = lr_array(recipe.schedule, epochs=recipe.epochs, steps_per_epoch=SPE)
    assert lr[0] == pytest.approx(0.035 / (5 * SPE))
    assert lr[5 * SPE - 1] == pytest.approx(0.035)
    # After warmup the cosine uses the absolute epoch (5), not epochs since warmup.
    assert lr[5 * SPE] == pytest.approx(0.035 * (1 + math.cos(math.pi * 5 / 150)) / 2)


def test_overrides_change_the_schedule():
    recipe = load_recipe("googlenet_imagenet", {"schedule.milestones": "2,4", "schedule.gamma": "0.5", "epochs": "6"})
    lr = lr_array(recipe.schedule, epochs=recipe.epochs, steps_per_epoch=2)
    assert list(lr) == pytest.approx([0.1] * 4 + [0.05] * 4 + [0.025] * 4)
    assert base_lr(recipe.schedule) == 0.1


def test_bad_lengths_are_refused():
    with pytest.raises(ValueError):
        lr_array(load_recipe("zfnet").schedule, epochs=0, steps_per_epoch=3)


# The rate each recipe trains with on 1 and on 8 devices, as its ModelZoo scripts run it (facts §1.6, §2.3/§2.5,
# §3.6, §4.3, §5.6): only ResNet50-BAM's 8-device script passes another rate (--lr_init 0.18).
PEAK_BY_WORLD = {
    "zfnet": (0.035, 0.035), "sppnet": (0.01, 0.01), "sppnet_mult": (0.01, 0.01),
    "resnet50_bam": (0.02, 0.18), "resnet50": (0.02, 0.18),
    "googlenet_imagenet": (0.1, 0.1), "googlenet_cifar10": (0.1, 0.1),
    "genet_res50_theta_plus": (0.8, 0.8), "genet_res50_theta": (0.8, 0.8), "genet_res50_theta_minus": (0.8, 0.8),
    "inception_v4": (0.4, 0.4),
}


@pytest.mark.parametrize("name", sorted(PEAK_BY_WORLD))
def test_world_size_rule_gives_the_published_rate(name):
    recipe = load_recipe(name)
    for world, peak in zip((1, 8), PEAK_BY_WORLD[name]):
        schedule, line = world_schedule(recipe, world)
        assert base_lr(schedule) == pytest.approx(peak) and line.startswith(f"lr {peak:g} on world size {world} (")
        assert f"rule {recipe.lr_scaling.rule}" in line


def test_resnet50_bam_on_8_devices_runs_the_recipe_schedule_at_0_18():
    schedule, _ = world_schedule(load_recipe("resnet50_bam"), 8)
    lr = lr_array(schedule, epochs=160, steps_per_epoch=SPE)
    reference = sppnet_family(0.18, 0)
    assert [float(lr[i]) for i in _probe_steps(160 * SPE)] == pytest.approx(
        [reference(i, 160 * SPE) for i in _probe_steps(160 * SPE)], rel=1e-5, abs=1e-9)


@pytest.mark.parametrize("overrides, world, peak, why", [
    ({}, 2, 0.04, "no published rate for world size 2: x 2/1"),  # unpublished: linear from 1 device
    ({"lr_scaling.rule": "linear", "lr_scaling.published": ""}, 8, 0.16, "rule linear: x 8/1"),
    ({"lr_scaling.rule": "fixed", "lr_scaling.published": ""}, 8, 0.02, "rule fixed"),
    ({"schedule.base_lr": "0.01"}, 8, 0.09, "rule published: 0.18 on world size 8 vs 0.02 on 1"),
])
def test_world_size_rule_overrides(overrides, world, peak, why):
    schedule, line = world_schedule(load_recipe("resnet50_bam", overrides), world)
    assert base_lr(schedule) == pytest.approx(peak) and why in line
    assert schedule.eta_min == 0.0 and schedule.t_max == 150  # only rates scale


class FakeBackend:
    """Fake (pure logic): what Trainer.prepare asks of a framework backend, recording the LR array it gets."""

    def steps_per_epoch(self, *args):
        return SPE

    def seed(self, seed):
        pass

    def build_model(self, *args, **kwargs):
        pass

    def setup_training(self, recipe, lr, loss_scale):
        self.lr = lr


@pytest.mark.parametrize("name, world", [("resnet50_bam", 8), ("googlenet_cifar10", 2)])
def test_trainer_says_the_lr_it_uses_before_training(name, world, tmp_path):
    from types import SimpleNamespace

    from mindzoo.archs import get_data_config
    from mindzoo.engine.plan import TrainPlan
    from mindzoo.engine.trainer import Trainer

    recipe = load_recipe(name)
    plan = TrainPlan(recipe.model, recipe, name, {}, get_data_config(recipe.data_config), 224, (224,), "",
                     tmp_path, {})
    said, backend = [], FakeBackend()
    trainer = Trainer(backend, plan, SimpleNamespace(steps_per_epoch=0), rank=0, world_size=world, store=None,
                      tracker=None, say=said.append)
    try:
        trainer.prepare()
    finally:
        trainer.cleanup()  # its work folder (in /tmp): every run of this test left two behind
    expected, line = world_schedule(recipe, world)
    assert said == [line] and backend.lr[0] == pytest.approx(base_lr(expected))
    assert line.startswith(f"lr {PEAK_BY_WORLD[name][world > 1]:g} on world size {world} (")
