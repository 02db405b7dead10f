"""Training progress: a tqdm bar on a terminal, else one log line every ``log_every`` steps."""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["Progress"]


class Progress:
    """A tqdm bar on a terminal; otherwise one line every ``log_every`` steps."""

    def __init__(self, trainer: Any, epoch: int, done: int) -> None:
        self.t, self.epoch, self.done = trainer, epoch, done
        self.bar = None
        if sys.stderr.isatty() and trainer.rank == 0:
            from tqdm import tqdm

            self.bar = tqdm(total=trainer.spe, initial=done, desc=f"epoch {epoch + 1}/{trainer.recipe.epochs}",
                            leave=False, unit="step")

    def update(self, loss: float, lr: float) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.3g}", refresh=False)
        elif self.done % self.t.cfg.log_every == 0 or self.done == self.t.spe:
            self.t.say(f"epoch {self.epoch + 1}/{self.t.recipe.epochs} step {self.done}/{self.t.spe} "
                       f"(step {self.t.state.step}/{self.t.total}) loss {loss:.4f} lr {lr:.4g}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
