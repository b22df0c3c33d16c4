# The example `gallery`: a packaged Django project with the two packaging mistakes of the
# article's addendum, on purpose. slipway's recipe builds it and its packaging lint reports both:
# - gallery/management/ and gallery/management/commands/ have no __init__.py, so setuptools
#   does not ship the `hello` command;
# - no include_package_data / MANIFEST.in, so gallery/templates/ does not ship either.
# (tests/e2e/test_recipe.py checks the findings, and that SLIPWAY_LINT=error fails the build.)
from setuptools import find_packages, setup

setup(
    name="gallery",
    version="0.1.0",
    packages=find_packages(),
    install_requires=["Django>=3.2,<4.0"],
)
