"""Tiny real-model shapes for the card-adapter tests: frame-level, probability-output, (B, L, 1)-layout,
extra-input and streaming networks, each with the hand-written wrapper a user would otherwise need."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

RATE = 16000
LENGTH = 2048
HOP = 160
CHUNK = 64


class FrameNet(nn.Module):
    """(B, L) → per-frame logits (B, T, 3), a frame every 160 samples."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.conv = nn.Conv1d(1, 8, 320, stride=HOP)
        self.fc = nn.Linear(8, 3)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(torch.tanh(self.conv(x[:, None])).transpose(1, 2))


class FrameNetCT(FrameNet):
    """The same, frames last: (B, 3, T)."""

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x).transpose(1, 2)


class ClipNet(nn.Module):
    """(B, L) → logits (B, 3) from band energies (its probabilities are what the probability nets emit)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(2)
        self.conv = nn.Conv1d(1, 6, 65, stride=16)
        self.fc = nn.Linear(6, 3)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(torch.tanh(self.conv(x[:, None])).mean(-1) * 4)


class SoftmaxNet(ClipNet):
    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x).softmax(-1)


class SigmoidNet(ClipNet):
    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x).sigmoid()


class LogSoftmaxNet(ClipNet):
    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x).log_softmax(-1)


class LayoutNet(ClipNet):
    """Takes (B, L, 1)."""

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x[..., 0])


class ChannelNet(ClipNet):
    """Takes (B, 1, L)."""

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x[:, 0])


class ExtraNet(nn.Module):
    """``forward(x, sr)``: the rate scales the logits (a model that checks its rate)."""

    def __init__(self):
        super().__init__()
        self.net = ClipNet()

    def forward(self, x: Tensor, sr: int) -> Tensor:
        return self.net(x) * (sr / 16000.0)


class ExtraTensorNet(ClipNet):
    """``forward(x, sr)`` with ``sr`` a tensor (what an ONNX or torch.export graph takes)."""

    def forward(self, x: Tensor, sr: Tensor) -> Tensor:
        return super().forward(x) * (sr.to(x.dtype) / 16000.0)


class StepNet(nn.Module):
    """One streaming step with an explicit state: (chunk (B, 64), h (B, 8)) → (score (B, 2), h (B, 8))."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.inp = nn.Linear(CHUNK, 8)
        self.rec = nn.Linear(8, 8)
        self.out = nn.Linear(8, 2)

    def forward(self, chunk: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        h = torch.tanh(self.inp(chunk * 4) + self.rec(h))
        return self.out(h), h


class InnerStateNet(nn.Module):
    """One streaming step whose state lives on the module (``reset_states`` clears it), like Silero's VAD."""

    def __init__(self):
        super().__init__()
        self.step = StepNet()
        self.h = torch.zeros(0)

    @torch.jit.export
    def reset_states(self) -> None:
        self.h = torch.zeros(0)

    def forward(self, chunk: Tensor) -> Tensor:
        if self.h.numel() == 0 or self.h.shape[0] != chunk.shape[0]:
            self.h = torch.zeros(chunk.shape[0], 8, dtype=chunk.dtype, device=chunk.device)
        score, h = self.step(chunk, self.h)
        self.h = h
        return score


# ---- the hand-written wrappers a user would write without the card fields ---------------------------

def by_hand_frames(net: nn.Module, pool: str = "mean", axis: int = 1):
    def f(x: Tensor) -> Tensor:
        out = net(x).movedim(axis, 1)
        return out.mean(1) if pool == "mean" else out.amax(1) if pool == "max" else out.logsumexp(1)
    return f


def by_hand_stream(step: StepNet):
    """Chunk loop with an explicit state, the last chunk zero-padded, mean over chunks."""
    def f(x: Tensor) -> Tensor:
        n = -(-x.shape[-1] // CHUNK)
        x = F.pad(x, (0, n * CHUNK - x.shape[-1]))
        h = torch.zeros(x.shape[0], 8, dtype=x.dtype)
        scores = []
        for i in range(n):
            s, h = step(x[:, i * CHUNK:(i + 1) * CHUNK], h)
            scores.append(s)
        return torch.stack(scores, 1).mean(1)
    return f
