"""What the two GPU train-step benchmarks (``torch_gpu.py``, ``mindspore_gpu.py``) share, so both
engines are measured against one reference with the same options (a sibling helper, not a package)."""

from __future__ import annotations

import argparse

#: ResNet50-BAM's published figure: 128 images / 0.185 s per step on one V100 (the recipe's README).
RECIPE_IMG_PER_S = 692.0


def parser(description: str, warmup_help: str) -> argparse.ArgumentParser:
    """The options of a train-step measurement: the recipe's batch and input size, timed and warm-up steps."""
    parse = argparse.ArgumentParser(description=description)
    parse.add_argument("--batch-size", type=int, default=128)
    parse.add_argument("--input-size", type=int, default=224)
    parse.add_argument("--steps", type=int, default=60, help="timed steps")
    parse.add_argument("--warmup", type=int, default=15, help=warmup_help)
    return parse
