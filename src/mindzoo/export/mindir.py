"""A MindIR's input and output signature, read from its protobuf without building the graph."""

from __future__ import annotations

from pathlib import Path

from mindzoo.errors import MindzooError

_DTYPES = {1: "float32", 10: "float16", 3: "int32", 6: "int64", 2: "uint8"}  # mind_ir TensorProto.DataType


def signature(path: Path) -> dict[str, list[dict]]:
    """``{"inputs": [{"name", "shape", "dtype"}], "outputs": [...]}`` of a MindIR file."""
    from mindspore.train import mind_ir_pb2

    model = mind_ir_pb2.ModelProto()
    try:
        model.ParseFromString(Path(path).read_bytes())
    except Exception as err:  # noqa: BLE001 - protobuf raises DecodeError and friends
        raise MindzooError(f"{path} is not a MindIR file ({type(err).__name__})") from None
    if not model.graph.input:
        raise MindzooError(f"{path} is not a MindIR file (no graph inputs)")

    def entries(values: object) -> list[dict]:
        return [{"name": v.name, "shape": [int(d) for d in v.tensor[0].dims],
                 "dtype": _DTYPES.get(v.tensor[0].data_type, str(v.tensor[0].data_type))}
                for v in values if v.tensor]

    return {"inputs": entries(model.graph.input), "outputs": entries(model.graph.output)}


def input_shape(path: Path) -> tuple[int, ...]:
    """The shape of the (single) image input."""
    inputs = signature(path)["inputs"]
    if len(inputs) != 1:
        raise MindzooError(f"{path} has {len(inputs)} inputs; an image classifier MindIR takes one")
    return tuple(inputs[0]["shape"])
