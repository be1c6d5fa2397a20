"""Models: the contract every model follows, shared building blocks, and AuxFormer."""

from avbench.models.base import (AVModel, ModelMeta, count_parameters, create_model, get_model_meta,
                                 model_parameters, parameter_breakdown, Presentation, register_model)

__all__ = ["AVModel", "ModelMeta", "count_parameters", "create_model", "get_model_meta",
           "model_parameters", "parameter_breakdown", "Presentation", "register_model"]
