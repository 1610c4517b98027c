# mypy: disable-error-code="import-untyped,misc"
"""Build hook for sniparse's optional compiled code.

Everything else about the package lives in pyproject.toml. Two kinds of extension are built
when the machine can:

* ``sniparse._speedups`` (``sniparse/_speedups.c``): the bulk-packet skipping scan and the
  segment decoder (see sniparse/_fastpath.py);
* the hot pure-Python modules listed in ``sniparse/_compiled.py`` (capture framing through
  flows, TLS and the report builder), compiled from the same source by mypyc.

When mypyc, a C compiler or the Python headers are missing, the build of these extensions
fails quietly and sniparse installs and runs its pure-Python code, which gives identical
results (tests/test_compiled.py). ``SNIPARSE_NO_EXTENSION=1`` skips both on purpose;
``SNIPARSE_NO_MYPYC=1`` skips only the mypyc modules.
"""

from __future__ import annotations

import ast
import glob
import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

SPEEDUPS = "sniparse._speedups"


def _off(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0")


def _compiled_modules() -> list[str]:
    """COMPILED_MODULES from sniparse/_compiled.py, read without importing the package."""
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "sniparse", "_compiled.py"), encoding="utf-8") as f:
        tree = ast.parse(f.read())
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) or isinstance(node, ast.Assign):
            targets = [node.target] if isinstance(node, ast.AnnAssign) else node.targets
            if any(isinstance(t, ast.Name) and t.id == "COMPILED_MODULES" for t in targets):
                return list(ast.literal_eval(node.value))
    raise RuntimeError("COMPILED_MODULES not found in sniparse/_compiled.py")


def _warn(what: str, e: BaseException) -> None:
    sys.stderr.write(f"warning: {what} not built ({e}); using the pure-Python code\n")


def _remove_stale_mypyc_builds() -> None:
    """Delete compiled modules an earlier in-place build left in the source tree: without
    this, a failed or disabled mypyc build would leave old code shadowing the new source."""
    here = os.path.dirname(os.path.abspath(__file__))
    stale = glob.glob(os.path.join(here, "sniparse__mypyc.*"))
    for m in _compiled_modules():
        stale += glob.glob(os.path.join(here, "sniparse", f"{m}.*.so"))
        stale += glob.glob(os.path.join(here, "sniparse", f"{m}.*.pyd"))
    for path in stale:
        os.remove(path)


def _mypyc_extensions() -> list[Extension]:
    try:
        from mypyc.build import mypycify
    except ImportError as e:
        _warn("mypyc modules", e)
        _remove_stale_mypyc_builds()
        return []
    paths = [f"sniparse/{m}.py" for m in _compiled_modules()]
    try:
        return list(mypycify(paths, opt_level="3", group_name="sniparse"))
    except BaseException as e:  # noqa: BLE001 - a type error or a mypyc bug: use the source
        _warn("mypyc modules", e)
        _remove_stale_mypyc_builds()
        return []


class OptionalBuildExt(build_ext):
    """build_ext that warns instead of failing when an extension cannot be built.

    The mypyc modules share one runtime library and import each other natively: when any of
    them fails, all of them are removed so that the package never mixes a half-built set."""

    def run(self) -> None:
        self._failed_mypyc = False
        try:
            super().run()
        except Exception as e:  # noqa: BLE001 - any build failure means "use the fallback"
            _warn("compiled extensions", e)
            self._failed_mypyc = True
        if self._failed_mypyc:
            self._remove_mypyc_outputs()

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as e:  # noqa: BLE001
            _warn(ext.name, e)
            if ext.name != SPEEDUPS:
                self._failed_mypyc = True

    def _remove_mypyc_outputs(self) -> None:
        for ext in self.extensions:
            if ext.name == SPEEDUPS:
                continue
            path = self.get_ext_fullpath(ext.name)
            if os.path.exists(path):
                os.remove(path)


ext_modules: list[Extension] = []
if not _off("SNIPARSE_NO_EXTENSION") and sys.implementation.name == "cpython":
    ext_modules.append(Extension(SPEEDUPS, ["sniparse/_speedups.c"], optional=True))
    if not _off("SNIPARSE_NO_MYPYC"):
        ext_modules.extend(_mypyc_extensions())
    else:
        _remove_stale_mypyc_builds()

setup(ext_modules=ext_modules, cmdclass={"build_ext": OptionalBuildExt})
