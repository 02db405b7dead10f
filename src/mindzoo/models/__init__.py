"""Model implementations, one subpackage per framework with the same file and model names.

Importing this package imports no framework; :mod:`mindzoo.registry` imports a
framework's subpackage (``mindzoo.models.mindspore``) on first use.
"""
