"""Bundled datasets for demos and tests (no downloads), and how the digits train.

:data:`DIGITS_TRAINING` is the one place that says how the bundled digits are trained on a CPU:
`make demo` (``mindzoo pipeline run-local``'s defaults), the pipeline and step tests use it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DigitsTraining:
    """GoogLeNet's CIFAR-10 recipe on the digits, cut to CPU size (about 80 s on two cores).

    16-px inputs and batch 16; the recipe's step-fraction schedule, momentum, weight decay and loss.
    The learning rate is lower than the recipe's 0.1 at batch 128 scaled linearly (0.0125): on 1,438
    training images that rate left top-1 at 0.81-0.94 depending on the seed, 0.003 gave 0.95-0.97 over
    five seeds. Digits are centred glyphs that are not mirror-symmetric: no horizontal flip; CIFAR's
    4-px pad-crop cost 15-30 points of top-1 here, so it is off too.
    """

    recipe: str = "googlenet_cifar10"
    input_size: int = 16
    epochs: int = 12
    batch_size: int = 16
    base_lr: float = 0.003
    data: tuple[str, ...] = ("data.train.hflip=0", "data.train.padding=0")

    def overrides(self, *, epochs: bool = True) -> tuple[str, ...]:
        """``--set`` items; without ``epochs`` for short runs that set their own."""
        head = (f"epochs={self.epochs}",) if epochs else ()
        return (*head, f"batch_size={self.batch_size}", f"schedule.base_lr={self.base_lr}", *self.data)

    def argv(self, *, epochs: bool = True) -> tuple[str, ...]:
        """The ``mindzoo train`` flags."""
        return ("--recipe", self.recipe, "--input-size", str(self.input_size),
                "--set", ",".join(self.overrides(epochs=epochs)))


DIGITS_TRAINING = DigitsTraining()
