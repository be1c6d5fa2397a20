"""Baseline 1 (Sec. 4.5.1): AuxFormer's main audiovisual network F_av alone.

AuxFormer without the two auxiliary networks and the shared loss: projection,
sinusoidal positions, the two cross-modal stacks, the two self-attention
stacks with learnable scalars and the output MLP, trained with the main
cross-entropy only.  "The implementation settings of this baseline are the
same as the proposed model", so every option keeps AuxFormer's default.  With
the defaults it has exactly 4,776,994 parameters at 4 classes, audio 130,
visual 4096 (Table 5): AuxFormer's 7,054,748 less the two auxiliary stacks
(2 x 1,022,710) and the shared auxiliary FC layers (232,334).  Its prediction
is its single head; attention is causal by default, as AuxFormer's.
"""

from __future__ import annotations

from functools import partial

from avbench.models.auxformer import CITATION as AUXFORMER_CITATION
from avbench.models.auxformer import AuxFormer
from avbench.models.base import Presentation, register_model

QUICK = {"d_model": 32, "heads": 4, "layers": 1}


register_model("baseline1", citation=AUXFORMER_CITATION + " Baseline 1 (Sec. 4.5.1).", quick=QUICK,
               paper_params=4_776_994, params_tolerance=0.0, semantics_version=2,
               description="Baseline 1: AuxFormer's F_av without auxiliary networks or shared loss",
               presentation=Presentation("Baseline 1", "B1", key="Baseline 1 = AuxFormer without the auxiliary networks",
                                         color="#E69F00", marker="s", order=1),  # Okabe-Ito orange
               )(partial(AuxFormer, auxiliary=False))
