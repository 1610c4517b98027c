"""Ingress access logs: every line format, summaries, and correlation with handshakes."""

from __future__ import annotations

import gzip
import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sniparse.flows import Handshake
from sniparse.ingress import (
    MAX_LINE,
    IngressEntry,
    IngressLogError,
    correlate,
    parse_line,
    parse_time,
    read_ingress_log,
    split_address,
    summarize,
)

_t0 = parse_time("2024-05-01T10:00:00Z")
assert _t0 is not None
T0: int = _t0
MS = 1_000_000


def hs(
    client: str,
    port: int,
    ts_ns: int,
    *,
    sni: str | None = None,
    status: str | None = None,
    outcome: str = "server_reset",
    outcome_ms: float | None = 0.2,
    server: str = "10.0.0.5",
    server_port: int = 443,
    proxy_client: str | None = None,
) -> Handshake:
    """A synthetic handshake record, every field filled."""
    st_ = status or ("present" if sni else "absent")
    return Handshake(
        ts_ns=ts_ns,
        client_ip=client,
        client_port=port,
        server_ip=server,
        server_port=server_port,
        sni=sni,
        sni_status=st_,
        unknown_reason=None,
        detail=None,
        sslv2=False,
        ech=False,
        versions=("TLSv1.3", "TLSv1.2"),
        alpn=("h2", "http/1.1"),
        ja3=None,
        ja4=None,
        segments=1,
        hrr=False,
        outcome=outcome,
        alert=None,
        outcome_ms=outcome_ms,
        conn_state="RSTR" if outcome == "server_reset" else "SF",
        history="ShADar" if outcome == "server_reset" else "ShADadFf",
        proxy_client=proxy_client,
    )


# --------------------------------------------------------------------------- small parsers


@pytest.mark.parametrize(
    "text,ns",
    [
        ("2024-05-01T10:00:00Z", T0),
        ("2024-05-01T10:00:00.123Z", T0 + 123 * MS),
        ("2024-05-01T10:00:00.123456789Z", T0 + 123_456_789),
        ("2024-05-01T12:00:00.5+02:00", T0 + 500 * MS),
        ("2024-05-01T09:30:00-0030", T0),
        ("2024-05-01 10:00:00", T0),
        ("1714557600", T0),
        ("1714557600.25", T0 + 250 * MS),
        (1714557600123, T0 + 123 * MS),
        (1714557600123456, T0 + 123_456_000),
        (1714557600123456789, T0 + 123_456_789),
    ],
)
def test_parse_time(text: Any, ns: int) -> None:
    assert parse_time(text) == ns


@pytest.mark.parametrize("text", ["-", "", None, "yesterday", "2024-13-01T00:00:00Z", True, -5,
                                  float("nan")])
def test_parse_time_rejects(text: Any) -> None:
    assert parse_time(text) is None


@pytest.mark.parametrize(
    "text,want",
    [
        ("10.1.2.3:51234", ("10.1.2.3", 51234)),
        ("[::1]:443", ("::1", 443)),
        ("[fd00:0:0::7]:1", ("fd00::7", 1)),
        ("[::ffff:10.1.2.3]:80", ("10.1.2.3", 80)),
        ("10.1.2.3", ("10.1.2.3", None)),
        ("fd00::7", ("fd00::7", None)),
        ("envoy://internal_client_address/", (None, None)),
        ("10.1.2.3:99999", (None, None)),
        ("host:80", (None, None)),
        ("10.1.2.3:\u00b2", (None, None)),
        ("[::1]:\u00b2", ("::1", None)),
        (None, (None, None)),
    ],
)
def test_split_address(text: str | None, want: tuple[str | None, int | None]) -> None:
    assert split_address(text) == want


# --------------------------------------------------------------------------- line formats


