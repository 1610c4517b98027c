"""The ``sniparse`` command line: the only module that prints.

``sniparse CAPTURE...`` analyses captures and prints the verdict first, then the evidence.
``sniparse probe`` and ``sniparse logs`` are subcommands; a small :class:`click.Group`
subclass routes every other first argument to the default analyse command, so
``sniparse capture.pcap`` keeps working (a capture file literally named ``probe``, ``logs``
or ``analyze`` needs ``./probe``).

Output: rich tables when standard output is a terminal (colour off under ``NO_COLOR``),
plain, stable, column-aligned text otherwise, so that scripts and tests can read it.

Exit status: 0 done; 1 the input is not a readable capture (one line on stderr, no
traceback); 2 usage error; 3 ``--fail-on-no-sni`` and clients without SNI were found.

Memory does not grow with the capture (SPEC "Speed and size"): handshakes stream from
:class:`sniparse.analyze.Analysis` as their flows close. ``--format ndjson`` / ``csv`` write
each row as it comes, through a reorder window of :data:`REORDER_WINDOW` rows that puts them
in time order; ``--format text`` feeds a :class:`~sniparse.report.ReportBuilder` that keeps no
handshakes. Only ``--format json``, ``--flows`` and ``--ingress-log`` list or match every
handshake, so they keep one small record per handshake (without its parsed ClientHello).
"""

from __future__ import annotations

import gc
import ipaddress
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, NoReturn

import click

from .errors import Issue, SniparseError
from .flows import Handshake
from .report import (
    _CSV_HEADER,
    OUTCOMES,
    SNI_STATUSES,
    CaptureStats,
    Report,
    ReportBuilder,
    _csv_row,
    _ndjson_row,
    _RowWriter,
)

__all__ = [
    "EXIT_NOT_A_CAPTURE",
    "EXIT_NO_SNI",
    "EXIT_OK",
    "EXIT_USAGE",
    "REORDER_WINDOW",
    "analyze",
    "cli",
    "main",
]

EXIT_OK = 0
EXIT_NOT_A_CAPTURE = 1
EXIT_USAGE = 2
EXIT_NO_SNI = 3

# Reads shorter than this never show a progress bar: it would only flicker.
_PROGRESS_DELAY_S = 1.0


#: ndjson / csv rows held back to put them in time order (``ts_ns``, then ``frame``). Rows
#: come out when their flow closes; a flow that closes more than this many handshakes after
#: later ones started (a long-lived TLS session, a silent flow waiting for the idle timeout)
#: still has its row written, only later than its time. ~1.3 KB per held ndjson row.
REORDER_WINDOW = 4096


def analyze(source: Any, *, stream: bool = False, **kwargs: Any) -> Any:
    """Run :func:`sniparse.analyze.analyze` and return its Report; with ``stream=True``
    return the :class:`sniparse.analyze.Analysis` instead, to iterate (imported on first use;
    tests replace this, and a replacement may return a Report either way). ``jobs`` (with
    several files and ``stream=True``): a :class:`sniparse.analyze.ParallelAnalysis`."""
    jobs = kwargs.pop("jobs", 1)
    if stream:
        from .analyze import Analysis, ParallelAnalysis

        if jobs != 1 and isinstance(source, list) and len(source) > 1:
            return ParallelAnalysis(source, jobs=jobs, **kwargs)
        return Analysis(source, **kwargs)
    from .analyze import analyze as _analyze

    return _analyze(source, **kwargs)


class _Run:
    """What the analyse command reads: handshakes as they are decided, then the issues and
    statistics. Wraps an :class:`~sniparse.analyze.Analysis` or an already built Report."""

    def __init__(self, result: Any) -> None:
        self.result = result

    def __iter__(self) -> Iterator[Handshake]:
        if isinstance(self.result, Report):
            return iter(self.result.handshakes)
        return iter(self.result)

    def issues(self) -> list[Issue]:
        if isinstance(self.result, Report):
            return list(self.result.issues)
        return list(self.result.issues.to_list())

    def stats(self) -> CaptureStats:
        if isinstance(self.result, Report):
            return self.result.stats
        stats: CaptureStats = self.result.stats()
        return stats


