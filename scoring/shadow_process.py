"""The shadow models' own process: ``python -m scoring.shadow_process NICE``.

The shadow set runs apart from the scorer so that it shares neither the scorer's GIL nor, when
live scoring wants it, the CPU: the process lowers its own priority (niceness ``NICE``) before
loading anything, so every thread it starts (onnxruntime's pools) inherits it. Requests and
answers are pickled over its stdin/stdout (its own stdout goes to stderr, so a library that
prints cannot break the stream). It is started with the scorer's interpreter and environment
and imports nothing of the scorer's main module (multiprocessing's spawn would re-run it).
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, BinaryIO, cast

import numpy as np

from framewatch.settings.scoring import ScoringSettings
from scoring.errors import ModelError
from scoring.model import Model, decode_image, load_models
from scoring.scorer import Scored, Scorer

log = logging.getLogger(__name__)


class ShadowModelError(ModelError):
    """A shadow model threw at inference (the message names it)."""

    def __init__(self, ref: str, message: str) -> None:
        super().__init__(message)
        self.ref = ref

    def __reduce__(self) -> tuple[Any, ...]:  # it crosses from the shadow process
        return (type(self), (self.ref, str(self)))


class ShadowProcessDied(ModelError):
    """The shadow process is gone (a model crashed it, or the kernel killed it for memory)."""


class ShadowProcess:
    """The scorer's handle on the shadow process; ``call`` blocks (run it off the event loop)."""

    def __init__(self, nice: int) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-P", "-m", "scoring.shadow_process", str(nice)],  # -P: see cli_argv
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        )  # fmt: skip
        self._lock = threading.Lock()

    @property
    def pid(self) -> int:
        return self._proc.pid

    def call(self, fn: str, *args: Any) -> Any:
        """Run ``fn`` (load | score) there; its exception is raised here."""
        stdin, stdout = cast(BinaryIO, self._proc.stdin), cast(BinaryIO, self._proc.stdout)
        with self._lock:
            try:
                pickle.dump((fn, args), stdin, protocol=pickle.HIGHEST_PROTOCOL)
                stdin.flush()
                ok, value = pickle.load(stdout)
            except (EOFError, OSError, pickle.UnpicklingError) as e:
                raise ShadowProcessDied(
                    f"the shadow models' process ended (exit code {self._proc.poll()}): {e!r}"
                ) from None
        if not ok:
            raise value
        return value

    def close(self) -> None:
        if self._proc.stdin:
            # it exits at the end of its input; a killed one leaves a pipe nothing can flush to
            with contextlib.suppress(BrokenPipeError):
                self._proc.stdin.close()
        try:
            self._proc.wait(5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


class _Guarded:
    """A loaded model whose failures name it (the scorer runs several models a batch)."""

    def __init__(self, model: Model) -> None:
        self._model = model
        self.ref = model.ref

    def run(self, images: list[np.ndarray]) -> Any:
        try:
            return self._model.run(images)
        except Exception as e:
            raise ShadowModelError(self.ref, f"shadow model {self.ref} failed: {e!r}") from e

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)


# -- in the shadow process ---------------------------------------------------------------------

_scorer: Scorer | None = None


def _load(names: list[str], dirs: list[Path], providers: list[str], sc: ScoringSettings) -> str:
    """Load the shadow set; "model set on provider", or the ModelError that names the model."""
    global _scorer
    models = load_models(
        names,
        dirs,
        providers,
        intra_op_threads=sc.intra_op_threads,
        spin_wait=sc.spin_wait,
        conv_search=sc.cudnn_conv_algo_search,
    )
    if not models:  # every one optional and missing
        raise ModelError(f"none of the models {names} is installed")
    _scorer = Scorer(cast(list[Model], [_Guarded(m) for m in models]), sc)
    _scorer.warm_up()  # on a GPU each model's one batch shape, before the first shadow frame
    return f"{_scorer.model_set} on {models[0].provider}"


def _score(
    inputs: list[np.ndarray | bytes], qualities: list[int | None], seqs: list[int], max_px: int
) -> list[Scored]:
    """Score a batch: decoded images, or JPEGs the live path did not decode (cached scores)."""
    if _scorer is None:
        raise ModelError("the shadow set is not loaded")
    imgs = [x if isinstance(x, np.ndarray) else decode_image(x, max_px) for x in inputs]
    return _scorer.score(imgs, qualities, seqs)


def _serve(nice: int) -> None:
    try:
        os.setpriority(os.PRIO_PROCESS, 0, nice)  # before any thread is started
    except OSError as e:  # a sandbox that refuses: it runs at normal priority
        log.warning("shadow process priority not lowered (%s)", e)
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything printed goes to stderr, never into the answers
    inp = sys.stdin.buffer
    fns = {"load": _load, "score": _score}
    while True:
        try:
            fn, args = pickle.load(inp)
        except EOFError:
            return  # the scorer closed our input
        try:
            answer: tuple[bool, Any] = (True, fns[fn](*args))
        except ModelError as e:
            answer = (False, e)
        except Exception as e:  # any other type may not unpickle there: say it in words
            answer = (False, ModelError(f"shadow scoring failed: {type(e).__name__}: {e}"))
        pickle.dump(answer, out, protocol=pickle.HIGHEST_PROTOCOL)
        out.flush()


if __name__ == "__main__":
    from scoring import shadow_process  # classes by their importable name, so answers unpickle

    logging.basicConfig(level=logging.WARNING, format="shadow models: %(levelname)s %(message)s")
    shadow_process._serve(int(sys.argv[1]))
