# The article's project `foo`, packaged so that `pip install .` installs code *and* data files.
# install_requires is the one list of dependencies: the final Dockerfile derives its dependency
# layer from it (egg_info -> foo.egg-info/requires.txt). The `dev` extra lands in requires.txt
# after a blank line as a `[dev]` section, which the article's `grep -e ^$ -m 1 -B 9999` cuts off.
from setuptools import find_packages, setup

setup(
    name="foo",
    version="1.0.0",
    description="Django example from 'An Efficient Multi-Stage Build for Python Django in Docker'",
    packages=find_packages(),
    include_package_data=True,  # with MANIFEST.in: templates, static files, translations
    install_requires=[
        "Django>=3.2,<4.0",
    ],
    extras_require={
        "dev": ["pytest", "pytest-django"],
    },
    python_requires=">=3.8",
    zip_safe=False,
)
