"""The one native part: mindzoo's JPEG crop decoder (src/mindzoo/data/jpegcrop.c).

A plain shared library loaded with ctypes (no Python headers), linked to the system's
libjpeg-turbo: Debian's libjpeg62-turbo-dev to build, libjpeg62-turbo to run. Optional:
where no compiler or header is present the package still installs, and training falls
back to MindSpore's own crop decoder (mindzoo.data.cropdecode says which one runs).
Everything else about the package is in pyproject.toml.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("mindzoo.data._jpegcrop", ["src/mindzoo/data/jpegcrop.c"], libraries=["jpeg"],
                             extra_compile_args=["-O2"], optional=True)])
