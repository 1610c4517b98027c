"""The analyse command's text report: plain text for files and pipes, rich tables on a
terminal.

Kept apart from :mod:`sniparse.cli` so that the streamed formats (``--format ndjson`` /
``csv`` / ``json``) neither compile nor import any of it: only ``--format text`` (the
default) loads this module, and only a terminal loads rich.
"""

from __future__ import annotations

import io
import textwrap
import time
from collections.abc import Sequence
from typing import Any

from .report import ALERT_NAMES, Report, _fmt_ms, _plural

__all__ = ["render_rich", "render_text"]


def _outcomes_text(counter: Any) -> str:
    return ", ".join(f"{k} {n}" for k, n in sorted(counter.items(), key=lambda kv: -kv[1]))


def _ts(ts_ns: int | None) -> str:
    if ts_ns is None:
        return ""
    if not 0 <= ts_ns < 253_402_300_800 * 10**9:  # beyond 9999-12-31: corrupt timestamp
        return str(ts_ns)
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts_ns // 1_000_000_000)) + (
        f".{(ts_ns % 1_000_000_000) // 1_000_000:03d}"
    )


class _Section:
    """One titled table of the text output."""

    def __init__(self, title: str, headers: list[str], rows: list[list[str]]) -> None:
        self.title = title
        self.headers = headers
        self.rows = rows


def _first_of(values: Sequence[str]) -> str:
    """The most frequent value, and how many others there are."""
    if not values:
        return ""
    return values[0] + (f" (+{len(values) - 1})" if len(values) > 1 else "")


# Rows per table in the text output; --format json / csv carry everything.
_TOP = 20


def _title(title: str, n: int) -> str:
    return f"{title} (first {_TOP} of {n}; --format json lists all)" if n > _TOP else title


def _sections(report: Report, *, flows: bool) -> list[_Section]:
    out: list[_Section] = []
    out.append(
        _Section(
            _title("Server endpoints", len(report.servers)),
            ["endpoint", "attempts", "with SNI", "without SNI", "unknown", "outcomes",
             "typical ms", "verdict"],
            [
                [s.endpoint, str(s.attempts), str(s.with_sni), str(s.without_sni),
                 str(s.unknown + s.malformed), _outcomes_text(s.outcomes),
                 _fmt_ms(s.typical_ms), s.verdict or ""]
                for s in report.servers[:_TOP]
            ],
        )
    )
    nosni = report.clients_without_sni
    if nosni:
        out.append(
            _Section(
                _title("Clients without SNI", len(nosni)),
                ["client", "attempts", "without SNI", "outcomes without SNI", "typical ms",
                 "JA4 without SNI", "names when with SNI", "first seen", "last seen", "known as"],
                [
                    [c.ip, str(c.attempts), str(c.without_sni),
                     _outcomes_text(c.outcomes_without_sni), _fmt_ms(c.typical_ms_without_sni),
                     _first_of(c.ja4_without_sni), _first_of(c.names), _ts(c.first_seen_ns),
                     _ts(c.last_seen_ns), c.known_source or ""]
                    for c in nosni[:_TOP]
                ],
            )
        )
    if report.issues:
        out.append(
            _Section(
                _title("Capture problems", len(report.issues)),
                ["count", "kind", "layer", "detail", "example"],
                [
                    [str(i.count), i.kind, i.layer, i.detail,
                     (f"frame {i.frame}" if i.frame else "")
                     + (f" {i.flow}" if i.flow else "")]
                    for i in sorted(report.issues, key=lambda i: -i.count)[:_TOP]
                ],
            )
        )
    if flows:
        out.append(
            _Section(
                "Handshakes",
                ["time", "client", "server", "sni_status", "sni", "outcome", "ms", "versions",
                 "alpn", "ja4"],
                [
                    [_ts(h.ts_ns), f"{h.client_ip}:{h.client_port}",
                     f"{h.server_ip}:{h.server_port}", h.sni_status, h.sni or "",
                     h.outcome + (f" {ALERT_NAMES.get(h.alert, h.alert)}"
                                  if h.alert is not None else ""),
                     _fmt_ms(h.outcome_ms) if h.outcome_ms is not None else "",
                     " ".join(h.versions), " ".join(h.alpn), h.ja4 or ""]
                    for h in report.handshakes
                ],
            )
        )
    return out


def _counts_line(report: Report) -> str:
    s = report.summary()
    st = report.stats
    files = f"{_plural(len(st.files), 'file')}, " if len(st.files) > 1 else ""
    return (
        f"{files}{_plural(st.frames, 'frame')}; {_plural(s['handshakes'], 'TLS handshake')}: "
        f"{s['with_sni']} with SNI, {s['without_sni']} without SNI, {s['unknown']} unknown, "
        f"{s['malformed']} malformed; {_plural(s['clients'], 'client')} "
        f"({s['clients_without_sni']} without SNI), "
        f"{_plural(s['servers'], 'server endpoint')}."
    )


