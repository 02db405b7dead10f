"""Three fixes to kfp.local (kfp 2.17.0) that the pipelines need to run as they do on a cluster.

1. kfp.local starts task containers with ``auto_remove=True`` and, when the container is
   already gone by the time it asks for the exit code, *assumes success*. Through podman's
   Docker-compatible socket a short-lived container is usually gone by then, so a task that
   exits non-zero (a bad input, the evaluate gate) would pass. The container is kept until
   its exit code is read, then removed.
2. kfp.local puts unset optional inputs into the executor input as null, then casts integer
   ones with ``int(None)``. A KFP backend leaves them out (so ``IfPresent`` is false).
3. kfp.local implements ``dsl.OneOf`` for parameters only; the pipelines merge the device
   branches' artifacts (checkpoint, metrics) with it, as a KFP backend allows. The output of
   the one branch that ran is taken, as kfp.local does for parameters.

Both are applied by :func:`apply` (idempotent) before a local run; nothing else changes.
"""

from __future__ import annotations

from typing import Any


def run_docker_container(client: Any, image: str, command: list[str], volumes: dict[str, Any],
                         **container_run_args: Any) -> int:
    """kfp.local's own function, except that the exit code is always the container's."""
    from kfp.local import docker_task_handler

    image = docker_task_handler.add_latest_tag_if_not_present(image=image)
    if not any(image in (found.tags + found.attrs["RepoDigests"]) for found in client.images.list()):
        print(f"Pulling image {image!r}")
        client.images.pull(image)
    else:
        print(f"Found image {image!r}\n")
    container = client.containers.run(image=image, command=command, detach=True, stdout=True, stderr=True,
                                      volumes=volumes, **container_run_args)
    try:
        for line in container.logs(stream=True, follow=True):
            print(line.decode(errors="replace"), end="")
        return container.wait()["StatusCode"]
    finally:
        container.remove(force=True)


def _leave_out_unset(original: Any) -> Any:
    def executor_input_to_dict(executor_input: Any, component_spec: Any) -> dict[str, Any]:
        values = executor_input.inputs.parameter_values
        for name in [k for k, v in values.items() if v.WhichOneof("kind") is None]:
            del values[name]
        return original(executor_input, component_spec)

    executor_input_to_dict.mindzoo_fix = True  # type: ignore[attr-defined]
    return executor_input_to_dict


def _one_of_artifacts(original: Any) -> Any:
    def get_dag_output_artifacts(dag_outputs_spec: Any, io_store: Any) -> dict[str, Any]:
        merged, single = {}, type(dag_outputs_spec)()
        for key, spec in dag_outputs_spec.artifacts.items():
            if len(spec.artifact_selectors) == 1:
                single.artifacts[key].CopyFrom(spec)
                continue
            found = []
            for selector in spec.artifact_selectors:
                try:
                    found.append(io_store.get_task_output(selector.producer_subtask, selector.output_artifact_key))
                except (KeyError, ValueError):
                    continue  # that branch did not run
            if len(found) != 1:
                raise ValueError(f"dsl.OneOf output {key!r}: {len(found)} branches produced it, expected 1")
            merged[key] = found[0]
        return {**original(single, io_store), **merged}

    get_dag_output_artifacts.mindzoo_fix = True  # type: ignore[attr-defined]
    return get_dag_output_artifacts


def apply() -> None:
    from kfp.local import docker_task_handler, executor_input_utils
    from kfp.local.orchestrator.orchestrator_utils import OrchestratorUtils

    docker_task_handler.run_docker_container = run_docker_container
    if not getattr(executor_input_utils.executor_input_to_dict, "mindzoo_fix", False):
        executor_input_utils.executor_input_to_dict = _leave_out_unset(executor_input_utils.executor_input_to_dict)
    if not getattr(OrchestratorUtils.get_dag_output_artifacts, "mindzoo_fix", False):
        OrchestratorUtils.get_dag_output_artifacts = staticmethod(  # a classmethod upstream; cls is unused
            _one_of_artifacts(OrchestratorUtils.get_dag_output_artifacts))
