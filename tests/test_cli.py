"""The command line: exit codes, formats, filters, routing to the default command."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import sniparse.cli as cli_mod
from sniparse.cli import cli
from sniparse.errors import Issue, NotACaptureError
from sniparse.flows import Handshake
from sniparse.report import HANDSHAKE_COLUMNS, CaptureStats, Report

T0 = 1_700_000_000_000_000_000

# The Handshake field names the output formats promise (the public contract).
CONTRACT = [
    "ts_ns", "ts", "client_ip", "client_port", "server_ip", "server_port", "sni", "sni_status",
    "unknown_reason", "detail", "sslv2", "ech", "versions", "alpn", "ja3", "ja4", "segments",
    "hrr", "outcome", "alert", "outcome_ms", "conn_state", "history", "frame", "sni_raw",
    "proxy_client", "prelude", "ip_version", "vlan", "ja3_string", "ja4_r", "server_version",
]


def hs(client: str = "10.0.0.1", server: str = "10.0.0.9", port: int = 443, *,
       sni: str | None = None, status: str | None = None, outcome: str = "server_reset",
       ms: float | None = 0.3, t: float = 0.0, reason: str | None = None) -> Handshake:
    if status is None:
        status = "present" if sni else "absent"
    return Handshake(
        ts_ns=T0 + int(t * 1e9), client_ip=client, client_port=40000, server_ip=server,
        server_port=port, sni=sni, sni_status=status, unknown_reason=reason, detail=None,
        sslv2=False, ech=False, versions=("TLSv1.3", "TLSv1.2"), alpn=("h2", "http/1.1"),
        ja3="0" * 32, ja4="t13d1516h2_8daaf6152771_b0da82dd1658", segments=1, hrr=False,
        outcome=outcome, alert=None, outcome_ms=ms, conn_state="RSTR", history="ShADr",
        frame=4, sni_raw=sni.encode() if sni else None,
    )


HANDS = [
    hs(t=0), hs(client="35.191.3.4", t=1), hs(client="10.0.0.2", t=2),
    hs(sni="api.example.com", outcome="server_hello", ms=2.5, t=3),
    hs(sni="api.example.com", outcome="server_hello", ms=2.5, t=4, port=8443),
    hs(status="unknown", reason="truncated", outcome="no_response", ms=None, t=5),
]


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Replace the pipeline with one returning a synthetic report; records the call."""
    seen: dict[str, Any] = {"hands": list(HANDS)}

    def fake_analyze(source: Any, **kw: Any) -> Report:
        seen["source"] = source
        seen["kw"] = kw
        return Report.build(
            seen["hands"], [Issue("truncated", "pcap", "frame cut by the snaplen", 9, None, 4)],
            CaptureStats(files=("x.pcap",), frames=60),
        )

    monkeypatch.setattr(cli_mod, "analyze", fake_analyze)
    return seen


def run(*args: str, input: bytes | None = None) -> Any:
    return CliRunner().invoke(cli, list(args), input=input, prog_name="sniparse")


def test_text_verdict_first(fake: dict[str, Any]) -> None:
    r = run("cap.pcap")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0].startswith("VERDICT: 10.0.0.9:443 requires SNI")
    for title in ("Server endpoints", "Clients without SNI", "Capture problems", "Fix"):
        assert title in lines
    assert "Google Cloud load-balancer health check" in r.stdout
    assert "enableNonSniClient" in r.stdout
    assert fake["source"] == "cap.pcap"
    assert fake["kw"]["idle_timeout"] == 300.0
    assert "Handshakes" not in lines
    assert "\x1b[" not in r.stdout  # not a terminal: plain text


def test_flows_and_quiet(fake: dict[str, Any]) -> None:
    r = run("--flows", "cap.pcap")
    assert r.exit_code == 0
    body = r.stdout.split("\nHandshakes\n", 1)[1]
    assert body.count("10.0.0.9:") >= len(HANDS)
    q = run("-q", "cap.pcap")
    assert q.exit_code == 0
    assert all(line.startswith(("VERDICT:", "ALSO:", "  ")) for line in q.stdout.splitlines())
    assert all(len(line) <= 100 for line in q.stdout.splitlines())