def test_istio_json_with_kubectl_prefixes(fixtures_dir: Path) -> None:
    log = read_ingress_log(fixtures_dir / "ingress" / "istio_json_kubectl.log")
    assert len(log.entries) == 5
    assert log.lines == 9  # the blank line is not counted
    assert log.unparsed == 4  # proxy diagnostics, a cut JSON line, a JSON non-entry, junk
    assert [n for _s, n, _t in log.unparsed_examples] == [1, 6, 7, 10]
    e = log.entries[0]
    assert e.client_ip == "10.20.1.7" and e.client_port == 51234
    assert e.ts_ns == parse_time("2024-05-01T10:00:00.118Z")  # start_time, not kubectl's time
    assert e.details == "filter_chain_not_found" and e.no_filter_chain
    assert e.flags == "NR"
    assert e.sni is None
    assert e.local_address == "10.8.0.12:8443"
    assert e.pod == "istio-ingressgateway-6b7c9f5d48-qz7lm"
    assert e.raw_line_no == 2
    assert e.response_code == 0
    ok = log.entries[1]
    assert ok.sni == "api.example.test" and not ok.no_filter_chain
    assert ok.upstream_host == "10.8.3.21:8080" and ok.response_code == 200
    assert ok.flags is None  # "-" means absent
    v6 = log.entries[-1]
    assert (v6.client_ip, v6.client_port) == ("fd00:20::7", 51302)
    assert v6.client == "[fd00:20::7]:51302"
    assert v6.raw_line_no == 8  # line 9 is blank, line 10 junk


def test_apigee_json(fixtures_dir: Path) -> None:
    log = read_ingress_log(str(fixtures_dir / "ingress" / "apigee_ingress_kubectl.log"))
    assert len(log.entries) == 4 and log.unparsed == 1
    fc = [e for e in log.entries if e.no_filter_chain]
    assert [(e.client_ip, e.client_port) for e in fc] == [
        ("10.20.1.7", 51240), ("10.20.4.33", 60422), ("10.20.1.12", 33016)]
    assert all(e.sni is None and e.flags == "NR" for e in fc)  # "-" and null both absent
    good = next(e for e in log.entries if not e.no_filter_chain)
    assert good.sni == "api.example.test" and good.response_code == 201
    assert good.details == "via_upstream"
    assert good.upstream_host == "10.8.5.14:8443"
    assert good.pod == "apigee-ingressgateway-hybrid-7d9f8c6b5-x2k4p"


def test_envoy_text_format(fixtures_dir: Path) -> None:
    log = read_ingress_log(fixtures_dir / "ingress" / "envoy_text.log")
    assert len(log.entries) == 6 and log.unparsed == 2
    e = log.entries
    assert all(x.format == "text" for x in e)
    assert (e[0].client_ip, e[0].client_port) == ("10.1.2.3", 51234)
    assert e[0].details == "filter_chain_not_found" and e[0].flags == "NR"
    assert e[0].local_address == "10.0.0.5:443" and e[0].sni is None
    assert e[0].ts_ns == parse_time("2024-05-01T10:00:00.123Z")
    assert e[0].response_code == 0
    assert e[1].sni == "api.example.test" and e[1].details == "via_upstream"
    assert (e[1].client_ip, e[1].client_port) == ("10.1.2.4", 39004)
    assert e[1].upstream_host == "10.8.3.21:8080"
    assert (e[3].client_ip, e[3].client_port) == ("fd00::1:3", 51250)
    # Envoy's own default format: no addresses, details still read.
    assert e[4].flags == "UF,URX" and e[4].client_ip is None
    assert e[4].details == "upstream_reset_before_response_started{connection_failure}"
    assert e[4].upstream_host == "10.8.3.22:8080"
    # The pre-1.17 format has no details column: byte counts are not mistaken for one.
    assert e[5].details is None and e[5].response_code == 200


def test_brief_example_line() -> None:
    line = ('[2024-05-01T10:00:00.123Z] "- - -" 0 NR filter_chain_not_found - "-" 0 0 0 - '
            '"-" "-" "-" "-" "-" - - 10.0.0.5:443 10.1.2.3:51234 - -')
    e = parse_line(line, 7, "x")
    assert e is not None
    assert (e.client_ip, e.client_port, e.local_address) == ("10.1.2.3", 51234, "10.0.0.5:443")
    assert e.no_filter_chain and e.raw_line_no == 7 and e.source == "x"


@pytest.mark.parametrize(
    "prefix",
    [
        "",
        "2024-05-01T10:00:09.999999999Z ",
        "[pod/gw-1/istio-proxy] ",
        "[pod/gw-1/istio-proxy] 2024-05-01T10:00:09.999999999Z ",
        "2024-05-01T10:00:09.999999999Z [pod/gw-1/istio-proxy] ",
        "\ufeff",
    ],
)
def test_prefixes(prefix: str) -> None:
    obj = {"downstream_remote_address": "10.1.1.1:1000", "response_flags": "NR",
           "connection_termination_details": "filter_chain_not_found"}
    e = parse_line(prefix + json.dumps(obj))
    assert e is not None and e.client_port == 1000 and e.no_filter_chain
    assert e.details == "filter_chain_not_found"
    # Without start_time, kubectl's --timestamps time is the entry's time.
    if "10:00:09" in prefix:
        assert e.ts_ns == parse_time("2024-05-01T10:00:09.999999999Z")
    else:
        assert e.ts_ns is None
    assert (e.pod == "gw-1") == ("pod/" in prefix)


