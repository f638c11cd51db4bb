"""The PyTorch DA-LIF model: neuron, surrogate gradients, layers (dense, conv2d, pooling of
spikes, SEW residual blocks) and networks (fully connected, convolutional and residual, any
chain as imported from NIR)."""

from .convnet import DALIFConvNet
from .layers import POOLS, DALIFConv2d, DALIFLinear, Flatten, SEWBlock, SpikePool2d
from .mlp import DALIFMLP
from .neuron import GRANULARITIES, DALIFNeuron
from .sequential import DALIFSequential
from .surrogate import SURROGATES, spike

__all__ = ["DALIFNeuron", "DALIFLinear", "DALIFConv2d", "DALIFMLP", "DALIFConvNet",
           "DALIFSequential", "SpikePool2d", "SEWBlock", "Flatten", "POOLS", "GRANULARITIES",
           "SURROGATES", "spike"]
