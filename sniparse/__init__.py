"""sniparse: find TLS clients that connect without SNI in packet captures."""

from .errors import (
    CaptureReadError,
    DecodeError,
    Issue,
    MalformedError,
    NotACaptureError,
    SniparseError,
    TruncatedError,
)

__version__ = "0.1.0"

__all__ = [
    "CaptureReadError",
    "DecodeError",
    "Issue",
    "MalformedError",
    "NotACaptureError",
    "SniparseError",
    "TruncatedError",
    "__version__",
]
