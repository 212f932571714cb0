"""What a model path looks like: the entry-point pattern and the file suffixes each loader reads."""

from __future__ import annotations

import re

#: ``package.module:function`` (dotted module path, a colon, a Python name).
ENTRY_POINT = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
#: file suffix → loader module.
SUFFIXES = {".pt2": "export", ".pt": "torchscript", ".ts": "torchscript", ".jit": "torchscript", ".onnx": "onnx"}

__all__ = ["ENTRY_POINT", "SUFFIXES"]
