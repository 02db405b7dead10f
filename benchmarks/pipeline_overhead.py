"""What running the steps as a pipeline costs: the local pipeline's wall time against the sum of
the steps' own compute time inside their containers.

Runs `mindzoo pipeline run-local` (the train pipeline through kfp.local's DockerRunner in the
CPU image, as `make demo` does; extra arguments go to it) and reads two things from its
output: kfp.local's wall time for the whole pipeline (``pipeline run ... finished in Ns``)
and each step's own ``[step] done in Ns`` line, which the step prints from the moment its
command starts to the moment its outputs are written. The difference is the pipeline's
overhead: container start and stop, interpreter start-up, kfp.local's orchestration and
artifact bookkeeping.

Needs the local stack (`mindzoo stack up`) and the CPU image (`make images`); run with the
control environment::

    GLOG_v=3 .venv-control/bin/python benchmarks/pipeline_overhead.py [run-local flags]

The last line is ``ratio pipeline_overhead VALUE`` (target: <= 1.3).
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

STEP_DONE = re.compile(r"\[(preprocess|train|evaluate|export|infer)\] done in ([0-9.]+)s")
PIPELINE_DONE = re.compile(r"^pipeline run \S+ finished in ([0-9.]+)s", re.M)


def run_local(extra: list[str]) -> str:
    binary = Path(sys.executable).with_name("mindzoo")
    started = time.monotonic()
    proc = subprocess.run([str(binary), "pipeline", "run-local", *extra], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"run-local failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    print(f"run-local took {time.monotonic() - started:.0f}s in all (data, compile, run)")
    return proc.stdout + proc.stderr


def main() -> None:
    output = run_local(sys.argv[1:])
    steps = [(name, float(seconds)) for name, seconds in STEP_DONE.findall(output)]
    pipeline = float(PIPELINE_DONE.search(output).group(1))
    compute = sum(seconds for _, seconds in steps)
    print(f"{'step':12} {'own time':>9}")
    for name, seconds in steps:
        print(f"{name:12} {seconds:8.1f}s")
    print(f"{'sum':12} {compute:8.1f}s")
    print(f"{'pipeline':12} {pipeline:8.1f}s  ({pipeline - compute:.1f}s overhead over {len(steps)} tasks)")
    print(f"ratio pipeline_overhead {pipeline / compute:.3f}")


if __name__ == "__main__":
    main()
