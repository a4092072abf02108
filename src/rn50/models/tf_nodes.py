"""Input and output nodes of a TensorFlow GraphDef, found by name or by graph shape (pure)."""

from __future__ import annotations

from ..errors import ModelError

KNOWN_OUTPUTS = ("predict", "softmax_tensor", "probs", "logits")  # Model Zoo, MLPerf, others


def pick_nodes(graph_def, input_node: str | None, output_node: str | None, path: str):
    """(input, output) node names of an image classifier GraphDef; explicit names win.

    Known names first (Model Zoo's input -> predict, MLPerf's input_tensor ->
    softmax_tensor), else the single placeholder and the last softmax (or the
    single leaf). Raises ModelError asking for --input-node/--output-node.
    """
    names = {n.name: n for n in graph_def.node}
    if input_node is None:
        placeholders = [n.name for n in graph_def.node if n.op == "Placeholder"]
        if len(placeholders) != 1:
            raise ModelError(f"model {path} has {len(placeholders)} inputs "
                             f"({', '.join(placeholders[:5]) or 'none'}); name one with --input-node")
        input_node = placeholders[0]
    if output_node is None:
        output_node = next((n for n in KNOWN_OUTPUTS if n in names), None)
        if output_node is None:
            consumed = {i.split(":")[0].lstrip("^") for n in graph_def.node for i in n.input}
            softmax = [n.name for n in graph_def.node if n.op == "Softmax"]
            leaves = [n.name for n in graph_def.node if n.name not in consumed
                      and n.op not in ("Const", "NoOp", "Placeholder")]
            candidates = softmax[-1:] or leaves
            if len(candidates) != 1:
                raise ModelError(f"model {path}: cannot tell the output node "
                                 f"(candidates: {', '.join(candidates[:5])}); name it with --output-node")
            output_node = candidates[0]
    for flag, name in (("--input-node", input_node), ("--output-node", output_node)):
        if name not in names:
            raise ModelError(f"model {path} has no node named {name!r} ({flag})")
    return input_node, output_node
