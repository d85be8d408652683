"""Build hook: ship resources/ and presets/ inside the package as mlabs_desktop/_data.

Everything else lives in pyproject.toml. ``mlabs_desktop.resources`` finds the
files there in an installed wheel, and beside the package in a source checkout.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


class BuildPyWithData(build_py):
    def run(self):
        super().run()
        for folder in ("resources", "presets"):
            target = Path(self.build_lib) / "mlabs_desktop" / "_data" / folder
            # README screenshots are documentation, not something the app loads.
            shutil.copytree(HERE / folder, target, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("screenshots"))


setup(cmdclass={"build_py": BuildPyWithData})
