"""The batch-1 loop: preprocess one image, run it, keep its top-5; only the model call is timed as latency."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from mindzoo.errors import DataError
from mindzoo.infer.inputs import Images
from mindzoo.infer.preprocess import BadImage, Preprocessor
from mindzoo.infer.report import Result


def run(images: Images, prep: Preprocessor, runtime: Any, *, warmup: int = 3, max_images: int = 0,
        progress: Callable[[int, int], None] | None = None) -> Result:
    result = Result(images.classes)
    total = min(images.count, max_images) if max_images else images.count
    for _ in range(warmup):
        runtime.predict(np.zeros(prep.shape, np.float32))
    clock = time.perf_counter
    started = clock()
    for i, (file, label, data) in enumerate(images.samples()):
        if max_images and i >= max_images:
            break
        t0 = clock()
        try:
            x = prep(data)
        except BadImage as err:
            result.bad.append((file, str(err)))
            continue
        t1 = clock()
        logits = runtime.predict(x)
        t2 = clock()
        if logits.size <= label or label < 0:
            raise DataError(f"{file} has label {label} but the model outputs {logits.size} classes")
        result.preprocess_ms.append((t1 - t0) * 1e3)
        result.model_ms.append((t2 - t1) * 1e3)
        result.add(file, label, logits)
        if progress and (i + 1) % 500 == 0:
            progress(i + 1, total)
    result.wall_s = clock() - started
    return result
