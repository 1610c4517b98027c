"""Report views and verdicts, from synthetic handshake lists."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from sniparse.errors import Issue
from sniparse.flows import Handshake
from sniparse.report import (
    HANDSHAKE_COLUMNS,
    KNOWN_SOURCES,
    CaptureStats,
    Report,
    Verdict,
    handshake_to_dict,
    known_source,
)

T0 = 1_700_000_000_000_000_000


def hs(
    client: str = "10.0.0.1",
    server: str = "10.0.0.9",
    port: int = 443,
    *,
    sni: str | None = None,
    status: str | None = None,
    outcome: str = "server_reset",
    ms: float | None = 0.3,
    alert: int | None = None,
    reason: str | None = None,
    t: float = 0.0,
    ja4: str = "t13d1516h2_8daaf6152771_b0da82dd1658",
    cport: int = 40000,
) -> Handshake:
    """A synthetic handshake; ``status`` defaults to present when ``sni`` is given."""
    if status is None:
        status = "present" if sni else "absent"
    return Handshake(
        ts_ns=T0 + int(t * 1e9), client_ip=client, client_port=cport, server_ip=server,
        server_port=port, sni=sni, sni_status=status, unknown_reason=reason,
        detail=None, sslv2=False, ech=False, versions=("TLSv1.3", "TLSv1.2"), alpn=("h2",),
        ja3="0" * 32, ja4=ja4, segments=1, hrr=False, outcome=outcome, alert=alert,
        outcome_ms=ms, conn_state="RSTR" if outcome == "server_reset" else "SF",
        history="ShADr", frame=4, sni_raw=sni.encode() if sni else None,
    )


def kinds(r: Report) -> dict[str | None, str]:
    return {v.server: v.kind for v in r.verdicts if v.server is not None}


def test_defaults_construct() -> None:
    st = CaptureStats()
    assert st.frames == 0 and st.linktypes == {} and st.files == ()
    r = Report.build([], [], CaptureStats())
    assert r.handshakes == () and r.clients == () and r.servers == ()
    assert [v.kind for v in r.verdicts] == ["no_handshakes"]
    assert "0 handshakes" in repr(r)


def test_sni_required_reset_with_evidence() -> None:
    hands = [hs(t=i, ms=0.2 + i / 100, cport=40000 + i) for i in range(5)]
    hands += [hs(client="10.0.0.2", t=2, ms=0.4)]
    hands += [hs(sni="api.example.com", outcome="server_hello", ms=3.0, t=i) for i in range(3)]
    r = Report.build(hands, [], CaptureStats())
    v = r.verdict
    assert v is not None and v.kind == "sni_required" and v.severity == "error"
    assert v.server == "10.0.0.9:443"
    ev = v.evidence
    assert ev["attempts_without_sni"] == 6
    assert ev["rejected_without_sni"] == 6
    assert ev["served_with_sni"] == 3
    assert ev["clients_without_sni"] == ["10.0.0.1", "10.0.0.2"]
    assert ev["typical_ms_without_sni"] == pytest.approx(0.225)  # median of 0.20..0.24 and 0.4
    assert "requires SNI" in v.summary and "6 of 6" in v.summary
    assert v.fix is not None and "enableNonSniClient: true" in v.fix
    assert "additionalGateways" in v.fix and "default certificate" in v.fix
    assert v.example_flow is not None and "server_reset" in v.example_flow
    server = r.servers[0]
    assert server.verdict == "sni_required"
    assert (server.with_sni, server.without_sni, server.unknown) == (3, 6, 0)
    assert server.outcomes_without_sni == Counter(server_reset=6)


@pytest.mark.parametrize("alert", [112, 40])
def test_sni_required_by_alert(alert: int) -> None:
    hands = [hs(outcome="alert", alert=alert), hs(sni="a.example", outcome="server_hello")]
    r = Report.build(hands)
    assert kinds(r) == {"10.0.0.9:443": "sni_required"}
    assert str(alert) in r.verdicts[0].summary


def test_other_alert_is_not_sni_rejection() -> None:
    hands = [hs(outcome="alert", alert=70), hs(sni="a.example", outcome="server_hello")]
    r = Report.build(hands)
    assert kinds(r) == {"10.0.0.9:443": "non_sni_unanswered"}


def test_sni_required_likely_without_comparison() -> None:
    r = Report.build([hs(), hs(client="10.0.0.3")])
    v = r.verdict
    assert v is not None and v.kind == "sni_required_likely" and v.severity == "warning"
    assert "unproven" in v.summary
    assert v.fix is not None


def test_everything_rejected_is_not_sni() -> None:
    hands = [hs(), hs(sni="a.example", outcome="server_reset")]
    r = Report.build(hands)
    v = r.verdict
    assert v is not None and v.kind == "all_rejected"
    assert "not an SNI problem" in v.summary
    assert v.fix is None


def test_non_sni_served() -> None:
    hands = [hs(outcome="server_hello", ms=2.0), hs(sni="a.example", outcome="server_hello")]
    r = Report.build(hands)
    assert kinds(r) == {"10.0.0.9:443": "non_sni_served"}
    assert r.verdict is not None and r.verdict.severity == "ok"
    assert "already serves" in r.verdict.summary


def test_unknown_only_endpoint_cannot_answer() -> None:
    hands = [
        hs(status="unknown", reason="truncated", outcome="server_reset"),
        hs(status="unknown", reason="midstream", outcome="server_reset", t=1),
    ]
    r = Report.build(hands)
    assert kinds(r) == {"10.0.0.9:443": "unknown_only"}
    v = next(v for v in r.verdicts if v.kind == "unknown_only")
    assert "snaplen" in v.summary and "started after" in v.summary
    assert v.fix is not None and "-s 0" in v.fix


def test_unknown_never_counted_as_without_sni() -> None:
    # Truncated hellos reset by the server next to served SNI hellos: the capture cannot say
    # the truncated ones lacked SNI, so there must be no SNI verdict at all.
    hands = [hs(status="unknown", reason="truncated", t=i) for i in range(10)]
    hands += [hs(sni="a.example", outcome="server_hello")]
    r = Report.build(hands)
    assert r.without_sni == ()
    assert r.clients_without_sni == ()
    assert all(v.kind not in ("sni_required", "sni_required_likely") for v in r.verdicts)
    assert r.summary()["without_sni"] == 0 and r.summary()["unknown"] == 10
    c = r.clients[0]
    assert (c.without_sni, c.unknown, c.with_sni) == (0, 10, 1)
    note = [v for v in r.verdicts if v.kind == "some_unknown"]
    assert note and "never as without SNI" in note[0].summary
    assert r.servers[0].without_sni == 0


def test_unknown_noted_beside_a_proven_verdict() -> None:
    hands = [hs(), hs(sni="a.example", outcome="server_hello"),
             hs(status="unknown", reason="gap")]
    r = Report.build(hands)
    v = r.verdict
    assert v is not None and v.kind == "sni_required"
    assert v.evidence["attempts_without_sni"] == 1  # the unknown one is not in it
    assert "not counted" in v.summary
    assert any(x.kind == "some_unknown" for x in r.verdicts)


def test_health_check_ranges_named() -> None:
    assert known_source("35.191.10.20") == "Google Cloud load-balancer health check"
    assert known_source("130.211.3.4") == "Google Cloud load-balancer health check"
    assert known_source("130.211.4.1") is None  # outside the /22
    assert known_source("10.0.0.1") is None
    assert known_source("not an ip") is None
    assert any(n == "35.191.0.0/16" for n, _ in KNOWN_SOURCES)
    hands = [hs(client="35.191.10.20"), hs(client="130.211.0.9"),
             hs(sni="a.example", outcome="server_hello")]
    r = Report.build(hands)
    v = r.verdict
    assert v is not None and v.kind == "sni_required"
    assert "health check" in v.summary and "35.191.0.0/16" in v.summary
    assert set(v.evidence["known_sources"]) == {"35.191.10.20", "130.211.0.9"}
    by_ip = {c.ip: c for c in r.clients}
    assert by_ip["35.191.10.20"].known_source == "Google Cloud load-balancer health check"
    assert by_ip["10.0.0.1"].known_source is None


def test_all_sni_and_per_endpoint_independence() -> None:
    r = Report.build([hs(sni="a.example", outcome="server_hello")])
    assert [v.kind for v in r.verdicts] == ["all_sni"]
    hands = [hs(server="10.0.0.9"), hs(server="10.0.0.9", sni="a", outcome="server_hello"),
             hs(server="10.0.0.8", outcome="server_hello"), hs(server="10.0.0.7", sni="b",
                                                               outcome="server_hello")]
    r = Report.build(hands)
    assert kinds(r) == {"10.0.0.9:443": "sni_required", "10.0.0.8:443": "non_sni_served"}
    assert r.verdicts[0].kind == "sni_required"  # most severe first


def test_client_summary_fields() -> None:
    hands = [
        hs(t=0, ms=0.1), hs(t=5, ms=0.3), hs(t=9, ms=0.2),
        hs(sni="api.example.com", outcome="server_hello", t=3, ms=5.0),
        hs(sni="api.example.com", outcome="server_hello", t=4, ms=5.0),
        hs(sni="www.example.com", outcome="server_hello", t=4, ms=5.0, ja4="t13d_other"),
    ]
    r = Report.build(hands)
    (c,) = r.clients
    assert (c.attempts, c.with_sni, c.without_sni) == (6, 3, 3)
    assert c.names == ("api.example.com", "www.example.com")
    assert c.ja4[0] == "t13d1516h2_8daaf6152771_b0da82dd1658" and "t13d_other" in c.ja4
    assert c.typical_ms_without_sni == pytest.approx(0.2)
    assert c.outcomes == Counter(server_reset=3, server_hello=3)
    assert c.first_seen_ns == T0 and c.last_seen_ns == T0 + 9 * 10**9
    assert c.first_seen == "2023-11-14T22:13:20.000000Z"
    assert c.servers == ("10.0.0.9:443",)


def test_ipv6_endpoint_text() -> None:
    r = Report.build([hs(client="2001:db8::1", server="2001:db8::9")])
    assert r.servers[0].endpoint == "[2001:db8::9]:443"


def test_to_dicts_and_json_schema() -> None:
    hands = [hs(), hs(sni="a.example", outcome="server_hello")]
    issues = [Issue("truncated", "pcap", "frame cut", 3, None, 7)]
    stats = CaptureStats(files=("a.pcap",), frames=12, linktypes={"EN10MB": 12})
    r = Report.build(hands, issues, stats)
    rows = r.to_dicts()
    assert len(rows) == 2 and list(rows[0]) == list(HANDSHAKE_COLUMNS)
    assert "client_hello" not in rows[0] and rows[1]["sni_raw"] == b"a.example".hex()
    assert rows[0]["versions"] == ["TLSv1.3", "TLSv1.2"]
    for view in ("clients", "servers", "issues", "verdicts"):
        assert r.to_dicts(view)
    assert r.to_dicts("issues")[0]["count"] == 7
    with pytest.raises(ValueError):
        r.to_dicts("nope")
    doc = json.loads(r.to_json())
    assert set(doc) == {"verdicts", "summary", "servers", "clients", "handshakes", "issues",
                        "stats"}
    assert doc["summary"]["without_sni"] == 1 and doc["summary"]["verdict"] == "sni_required"
    assert doc["stats"]["linktypes"] == {"EN10MB": 12}
    assert doc["servers"][0]["outcomes_without_sni"] == {"server_reset": 1}
    assert handshake_to_dict(hands[0])["ts"] == hands[0].ts


def test_verdict_is_frozen() -> None:
    v = Verdict("x", None, "info", "s", {})
    with pytest.raises(AttributeError):
        v.kind = "y"  # type: ignore[misc]


def test_filtered_recomputes_verdicts() -> None:
    hands = [hs(), hs(sni="a.example", outcome="server_hello")]
    r = Report.build(hands).filtered(lambda h: h.sni_status == "absent")
    assert len(r) == 1 and r.verdict is not None and r.verdict.kind == "sni_required_likely"


def test_to_pandas_types() -> None:
    pd = pytest.importorskip("pandas")
    r = Report.build([hs(), hs(sni="a.example", outcome="server_hello", ms=None)])
    df = r.to_pandas()
    assert str(df["ts"].dtype) == "datetime64[ns, UTC]"
    assert isinstance(df["sni_status"].dtype, pd.CategoricalDtype)
    assert isinstance(df["outcome"].dtype, pd.CategoricalDtype)
    assert df["ts"].iloc[0] == pd.Timestamp(T0, unit="ns", tz="UTC")
    assert df["outcome_ms"].isna().tolist() == [False, True]
    clients = r.to_pandas("clients")
    assert str(clients["first_seen"].dtype) == "datetime64[ns, UTC]"
    assert len(Report().to_pandas()) == 0


def test_plot_returns_figure() -> None:
    mpl = pytest.importorskip("matplotlib")
    mpl.use("Agg")
    import matplotlib.pyplot as plt

    hands = [hs(t=i, ms=0.2) for i in range(4)]
    hands += [hs(sni="a.example", outcome="server_hello", t=i, ms=4.0) for i in range(4)]
    hands += [hs(status="unknown", reason="truncated", outcome="no_response", ms=None)]
    fig: Any = r_plot(Report.build(hands))
    assert len(fig.axes) == 3
    labels = [t.get_text() for ax in fig.axes for t in ax.get_legend().get_texts()]
    assert any("without SNI: server_reset (4" in label for label in labels)
    plt.close(fig)


def r_plot(r: Report) -> Any:
    return r.plot()


def test_repr_and_html() -> None:
    hands = [hs(client="35.191.1.1"), hs(sni="a.example", outcome="server_hello")]
    r = Report.build(hands)
    text = repr(r)
    assert "2 handshakes" in text and "sni_required" in text
    page = r._repr_html_()
    assert "sni_required" in page and "35.191.1.1" in page and "<table>" in page
    r2 = Report.build([hs(client="<b>x</b>")])
    assert "<b>x</b>" not in r2._repr_html_()


def test_corrupt_timestamps_do_not_break_views() -> None:
    # A corrupt capture can carry times far beyond year 9999.
    from dataclasses import replace

    h = replace(hs(), ts_ns=586524 * 365 * 86400 * 10**9)
    r = Report.build([h, hs(sni="a.example", outcome="server_hello")],
                     stats=CaptureStats(first_ts_ns=h.ts_ns, last_ts_ns=h.ts_ns))
    doc = json.loads(r.to_json())
    assert doc["handshakes"][0]["ts"] is None and doc["handshakes"][0]["ts_ns"] == h.ts_ns
    assert doc["stats"]["first_ts"] is None
    assert "handshakes" in repr(r) and r._repr_html_()
    pd = pytest.importorskip("pandas")
    df = r.to_pandas()
    assert pd.isna(df["ts"].iloc[0]) and not pd.isna(df["ts"].iloc[1])
    r.to_pandas("clients")


def test_flaky_endpoint_is_not_an_sni_verdict() -> None:
    # With SNI mostly reset too: one stray ServerHello must not prove an SNI requirement.
    hands = [hs(t=i) for i in range(3)]
    hands += [hs(sni="a.example", outcome="server_reset", t=i) for i in range(5)]
    hands += [hs(sni="a.example", outcome="server_hello")]
    r = Report.build(hands)
    assert kinds(r) == {"10.0.0.9:443": "all_rejected"}
    assert "most handshakes" in r.verdicts[0].summary


def test_sni_attempts_unanswered_make_it_likely() -> None:
    hands = [hs(), hs(sni="a.example", outcome="no_response", ms=None)]
    r = Report.build(hands)
    assert kinds(r) == {"10.0.0.9:443": "sni_required_likely"}
    assert "None of the 1 attempts with SNI" in r.verdicts[0].summary


def test_mostly_served_without_sni_mentions_refusals() -> None:
    hands = [hs(outcome="server_hello", t=i) for i in range(3)] + [hs()]
    hands += [hs(sni="a.example", outcome="server_hello")]
    r = Report.build(hands)
    assert kinds(r) == {"10.0.0.9:443": "non_sni_served"}
    assert "1 other was refused" in r.verdicts[0].summary
