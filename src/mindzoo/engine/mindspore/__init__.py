"""The MindSpore engine: runtime set-up, networks and train steps, input pipelines, weights I/O."""