def test_json_field_aliases() -> None:
    e = parse_line(json.dumps({
        "timestamp": "2024-05-01T10:00:00Z", "client_ip": "10.9.9.9", "client_port": "4242",
        "sni_host": "a.example", "upstream_response_flags": "UF", "status": "503",
    }))
    assert e is not None
    assert (e.client_ip, e.client_port, e.sni, e.flags, e.response_code) == (
        "10.9.9.9", 4242, "a.example", "UF", 503)
    assert e.ts_ns == T0
    # An IP-only key borrows the port of another key naming the same IP.
    e = parse_line(json.dumps({"remote_address": "10.9.9.9",
                               "downstream_peer_address": "10.9.9.9:5151"}))
    assert e is not None and (e.client_ip, e.client_port) == ("10.9.9.9", 5151)
    # The direct peer wins; the rewritten one is kept as an alternative.
    e = parse_line(json.dumps({"downstream_direct_remote_address": "10.0.0.2:700",
                               "downstream_remote_address": "203.0.113.9:800"}))
    assert e is not None and e.client == "10.0.0.2:700"
    assert e.alt_clients == (("203.0.113.9", 800),)
    # A Cloud Logging export wraps the entry.
    e = parse_line(json.dumps({"jsonPayload": {"remote_address": "10.1.1.1:9"}}))
    assert e is not None and e.client_port == 9


@pytest.mark.parametrize("line", ["", "{}", "[]", '{"level":"info"}', "[1, 2]", "{not json",
                                  '"str"', "[2024-05-01T10:00:00Z]", "[2024-05-01T10:00:00Z] x"])
def test_not_entries(line: str) -> None:
    assert parse_line(line) is None


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_parse_line_never_raises(line: str) -> None:
    e = parse_line(line)
    assert e is None or isinstance(e, IngressEntry)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(
    st.sampled_from(["start_time", "downstream_remote_address", "remote_address", "client_ip",
                     "requested_server_name", "response_flags", "response_code", "status",
                     "response_code_details", "client_port", "jsonPayload"]),
    st.one_of(st.none(), st.integers(), st.floats(), st.text(max_size=40), st.booleans(),
              st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=5),
                                                                   st.integers(), max_size=2)),
    max_size=8,
))
def test_parse_json_values_never_raise(obj: dict[str, Any]) -> None:
    parse_line(json.dumps(obj))


# --------------------------------------------------------------------------- reading


def test_sources_list_streams_gzip_and_errors(tmp_path: Path, fixtures_dir: Path) -> None:
    text = (fixtures_dir / "ingress" / "envoy_text.log").read_bytes()
    gz = tmp_path / "rotated.log.gz"
    gz.write_bytes(gzip.compress(text))
    log = read_ingress_log([gz, io.BytesIO(text), io.StringIO(text.decode())])
    assert len(log.entries) == 18 and log.unparsed == 6
    assert log.sources[0] == str(gz)
    assert {e.source for e in log.entries} == {str(gz), "<stream>"}
    with pytest.raises(IngressLogError):
        read_ingress_log(tmp_path / "missing.log")
    with pytest.raises(IngressLogError):
        read_ingress_log(tmp_path)  # a directory


def test_long_line_is_skipped_and_counted() -> None:
    ok = '{"remote_address":"10.0.0.1:1"}\n'
    data = ok + '{"x":"' + "a" * (3 * MAX_LINE) + '"}\n' + ok
    log = read_ingress_log(io.StringIO(data))
    assert len(log.entries) == 2 and log.unparsed == 1
    assert [e.raw_line_no for e in log.entries] == [1, 3]
    log = read_ingress_log(io.BytesIO(ok.encode() + b"b" * (2 * MAX_LINE)))  # no final newline
    assert len(log.entries) == 1 and log.unparsed == 1


def test_non_utf8_bytes_are_replaced() -> None:
    log = read_ingress_log(io.BytesIO(b'{"remote_address":"10.0.0.1:1","sni_host":"x\xff"}\n\xfe\xfe\n'))
    assert len(log.entries) == 1 and log.unparsed == 1
    assert log.entries[0].sni == "x\ufffd"


