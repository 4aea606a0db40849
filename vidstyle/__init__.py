"""vidstyle: video style transfer that holds still where the scene holds still."""

import os

# The frame loop runs decode, optical flow and encode threads beside PyTorch's OpenMP threads.
# Spinning OpenMP workers steal those threads' cores, which slows the whole loop on machines
# with few cores (compare with `OMP_WAIT_POLICY=ACTIVE python bench/throughput.py ...`). Must be
# set before torch loads OpenMP; an explicit setting by the user wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
