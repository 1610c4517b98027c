"""Benchmark sniparse against dpkt, scapy, pyshark and tshark doing the same job.

Usage::

    python benchmarks/run.py                 # bulk + handshake-heavy captures, all tools
    python benchmarks/run.py --quick         # small captures, for a quick look
    python benchmarks/run.py --packets 1000000 --sample 20000
    python benchmarks/run.py --tools sniparse,dpkt --mix bulk
    python benchmarks/run.py --rss --rss-size 2GB   # sniparse peak RSS vs capture size

The job: one record per TCP connection that carried a ClientHello, with its SNI and whether
the server reset it before a ServerHello. Captures come from ``gen_capture.py`` and are
cached in ``benchmarks/data/`` (git-ignored) with their ground truth; a cached capture is
reused while the generator is unchanged.

Each tool runs in a fresh subprocess (``_measure.py``) that reports wall time and peak RSS
(``getrusage(RUSAGE_CHILDREN).ru_maxrss``). scapy and pyshark are far too slow for the whole
file and read only its first ``--sample`` packets; their ratio to sniparse is extrapolated
from packets per second and marked ``~``. Agreement with the truth: handshakes found (of the
connections in what the tool read), SNI agreeing, "server reset before ServerHello" agreeing,
and connections missed. The markdown table goes to stdout; progress to stderr.
"""

from __future__ import annotations

import argparse
import hashlib
import ipaddress
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
sys.path.insert(0, str(HERE))

import gen_capture

# ---------------------------------------------------------------------------------------------
# Captures


@dataclass
class Capture:
    """A generated capture, its truth sidecar and its size."""

    path: Path
    truth: Path
    mix: str
    link: str
    packets: int
    bytes: int
    connections: int

    @property
    def label(self) -> str:
        """Short description for the table."""
        return f"{self.mix} ({self.link}, {_k(self.packets)} pkts, {self.bytes / 1e6:.0f} MB)"


def _k(n: int) -> str:
    return f"{n / 1e6:.2g}M" if n >= 1_000_000 else f"{n / 1e3:.3g}k" if n >= 1000 else str(n)


def _gen_hash() -> str:
    return hashlib.sha256((HERE / "gen_capture.py").read_bytes()).hexdigest()[:16]


def ensure_capture(data_dir: Path, mix: str, link: str, *, packets: int | None = None,
                   size: int | None = None, seed: int = 1) -> Capture:
    """Generate (or reuse from ``data_dir``) a capture of the given mix and link type."""
    ext = ".pcapng" if link == "mixed" else ".pcap"
    amount = f"{packets}p" if packets is not None else f"{size}B"
    path = data_dir / f"{mix}-{link}-{amount}-s{seed}{ext}"
    meta_path = path.with_name(path.name + ".meta.json")
    h = _gen_hash()
    meta: dict[str, Any] | None = None
    if meta_path.is_file() and path.is_file() and gen_capture.truth_path(path).is_file():
        meta = json.loads(meta_path.read_text())
        if meta.get("gen_hash") != h or meta.get("bytes") != path.stat().st_size:
            meta = None
    if meta is None:
        _log(f"generating {path.name} ...")
        r = gen_capture.generate(path, packets=packets, size=size, seed=seed, mix=mix, link=link)
        meta = {"gen_hash": h, "packets": int(r["packets"]), "bytes": int(r["bytes"]),
                "connections": int(r["connections"]), "seconds": r["seconds"]}
        meta_path.write_text(json.dumps(meta))
        _log(f"  {meta['packets']} packets, {meta['bytes'] / 1e6:.1f} MB in {r['seconds']:.1f} s")
    return Capture(path, gen_capture.truth_path(path), mix, link, meta["packets"],
                   meta["bytes"], meta["connections"])


# ---------------------------------------------------------------------------------------------
# Tools

