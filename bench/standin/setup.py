from setuptools import find_packages, setup

setup(
    name="foo",
    version="1.0.0",
    packages=find_packages(),
    include_package_data=True,
    install_requires=["Django>=3.2"],
    extras_require={"dev": ["pytest"]},
)
