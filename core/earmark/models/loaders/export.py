"""A ``torch.export`` program (``.pt2`` from ``torch.export.save``) with its card → EarmarkModel.

The recommended format for new exports: an ATen graph with its weights, differentiable, no Python code.
``torch.export.load`` may unpickle some archive members (pickled tensors, custom objects, sample inputs),
so the archive is checked first: custom and opaque objects are refused, and every pickled member must load
with ``torch.load(weights_only=True)`` (then reading it costs nothing more than a plain tensor). Export with
a dynamic batch axis (``dynamic_shapes={"x": {0: Dim("batch")}}``); ``input_length: "variable"`` needs a
dynamic time axis too. The card is as for :mod:`.torchscript` (``embedding_output``: an output index).
"""

from __future__ import annotations

import logging
import traceback
from contextlib import contextmanager

import io
import json
import zipfile
from pathlib import Path

import torch

from ...errors import ModelError
from ..base import EarmarkModel
from ..adapt import adapt_torch, needed
from .common import read_card
from .safety import check_exported_program, check_zip
from .torchscript import OutputSelect


def check_archive(path: Path) -> None:
    """Refuse a ``.pt2`` archive whose loading could run pickled code.

    Raises:
        ModelError: not a zip archive, a custom/opaque object, or a pickled member that is not plain tensors.
    """
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        raise ModelError(f"{path.name} is not a torch.export archive; save the program with torch.export.save.") from None
    with archive:
        names = archive.namelist()
        pickled: list[str] = [n for n in names if n.endswith(".pt")]
        for name in names:
            if name.endswith(("_weights_config.json", "_constants_config.json")):
                try:
                    config = json.loads(archive.read(name)).get("config", {})
                except (json.JSONDecodeError, AttributeError):
                    raise ModelError(f"{path.name} has an unreadable {name.rsplit('/', 1)[-1]}.") from None
                folder = name.rsplit("/", 1)[0]
                for fqn, meta in config.items():
                    file = str(meta.get("path_name", ""))
                    if file.startswith(("custom_obj", "opaque_obj")):
                        raise ModelError(f"{path.name} holds a Python object ('{fqn}') that only unpickling could "
                                         "read; export a program whose constants are tensors.")
                    if meta.get("use_pickle"):
                        pickled.append(f"{folder}/{file}")
        for name in pickled:
            try:
                torch.load(io.BytesIO(archive.read(name)), map_location="cpu", weights_only=True)
            except Exception:
                raise ModelError(f"{path.name} holds a member ({name.rsplit('/', 1)[-1]}) that is not plain tensors; "
                                 "Earmark never unpickles other objects. Re-export it with torch.export.save.") from None


@contextmanager
def _quiet_export_log():
    """Keep ``torch.export``'s log records off stderr while loading; yield the last line of each error in them."""
    said: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            text = record.getMessage() if record.exc_info is None else \
                "".join(traceback.format_exception(*record.exc_info))
            last = [line for line in text.strip().splitlines() if "Error:" in line]
            if last:
                said.append(last[-1].split("Error:", 1)[1].strip())

    logger = logging.getLogger("torch.export")
    handlers, propagate = logger.handlers[:], logger.propagate
    logger.handlers[:] = [Keep()]
    logger.propagate = False
    try:
        yield said
    finally:
        logger.handlers[:] = handlers
        logger.propagate = propagate


def load(path: str | Path, device: torch.device | None = None, *, window: int | None = None,
         card: dict | None = None, source: str | None = None) -> EarmarkModel:
    """Load a ``.pt2`` program and its card.

    Raises:
        ModelError: no card, an archive that would need unpickling, or one torch.export cannot read.
    """
    path = Path(path)
    card, raw = read_card(path, fmt="torch.export", gradients=True, given=card, source=source)
    check_zip(path, "export")
    check_archive(path)
    with _quiet_export_log() as said:   # torch logs a traceback on stderr before it raises
        try:
            program = torch.export.load(str(path))
        except Exception as exc:
            why = (said[-1] if said else str(exc).strip().splitlines()[0]).split(". ")[0]
            raise ModelError(f"torch.export could not read {path.name} ({why[:200]}); save it with "
                             "torch.export.save.") from None
    check_exported_program(program, path.name)   # before the module is built or run
    try:
        network = program.module()
    except Exception as exc:
        raise ModelError(f"torch.export could not read {path.name} "
                         f"({str(exc).strip().splitlines()[0][:200]}); save it with torch.export.save.") from None
    if device is not None:
        network = network.to(device)
    if window is not None:
        card = card.with_window(window)
    if needed(raw):   # the program's inputs after the waveform, by name, in order
        inputs = [n.name for n in network.graph.nodes if n.op == "placeholder"][1:]
        return adapt_torch(network, card, raw, source=path.name, positional=inputs)
    emb = raw.get("embedding_output")
    if isinstance(emb, str):
        raise ModelError(f"'embedding_output' in the card of {path.name} must be an output index for a torch.export "
                         "program (return (logits, embedding) from forward).")
    return OutputSelect(network, card, embedding=emb, logits_index=int(raw.get("logits_output", 0)))
