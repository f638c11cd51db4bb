"""The PyTorch DA-LIF model: neuron, surrogate gradients, layers (dense, conv2d, pooling of
spikes) and networks (fully connected, convolutional, any chain as imported from NIR)."""

from .convnet import DALIFConvNet
from .layers import POOLS, DALIFConv2d, DALIFLinear, Flatten, SpikePool2d
from .mlp import DALIFMLP
from .neuron import GRANULARITIES, DALIFNeuron
from .sequential import DALIFSequential
from .surrogate import SURROGATES, spike

__all__ = ["DALIFNeuron", "DALIFLinear", "DALIFConv2d", "DALIFMLP", "DALIFConvNet",
           "DALIFSequential", "SpikePool2d", "Flatten", "POOLS", "GRANULARITIES", "SURROGATES",
           "spike"]
