"""A SpeechBrain ``hyperparams.yaml`` read as data: limits first, tags checked after YAML decoding.

:func:`safe_hyperparams` parses the text with PyYAML's safe composer (no object is built), so a tag is seen
as YAML means it (``!%61pply:`` is ``!apply:``; ``%TAG`` handles and ``!<...>`` verbatim tags are
expanded), and then

* refuses a text over :data:`MAX_BYTES`, nesting deeper than :data:`MAX_DEPTH`, more than
  :data:`MAX_ALIASES` aliases, or a document whose expansion (aliases and ``!ref`` copies counted) would
  exceed :data:`MAX_EXPANDED` nodes or :data:`MAX_REF_CHARS` characters of references — an alias bomb is
  refused in milliseconds;
* accepts only the tags ``!ref``, ``!copy``, ``!tuple``, ``!PLACEHOLDER``, the plain YAML types and
  ``!new:`` of a class in :data:`ALLOWED_CLASSES` (exact names, not prefixes); ``!apply``, ``!name``,
  ``!module``, ``!include``, ``!applyref`` and ``!!python/...`` are refused however they are spelt;
* checks every tuple (hyperpyyaml reads ``( ... )`` with PyYAML's full loader) holds plain scalars only;
* returns the YAML *re-serialised from what was checked*, so the loader reads exactly that (no second
  parser can read the original text differently), without the keys Earmark never uses (``pretrainer``).
"""

from __future__ import annotations

import re

import yaml

from ...errors import ModelError

MAX_BYTES = 256 * 1024
MAX_DEPTH = 40
MAX_ALIASES = 64
MAX_EXPANDED = 50_000
MAX_REF_CHARS = 100_000

#: The classes an EncoderClassifier's inference YAML may build (exact names).
ALLOWED_CLASSES = frozenset({
    "speechbrain.lobes.features.Fbank", "speechbrain.lobes.features.MFCC",
    "speechbrain.processing.features.InputNormalization",
    "speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN", "speechbrain.lobes.models.ECAPA_TDNN.Classifier",
    "speechbrain.lobes.models.Xvector.Xvector", "speechbrain.lobes.models.Xvector.Classifier",
    "speechbrain.lobes.models.ResNet.ResNet", "speechbrain.lobes.models.ResNet.Classifier",
    "speechbrain.nnet.containers.Sequential", "speechbrain.nnet.linear.Linear",
    "speechbrain.nnet.activations.Softmax", "speechbrain.nnet.normalization.BatchNorm1d",
    "speechbrain.nnet.pooling.StatisticsPooling", "speechbrain.nnet.CNN.Conv1d",
    "speechbrain.dataio.encoder.CategoricalEncoder",
    "torch.nn.Linear", "torch.nn.Sequential", "torch.nn.ReLU", "torch.nn.LeakyReLU", "torch.nn.Dropout",
    "torch.nn.BatchNorm1d", "torch.nn.LayerNorm", "torch.nn.Conv1d", "torch.nn.Identity", "torch.nn.LogSoftmax",
    "torch.nn.Softmax", "torch.nn.ModuleList",
})
#: Tags that carry data only.
DATA_TAGS = frozenset({"!ref", "!copy", "!tuple", "!PLACEHOLDER"} | {
    f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "seq", "map")})
#: Top-level keys Earmark never reads (SpeechBrain's fetching and training helpers): dropped before building.
DROPPED_KEYS = ("pretrainer", "label_encoder")
_REF = re.compile(r"<([^<>]+)>")


def _refuse(source: str, why: str) -> ModelError:
    return ModelError(f"{source} is refused: {why}; Earmark builds only the listed speechbrain/torch classes "
                      "from an inference YAML (see docs/guide/security.md).")