# --------------------------------------------------------------------------- summary


def test_summarize(fixtures_dir: Path) -> None:
    d = fixtures_dir / "ingress"
    log = read_ingress_log([d / "istio_json_kubectl.log", d / "apigee_ingress_kubectl.log"])
    s = summarize(log)
    assert s.entries == 9 and s.unparsed == 5 and s.lines == 14
    assert s.filter_chain_not_found == 7
    assert dict(s.by_details)["filter_chain_not_found"] == 7
    assert dict(s.by_details)["via_upstream"] == 2
    assert dict(s.by_flags) == {"NR": 7, "-": 2}
    assert dict(s.by_sni) == {"-": 7, "api.example.test": 2}
    assert s.without_sni == 7
    top = s.no_chain_clients[0]
    assert (top.ip, top.count) == ("10.20.1.7", 3)
    assert top.first_ns == parse_time("2024-05-01T10:00:00.118Z")
    assert top.last_ns == parse_time("2024-05-01T10:00:01.204Z")
    assert top.local_addresses == ("10.8.0.12:8443",)
    assert [c.ip for c in s.no_chain_clients] == [
        "10.20.1.7", "10.20.4.33", "10.20.1.12", "fd00:20::7"]
    assert dict(s.no_chain_listeners)["10.8.0.12:8443"] == 3
    dd = s.to_dict()
    assert json.loads(json.dumps(dd)) == dd
    assert dd["filter_chain_not_found"] == 7 and dd["entries"] == 9
    assert dd["filter_chain_not_found_clients"][0] == {
        "ip": "10.20.1.7", "count": 3, "first": "2024-05-01T10:00:00.118000Z",
        "last": "2024-05-01T10:00:01.204000Z", "local_addresses": ["10.8.0.12:8443"]}
    text = s.render_text()
    assert text.startswith("7 of 9 connections were refused with filter_chain_not_found")
    assert "enableNonSniClient" in text and "10.20.4.33" in text


def test_summarize_clean_log() -> None:
    s = summarize(read_ingress_log(io.StringIO('{"remote_address":"10.0.0.1:1","sni_host":"a"}\n')))
    assert s.filter_chain_not_found == 0 and s.without_sni == 0
    assert s.render_text().startswith("No filter_chain_not_found")


# --------------------------------------------------------------------------- correlation


def _entry(client: str, port: int | None, ts_ns: int | None, *, sni: str | None = None,
           fcnf: bool = True, line: int = 1) -> IngressEntry:
    return IngressEntry(ts_ns, client, port, sni, "filter_chain_not_found" if fcnf else
                        "via_upstream", "NR" if fcnf else None, "10.0.0.5:443", line, source="t")


def test_correlate_with_skew_and_both_unmatched_sides() -> None:
    skew = 1234 * MS  # the ingress clock runs 1.234 s ahead of the capture host
    flows = [
        hs("10.1.2.3", 51234, T0 + 100 * MS),
        hs("10.1.2.3", 51240, T0 + 700 * MS),
        hs("10.1.2.4", 39004, T0 + 300 * MS, sni="api.example.test", outcome="server_hello"),
        hs("10.1.2.3", 51260, T0 + 900 * MS),  # a reset the log does not show
        hs("10.1.2.3", 51299, T0 + 3600_000 * MS),  # a reset long after the log ends
    ]
    entries = [
        _entry("10.1.2.3", 51234, T0 + 100 * MS + skew + 3 * MS, line=1),
        _entry("10.1.2.4", 39004, T0 + 300 * MS + skew - 2 * MS, sni="api.example.test",
               fcnf=False, line=2),
        _entry("10.1.2.3", 51240, T0 + 700 * MS + skew + 1 * MS, line=3),
        _entry("10.1.2.9", 40000, T0 + 800 * MS + skew, line=4),  # never captured
        _entry("10.1.2.3", 51234, T0 + 100 * MS + skew + 60_000 * MS, line=5),  # port reuse, later
    ]
    c = correlate(entries, flows, max_skew_ms=5000)
    assert len(c.matched) == 3
    assert c.skew_ms == pytest.approx(1235.0)
    assert [m.entry.raw_line_no for m in c.matched] == [1, 2, 3]
    assert [m.handshake.client_port for m in c.matched] == [51234, 39004, 51240]
    assert [e.raw_line_no for e in c.unmatched] == [4, 5]
    assert [h.client_port for h in c.resets_without_entry] == [51260]
    assert not c.disagreements
    d = c.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert (d["entries"], d["filter_chain_not_found"], d["matched"], d["unmatched"]) == (5, 4, 3, 2)
    assert d["skew_ms"] == pytest.approx(1235.0)
    assert d["filter_chain_not_found_matched"] == 2
    assert d["filter_chain_not_found_without_sni"] == 2
    assert d["filter_chain_not_found_reset"] == 2
    assert d["resets_without_entry"] == 1
    assert len(d["matches"]) == 3 and len(d["unmatched_entries"]) == 2
    text = c.render_text()
    assert "clock skew +1235.0 ms" in text
    assert "2 of 2 matched connections sent no SNI, 2 of them reset by the server" in text
    assert "10.1.2.9:40000" in text and "10.1.2.3:51260" in text