def test_fail_on_no_sni_exit_3(fake: dict[str, Any]) -> None:
    assert run("--fail-on-no-sni", "cap.pcap").exit_code == 3
    fake["hands"] = [h for h in HANDS if not h.without_sni]
    r = run("--fail-on-no-sni", "cap.pcap")
    assert r.exit_code == 0
    # unknown hellos alone must never trigger it
    fake["hands"] = [hs(status="unknown", reason="gap")]
    assert run("--fail-on-no-sni", "cap.pcap").exit_code == 0


def test_fail_on_no_sni_respects_filters(fake: dict[str, Any]) -> None:
    assert run("--fail-on-no-sni", "--port", "8443", "cap.pcap").exit_code == 0


def test_usage_errors_exit_2(fake: dict[str, Any]) -> None:
    assert run().exit_code == 2
    assert run("--sni-status", "bogus", "cap.pcap").exit_code == 2
    assert run("--server", "10.0.0.1:70000", "cap.pcap").exit_code == 2
    assert run("--client", "nonsense", "cap.pcap").exit_code == 2
    assert run("--format", "xml", "cap.pcap").exit_code == 2
    assert run("--no-such-option", "cap.pcap").exit_code == 2


def test_not_a_capture_exit_1_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(source: Any, **kw: Any) -> Report:
        raise NotACaptureError(f"{source}: not a pcap or pcapng file")

    monkeypatch.setattr(cli_mod, "analyze", boom)
    r = run("notes.txt")
    assert r.exit_code == 1
    assert r.stdout == ""
    assert r.stderr.strip().splitlines() == [
        "sniparse: error: notes.txt: not a pcap or pcapng file"]


def test_text_file_end_to_end(tmp_path: Path) -> None:
    try:
        import sniparse.analyze  # noqa: F401
    except ImportError:
        pytest.skip("pipeline not importable yet")
    f = tmp_path / "notes.txt"
    f.write_text("this is not a capture\n" * 20)
    for args in ([str(f)], [str(tmp_path / "missing.pcap")], [str(tmp_path)]):
        r = run(*args)
        assert r.exit_code == 1, r.output
        assert "Traceback" not in r.output
        assert len(r.stderr.strip().splitlines()) == 1
        assert r.stderr.startswith("sniparse: error:")


def test_ndjson_one_object_per_handshake(fake: dict[str, Any]) -> None:
    r = run("--format", "ndjson", "cap.pcap")
    assert r.exit_code == 0
    lines = r.stdout.splitlines()
    assert len(lines) == len(HANDS)
    objs = [json.loads(line) for line in lines]
    for o in objs:
        assert list(o) == list(HANDSHAKE_COLUMNS)
        assert set(CONTRACT) <= set(o)
        assert "client_hello" not in o
    assert [o["sni_status"] for o in objs] == [h.sni_status for h in HANDS]
    assert objs[3]["alpn"] == ["h2", "http/1.1"]


def test_csv_same_columns(fake: dict[str, Any]) -> None:
    r = run("--format", "csv", "cap.pcap")
    assert r.exit_code == 0
    rows = list(csv.reader(io.StringIO(r.stdout)))
    assert rows[0] == list(HANDSHAKE_COLUMNS)
    assert len(rows) == 1 + len(HANDS)
    head = rows[0]
    first = dict(zip(head, rows[1]))
    assert first["sni_status"] == "absent" and first["sni"] == "" and first["outcome_ms"] == "0.3"
    assert dict(zip(head, rows[4]))["alpn"] == "h2;http/1.1"


