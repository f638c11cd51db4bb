"""The PyTorch DA-LIF model: neuron, surrogate gradients and layers."""

from .layers import DALIFConv2d, DALIFLinear
from .mlp import DALIFMLP
from .neuron import GRANULARITIES, DALIFNeuron
from .surrogate import SURROGATES, spike

__all__ = ["DALIFNeuron", "DALIFLinear", "DALIFConv2d", "DALIFMLP", "GRANULARITIES",
           "SURROGATES", "spike"]
