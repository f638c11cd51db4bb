import torch

# pytest-xdist runs one worker per core; more torch threads than that only contend.
torch.set_num_threads(1)
