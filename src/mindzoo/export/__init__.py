"""Export: a checkpoint → MindIR (always), ONNX (where every op exports), AIR (Ascend only).

``source`` rebuilds the checkpointed network from its recorded identity,
``formats`` writes the files, ``parity`` loads the MindIR back and compares its
logits with the network's, ``mindir`` reads a MindIR's input signature (also
used by inference), ``card`` writes the model card and ``registry`` registers
the result as a new version in the MLflow Model Registry. MindSpore and MLflow
are imported by the functions that need them.
"""

PREPROCESSING_JSON = "preprocessing.json"  # the data config the MindIR expects (read by `mindzoo infer`)
EXPORT_JSON = "export.json"  # formats, sizes, sha256, parity, lineage
LABELS_JSON = "labels.json"  # {class name: index}
CARD = "README.md"
