"""Batch-1 inference of an exported MindIR over a validation set, as the recipes' Ascend 310 flow.

``inputs`` lists the images (a converted dataset, a class-folder tree, or a flat
folder with a label file), ``preprocess`` applies the model's eval transforms to
one image, ``runtime`` picks the engine (MindSpore Lite's Ascend backend or
MindSpore's own MindIR runtime on CPU), ``loop`` runs and times one image at a
time and ``report`` writes ``acc.log``, ``predictions.csv`` and ``latency.json``.
"""

ACC_LOG, PREDICTIONS_CSV, LATENCY_JSON, BAD_IMAGES = "acc.log", "predictions.csv", "latency.json", "bad_images.txt"