ITER_SCRIPT = r"""
import json, sys
try:
    from sniparse import iter_handshakes
except ImportError:
    try:
        from sniparse.analyze import iter_handshakes
    except ImportError as e:
        sys.exit("sniparse.iter_handshakes missing: %s" % e)
keys = ("client_ip", "client_port", "server_ip", "server_port", "sni", "sni_status",
        "outcome", "alert")
w = sys.stdout.write
for h in iter_handshakes(sys.argv[1]):
    w(json.dumps({k: getattr(h, k, None) for k in keys}) + "\n")
"""


def _sniparse_cli() -> list[str]:
    """The ``sniparse`` command of the interpreter running the benchmark (the one the Python
    peers run under). Not the first ``sniparse`` on PATH: that can be a version manager's
    shim (pyenv's is a shell script that runs ``pyenv exec``), ~70 ms of CPU a run that is
    not sniparse's."""
    exe = Path(sys.executable).parent / "sniparse"
    if exe.is_file() and os.access(exe, os.X_OK):
        return [str(exe)]
    return [sys.executable, "-c", "import sys; from sniparse.cli import main; sys.exit(main())"]


@dataclass(frozen=True)
class Tool:
    """A way of doing the job: how to invoke it on a capture, writing ndjson to ``out``.

    ``argv(capture, out, count)`` returns the command and whether its stdout is the ndjson
    (else the command writes ``out`` itself). ``sample``: reads only the first packets.
    """

    name: str
    argv: Callable[[Path, Path, int], tuple[list[str], bool]]
    sample: bool = False
    floor: bool = False
    reference: bool = False
    default: bool = True            # run unless --tools names others


def _py(script: str) -> Callable[[Path, Path, int], tuple[list[str], bool]]:
    def argv(cap: Path, out: Path, count: int) -> tuple[list[str], bool]:
        cmd = [sys.executable, str(HERE / script), str(cap)]
        if count:
            cmd += ["--count", str(count)]
        return cmd, True
    return argv


TOOLS: list[Tool] = [
    Tool("cat > /dev/null", lambda c, o, n: (["sh", "-c", 'cat "$1" > /dev/null', "sh", str(c)],
                                             True), floor=True),
    Tool("sniparse", lambda c, o, n: (_sniparse_cli() + [str(c), "--format", "ndjson",
                                                         "-o", str(o)], False), reference=True),
    Tool("sniparse.iter_handshakes", lambda c, o, n: ([sys.executable, "-c", ITER_SCRIPT,
                                                       str(c)], True)),
    Tool("dpkt", _py("peer_dpkt.py")),
    Tool("tshark", _py("peer_tshark.py")),
    Tool("scapy", _py("peer_scapy.py"), sample=True),
    Tool("pyshark", _py("peer_pyshark.py"), sample=True),
    # The same CLI with its compiled modules off (SNIPARSE_PURE=1: the package's Python
    # source and no C extension): what an install without a compiler gets.
    Tool("sniparse (pure Python)", lambda c, o, n: (["env", "SNIPARSE_PURE=1"] + _sniparse_cli() + [
        str(c), "--format", "ndjson", "-o", str(o)], False)),
    # The CLI writing nowhere: no agreement check, only time and memory (opt-in).
    Tool("sniparse -o /dev/null", lambda c, o, n: (_sniparse_cli() + [
        str(c), "--format", "ndjson", "-o", "/dev/null"], False), floor=True, default=False),
]
TIMEOUT = 3600.0   # seconds per tool run; --timeout
CLOCK = "wall"     # what rates and ratios divide by; --clock
REPEAT = 1         # runs per tool and capture, the fastest kept; --repeat
TOOL_NAMES = {"cat": "cat > /dev/null", "iter": "sniparse.iter_handshakes",
              "devnull": "sniparse -o /dev/null", "pure": "sniparse (pure Python)"}


