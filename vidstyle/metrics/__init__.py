"""Quality metrics: temporal stability (warping error) and style/content distances."""

from vidstyle.metrics.perceptual import PerceptualDistance
from vidstyle.metrics.warping import MultiWarpingError, WarpingError, WarpingErrorResult

__all__ = ["MultiWarpingError", "PerceptualDistance", "WarpingError", "WarpingErrorResult"]
