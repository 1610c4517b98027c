"""sniparse: find TLS clients that connect without SNI in packet captures.

    >>> import sniparse
    >>> report = sniparse.analyze("capture.pcap")          # doctest: +SKIP
    >>> report.verdicts, report.without_sni                 # doctest: +SKIP

``analyze`` reads a whole capture into a :class:`Report`; ``iter_handshakes`` streams
handshake records for captures too big to hold the results of; ``parse_client_hello``
parses raw ClientHello bytes.
"""

import os as _os

from . import _compiled

if _compiled.pure_requested():
    _compiled.use_source(_os.path.dirname(__file__))

from .analyze import analyze, iter_handshakes
from .errors import (
    CaptureReadError,
    DecodeError,
    Issue,
    MalformedError,
    NotACaptureError,
    SniparseError,
    TruncatedError,
)
from .flows import Handshake
from .report import CaptureStats, Report, ReportBuilder
from .tls import Alert, ClientHello, ServerHello, parse_client_hello

__version__ = "0.1.0"

__all__ = [
    "Alert",
    "CaptureReadError",
    "CaptureStats",
    "ClientHello",
    "DecodeError",
    "Handshake",
    "Issue",
    "MalformedError",
    "NotACaptureError",
    "Report",
    "ReportBuilder",
    "ServerHello",
    "SniparseError",
    "TruncatedError",
    "__version__",
    "analyze",
    "iter_handshakes",
    "parse_client_hello",
]