@dataclass
class Result:
    """One tool on one capture."""

    tool: str
    capture: Capture
    packets: int                    # packets the tool read
    bytes: int                      # bytes the tool read (estimated for a sample)
    wall: float
    rss_mb: float
    cpu: float                      # user + system seconds of the tool and its children
    status: str                     # ok | failed | missing
    error: str = ""
    sample: bool = False
    floor: bool = False
    agreement: dict[str, int] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def time(self) -> float:
        """The time the rates and ratios use: wall seconds, or CPU seconds (``--clock cpu``)."""
        return self.cpu if CLOCK == "cpu" else self.wall

    @property
    def pps(self) -> float:
        """Packets per second."""
        return self.packets / self.time if self.time > 0 else 0.0

    @property
    def mbps(self) -> float:
        """Megabytes of capture per second."""
        return self.bytes / 1e6 / self.time if self.time > 0 else 0.0


def run_tool(tool: Tool, cap: Capture, workdir: Path, *, sample: int = 0) -> Result:
    """Run ``tool`` on ``cap`` in a fresh measuring process; check its answer."""
    count = min(sample, cap.packets) if tool.sample and sample else 0
    slug = "".join(ch if ch.isalnum() else "_" for ch in tool.name)
    out = workdir / f"{cap.path.stem}.{slug}.ndjson"
    res_path = workdir / f"{cap.path.stem}.{slug}.result.json"
    for p in (out, res_path):
        p.unlink(missing_ok=True)
    cmd, to_stdout = tool.argv(cap.path, out, count)
    stdout_path = out if to_stdout else workdir / f"{cap.path.stem}.{slug}.stdout"
    subprocess.run([sys.executable, str(HERE / "_measure.py"), str(res_path), str(stdout_path),
                    str(TIMEOUT), "--", *cmd], check=True)
    m = json.loads(res_path.read_text())
    packets = count or cap.packets
    nbytes = int(cap.bytes * packets / cap.packets) if cap.packets else cap.bytes
    status, error = "ok", ""
    if m["rc"] != 0:
        err = m["stderr"].strip().splitlines()
        last = err[-1] if err else f"exit status {m['rc']}"
        status = "missing" if ("ImportError" in m["stderr"] or "ModuleNotFoundError"
                               in m["stderr"] or "missing" in last) else "failed"
        error = last[:200]
    r = Result(tool.name, cap, packets, nbytes, m["wall"], m["maxrss_kb"] / 1024,
               m["user"] + m["sys"], status, error, sample=bool(count), floor=tool.floor)
    if status == "ok" and not tool.floor:
        if out.is_file():
            r.agreement = agreement(cap.truth, out, upto=count)
        else:
            r.status, r.error = "failed", "no output written"
    return r


# ---------------------------------------------------------------------------------------------
# Agreement with the truth


def _norm_ip(text: Any) -> str:
    try:
        return str(ipaddress.ip_address(str(text)))
    except ValueError:
        return str(text)


def _key(rec: dict[str, Any]) -> tuple[str, int, str, int]:
    return (_norm_ip(rec.get("client_ip")), int(rec.get("client_port") or 0),
            _norm_ip(rec.get("server_ip")), int(rec.get("server_port") or 0))


def load_truth(path: Path, upto: int = 0) -> dict[tuple[str, int, str, int], dict[str, Any]]:
    """The truth by connection key; with ``upto``, as seen by a reader of the first ``upto``
    packets (hellos after it are dropped, reactions after it become ``no_response``)."""
    truth: dict[tuple[str, int, str, int], dict[str, Any]] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            if upto:
                if rec["frame"] > upto:
                    continue
                if rec["outcome_frame"] > upto:
                    rec["outcome"] = "no_response"
            truth[_key(rec)] = rec
    return truth