def test_correlate_picks_nearest_after_skew_among_reused_ports() -> None:
    # The same client port used three times within the window: each entry must pair with
    # its own connection once the skew is known, not with the raw-nearest one.
    skew = 400 * MS
    flows = [hs("10.0.0.1", 5000, T0 + k * 500 * MS) for k in range(3)]
    entries = [_entry("10.0.0.1", 5000, h.ts_ns + skew, line=i) for i, h in enumerate(flows)]
    c = correlate(list(reversed(entries)), flows, max_skew_ms=2000)
    assert len(c.matched) == 3 and not c.unmatched
    for m in c.matched:
        assert m.delta_ms == pytest.approx(400.0)
    assert c.skew_ms == pytest.approx(400.0)


def test_correlate_window_is_respected() -> None:
    flows = [hs("10.0.0.1", 5000, T0)]
    c = correlate([_entry("10.0.0.1", 5000, T0 + 6000 * MS)], flows, max_skew_ms=5000)
    assert not c.matched and len(c.unmatched) == 1 and c.skew_ms is None
    assert "No log entry matched" in c.render_text()
    c = correlate([_entry("10.0.0.1", 5000, T0 + 6000 * MS)], flows, max_skew_ms=7000)
    assert len(c.matched) == 1 and c.skew_ms == pytest.approx(6000.0)


def test_disagreements() -> None:
    flows = [
        hs("10.0.0.1", 1, T0, sni="foo.example"),  # SNI sent, no chain matched
        hs("10.0.0.1", 2, T0),  # log claims a name, capture has none
        hs("10.0.0.1", 3, T0, sni="a.example", outcome="server_hello"),
        hs("10.0.0.1", 4, T0, sni="b.example", outcome="server_hello"),
        hs("10.0.0.1", 5, T0, status="unknown"),  # cut hello: nothing to disagree about
        hs("10.0.0.1", 6, T0, sni="API.Example.", outcome="server_hello"),
    ]
    entries = [
        _entry("10.0.0.1", 1, T0),
        _entry("10.0.0.1", 2, T0, sni="x.example", fcnf=False),
        _entry("10.0.0.1", 3, T0),  # fcnf, but the capture shows a ServerHello
        _entry("10.0.0.1", 4, T0, sni="c.example", fcnf=False),
        _entry("10.0.0.1", 5, T0),
        _entry("10.0.0.1", 6, T0, sni="api.example", fcnf=False),  # same name, other spelling
    ]
    c = correlate(entries, flows)
    notes = {m.handshake.client_port: m.note for m in c.matched}
    assert notes[1] == "SNI sent (foo.example) but no filter chain matched it"
    assert notes[2] is not None and "x.example" in notes[2] and "had none (absent)" in notes[2]
    assert notes[3] is not None and "SNI sent (a.example)" in notes[3]
    assert notes[4] is not None and "c.example" in notes[4] and "b.example" in notes[4]
    assert notes[5] is None and notes[6] is None
    assert len(c.disagreements) == 4
    assert c.to_dict()["disagreements"] == 4
    assert "SNI sent (foo.example) but no filter chain matched it" in c.render_text()
    # A log entry without SNI and no filter-chain story, against a hello with SNI:
    c = correlate([_entry("10.0.0.1", 3, T0, fcnf=False)], flows)
    assert c.matched[0].note == "the log shows no SNI but the ClientHello carried a.example"
    # fcnf against a ServerHello with no SNI sent: the outcome disagrees.
    c = correlate([_entry("10.0.0.9", 9, T0)], [hs("10.0.0.9", 9, T0, outcome="server_hello")])
    assert c.matched[0].note == "the log says filter_chain_not_found but the capture shows a ServerHello"