# ---------------------------------------------------------------------------------------------
# The group that falls back to the analyse command


class _DefaultGroup(click.Group):
    """A group whose first argument is a subcommand name, or else belongs to ``analyze``."""

    default_command = "analyze"

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or args[0] not in self.commands:
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)


class _AnalyzeCommand(click.Command):
    """The default command: its usage line reads ``sniparse [OPTIONS] CAPTURE...``."""

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        root = ctx.find_root().command_path
        formatter.write_usage(root, " ".join(self.collect_usage_pieces(ctx)))


@click.group(cls=_DefaultGroup, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Find TLS clients that connect without SNI in packet captures."""


# The young generation's collection threshold for a command-line run (CPython's default is
# 700). A run allocates a few hundred short-lived container objects per connection (records,
# tuples, rows), nearly all freed by reference counting; at the default a collection runs every
# few connections and walks objects about to die anyway. Measured with callgrind on 40 MB of the
# handshake-heavy benchmark capture: 2.37 G instructions at the default, 2.29 G with this
# threshold and the start-up objects frozen (gc.freeze), which later full collections skip.
# Reference cycles are still collected, only in larger steps.
_GC_YOUNG_THRESHOLD = 50_000


def _tune_gc() -> None:
    """Collect less often during the analyse command (see _GC_YOUNG_THRESHOLD), once the
    analysis modules are loaded; the library's functions leave the collector alone."""
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(_GC_YOUNG_THRESHOLD, older, oldest)


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point (``sniparse``; also ``python -m sniparse``)."""
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="sniparse")
    except BrokenPipeError:
        # `sniparse cap.pcap | head`: the reader left; say nothing more.
        _quiet_stdout()
        sys.exit(EXIT_OK)


def _quiet_stdout() -> None:
    """Replace a standard output whose reader has gone, so that the final flush is silent."""
    try:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - replaces the closed stdout
    except OSError:
        pass


def _fail(message: str, code: int = EXIT_NOT_A_CAPTURE) -> NoReturn:
    click.echo(f"sniparse: error: {message}", err=True)
    raise SystemExit(code)


# ---------------------------------------------------------------------------------------------
# Filters


def _parse_net(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(text.strip("[]"), strict=False)


def _client_cb(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    out = []
    for v in values:
        try:
            out.append(_parse_net(v))
        except ValueError:
            raise click.BadParameter(f"{v!r} is not an IP address or CIDR range") from None
    return out


_ServerSpec = tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, int | None]


def _server_cb(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> list[_ServerSpec]:
    out: list[_ServerSpec] = []
    for v in values:
        host, port = v, None
        try:
            out.append((_parse_net(v), None))
            continue
        except ValueError:
            pass
        if v.startswith("[") and "]:" in v:
            host, _, p = v[1:].partition("]:")
        elif v.count(":") == 1:
            host, _, p = v.partition(":")
        else:
            raise click.BadParameter(f"{v!r}: use IP, IP:PORT or [IPv6]:PORT")
        try:
            port = int(p)
            if not 0 <= port <= 65535:
                raise ValueError
            out.append((_parse_net(host), port))
        except ValueError:
            raise click.BadParameter(f"{v!r}: use IP, IP:PORT or [IPv6]:PORT") from None
    return out


def _in(ip: str, nets: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(addr.version == n.version and addr in n for n in nets)


def _make_filter(
    clients: list[ipaddress.IPv4Network | ipaddress.IPv6Network],
    servers: list[_ServerSpec],
    ports: tuple[int, ...],
    statuses: tuple[str, ...],
    outcomes: tuple[str, ...],
) -> Callable[[Handshake], bool] | None:
    if not (clients or servers or ports or statuses or outcomes):
        return None

    def keep(h: Handshake) -> bool:
        if clients and not _in(h.client_ip, clients):
            return False
        if servers and not any(
            _in(h.server_ip, [net]) and (port is None or port == h.server_port)
            for net, port in servers
        ):
            return False
        if ports and h.server_port not in ports:
            return False
        if statuses and h.sni_status not in statuses:
            return False
        return not (outcomes and h.outcome not in outcomes)

    return keep


# ---------------------------------------------------------------------------------------------
# Progress on stderr


class _Progress:
    """analyze()'s progress callback: a rich bar on stderr, shown only once a read has
    taken longer than a second and only when stderr is a terminal."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.bar: Any = None
        self.task: Any = None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            if time.monotonic() - self.start < _PROGRESS_DELAY_S:
                return
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            self.bar = Progress(
                TextColumn("reading"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self.bar.start()
            self.task = self.bar.add_task("read", total=total or None)
        self.bar.update(self.task, completed=done, total=total or None)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


# ---------------------------------------------------------------------------------------------
# Rendering (the text report lives in sniparse._textreport, loaded only by --format text)


def render_text(report: Report, *, flows: bool = False, quiet: bool = False,
                ingress: Any = None) -> str:
    """The plain-text report: verdict first, then the evidence tables, problems and the fix."""
    from ._textreport import render_text as render

    return render(report, flows=flows, quiet=quiet, ingress=ingress)


def _render_rich(report: Report, *, flows: bool, quiet: bool, ingress: Any) -> None:
    from ._textreport import render_rich

    render_rich(report, flows=flows, quiet=quiet, ingress=ingress)


def render_csv(report: Report) -> str:
    """One CSV row per handshake, columns as in ``--format ndjson`` (lists joined with ';')."""
    return _CSV_HEADER + "".join(_csv_row(h) for h in report.handshakes)


def render_ndjson(report: Report) -> str:
    """One JSON object per handshake and line, keyed by the Handshake field names."""
    return "".join(_ndjson_row(h) for h in report.handshakes)


class _Output:
    """Standard output or the ``-o`` file, written in chunks. The file is opened at the first
    write, so a capture that cannot be read leaves no empty file behind."""

    CHUNK = 1 << 16

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.file: Any = None
        self.parts: list[str] = []
        self.size = 0

    def write(self, text: str) -> None:
        self.parts.append(text)
        self.size += len(text)
        if self.size >= self.CHUNK:
            self.flush()

    def flush(self) -> None:
        if not self.parts:
            return
        text = "".join(self.parts)
        self.parts.clear()
        self.size = 0
        if self.path is None:
            click.echo(text, nl=False)
            return
        try:
            if self.file is None:
                self.file = open(self.path, "w", encoding="utf-8", newline="")  # noqa: SIM115
            self.file.write(text)
        except OSError as e:
            _fail(f"cannot write {self.path}: {e.strerror or e}")

    def close(self) -> None:
        self.flush()
        if self.file is not None:
            try:
                self.file.close()
            except OSError as e:
                _fail(f"cannot write {self.path}: {e.strerror or e}")
            self.file = None


# ---------------------------------------------------------------------------------------------
# The analyse command

_EPILOG = """\b
Other commands:
  sniparse probe HOST[:PORT]   connect with and without SNI and compare
  sniparse logs FILE...        summarise ingress (Envoy/Istio) access logs
A capture file literally named 'probe', 'logs' or 'analyze' needs a path: ./probe

\b
Exit status: 0 done, 1 not a readable capture, 2 usage error,
3 clients without SNI found (with --fail-on-no-sni).
"""


@cli.command("analyze", cls=_AnalyzeCommand, epilog=_EPILOG)
@click.argument("captures", metavar="CAPTURE...", nargs=-1, required=True)
@click.option("--flows", is_flag=True,
              help="Also list every handshake, one line each (keeps a small record of each "
                   "handshake in memory). Example: --flows")
@click.option("--client", "clients", multiple=True, callback=_client_cb, metavar="IP",
              help="Keep only handshakes from this client IP or CIDR range (repeatable). "
                   "Example: --client 10.1.2.3 --client 35.191.0.0/16")
@click.option("--server", "servers", multiple=True, callback=_server_cb, metavar="IP[:PORT]",
              help="Keep only handshakes to this server IP (or CIDR), optionally one port "
                   "(repeatable). Example: --server 10.0.0.9:443 --server [2001:db8::1]:8443")
@click.option("--port", "ports", multiple=True, type=click.IntRange(0, 65535), metavar="N",
              help="Keep only handshakes to this server port (repeatable). Example: --port 443")
@click.option("--sni-status", "statuses", multiple=True, type=click.Choice(SNI_STATUSES),
              help="Keep only hellos with this SNI status (repeatable). "
                   "Example: --sni-status absent --sni-status empty")
@click.option("--outcome", "outcomes", multiple=True, type=click.Choice(OUTCOMES),
              help="Keep only attempts with this outcome (repeatable). "
                   "Example: --outcome server_reset")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "ndjson", "csv"]),
              default="text", show_default=True,
              help="Output format: text (verdict and tables), json (the whole report), ndjson "
                   "(one JSON object per handshake), csv (one row per handshake). text, ndjson "
                   "and csv stream in flat memory; json keeps a small record of each handshake. "
                   "Example: --format ndjson")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write the output to this file instead of standard output. "
                   "Example: -o report.json")
