# mypy: disable-error-code="import-untyped,misc"
"""Build hook for the optional C extension ``sniparse._speedups``.

Everything else about the package lives in pyproject.toml. The extension only speeds up
skipping bulk packets (see sniparse/_fastpath.py); when there is no compiler or no Python
headers, the build of the extension fails quietly and sniparse installs and runs with its
pure-Python fallback. ``SNIPARSE_NO_EXTENSION=1`` skips the build on purpose.
"""

from __future__ import annotations

import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    """build_ext that warns instead of failing when the extension cannot be built."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as e:  # noqa: BLE001 - any build failure means "use the fallback"
            self._skip(e)

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as e:  # noqa: BLE001
            self._skip(e)

    @staticmethod
    def _skip(e: BaseException) -> None:
        sys.stderr.write(
            f"warning: sniparse._speedups not built ({e}); using the pure-Python fallback\n"
        )


ext_modules = []
if os.environ.get("SNIPARSE_NO_EXTENSION", "") in ("", "0") and sys.implementation.name == "cpython":
    ext_modules.append(
        Extension("sniparse._speedups", ["sniparse/_speedups.c"], optional=True)
    )

setup(ext_modules=ext_modules, cmdclass={"build_ext": OptionalBuildExt})