def _limits(text: str, source: str) -> None:
    if len(text.encode("utf-8", "replace")) > MAX_BYTES:
        raise _refuse(source, f"it is larger than {MAX_BYTES // 1024} KB")
    depth = aliases = 0
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_DEPTH:
                    raise _refuse(source, f"it nests deeper than {MAX_DEPTH} levels")
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
            elif isinstance(event, yaml.AliasEvent):
                aliases += 1
                if aliases > MAX_ALIASES:
                    raise _refuse(source, f"it uses more than {MAX_ALIASES} aliases")
            elif isinstance(event, yaml.DocumentStartEvent) and getattr(event, "tags", None):
                pass   # %TAG handles are expanded by the parser; the tags are checked on the nodes
    except yaml.YAMLError as exc:
        raise ModelError(f"{source} is not readable YAML ({str(exc).splitlines()[0][:200]}).") from None


def _tag_problem(tag: str) -> str | None:
    if tag in DATA_TAGS:
        return None
    if tag.startswith("!new:"):
        name = tag[len("!new:"):]
        return None if name in ALLOWED_CLASSES else f"!new:{name[:80]} is not on the allow-list of classes"
    shown = tag if not tag.startswith("tag:yaml.org,2002:") else "!!" + tag[len("tag:yaml.org,2002:"):]
    return f"the tag {shown[:80]} runs code or reads files"


def _check_tuple(text: str, source: str) -> None:
    try:
        items = yaml.safe_load("[" + text[1:-1] + "]")
    except yaml.YAMLError:
        raise _refuse(source, f"the tuple {text[:40]} is not plain data") from None
    if "!" in text or not isinstance(items, list) or \
            not all(isinstance(v, (int, float, str, bool)) or v is None for v in items):
        raise _refuse(source, f"the tuple {text[:40]} holds more than plain numbers and words")


def safe_hyperparams(text: str, source: str) -> str:
    """Check ``text`` (a hyperparams.yaml) and return the YAML to build, re-serialised from the checked nodes.

    Raises:
        ModelError: one sentence naming the first problem.
    """
    _limits(text, source)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise ModelError(f"{source} is not readable YAML ({str(exc).splitlines()[0][:200]}).") from None
    if not isinstance(root, yaml.MappingNode):
        raise _refuse(source, "its top level is not a mapping")
    sizes: dict[int, int] = {}
    by_key = {k.value: v for k, v in root.value if isinstance(k, yaml.ScalarNode)}

    def size(node, trail: tuple = ()) -> int:   # expanded node count (aliases and refs counted)
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in trail:
            raise _refuse(source, "a reference refers to itself")
        problem = _tag_problem(node.tag)
        if problem:
            raise _refuse(source, problem)
        total = 1
        if isinstance(node, yaml.ScalarNode):
            value = str(node.value)
            if node.tag in ("!ref", "!copy"):
                if "**" in value:
                    raise _refuse(source, f"the reference {value[:40]} raises to a power")
                for ref in _REF.findall(value):
                    target = _lookup(by_key, ref)
                    if target is not None:
                        total += size(target, trail + (key,))
                total += len(value)
            elif node.tag == "!tuple" or (node.style is None and value.startswith("(") and value.endswith(")")):
                _check_tuple(value, source)
        elif isinstance(node, yaml.SequenceNode):
            total += sum(size(child, trail + (key,)) for child in node.value)
        else:
            total += sum(size(k, trail + (key,)) + size(v, trail + (key,)) for k, v in node.value)
        if total > MAX_EXPANDED + MAX_REF_CHARS:
            raise _refuse(source, f"it expands to more than {MAX_EXPANDED:,} nodes (an alias or reference bomb)")
        sizes[key] = total
        return total

    size(root)
    root.value = [(k, v) for k, v in root.value if not (isinstance(k, yaml.ScalarNode) and k.value in DROPPED_KEYS)]
    return yaml.serialize(root, Dumper=yaml.SafeDumper)


def _lookup(by_key: dict, ref: str):
    """The node ``<a[b][c]>`` / ``<a.b>`` refers to, or None (hyperpyyaml says so itself)."""
    parts = [p for p in re.split(r"[\[\].]", ref) if p]
    if not parts:
        return None
    node = by_key.get(parts[0])
    for part in parts[1:]:
        if not isinstance(node, yaml.MappingNode):
            return None
        node = next((v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == part), None)
    return node


__all__ = ["ALLOWED_CLASSES", "MAX_ALIASES", "MAX_BYTES", "MAX_DEPTH", "safe_hyperparams"]