@click.option("--idle-timeout", type=click.FloatRange(min=0.0), default=300.0,
              show_default=True, metavar="SECONDS",
              help="Capture-time seconds after which a silent flow is closed as no_response. "
                   "Example: --idle-timeout 30")
@click.option("--ingress-log", "ingress_logs", multiple=True, metavar="FILE",
              help="Correlate with an ingress access log (Envoy/Istio JSON or text; "
                   "repeatable, '-' for standard input; keeps a small record of each handshake "
                   "in memory). Example: --ingress-log envoy.log")
@click.option("-j", "--jobs", type=click.IntRange(min=0), default=1, show_default=True,
              metavar="N",
              help="Read several CAPTURE files in N worker processes (0: one per CPU) with "
                   "the answer of reading them as one capture: a rotated set may be split "
                   "anywhere (connections crossing a file boundary are followed across), "
                   "files whose times overlap are read together; frame numbers count in the "
                   "whole set. Example: --jobs 4 cap.pcap*")
@click.option("-q", "--quiet", is_flag=True,
              help="Text format: print only the verdict. Never show a progress bar. "
                   "Example: -q")
@click.option("--fail-on-no-sni", is_flag=True,
              help="Exit with status 3 when clients without SNI are found (for scripts and "
                   "CI). Example: sniparse --fail-on-no-sni -q cap.pcap || echo found")
