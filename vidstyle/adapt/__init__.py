"""Adapting the style network to a style image (and the footage), with a model cache."""

from vidstyle.adapt.adapt import Adapted, adapt, network_config, work_side
from vidstyle.adapt.cache import cache_dir

__all__ = ["Adapted", "adapt", "cache_dir", "network_config", "work_side"]
