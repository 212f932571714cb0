"""Tiny models on disk for the loader tests: random weights from configs, nothing downloaded.

Each builder writes a folder or file the way a user would (``save_pretrained``, ``torch.jit.save``,
``torch.export.save``, ``torch.onnx.export``, a SpeechBrain folder) and returns its path.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch
from torch import nn

LABELS = ("yes", "no", "up")
RATE = 16000


def _id2label(labels=LABELS) -> dict:
    return {"id2label": {i: l for i, l in enumerate(labels)}, "label2id": {l: i for i, l in enumerate(labels)}}


def hf_ast(folder: Path, *, problem_type: str | None = None, max_length: int = 100) -> Path:
    """A one-layer AST (32 mel bins, ``max_length`` frames: 1 s at 16 kHz for 100) with its extractor."""
    import transformers as tf

    torch.manual_seed(0)
    cfg = tf.ASTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                       num_mel_bins=32, max_length=max_length, problem_type=problem_type, **_id2label())
    tf.ASTForAudioClassification(cfg).save_pretrained(folder)
    tf.ASTFeatureExtractor(num_mel_bins=32, max_length=max_length).save_pretrained(folder)
    return folder


def _w2v_kwargs() -> dict:
    return dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, conv_dim=(16, 16),
                conv_stride=(5, 4), conv_kernel=(10, 4), num_feat_extract_layers=2, classifier_proj_size=16,
                num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, **_id2label())


def hf_wav2vec2(folder: Path) -> Path:
    import transformers as tf

    torch.manual_seed(0)
    tf.Wav2Vec2ForSequenceClassification(tf.Wav2Vec2Config(**_w2v_kwargs())).save_pretrained(folder)
    tf.Wav2Vec2FeatureExtractor(do_normalize=True).save_pretrained(folder)
    return folder


def hf_hubert(folder: Path) -> Path:
    import transformers as tf

    torch.manual_seed(0)
    tf.HubertForSequenceClassification(tf.HubertConfig(**_w2v_kwargs())).save_pretrained(folder)
    tf.Wav2Vec2FeatureExtractor(do_normalize=False).save_pretrained(folder)
    return folder


def hf_whisper(folder: Path) -> Path:
    """A one-layer Whisper encoder classifier on 1 s chunks (80 mels, 100 frames)."""
    import transformers as tf

    torch.manual_seed(0)
    cfg = tf.WhisperConfig(d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                           decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, num_mel_bins=80,
                           max_source_positions=50, classifier_proj_size=16, **_id2label())
    tf.WhisperForAudioClassification(cfg).save_pretrained(folder)
    tf.WhisperFeatureExtractor(feature_size=80, chunk_length=1).save_pretrained(folder)
    return folder


class WaveNet(nn.Module):
    """A small waveform classifier returning (logits, embedding)."""

    def __init__(self, classes: int = 3):
        super().__init__()
        self.conv = nn.Conv1d(1, 8, 33, stride=8)
        self.fc = nn.Linear(8, classes)

    def forward(self, x):
        h = torch.tanh(self.conv(x[:, None])).mean(-1)
        return self.fc(h), h


class Plain(nn.Module):
    """An Earmark model's forward as a plain module (what a user exports)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, wave):
        return self.model(wave)


def write_card(path: Path, **fields) -> Path:
    card = {"sample_rate": RATE, "input_length": 8000, "labels": list(LABELS)}
    card.update(fields)
    path.with_suffix(".json").write_text(json.dumps(card))
    return path


def save_torchscript(module: nn.Module, path: Path, example: torch.Tensor, **card) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.trace(module.eval(), example, check_trace=False).save(str(path))
    return write_card(path, **card)


def save_export(module: nn.Module, path: Path, example: torch.Tensor, **card) -> Path:
    program = torch.export.export(module.eval(), (example,),
                                  dynamic_shapes=({0: torch.export.Dim("batch", max=4096)},))
    torch.export.save(program, path)
    return write_card(path, **card)


def save_onnx(module: nn.Module, path: Path, example: torch.Tensor, *, outputs=("logits",), metadata=None,
              **card) -> Path:
    import contextlib
    import io

    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), (example,), str(path), input_names=["wave"], output_names=list(outputs),
                          dynamic_shapes=({0: torch.export.Dim("batch", max=4096)},), dynamo=True,
                          verbose=False, external_data=False)
    if metadata:
        import onnx

        proto = onnx.load(str(path))
        for key, value in metadata.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, str(value)
        onnx.save(proto, str(path))
    return write_card(path, **card)


SPEECHBRAIN_YAML = """sample_rate: 16000
n_mels: 20
compute_features: !new:speechbrain.lobes.features.Fbank
    n_mels: !ref <n_mels>
mean_var_norm: !new:speechbrain.processing.features.InputNormalization
    norm_type: sentence
    std_norm: False
embedding_model: !new:speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN
    input_size: !ref <n_mels>
    channels: [16, 16, 16, 16, 48]
    kernel_sizes: [5, 3, 3, 3, 1]
    dilations: [1, 2, 3, 4, 1]
    attention_channels: 8
    lin_neurons: 8
classifier: !new:speechbrain.lobes.models.ECAPA_TDNN.Classifier
    input_size: 8
    out_neurons: 3
modules:
    compute_features: !ref <compute_features>
    mean_var_norm: !ref <mean_var_norm>
    embedding_model: !ref <embedding_model>
    classifier: !ref <classifier>
"""


def speechbrain_folder(folder: Path, *, yaml: str = SPEECHBRAIN_YAML):
    """A tiny ECAPA EncoderClassifier folder; returns (folder, the hyperparams SpeechBrain built)."""
    from hyperpyyaml import load_hyperpyyaml

    torch.manual_seed(0)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "hyperparams.yaml").write_text(yaml)
    hparams = load_hyperpyyaml(SPEECHBRAIN_YAML)
    torch.save(hparams["embedding_model"].state_dict(), folder / "embedding_model.ckpt")
    torch.save(hparams["classifier"].state_dict(), folder / "classifier.ckpt")
    lines = [f"'{label}' => {i}" for i, label in enumerate(LABELS)]
    (folder / "label_encoder.txt").write_text("\n".join(lines) + "\n================\n'starting_index' => 0\n")
    return folder, hparams