@click.version_option(package_name="sniparse", message="sniparse %(version)s")
@click.pass_context
def analyze_cmd(
    ctx: click.Context,
    captures: tuple[str, ...],
    flows: bool,
    clients: list[ipaddress.IPv4Network | ipaddress.IPv6Network],
    servers: list[_ServerSpec],
    ports: tuple[int, ...],
    statuses: tuple[str, ...],
    outcomes: tuple[str, ...],
    fmt: str,
    output: str | None,
    idle_timeout: float,
    ingress_logs: tuple[str, ...],
    jobs: int,
    quiet: bool,
    fail_on_no_sni: bool,
) -> None:
    """Analyse packet captures (pcap, pcapng, compressed; '-' for standard input) and say
    which clients connect without SNI and what the server does to them.

    Example: sniparse capture.pcap

    Example: sniparse --format json -o report.json rotated.pcap0 rotated.pcap1
    """
    if captures.count("-") > 1:
        raise click.UsageError("standard input ('-') can be given only once")
    if "-" in captures and "-" in ingress_logs:
        raise click.UsageError("the capture and the ingress log cannot both be standard input")

    progress: _Progress | None = None
    if not quiet and sys.stderr.isatty():
        progress = _Progress()
    source: Any = captures[0] if len(captures) == 1 else list(captures)
    if source == "-":
        source = sys.stdin.buffer
    keep = _make_filter(clients, servers, ports, statuses, outcomes)
    try:
        more: dict[str, Any] = {"progress": progress}
        if jobs != 1 and isinstance(source, list):
            # Per-file workers: no byte count to show a bar with.
            more = {"progress": None, "jobs": jobs}
        run = _Run(analyze(source, idle_timeout=idle_timeout, stream=True, **more))
        _tune_gc()
        if fmt in ("ndjson", "csv"):
            # Streamed: no report at all, one row per handshake as its flow closes.
            found = _stream_rows(run, keep, fmt, output)
            if fail_on_no_sni and found:
                ctx.exit(EXIT_NO_SNI)
            return
        # json, --flows and --ingress-log list or match every handshake: keep a small record
        # of each (no parsed ClientHello). The text verdict and tables need none of them.
        builder = ReportBuilder(
            keep_handshakes=fmt == "json" or flows or bool(ingress_logs),
            keep_client_hello=False,
            by_time=True,
        )
        add = builder.add
        for h in run:
            if keep is None or keep(h):
                add(h)
        report = builder.build(run.issues(), run.stats())
    except BrokenPipeError:
        # `sniparse cap.pcap --format ndjson | head`: the reader left while rows were still
        # streaming. Stop quietly with status 0, as main() does (click would exit 1).
        _quiet_stdout()
        ctx.exit(EXIT_OK)
    except SniparseError as e:
        _fail(str(e))
    except OSError as e:
        _fail(f"cannot read {e.filename or 'input'}: {e.strerror or e}")
    finally:
        if progress is not None:
            progress.close()

    ingress = None
    if ingress_logs:
        ingress = _correlate_ingress(ingress_logs, report)

    try:
        if fmt == "json":
            # Written piece by piece: the whole text of a large report is never held at once.
            out = _Output(output)
            extra = {"ingress": ingress.to_dict()} if ingress is not None else None
            for piece in report.iter_json(indent=2, extra=extra):
                out.write(piece)
            out.write("\n")
            out.close()
        elif output is None and sys.stdout.isatty():
            _render_rich(report, flows=flows, quiet=quiet, ingress=ingress)
        else:
            _emit(render_text(report, flows=flows, quiet=quiet, ingress=ingress), output)
    except BrokenPipeError:
        _quiet_stdout()
        ctx.exit(EXIT_OK)

    if fail_on_no_sni and report.summary()["without_sni"]:
        ctx.exit(EXIT_NO_SNI)