def agreement(truth_path: Path, out_path: Path, *, upto: int = 0) -> dict[str, int]:
    """Compare a tool's ndjson with the truth.

    ``found``: truth connections the tool reported; ``sni``: of those, SNI right (a hello
    reported "unknown" is not right); ``reset``: of those, "server reset before ServerHello"
    right both ways; ``missed``: truth connections not reported; ``extra``: reported
    connections that are not in the truth; ``unparsed``: hellos the tool reported "unknown".
    """
    truth = load_truth(truth_path, upto)
    found = sni_ok = reset_ok = extra = unparsed = 0
    seen: set[tuple[str, int, str, int]] = set()
    with open(out_path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                rec = json.loads(line)
                key = _key(rec)
            except (ValueError, TypeError):
                extra += 1
                continue
            t = truth.get(key)
            if t is None or key in seen:
                extra += 1
                continue
            seen.add(key)
            found += 1
            status = rec.get("sni_status")
            if status == "unknown":
                unparsed += 1
            if status in ("present", "absent", "empty") and (rec.get("sni") or None) == t["sni"]:
                sni_ok += 1
            if (rec.get("outcome") == "server_reset") == (t["outcome"] == "server_reset"):
                reset_ok += 1
    return {"truth": len(truth), "found": found, "sni": sni_ok, "reset": reset_ok,
            "missed": len(truth) - found, "extra": extra, "unparsed": unparsed}


# ---------------------------------------------------------------------------------------------
# Reporting


def _fmt(x: float, digits: int = 2) -> str:
    if x >= 100:
        return f"{x:,.0f}"
    return f"{x:.{digits}f}"


def ratio(r: Result, ref: Result | None) -> str:
    """time_tool / time_sniparse on the same capture; extrapolated (``~``) for a sample."""
    if ref is None or ref.status != "ok" or r.status != "ok" or r is ref:
        return "1" if r is ref and r.status == "ok" else "-"
    if r.sample:
        if r.pps <= 0:
            return "-"
        return "~" + _ratio((r.capture.packets / r.pps) / ref.time)
    return _ratio(r.time / ref.time)


def _ratio(x: float) -> str:
    return f"{x:.2g}" if x < 1 else _fmt(x, 1)


def markdown_table(results: Iterable[Result]) -> str:
    """The results as a markdown table (one block per capture)."""
    results = list(results)
    head = ("| capture | tool | packets read | wall s | CPU s | packets/s | MB/s | peak RSS MB "
            "| time / sniparse | handshakes found | SNI agree | reset agree | missed |\n"
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
    rows = []
    refs = {id(r.capture): r for r in results if r.tool == "sniparse"}
    for r in results:
        ref = refs.get(id(r.capture))
        pk = _k(r.packets) + (" (first)" if r.sample else "")
        if r.status != "ok":
            rows.append(f"| {r.capture.label} | {r.tool} | {pk} | {r.status} | | | | | | "
                        f"{r.error.replace('|', '/')[:80]} | | | |")
            continue
        a = r.agreement
        if a is None:
            agree = "| | | | "
        else:
            agree = (f"| {a['found']}/{a['truth']} | {a['sni']}/{a['truth']} | "
                     f"{a['reset']}/{a['truth']} | {a['missed']} ")
        rows.append(f"| {r.capture.label} | {r.tool} | {pk} | {r.wall:.2f} | {r.cpu:.2f} | "
                    f"{_fmt(r.pps, 0)} | "
                    f"{_fmt(r.mbps, 1)} | {r.rss_mb:.0f} | {ratio(r, ref)} {agree}|")
    return head + "\n".join(rows) + "\n"


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def select_tools(spec: str | None) -> list[Tool]:
    """Tools by name (comma-separated; ``cat``, ``iter``, ``devnull`` as short names).

    By default every tool except ``sniparse -o /dev/null``.
    """
    if not spec:
        return [t for t in TOOLS if t.default]
    by = {t.name: t for t in TOOLS}
    out = []
    for name in spec.split(","):
        name = TOOL_NAMES.get(name.strip(), name.strip())
        if name not in by:
            raise SystemExit(f"unknown tool {name!r}; choose from {', '.join(by)}")
        out.append(by[name])
    return out


def run_benchmarks(captures: list[Capture], tools: list[Tool], workdir: Path,
                   sample: int) -> list[Result]:
    """Every tool on every capture; with ``--repeat N`` each runs N times in turn (tool by
    tool, round after round, so that a slow minute on a shared machine hits every tool alike)
    and its fastest run on the chosen clock is kept, as ``timeit`` does: the minimum is the
    run least disturbed by other work, for every tool alike."""
    best: dict[tuple[str, str], Result] = {}
    for round_ in range(REPEAT):
        for cap in captures:
            for tool in tools:
                _log(f"{cap.path.name}: {tool.name} ..."
                     + (f" (run {round_ + 1} of {REPEAT})" if REPEAT > 1 else ""))
                r = run_tool(tool, cap, workdir, sample=sample)
                _log(f"  {r.status} {r.wall:.2f} s wall, {r.cpu:.2f} s CPU, {r.rss_mb:.0f} MB"
                     + (f" ({r.error})" if r.error else ""))
                k = (cap.label, tool.name)
                old = best.get(k)
                if old is None or (r.status == "ok" and (old.status != "ok" or r.time < old.time)):
                    best[k] = r
    results = []
    for cap in captures:
        for tool in tools:
            r = best[(cap.label, tool.name)]
            _log(f"{cap.path.name}: {tool.name}: {r.status} {r.wall:.2f} s, {r.rss_mb:.0f} MB"
                 + (f" ({r.error})" if r.error else "")
                 + (f", agreement {r.agreement}" if r.agreement else ""))
            results.append(r)
    return results


def rss_mode(data_dir: Path, size: int, workdir: Path, mix: str = "bulk") -> str:
    """sniparse's peak RSS on a capture of ``size`` bytes and on one a tenth of it."""
    tools = [t for t in TOOLS if t.name in ("cat > /dev/null", "sniparse",
                                             "sniparse.iter_handshakes")]
    rows = ["| capture | file MB | tool | wall s | CPU s | MB/s | peak RSS MB | RSS / file size |",
            "|---|---:|---|---:|---:|---:|---:|---:|"]
    for s in (size // 10, size):
        cap = ensure_capture(data_dir, mix, "ether", size=s)
        for tool in tools:
            _log(f"{cap.path.name}: {tool.name} ...")
            r = run_tool(tool, cap, workdir)
            _log(f"  {r.status} {r.wall:.2f} s, {r.rss_mb:.0f} MB" + (f" ({r.error})" if r.error else ""))
            if r.status != "ok":
                rows.append(f"| {cap.label} | {cap.bytes / 1e6:.0f} | {tool.name} | {r.status} "
                            f"| | | | {r.error[:80].replace('|', '/')} |")
                continue
            rows.append(f"| {cap.label} | {cap.bytes / 1e6:.0f} | {tool.name} | {r.wall:.1f} | "
                        f"{r.cpu:.1f} | "
                        f"{_fmt(r.mbps, 1)} | {r.rss_mb:.0f} | "
                        f"{r.rss_mb * 1e6 / max(cap.bytes, 1) * 100:.1f} % |")
    return "\n".join(rows) + "\n"


def _build() -> str:
    """Which sniparse build the rows measured: compiled modules (mypyc) and C extension."""
    code = ("import sniparse, sniparse._compiled as c, sniparse._fastpath as f; "
            "print(c.is_compiled(), f.IMPLEMENTATION)")
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        return "sniparse build: unknown"
    mypyc = "compiled (mypyc)" if out[:1] == ["True"] else "pure Python"
    return f"sniparse build: modules {mypyc}, skip scan {out[1] if len(out) > 1 else '?'}"


def _precompile() -> None:
    """Write the byte code of sniparse's ``.py`` modules, as ``pip install`` does.

    A development checkout run with PYTHONDONTWRITEBYTECODE (or from a read-only tree)
    would otherwise compile its pure-Python modules (the CLI, the capture reader...) from
    source at every start, ~20 ms that an installed sniparse does not pay. The peers are
    installed packages and have their byte code already."""
    code = ("import compileall, os, sniparse; "
            "compileall.compile_dir(os.path.dirname(sniparse.__file__), quiet=2)")
    subprocess.run([sys.executable, "-c", code], capture_output=True, check=False)


def _machine() -> str:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"Machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, load average "
            f"at the end {load} (wall times stretch when other work shares the CPUs; "
            f"CPU s does less). {_build()}; the 'pure Python' row sets SNIPARSE_PURE=1.")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--packets", type=int, default=None,
                    help="packets per generated capture (default 500000; --quick: 30000)")
    ap.add_argument("--sample", type=int, default=None,
                    help="packets read by scapy and pyshark (default 20000; --quick: 3000)")
    ap.add_argument("--quick", action="store_true", help="small captures and samples")
    ap.add_argument("--mix", choices=("bulk", "handshake", "both"), default="both")
    ap.add_argument("--tools", help="comma-separated subset: cat,sniparse,iter,dpkt,tshark,"
                                    "pure,scapy,pyshark,devnull (devnull only when named)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--data-dir", type=Path, default=DATA)
    ap.add_argument("--json", type=Path, help="also write the raw results here")
    ap.add_argument("--rss", action="store_true",
                    help="measure sniparse's peak RSS on a large capture instead")
    ap.add_argument("--rss-size", type=gen_capture.parse_size, default=2_000_000_000,
                    help="size of the --rss capture (default 2GB)")
    ap.add_argument("--rss-mix", choices=("bulk", "handshake"), default="bulk",
                    help="traffic mix of the --rss captures (default bulk)")
    ap.add_argument("--link", choices=("ether", "sll2", "mixed"),
                    help="link type of both captures (default: bulk ether, handshake sll2)")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="base packets/s, MB/s and ratios on wall time (default) or on CPU "
                         "time (user + system, steadier on a busy machine)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="runs per tool and capture; the fastest is kept (default 1)")
    ap.add_argument("--timeout", type=float, default=3600.0,
                    help="seconds after which a tool's run is stopped and reported failed")
    a = ap.parse_args(argv)
    global TIMEOUT, CLOCK, REPEAT
    TIMEOUT, CLOCK, REPEAT = a.timeout, a.clock, max(1, a.repeat)
    packets = a.packets or (30_000 if a.quick else 500_000)
    sample = a.sample or (3_000 if a.quick else 20_000)
    a.data_dir.mkdir(parents=True, exist_ok=True)
    _precompile()
    with tempfile.TemporaryDirectory(dir=a.data_dir, prefix="run-") as td:
        workdir = Path(td)
        if a.rss:
            print(rss_mode(a.data_dir, a.rss_size, workdir, a.rss_mix))
            print(_machine())
            return 0
        mixes = ["bulk", "handshake"] if a.mix == "both" else [a.mix]
        # The bulk capture is Ethernet with VLAN tags; the handshake-heavy one is what
        # `tcpdump -i any` writes (LINUX_SLL2). Both are classic pcap, which every peer reads.
        links = {"bulk": a.link or "ether", "handshake": a.link or "sll2"}
        caps = [ensure_capture(a.data_dir, m, links[m], packets=packets, seed=a.seed)
                for m in mixes]
        results = run_benchmarks(caps, select_tools(a.tools), workdir, sample)
        if a.json:
            a.json.write_text(json.dumps([{
                "capture": r.capture.label, "tool": r.tool, "packets": r.packets,
                "bytes": r.bytes, "wall": r.wall, "rss_mb": r.rss_mb, "status": r.status,
                "error": r.error, "sample": r.sample, "agreement": r.agreement,
            } for r in results], indent=1))
    print(markdown_table(results))
    print(_machine() + f" Rates and ratios use {CLOCK} time"
          + (f", each tool's fastest of {REPEAT} runs" if REPEAT > 1 else "") + ". Rows marked '(first)' read only the first packets of the capture; "
          "their 'time / sniparse' (~) is extrapolated to the whole capture from packets/s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
