"""Heads: small models that read another model's output (an embedding) instead of the image.

A head's manifest says ``input: {from: efficientnet-lite3.embedding}``: the scorer runs the
backbone once per frame, keeps its other ONNX outputs (:attr:`Result.features`), and feeds the
named one to every head that reads it. So ten custom categories (``framewatch model train``)
cost one backbone inference plus ten (N, 1280) x (1280, 2) products, not ten backbones. A head
runs exactly when its backbone runs (the backbone's cadence decides, scoring/cadence.py).
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import onnxruntime as ort

from scoring import registry
from scoring.errors import ModelError
from scoring.model import Model, Result


class Head(Model):
    """A model over features: :meth:`run_features` takes the backbone's output rows."""

    def __init__(self, manifest: registry.Manifest, providers: list[Any], **session: Any) -> None:
        super().__init__(manifest, providers, **session)
        self.source = manifest.head_of
        assert self.source is not None
        self.width = self.session.get_inputs()[0].shape[1]

    def session_options(self) -> ort.SessionOptions:
        """One thread that sleeps between runs: a head is a (N, 1280) x (1280, 2) product
        (0.01 ms a frame, benchmarks/heads.py); a spinning thread pool per head would only
        compete with the backbone for the cores."""
        opts = super().session_options()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
        return opts

    def run(self, images: list[np.ndarray]) -> list[Result]:
        raise ModelError(f"model {self.ref} is a head: it scores {self.source.from_}, not images")

    def run_features(self, rows: np.ndarray) -> list[Result]:
        """One Result per row of the backbone's output."""
        if not len(rows):
            return []
        out = self.infer(np.asarray(rows, np.float32))
        return self.decode(out, [(1.0, 1.0)] * len(rows))


def check_heads(models: list[Model]) -> None:
    """Every head's backbone is in the model set and has the output, of the width, it reads;
    else start-up stops saying what to add."""
    by_name = {m.manifest.name: m for m in models if not isinstance(m, Head)}
    for h in (m for m in models if isinstance(m, Head)):
        src = h.source
        assert src is not None
        base = by_name.get(src.model)
        if base is None:
            raise ModelError(
                f"model {h.ref}: field 'input.from': it reads {src.from_}, but model "
                f"'{src.model}' is not in the model set: add it to scoring.models"
            )
        outs = {o.name: o.shape for o in base.session.get_outputs()}
        if src.output not in outs or src.output == base.label_output:
            raise ModelError(
                f"model {h.ref}: field 'input.from': {base.ref} has no feature output "
                f"{src.output!r}; its outputs: {sorted(set(outs) - {base.label_output})}"
            )
        width = outs[src.output][-1]
        if isinstance(width, int) and isinstance(h.width, int) and width != h.width:
            raise ModelError(
                f"model {h.ref}: field 'input.from': {src.from_} has {width} values, the head "
                f"takes {h.width}: retrain it on this backbone (framewatch model train)"
            )


def heads_by_source(models: list[Model]) -> dict[str, list[Head]]:
    """Backbone name -> the heads that read it (by manifest, so a wrapped head counts too:
    the shadow process guards each model in a proxy)."""
    out: dict[str, list[Head]] = {}
    for m in models:
        src = m.manifest.head_of
        if src is not None:
            out.setdefault(src.model, []).append(cast(Head, m))
    return out
