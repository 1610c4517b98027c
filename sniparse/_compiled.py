"""Support for compiling sniparse's own modules with mypyc (see setup.py).

The hot modules (capture framing to flows, TLS and the report builder) are plain, fully typed
Python. When the build has mypyc and a C compiler they are compiled into C extensions from the
same source; otherwise the package runs them as Python. ``SNIPARSE_PURE=1`` in the
environment makes an installed, compiled sniparse load its modules from source instead (the
tests use it to check that both agree).

:func:`mypyc_attr` keeps the public record classes (Handshake, ClientHello, the
report's dataclasses) ordinary Python classes when compiled: users pickle them (``--jobs``),
``dataclasses.replace`` them and read their ``__dict__``, and the hot code fills a record's
``__dict__`` directly. The per-packet classes (flows, streams, framers) become native. At run
time the decorator is a no-op, so mypy_extensions is not a runtime dependency. capture.py is
not compiled: it opens files and decompresses (I/O bound), and its tests replace modules.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

T = TypeVar("T")

if TYPE_CHECKING:
    from mypy_extensions import mypyc_attr as mypyc_attr  # noqa: PLC0414 (re-export)
else:

    def mypyc_attr(*_args: Any, **_kwargs: Any) -> Callable[[T], T]:
        """The no-op stand-in for ``mypy_extensions.mypyc_attr``."""
        return lambda cls: cls


#: Modules compiled by setup.py when mypyc is available (the build reads this list).
COMPILED_MODULES = (
    "_fastpath",
    "analyze",
    "decode",
    "fingerprint",
    "flows",
    "ip",
    "link",
    "pcap",
    "pcapng",
    "reassembly",
    "report",
    "tcp",
    "tls",
)


def is_compiled(module: str = "flows") -> bool:
    """True when ``sniparse.<module>`` was loaded from a compiled extension."""
    mod = sys.modules.get(f"sniparse.{module}")
    path = getattr(mod, "__file__", None) or ""
    return not path.endswith(".py")


def pure_requested() -> bool:
    """True when ``SNIPARSE_PURE`` asks for the pure-Python code (set, and not ``0``)."""
    return os.environ.get("SNIPARSE_PURE", "") not in ("", "0")


def speedups(name: str) -> object:
    """``sniparse._speedups.<name>`` (the hand-written C extension), or None when it is not
    built or ``SNIPARSE_PURE`` asks for the Python code."""
    if pure_requested():
        return None
    try:
        mod = importlib.import_module("sniparse._speedups")
    except ImportError:
        return None
    return getattr(mod, name, None)


class _SourceFinder:
    """Meta path finder that loads sniparse's compiled modules from their ``.py`` source."""

    def __init__(self, package_dir: str) -> None:
        self.package_dir = package_dir

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> Any:
        """A source spec for ``sniparse.<compiled module>``; None for anything else.

        Imports nothing itself: it is asked about every import, including those of the
        modules it would use (they are imported at the top of this module)."""
        pkg, _, name = fullname.partition(".")
        if pkg != "sniparse" or name not in COMPILED_MODULES:
            return None
        source = os.path.join(self.package_dir, name + ".py")
        if not os.path.exists(source):
            return None
        return importlib.util.spec_from_file_location(fullname, source)


def use_source(package_dir: str) -> None:
    """Make the compiled modules load from source from now on (before their first import)."""
    if not any(isinstance(f, _SourceFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _SourceFinder(package_dir))
