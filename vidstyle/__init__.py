"""vidstyle: video style transfer that holds still where the scene holds still."""

__version__ = "0.1.0"