def _stream_rows(
    run: _Run, keep: Callable[[Handshake], bool] | None, fmt: str, output: str | None
) -> bool:
    """Write the ndjson / csv rows of ``run`` as its handshakes come; True when a kept
    handshake had no SNI (for ``--fail-on-no-sni``). The rows are built, put in time order
    and gathered into chunks by the compiled :class:`sniparse.report._RowWriter`."""
    out = _Output(output)
    rows = _RowWriter(fmt, out.write, REORDER_WINDOW, out.CHUNK)
    try:
        rows.header()
        rows.push_all(run, keep)
        # The statistics are not printed, but reading them ends the run like the other
        # formats do (and any error of the last records surfaces here).
        run.stats()
        rows.drain()
    finally:
        # Rows already out of the window reach the output even when the run failed.
        rows.flush()
        out.close()
    return rows.found


def _emit(text: str, output: str | None) -> None:
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        with open(output, "w", encoding="utf-8", newline="") as f:
            f.write(text)
    except OSError as e:
        _fail(f"cannot write {output}: {e.strerror or e}")


def _correlate_ingress(paths: tuple[str, ...], report: Report) -> Any:
    try:
        from .ingress import correlate, read_ingress_log
    except ImportError:
        _fail("--ingress-log is not available: this build has no sniparse.ingress module")
    try:
        log = read_ingress_log(list(paths))
        return correlate(log, report.handshakes)
    except SniparseError as e:
        _fail(str(e))
    except OSError as e:
        _fail(f"cannot read {e.filename or 'ingress log'}: {e.strerror or e}")


