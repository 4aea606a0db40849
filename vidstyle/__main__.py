"""`python -m vidstyle ...`: the farm task commands use it (no console script needed on PATH)."""

from vidstyle.cli import main

main()