def test_ip_only_untimed_and_proxy_entries() -> None:
    flows = [
        hs("10.0.0.1", 1111, T0),
        hs("10.0.0.2", 2222, T0 + 50 * MS),
        hs("192.168.0.10", 3333, T0 + 80 * MS, proxy_client="203.0.113.5:4444"),
        hs("10.0.0.3", 5555, T0), hs("10.0.0.3", 5555, T0 + 10_000 * MS),
    ]
    entries = [
        _entry("10.0.0.1", None, T0 + 2 * MS, line=1),  # IP only: matched by IP and time
        _entry("10.0.0.2", 2222, None, line=2),  # no time, one candidate: matched
        _entry("203.0.113.5", 4444, T0 + 81 * MS, line=3),  # the PROXY protocol client
        _entry("10.0.0.3", 5555, None, line=4),  # no time, two candidates: ambiguous
        IngressEntry(T0, None, None, None, "filter_chain_not_found", "NR", None, 5),
    ]
    c = correlate(entries, flows)
    got = {m.entry.raw_line_no: (m.handshake.client_port, m.by_port) for m in c.matched}
    assert got == {1: (1111, False), 2: (2222, True), 3: (3333, True)}
    assert sorted(e.raw_line_no for e in c.unmatched) == [4, 5]
    assert c.no_address == 1
    assert c.skew_ms == pytest.approx(1.5)  # median over the timed matches (2 ms and 1 ms)


def test_correlate_fixture_log_with_synthetic_capture(fixtures_dir: Path) -> None:
    log = read_ingress_log(fixtures_dir / "ingress" / "envoy_text.log")
    skew = -250 * MS  # this time the ingress is behind
    flows = [
        hs(e.client_ip, e.client_port, e.ts_ns - skew + 2 * MS,
           sni=e.sni, outcome="server_hello" if e.sni else "server_reset")
        for e in log.entries
        if e.client_ip is not None and e.client_port is not None and e.ts_ns is not None
    ]
    assert len(flows) == 4
    c = correlate(log, flows)
    assert len(c.matched) == 4 and c.skew_ms == pytest.approx(-252.0)
    assert c.filter_chain_not_found == 3
    assert len(c.unmatched) == 2 and c.no_address == 2
    assert not c.disagreements and not c.resets_without_entry


# --------------------------------------------------------------------------- end to end


def _check_scenario(log_path: Path, handshakes: list[Handshake]) -> None:
    log = read_ingress_log(log_path)
    assert log.unparsed == 1  # the proxy's "ready" line
    c = correlate(log, handshakes)
    # The generator shifts the log by +37.5 ms and prints the accept time to the ms; on
    # loopback the hello follows the accept by a few ms at most.
    assert c.skew_ms is not None and 27.5 <= c.skew_ms <= 38.5
    assert [e.client_port for e in c.unmatched] == [1]  # the connection the capture never saw
    assert len(c.matched) == len(log.entries) - 1
    assert not c.disagreements
    for m in c.matched:
        if m.entry.no_filter_chain:
            assert m.handshake.sni_status in ("absent", "empty")
            assert m.handshake.outcome == "server_reset"
        else:
            assert m.handshake.sni == m.entry.sni
            assert m.handshake.outcome != "server_reset"
    assert len(c.resets_without_entry) == 1  # the one left out of the log
    assert c.resets_without_entry[0].without_sni
    matched_ports = {m.handshake.client_port for m in c.matched}
    assert c.resets_without_entry[0].client_port not in matched_ports
    d = c.to_dict()
    assert d["filter_chain_not_found"] == d["filter_chain_not_found_reset"] + 1
    text = c.render_text()
    assert "filter_chain_not_found confirmed by the capture" in text


