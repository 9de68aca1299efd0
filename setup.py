"""Build hook only (everything else is in pyproject.toml): the wheel carries the sample config,
config/ccrouter.yaml, as the package's default config `ccrouter/default.yaml` - one file in
the repository, copied at build time."""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SAMPLE = Path("config/ccrouter.yaml")


class BuildWithSampleConfig(build_py):
    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "ccrouter" / "default.yaml"
        self.mkpath(str(target.parent))
        self.copy_file(str(SAMPLE), str(target))


setup(cmdclass={"build_py": BuildWithSampleConfig})
