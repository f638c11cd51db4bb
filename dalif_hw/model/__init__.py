"""The PyTorch DA-LIF model: neuron, surrogate gradients, layers (dense, conv2d, pooling of
spikes, SEW residual blocks, spike adds) and networks (fully connected, convolutional and
residual, any graph as imported from NIR), and the one graph view of them all (``graph_of``)."""

from .convnet import DALIFConvNet
from .graph import INPUT, DALIFGraph, GraphView, graph_of
from .layers import POOLS, DALIFConv2d, DALIFLinear, Flatten, SEWBlock, SpikeAdd, SpikePool2d
from .mlp import DALIFMLP
from .neuron import GRANULARITIES, DALIFNeuron
from .surrogate import SURROGATES, spike

__all__ = ["DALIFNeuron", "DALIFLinear", "DALIFConv2d", "DALIFMLP", "DALIFConvNet",
           "DALIFGraph", "GraphView", "graph_of", "INPUT", "SpikePool2d", "SEWBlock", "SpikeAdd",
           "Flatten", "POOLS", "GRANULARITIES",
           "SURROGATES", "spike"]
