"""The batch-1 loop: preprocess one image, run it, keep its top-5; only the model call is timed as latency.

Images are read and preprocessed a chunk at a time and then run back to back, one call each, with
the scoring after the chunk: a CPU runtime's worker threads go to sleep while Python works between
calls, and waking them (with cold caches) added 0.5-1 ms to every 6-ms call when decoding and calls
alternated. The
recipes' 310 flow likewise preprocesses the whole set to .bin files before it times inference.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from mindzoo.errors import DataError
from mindzoo.infer.inputs import Images
from mindzoo.infer.preprocess import BadImage, Preprocessor
from mindzoo.infer.report import Result

CHUNK = 32  # images preprocessed ahead of their model calls (~19 MB of 224-px float inputs)


def run(images: Images, prep: Preprocessor, runtime: Any, *, warmup: int = 3, max_images: int = 0,
        progress: Callable[[int, int], None] | None = None) -> Result:
    result = Result(images.classes)
    total = min(images.count, max_images) if max_images else images.count
    for _ in range(warmup):
        runtime.predict(np.zeros(prep.shape, np.float32))
    clock = time.perf_counter
    started = clock()
    done = 0
    for chunk in _chunks(itertools.islice(images.samples(), total), prep, result):
        ran = []
        for file, label, x, prep_ms in chunk:  # nothing but the calls here, for the reason above
            t0 = clock()
            logits = runtime.predict(x)
            ran.append((file, label, prep_ms, (clock() - t0) * 1e3, logits))
        for file, label, prep_ms, model_ms, logits in ran:
            if logits.size <= label or label < 0:
                raise DataError(f"{file} has label {label} but the model outputs {logits.size} classes")
            result.preprocess_ms.append(prep_ms)
            result.model_ms.append(model_ms)
            result.add(file, label, logits)
            done += 1
            if progress and done % 500 == 0:
                progress(done, total)
    result.wall_s = clock() - started
    return result


def _chunks(samples: Iterator[tuple[str, int, bytes]], prep: Preprocessor,
            result: Result) -> Iterator[list[tuple[str, int, np.ndarray, float]]]:
    """Lists of up to CHUNK preprocessed images with their preprocessing time; bad images go to ``result.bad``."""
    clock = time.perf_counter
    while batch := list(itertools.islice(samples, CHUNK)):
        ready = []
        for file, label, data in batch:
            t0 = clock()
            try:
                x = prep(data)
            except BadImage as err:
                result.bad.append((file, str(err)))
                continue
            ready.append((file, label, x, (clock() - t0) * 1e3))
        yield ready