def test_scenario_capture_and_its_gateway_log(
    fixtures_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The recorded sni_required_reset capture against the gateway log that
    fixtures/ingress/make_scenario_log.py writes for it (reading the capture with dpkt, not
    sniparse): every entry but the one added on purpose lines up with a captured connection,
    the clock offset put into the log is found again, and the reset left out is reported.

    The log is regenerated here from the capture so the test follows a re-recorded capture;
    the committed sample is checked too while it still describes the committed capture.
    """
    pcap = fixtures_dir / "scenarios" / "sni_required_reset.pcap"
    if not pcap.is_file():
        pytest.skip("scenario capture not recorded yet")
    pytest.importorskip("dpkt")
    import importlib
    import importlib.util

    try:
        analyze = importlib.import_module("sniparse.analyze").analyze
    except (ImportError, AttributeError):
        pytest.skip("sniparse.analyze not available yet")
    spec = importlib.util.spec_from_file_location(
        "make_scenario_log", fixtures_dir / "ingress" / "make_scenario_log.py")
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "make_scenario_log", gen)  # dataclasses look it up
    spec.loader.exec_module(gen)
    fresh = tmp_path / "gateway.log"
    assert gen.main([str(pcap), str(fresh)]) == 0

    handshakes = list(analyze(str(pcap)).handshakes)
    _check_scenario(fresh, handshakes)
    sample = fixtures_dir / "ingress" / "sni_required_reset_istio.log"
    if sample.is_file() and sample.read_text() == fresh.read_text():
        _check_scenario(sample, handshakes)


def test_correlate_accepts_a_report_like_object() -> None:
    class FakeReport:
        handshakes = (hs("10.0.0.1", 1, T0),)

    c = correlate([_entry("10.0.0.1", 1, T0 + MS)], FakeReport())
    assert len(c.matched) == 1 and c.skew_ms == pytest.approx(1.0)


def test_log_to_dict(fixtures_dir: Path) -> None:
    log = read_ingress_log(fixtures_dir / "ingress" / "envoy_text.log")
    d = log.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert (d["entries"], d["unparsed"], d["lines"]) == (6, 2, 8)
    assert d["items"][0]["filter_chain_not_found"] is True
    assert d["items"][0]["client_port"] == 51234


_ips = st.sampled_from(["10.0.0.1", "10.0.0.2", "fd00::1"])
_ports = st.sampled_from([1000, 1001, 1002])
_times = st.integers(min_value=0, max_value=20_000).map(lambda ms: T0 + ms * MS)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(_ips, st.one_of(st.none(), _ports), st.one_of(st.none(), _times),
                       st.one_of(st.none(), st.just("a.example")), st.booleans()), max_size=12),
    st.lists(st.tuples(_ips, _ports, _times, st.one_of(st.none(), st.just("a.example")),
                       st.sampled_from(["server_reset", "server_hello", "alert"])), max_size=12),
    st.sampled_from([10.0, 1000.0, 5000.0]),
)
def test_correlate_invariants(
    ents: list[tuple[str, int | None, int | None, str | None, bool]],
    flows: list[tuple[str, int, int, str | None, str]],
    window: float,
) -> None:
    entries = [_entry(ip, port, ts, sni=sni, fcnf=f, line=i)
               for i, (ip, port, ts, sni, f) in enumerate(ents)]
    handshakes = [hs(ip, port, ts, sni=sni, outcome=o) for ip, port, ts, sni, o in flows]
    c = correlate(entries, handshakes, max_skew_ms=window)
    # Every entry is either matched or unmatched, each handshake explains at most one entry.
    assert len(c.matched) + len(c.unmatched) == len(entries)
    assert len({id(m.handshake) for m in c.matched}) == len(c.matched)
    for m in c.matched:
        e, h = m.entry, m.handshake
        assert e.client_ip == h.client_ip
        if e.client_port is not None:
            assert e.client_port == h.client_port
        if e.ts_ns is not None:
            assert m.delta_ms is not None and abs(m.delta_ms) <= window
    for h in c.resets_without_entry:
        assert h.outcome == "server_reset"
        assert all(h is not m.handshake for m in c.matched)
    if c.matched and any(m.delta_ms is not None for m in c.matched):
        assert c.skew_ms is not None and abs(c.skew_ms) <= window
    json.dumps(c.to_dict())
    c.render_text()


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=2000))
def test_read_random_bytes_never_raises(data: bytes) -> None:
    log = read_ingress_log(io.BytesIO(data))
    assert len(log.entries) + log.unparsed == log.lines


def test_deeply_nested_json_is_counted_not_raised() -> None:
    deep = '{"a":' * 20000 + "1" + "}" * 20000
    log = read_ingress_log(io.StringIO(deep + "\n" + '{"remote_address":"10.0.0.1:1"}\n'))
    assert len(log.entries) == 1 and log.unparsed == 1
