"""mindzoo: MindSpore ModelZoo image-classification recipes as a Kubeflow pipeline."""

__version__ = "0.1.0"