def test_json_whole_report(fake: dict[str, Any]) -> None:
    r = run("--format", "json", "cap.pcap")
    assert r.exit_code == 0
    doc = json.loads(r.stdout)
    assert set(doc) >= {"verdicts", "summary", "servers", "clients", "handshakes", "issues",
                        "stats"}
    assert doc["verdicts"][0]["kind"] == "sni_required"
    assert len(doc["handshakes"]) == len(HANDS)
    assert doc["summary"]["unknown"] == 1 and doc["summary"]["without_sni"] == 3


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--client", "10.0.0.1"], 4),
        (["--client", "35.191.0.0/16"], 1),
        (["--client", "10.0.0.1", "--client", "10.0.0.2"], 5),
        (["--server", "10.0.0.9:8443"], 1),
        (["--server", "10.0.0.9"], 6),
        (["--server", "10.0.0.8"], 0),
        (["--port", "443"], 5),
        (["--sni-status", "absent"], 3),
        (["--sni-status", "absent", "--sni-status", "unknown"], 4),
        (["--outcome", "server_hello"], 2),
        (["--outcome", "server_reset", "--client", "10.0.0.2"], 1),
    ],
)
def test_filters(fake: dict[str, Any], args: list[str], expected: int) -> None:
    r = run("--format", "ndjson", *args, "cap.pcap")
    assert r.exit_code == 0, r.output
    assert len(r.stdout.splitlines()) == expected


def test_filter_recomputes_verdict(fake: dict[str, Any]) -> None:
    r = run("--port", "443", "--sni-status", "absent", "cap.pcap")
    assert r.stdout.splitlines()[0].startswith("VERDICT: 10.0.0.9:443 probably requires SNI")


