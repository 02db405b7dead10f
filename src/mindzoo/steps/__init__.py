"""Pipeline steps: ``steps/<step>.py`` holds ``run(cfg, ctx)`` (orchestration only) and
``command`` (its click command, built by :func:`mindzoo.steps.context.step_command`).

The CLI finds a step by its name. Every step runs on the runtime environment
(the one inside the images); from the control environment it says so.
"""

STEPS = ("preprocess", "train", "evaluate", "export", "infer", "locate")
