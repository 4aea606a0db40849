"""Render farms and clusters: a job plan of idempotent frame-range tasks (adapt once, render
chunks, assemble), runnable by hand, from a farm manager, or on Ray (`vidstyle[farm]`).

Modules: `plan` (job.json, chunk layout, farm frame tokens), `tasks` (adapt / chunk / assemble),
`ray_runner` (the plan on Ray), `seams` (seam quality check), `cli` (`vidstyle farm ...`).
Nothing is imported here, so `vidstyle --help` stays fast. Everything renders through
`vidstyle.pipeline.engine.render`: there is one frame loop.
"""
