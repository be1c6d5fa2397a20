"""An avbench model plugin: one GRU per modality, last states concatenated, a linear classifier.

Importing this module registers ``late-fusion-gru``; avbench imports it through
the ``avbench.models`` entry point declared in ``pyproject.toml``, so after
``pip install`` the model is available to every avbench command.
"""

from __future__ import annotations

import torch
from torch import nn

from avbench.models import AVModel, Presentation, register_model
from avbench.validation import DropoutRate, PositiveInt

__all__ = ["LateFusionGRU", "late_fusion_gru"]


def _last_state(rnn: nn.GRU, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Final hidden state at each clip's last *real* frame (packing ignores the zero padding)."""
    packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
    _, h = rnn(packed)
    return h[-1]


class LateFusionGRU(AVModel):
    """Late fusion: a GRU per modality, the two final states concatenated, dropout, a linear layer.

    Args:
        num_classes, audio_dim, visual_dim: Task and feature sizes.
        hidden: GRU width per modality.
        dropout: Dropout on the concatenated states.
    """

    def __init__(self, num_classes: int, audio_dim: int, visual_dim: int, *, hidden: int = 64,
                 dropout: float = 0.1):
        super().__init__()
        self.gru_audio = nn.GRU(audio_dim, hidden, batch_first=True)
        self.gru_visual = nn.GRU(visual_dim, hidden, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(2 * hidden, num_classes)
        self.loss_weights = {"av": 1.0}

    def forward(self, audio, visual, audio_lengths, visual_lengths):
        z = torch.cat([_last_state(self.gru_audio, audio, audio_lengths),
                       _last_state(self.gru_visual, visual, visual_lengths)], dim=-1)
        return {"av": self.out(self.dropout(z))}


@register_model("late-fusion-gru", citation="avbench plugin example", quick={"hidden": 32},
                description="Example plugin: one GRU per modality, late fusion by concatenation",
                # role="proposed": reports test it against every other model (AuxFormer included) by default.
                # Labels carry no "(ours)": the report adds it to the proposed model it tests.
                presentation=Presentation("Late-fusion GRU", "LF-GRU", role="proposed", color="#000000", marker="h"))
def late_fusion_gru(*, num_classes, audio_dim, visual_dim, hidden: PositiveInt = 64, dropout: DropoutRate = 0.1):
    """The options' annotations say what each accepts; avbench checks them before building."""
    return LateFusionGRU(num_classes, audio_dim, visual_dim, hidden=hidden, dropout=dropout)
