"""Every bundled recipe's LR schedule against the formulas of modelzoo_facts.md, written out here again.

The reference functions below are independent of ``mindzoo.engine.schedules``: each
follows the facts sheet's wording for its recipe (§1.3, §2.3, §3.3, §4.3, §5.3) and is
checked at several steps (first, warmup edge, milestones, middle, last).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from mindzoo.engine.schedules import base_lr, lr_array
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
    "sppnet_mult": ("cosine_per_epoch", sppnet_family(0.01, 2)),
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
