"""Distributed training launcher: an Indexed Job + headless Service per launch (kubernetes client)."""

from mindzoo.launcher.spec import LaunchSpec, SecretKeyEnv, Toleration, job_manifest, service_manifest

__all__ = ["LaunchSpec", "SecretKeyEnv", "Toleration", "job_manifest", "service_manifest"]
