"""Optical flow for vidstyle: estimators (DIS default, RAFT optional), occlusion mask, warping,
scene cuts. Flow is float32 (H, W, 2) / torch (N, 2, H, W) in pixels, channel 0 = dx; flow A->B
means A(x) ~= B(x + flow(x)).
"""

from vidstyle.flow.base import (
    FlowError,
    FlowEstimator,
    bidirectional_flow,
    resize_flow,
    resize_flow_torch,
)
from vidstyle.flow.chain import ChainLink, link_to_previous, shrink
from vidstyle.flow.dis import DISFlow
from vidstyle.flow.factory import make_flow
from vidstyle.flow.occlusion import reliability_mask, reliability_mask_torch, zero_border
from vidstyle.flow.raft import RAFTFlow
from vidstyle.flow.scenecut import is_scene_cut, scene_cut_score
from vidstyle.flow.warp import warp, warp_torch

__all__ = [
    "ChainLink",
    "DISFlow",
    "FlowError",
    "FlowEstimator",
    "RAFTFlow",
    "bidirectional_flow",
    "is_scene_cut",
    "link_to_previous",
    "make_flow",
    "reliability_mask",
    "reliability_mask_torch",
    "resize_flow",
    "resize_flow_torch",
    "scene_cut_score",
    "shrink",
    "warp",
    "warp_torch",
    "zero_border",
]