def test_output_file(fake: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    r = run("--format", "json", "-o", str(out), "cap.pcap")
    assert r.exit_code == 0 and r.stdout == ""
    assert json.loads(out.read_text())["summary"]["handshakes"] == len(HANDS)
    txt = tmp_path / "r.txt"
    assert run("--output", str(txt), "cap.pcap").exit_code == 0
    assert txt.read_text().startswith("VERDICT:")


def test_several_files_and_stdin(fake: dict[str, Any]) -> None:
    assert run("a.pcap", "b.pcap").exit_code == 0
    assert fake["source"] == ["a.pcap", "b.pcap"]
    assert run("--idle-timeout", "30", "-", input=b"\xd4\xc3\xb2\xa1").exit_code == 0
    assert hasattr(fake["source"], "read")
    assert fake["kw"]["idle_timeout"] == 30.0
    assert run("-", "-").exit_code == 2


def test_routing_subcommands_and_default(fake: dict[str, Any]) -> None:
    r = run("probe", "--help")
    assert r.exit_code == 0 and "HOST[:PORT]" in r.stdout
    r = run("logs", "--help")
    assert r.exit_code == 0 and "FILE..." in r.stdout
    r = run("./probe")
    assert r.exit_code == 0 and fake["source"] == "./probe"
    h = run("--help")
    assert h.exit_code == 0
    assert "Usage: sniparse [OPTIONS] CAPTURE..." in h.stdout
    assert "./probe" in h.stdout and "3 clients without SNI" in h.stdout


def test_probe_missing_target_is_usage_error() -> None:
    assert run("probe").exit_code == 2


def test_python_dash_m() -> None:
    p = subprocess.run([sys.executable, "-m", "sniparse", "--help"], check=False,
                       capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0 and "--fail-on-no-sni" in p.stdout


def test_streamed_formats_load_no_text_report(fixtures_dir: Path, tmp_path: Path) -> None:
    """--format ndjson / csv / json import neither the text report nor what only it (or
    the CSV fallback, the medians, the notebook view) uses; --format text does."""
    cap = str(fixtures_dir / "scenarios" / "accepts_both.pcap")
    code = (
        "import sys\n"
        "from sniparse.cli import main\n"
        "try:\n"
        "    main(sys.argv[1:])\n"
        "except SystemExit:\n"
        "    pass\n"
        "names = ('sniparse._textreport', 'textwrap', 'rich', 'csv', 'html', 'statistics')\n"
        "print(' '.join(n for n in names if n in sys.modules))\n"
    )

    def loaded(*args: str) -> set[str]:
        p = subprocess.run([sys.executable, "-c", code, cap, *args], check=False,
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        return set(p.stdout.split())

    for fmt in ("ndjson", "csv", "json"):
        out = str(tmp_path / f"out.{fmt}")
        assert loaded("--format", fmt, "-o", out) == set(), fmt
    assert {"sniparse._textreport", "textwrap"} <= loaded("-o", str(tmp_path / "out.txt"))


def test_command_collects_young_objects_less_often(fixtures_dir: Path, tmp_path: Path) -> None:
    """The command raises the young generation's threshold and freezes the start-up objects;
    the library leaves the collector as the caller set it."""
    cap = str(fixtures_dir / "scenarios" / "accepts_both.pcap")
    code = (
        "import gc, sys\n"
        "import sniparse\n"
        "sniparse.analyze(sys.argv[1])\n"
        "before = gc.get_threshold()\n"
        "from sniparse.cli import main, _GC_YOUNG_THRESHOLD\n"
        "try:\n"
        "    main(sys.argv[1:])\n"
        "except SystemExit:\n"
        "    pass\n"
        "after = gc.get_threshold()\n"
        "print(before == (700, 10, 10), after == (_GC_YOUNG_THRESHOLD, 10, 10),\n"
        "      gc.get_freeze_count() > 0)\n"
    )
    p = subprocess.run([sys.executable, "-c", code, cap, "--format", "ndjson", "-o",
                        str(tmp_path / "out.ndjson")],
                       check=False, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["True", "True", "True"]


@pytest.mark.parametrize(
    ("name", "verdict", "code"),
    [
        ("sni_required_reset.pcap", "sni_required", 3),
        ("sni_required_reset_any.pcap", "sni_required", 3),
        ("ipv6_sni_required.pcap", "sni_required", 3),
        ("nginx_reject_handshake.pcap", "sni_required", 3),
        ("haproxy_strict_sni.pcap", "sni_required", 3),
        ("accepts_both.pcap", "non_sni_served", 3),
        # a short snaplen hides the hellos: never "without SNI", so never status 3
        ("snaplen96.pcap", "unknown_only", 0),
    ],
)
def test_end_to_end_scenarios(fixtures_dir: Path, name: str, verdict: str, code: int) -> None:
    cap = fixtures_dir / "scenarios" / name
    if not cap.exists():
        pytest.skip(f"{name} not recorded yet")
    j = run("--format", "json", "--fail-on-no-sni", str(cap))
    assert j.exit_code == code, j.output
    doc = json.loads(j.stdout)
    assert doc["verdicts"][0]["kind"] == verdict
    n = run("--format", "ndjson", str(cap))
    rows = [json.loads(line) for line in n.stdout.splitlines()]
    assert len(rows) == len(doc["handshakes"]) == doc["summary"]["handshakes"]
    assert sum(r["sni_status"] in ("absent", "empty") for r in rows) == doc["summary"][
        "without_sni"]
    t = run(str(cap))
    assert t.exit_code == 0 and t.stdout.startswith("VERDICT:")
    assert doc["verdicts"][0]["server"] in t.stdout.splitlines()[0]



class _FakeAttempt:
    def __init__(self, result: str) -> None:
        self.result = result


class _FakeProbe:
    def __init__(self, supported: bool, result: str = "server_reset") -> None:
        self.non_sni_supported = supported
        self.without_sni = _FakeAttempt("server_hello" if supported else result)

    def to_dict(self) -> dict[str, Any]:
        return {"non_sni_supported": self.non_sni_supported}

    def render_text(self) -> str:
        return f"supported={self.non_sni_supported}\n"


@pytest.mark.parametrize(
    ("supported", "result", "flag", "code"),
    [
        (False, "server_reset", True, 3),
        (False, "server_reset", False, 0),
        (True, "server_hello", True, 0),
        (False, "connect_error", True, 1),
    ],
)
def test_probe_exit_codes(monkeypatch: pytest.MonkeyPatch, supported: bool, result: str,
                          flag: bool, code: int) -> None:
    probe_mod = pytest.importorskip("sniparse.probe")
    calls: list[tuple[str, dict[str, Any]]] = []

    def fake_probe(target: str, **kw: Any) -> _FakeProbe:
        calls.append((target, kw))
        return _FakeProbe(supported, result)

    monkeypatch.setattr(probe_mod, "probe", fake_probe)
    args = ["probe", "api.example.test:8443", "--sni", "api.example.test", "--connect",
            "127.0.0.1", "--timeout", "2", "--format", "json"]
    r = run(*args, *(["--fail-on-no-sni"] if flag else []))
    assert r.exit_code == code, r.output
    assert json.loads(r.stdout) == {"non_sni_supported": supported}
    assert calls == [("api.example.test:8443",
                      {"sni": "api.example.test", "connect": "127.0.0.1", "timeout": 2.0})]


def test_probe_refused_port_real() -> None:
    pytest.importorskip("sniparse.probe")
    r = run("probe", "127.0.0.1:1", "--timeout", "1")
    assert r.exit_code == 1
    assert "Traceback" not in r.output
    bad = run("probe", "bad target:xx")
    assert bad.exit_code == 2 and bad.stderr.startswith("sniparse: error:")


def test_logs_and_ingress_wiring(fake: dict[str, Any], tmp_path: Path) -> None:
    log = tmp_path / "envoy.log"
    log.write_text("")
    try:
        import sniparse.ingress  # noqa: F401
    except ImportError:
        # Not built yet: the commands must fail cleanly, never with a traceback.
        for args in (["logs", str(log)], ["--ingress-log", str(log), "cap.pcap"]):
            r = run(*args)
            assert r.exit_code == 1 and "not available" in r.stderr
            assert "Traceback" not in r.output
        return
    envoy = Path(__file__).resolve().parent.parent / "fixtures" / "ingress" / "envoy_text.log"
    if not envoy.exists():
        pytest.skip("no ingress log fixture")
    r = run("--format", "json", "--ingress-log", str(envoy), "cap.pcap")
    assert r.exit_code == 0, r.output
    ing = json.loads(r.stdout)["ingress"]
    assert {"entries", "filter_chain_not_found", "matched", "unmatched", "skew_ms"} <= set(ing)
    assert ing["filter_chain_not_found"] >= 1
    t = run("--ingress-log", str(envoy), "cap.pcap")
    assert t.exit_code == 0 and "\nIngress log\n" in t.stdout
    lg = run("logs", str(envoy))
    assert lg.exit_code == 0, lg.output
    assert lg.stdout.strip()
    lj = run("logs", "--format", "json", str(envoy))
    assert lj.exit_code == 0 and isinstance(json.loads(lj.stdout), dict)
    assert run("logs", str(tmp_path / "missing.log")).exit_code == 1


def test_progress_bar_starts_late_and_closes() -> None:
    p = cli_mod._Progress()
    p(10, 100)
    assert p.bar is None  # a short read never shows a bar
    p.start -= 10
    p(50, 100)
    assert p.bar is not None
    p(100, 0)  # total unknown (standard input)
    p.close()
    assert p.bar is None


def test_terminal_rendering(capsys: pytest.CaptureFixture[str],
                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")
    report = Report.build(HANDS, [Issue("gap", "tcp", "segment missing", 7, None, 2)])
    cli_mod._render_rich(report, flows=True, quiet=False, ingress=None)
    out = capsys.readouterr().out
    assert out.startswith("VERDICT: 10.0.0.9:443 requires SNI")
    for title in ("Server endpoints", "Clients without SNI", "Capture problems", "Handshakes",
                  "Fix"):
        assert title in out
    assert "\x1b[3" not in out  # NO_COLOR: no colour codes
    assert "35.191.3.4" in out


def test_version() -> None:
    r = run("--version")
    assert r.exit_code == 0 and r.stdout.startswith("sniparse ")
