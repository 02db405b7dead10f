"""Pipeline steps: ``steps/<step>.py`` holds ``run(cfg, ctx)`` (orchestration only) and
``command`` (its click command, built by :func:`mindzoo.steps.context.step_command`).

The CLI finds a step by its name; a step whose module does not exist yet is
listed as "not built yet".
"""

STEPS = ("preprocess", "train", "evaluate", "export", "infer")