# Flow kinds that carried no ClientHello (SPEC: counted, not listed), in display order.
_OTHER_FLOWS = ("rejected_syn", "syn_only", "not_tls", "midstream", "no_payload",
                "flow_table_full")


def _other_flows_line(report: Report) -> str:
    flows = report.stats.flows
    parts = [f"{flows[k]} {k}" for k in _OTHER_FLOWS if flows.get(k)]
    line = f"TCP flows without a ClientHello: {', '.join(parts)}." if parts else ""
    if report.stats.truncated_frames:
        line += (" " if line else "") + (
            f"{_plural(report.stats.truncated_frames, 'frame')} cut by the snaplen."
        )
    return line


def _fixes(report: Report) -> list[str]:
    seen: list[str] = []
    for v in report.verdicts:
        if v.fix and v.fix not in seen:
            seen.append(v.fix)
    return seen


def render_text(report: Report, *, flows: bool = False, quiet: bool = False,
                ingress: Any = None) -> str:
    """The plain-text report: verdict first, then the evidence tables, problems and the fix."""
    buf = io.StringIO()
    w = buf.write
    verdicts = report.verdicts
    if verdicts:
        w(_wrap(f"VERDICT: {verdicts[0].summary}"))
        for v in verdicts[1:6]:
            w(_wrap(f"ALSO: {v.summary}"))
        if len(verdicts) > 6:
            w(f"ALSO: {len(verdicts) - 6} more verdicts (see --format json).\n")
    else:
        w("VERDICT: nothing to report.\n")
    if quiet:
        return buf.getvalue()
    w("\n" + _wrap(_counts_line(report)))
    other = _other_flows_line(report)
    if other:
        w(_wrap(other))
    ex = next((v.example_flow for v in verdicts if v.example_flow), None)
    if ex:
        w(f"Example: {ex}\n")
    for sec in _sections(report, flows=flows):
        w(f"\n{sec.title}\n")
        w(_plain_table(sec.headers, sec.rows))
    if ingress is not None:
        w("\nIngress log\n")
        w(str(ingress.render_text()).rstrip("\n") + "\n")
    fixes = _fixes(report)
    if fixes:
        w("\nFix\n")
        for f in fixes:
            w(_wrap(f"- {f}"))
    return buf.getvalue()


def _wrap(text: str) -> str:
    """Prose at 100 columns; continuation lines indented, so each item still starts a line."""
    return textwrap.fill(text, width=100, subsequent_indent="  ", break_on_hyphens=False,
                         break_long_words=False) + "\n"


def _plain_table(headers: list[str], rows: list[list[str]]) -> str:
    if not rows:
        return "(none)\n"
    widths = [len(h) for h in headers]
    for r in rows:
        for i, cell in enumerate(r):
            widths[i] = max(widths[i], len(cell))
    lines = ["  ".join(h.ljust(widths[i]) for i, h in enumerate(headers)).rstrip()]
    for r in rows:
        lines.append("  ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip())
    return "\n".join(lines) + "\n"


def render_rich(report: Report, *, flows: bool, quiet: bool, ingress: Any) -> None:
    """The text report as rich tables on standard output (a terminal)."""
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    con = Console()
    style = {"error": "bold red", "warning": "bold yellow", "ok": "bold green"}
    verdicts = report.verdicts
    if verdicts:
        head = verdicts[0]
        con.print(Text("VERDICT: ", style="bold")
                  + Text(head.summary, style=style.get(head.severity, "")))
        for v in verdicts[1:6]:
            con.print(Text("ALSO: ", style="bold")
                      + Text(v.summary, style=style.get(v.severity, "")))
    else:
        con.print("VERDICT: nothing to report.")
    if quiet:
        return
    con.print()
    con.print(_counts_line(report), highlight=False)
    other = _other_flows_line(report)
    if other:
        con.print(other, highlight=False)
    ex = next((v.example_flow for v in verdicts if v.example_flow), None)
    if ex:
        con.print(f"Example: {ex}", highlight=False)
    for sec in _sections(report, flows=flows):
        table = Table(title=sec.title, title_justify="left", title_style="bold",
                      box=box.SIMPLE_HEAD, pad_edge=False)
        for i, h in enumerate(sec.headers):
            # Addresses must stay whole and readable; the other columns may wrap.
            table.add_column(h, no_wrap=i == 0 or h in ("client", "server", "count"))
        for r in sec.rows:
            table.add_row(*r)
        con.print(table)
    if ingress is not None:
        con.print(Text("Ingress log", style="bold"))
        con.print(str(ingress.render_text()), highlight=False, markup=False)
    fixes = _fixes(report)
    if fixes:
        con.print(Text("Fix", style="bold"))
        for f in fixes:
            con.print(f"- {f}", highlight=False, markup=False)