# ---------------------------------------------------------------------------------------------
# Subcommands


@cli.command("probe")
@click.argument("target", metavar="HOST[:PORT]")
@click.option("--sni", metavar="NAME", default=None,
              help="Server name to send in the SNI attempt (default: HOST when it is a name). "
                   "Example: --sni api.example.com")
@click.option("--connect", metavar="IP", default=None,
              help="Connect to this address instead of resolving HOST. "
                   "Example: --connect 127.0.0.1")
@click.option("--timeout", type=click.FloatRange(min=0.0), default=5.0, show_default=True,
              metavar="S", help="Seconds to wait for each connection. Example: --timeout 2")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Output format. Example: --format json")
@click.option("--fail-on-no-sni", is_flag=True,
              help="Exit with status 3 when the server does not serve clients without SNI "
                   "(status 1 when it cannot be reached at all). "
                   "Example: sniparse probe --fail-on-no-sni 10.0.0.9:443")
@click.pass_context
def probe_cmd(
    ctx: click.Context,
    target: str,
    sni: str | None,
    connect: str | None,
    timeout: float,
    fmt: str,
    fail_on_no_sni: bool,
) -> None:
    """Connect to HOST[:PORT] with and without SNI and report how the server reacts to each.
    Exit status: 0 done, 1 could not connect, 2 usage error, 3 --fail-on-no-sni and the
    server refuses clients without SNI.

    Example: sniparse probe api.example.com:443 --connect 10.0.0.9
    """
    try:
        from .probe import probe
    except ImportError:
        _fail("probe is not available: this build has no sniparse.probe module")
    try:
        result = probe(target, sni=sni, connect=connect, timeout=timeout)
    except SniparseError as e:
        # A target that cannot be parsed is a usage error; anything else could not be probed.
        _fail(str(e), EXIT_USAGE if isinstance(e, ValueError) else EXIT_NOT_A_CAPTURE)
    except OSError as e:
        _fail(f"cannot probe {target}: {e.strerror or e}")
    if fmt == "json":
        click.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    else:
        click.echo(str(result.render_text()).rstrip("\n"))
    if getattr(result.without_sni, "result", None) == "connect_error":
        # No TCP connection at all: nothing was learnt about SNI; not a "no" for scripts.
        ctx.exit(EXIT_NOT_A_CAPTURE)
    if fail_on_no_sni and not result.non_sni_supported:
        ctx.exit(EXIT_NO_SNI)


@cli.command("logs")
@click.argument("files", metavar="FILE...", nargs=-1, required=True)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Output format. Example: --format json")
def logs_cmd(files: tuple[str, ...], fmt: str) -> None:
    """Summarise ingress access logs (Envoy/Istio): requests without SNI,
    filter_chain_not_found, response flags. '-' reads standard input.

    Example: sniparse logs istio-ingressgateway.log
    """
    try:
        from .ingress import read_ingress_log, summarize
    except ImportError:
        _fail("logs is not available: this build has no sniparse.ingress module")
    try:
        summary = summarize(read_ingress_log(list(files)))
    except SniparseError as e:
        _fail(str(e))
    except OSError as e:
        _fail(f"cannot read {e.filename or 'log'}: {e.strerror or e}")
    if fmt == "json":
        click.echo(json.dumps(summary.to_dict(), indent=2, ensure_ascii=False))
    else:
        click.echo(str(summary.render_text()).rstrip("\n"))
