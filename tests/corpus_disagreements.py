"""Explained disagreements between sniparse and the public corpus's references.

Each entry says who is right and why, decided from the bytes (frame numbers are Wireshark's,
1-based; "payload" is the TCP payload as ``tshark -T fields -e tcp.payload`` prints it).
``tests/test_corpus_differential.py`` and ``tests/test_corpus_baselines.py`` fail on any
disagreement that is not listed here, and on any entry here that no longer occurs.

Keys of :data:`DIFFERENTIAL` are (capture path under ``files/``, frame, aspect): the frame is
tshark's hello frame, or sniparse's hello frame for ``extra`` (a hello tshark does not list).
"""

from __future__ import annotations

# -- reasons shared by several entries ----------------------------------------------------

_OPENVPN_FRAGMENTED = (
    "tshark is right, sniparse cannot see it: the hello travels inside OpenVPN's TCP control "
    "channel, cut into 100-byte OpenVPN fragments (tls-mtu), each behind its own 2-byte "
    "length, opcode 0x20, session id and packet id (e.g. payload '0072 20 507a28a78275788d "
    "00 00000001 160301 00dd 01...' then '0072 20 507a28...' again inside the same segment). "
    "tshark reassembles OpenVPN's reliability layer; sniparse does not decode OpenVPN, so "
    "no contiguous ClientHello exists in the TCP stream and the flow counts as not TLS. "
    "Out of scope: OpenVPN is a VPN, not an SNI-routed ingress."
)

_OPENVPN_WHOLE = (
    "sniparse is right, tshark lists no hello: one OpenVPN P_CONTROL_V1 packet carries the "
    "whole ClientHello, found by flows' bounded prelude scan ('unknown' prelude). dpkt parses "
    "the same bytes (from the 16 03 at payload offset {off}) as a ClientHello with extensions "
    "{exts} and no server_name, matching sniparse's sni_status 'absent' and JA3 string. "
    "tshark does not reach it: {why}."
)

_TRUTH_MISSED_SH = (
    "sniparse is right: the server's first payload (frame {sf}) starts with a ServerHello "
    "record ({bytes}); tshark's own packet list shows it, but the truth's per-stream facts "
    "('server_hello_seen': false) miss it because {why}."
)

_MALFORMED = (
    "Both see a broken hello: {what}. sniparse reports sni_status 'malformed' with that "
    "detail and no SNI/JA3 (fingerprints of a hello that breaks its format would describe "
    "bytes no TLS stack accepts); tshark flags the packet [Malformed Packet] and still "
    "prints what it read before the error ({theirs}). A malformed hello is never counted as "
    "'without SNI', which is the safe answer (SPEC)."
)

DIFFERENTIAL: dict[tuple[str, int, str], str] = {
    # --- hellos sniparse does not find -----------------------------------------------------
    ("mercury/unit_tests/pcaps/openvpn_tcp_multi.pcap", 10, "missing"): _OPENVPN_FRAGMENTED,
    ("mercury/unit_tests/pcaps/openvpn_tcp_multi.pcap", 170, "missing"): _OPENVPN_FRAGMENTED,
    ("nDPI/tests/cfgs/default/pcap/openvpn.pcap", 31, "missing"): _OPENVPN_FRAGMENTED,
    ("nDPI/tests/cfgs/default/pcap/openvpn_nohmac_tcp.pcapng", 10, "missing"):
        _OPENVPN_FRAGMENTED,
    **{
        ("nDPI/tests/cfgs/default/pcap/heuristic_tcp_ack_payload.pcap", fr, "missing"): (
            "A capture artifact that both sniparse and tshark's default dissection refuse "
            "(the truth lists it with dissected_by_default false, found by a raw 16 03 "
            "search). Every pure ACK of the client carries a 2-byte payload '0000' (e.g. "
            "frame 3: seq 8029851, len 2, payload 0000; frame 4 then sends the hello at the "
            "SAME seq 8029851). Reassembly keeps the first bytes seen for a sequence number, "
            "as a receiving TCP does, so the client's stream reads '00 00 03 01 ...', which "
            "is not TLS, and the flow counts as not_tls. The server's ACK of seq+517 and "
            "its ServerHello show the '0000' bytes never reached it: the zero payloads are "
            "an artifact of how the trace was made (nDPI's heuristic_tcp_ack_payload test)."
        )
        for fr in (4, 86, 166, 186, 221)
    },
    **{
        ("nDPI/tests/cfgs/default/pcap/ossfuzz_seed_fake_traces_1.pcapng", fr, "missing"): (
            "A synthetic fuzzer seed, not traffic: no SYN, TCP flags all zero, timestamps "
            "going backwards (frame 19 is 17 s before frame 18), and a 1-byte segment "
            "'00' at seq 0 before the hello at seq 1 (frames 18/19 and 20/21). Without a "
            "SYN the client's stream starts at its first payload byte, 0x00, which is not "
            "a hello start, so flows classifies the flow as picked up mid-stream (counted "
            "in stats, not listed). tshark dissects each segment on its own by port "
            "heuristics. Neither hello carries SNI, so no client without SNI is hidden."
        )
        for fr in (19, 21)
    },
    # --- hellos tshark does not list -------------------------------------------------------
    ("mercury/unit_tests/pcaps/emix.pcap", 6591, "extra"): _OPENVPN_WHOLE.format(
        off=56, exts="11 10 22 23 13 43 45 51",
        why="it marks the OpenVPN packet [Malformed Packet] (the tls-auth HMAC size is not "
        "configured), so its TLS dissector never runs"),
    ("nDPI/tests/cfgs/default/pcap/openvpn.pcap", 226, "extra"): _OPENVPN_WHOLE.format(
        off=44, exts="11 10 13 15",
        why="the flow is on port 443, so tshark dissects it as TLS directly, and the bytes "
        "start with the OpenVPN length 01 2f, not a TLS record"),
    ("suricata-verify/tests/bug-2512/sample_10.62.112.41_62227.pcap", 6, "extra"): (
        "sniparse is right (the corpus README's known trap): the hello sits inside an HTTP "
        "CONNECT tunnel whose '200' reply is missing from the capture, so tshark keeps "
        "dissecting HTTP and lists no hello. Frame 6's payload starts 16 03 01; dpkt parses "
        "it as a ClientHello with extensions 0 13 10 5 and server_name "
        "secure-assets.rubiconproject.com, which is sniparse's SNI (prelude http_connect)."
    ),
    # --- outcomes ----------------------------------------------------------------------------
    ("nDPI/tests/cfgs/default/pcap/4in6tunnel.pcap", 3, "outcome"): (
        "sniparse is right: frame 4 (the server's only payload, 1448 bytes, IPv4 in IPv6) "
        "starts '16 03 03 13 59 02 00 00 5a 03 03 ...': a ServerHello message of 90 bytes, "
        "complete inside a 4953-byte record that the 4-frame capture cuts. sniparse decides "
        "as soon as the ServerHello message is whole; tshark waits for the whole record, "
        "shows '[TCP segment of a reassembled PDU]' and never sees the ServerHello."
    ),
    ("nDPI/tests/cfgs/default/pcap/6in4tunnel.pcap", 25, "outcome"): _TRUTH_MISSED_SH.format(
        sf=27, bytes="tshark: 'TLSv1.2 1504 Server Hello', tls.handshake.type 2, tcp.stream 1",
        why="the flow is IPv6 inside IPv4 (protocol 41): tshark dissects the ServerHello in "
        "the hello's own tcp.stream 1, but the truth's side attribution evidently follows "
        "the outer IPv4 addresses, which are neither the client's nor the server's"),
    ("nDPI/tests/cfgs/default/pcap/6in4tunnel.pcap", 94, "outcome"): _TRUTH_MISSED_SH.format(
        sf=96, bytes="tshark: 'TLSv1.2 1514 Server Hello', tls.handshake.type 2, tcp.stream 5",
        why="the flow is IPv6 inside IPv4 (protocol 41): tshark dissects the ServerHello in "
        "the hello's own tcp.stream 5, but the truth's side attribution evidently follows "
        "the outer IPv4 addresses, which are neither the client's nor the server's"),
    ("nDPI/tests/cfgs/default/pcap/KakaoTalk_chat.pcap", 44, "outcome"): _TRUTH_MISSED_SH.format(
        sf=91, bytes="payload '16 03 01 00 59 02 00 00 55 03 01 ...'",
        why="a second SYN-ACK with another ISN (frame 46) makes tshark mark 'TCP Port numbers "
        "reused' and every later server segment a 'Retransmission', which it does not "
        "dissect; the client's Client Key Exchange in frame 104 proves the handshake went on"),
    ("nDPI/tests/cfgs/default/pcap/KakaoTalk_chat.pcap", 345, "outcome"): (
        "sniparse is right: frame 347, the server's only payload before the capture ends, "
        "starts '16 03 01 06 b5 02 00 00 46 03 01 ...': a 70-byte ServerHello message, "
        "complete inside a 1717-byte record of which the capture holds 1388 bytes. sniparse "
        "decides as soon as the ServerHello message is whole; tshark waits for the whole "
        "record ('[TCP segment of a reassembled PDU]') and never sees the ServerHello."
    ),
    ("suricata-verify/tests/tcp-fastopen-10-syn-data-ignore/input.pcap", 1, "outcome"): (
        _TRUTH_MISSED_SH.format(
            sf=25, bytes="tshark's packet list: 'TLSv1.3 1492 Server Hello, Change Cipher "
            "Spec, Application Data'",
            why="the hello rides in the SYN (TCP Fast Open, RFC 7413) and the repeated "
            "SYN-ACKs with other timestamps make tshark split the connection into streams "
            "('TCP Port numbers reused'); the client RSTs of frames 49/50 come after both "
            "FINs, 3.6 s after the ServerHello")
    ),
    ("zeek/testing/btest/Traces/tls/ssl-v2.pcap", 4, "outcome"): (
        "sniparse is right: the hello is SSLv2-format and the server answers in frame 6 "
        "with an SSLv2 SERVER-HELLO (tshark: 'SSLv2 Record Layer: Server Hello', message "
        "type 4, certificate and cipher specs). The truth's server_hello_seen only counts "
        "TLS handshake type 2; sniparse counts the SSLv2 SERVER-HELLO as the server's "
        "hello, and the client's Client Master Key in frame 8 shows the handshake went on."
    ),
    # --- malformed hellos ----------------------------------------------------------------------
    ("nDPI/tests/cfgs/default/pcap/tls_cipher_lens.pcap", 2, "sni"): _MALFORMED.format(
        what="cipher_suites length 0x0086 = 134, but only 133 bytes of the 170-byte "
        "ClientHello body follow the length field (RFC 5246 §7.4.1.2)",
        theirs="no SNI"),
    ("nDPI/tests/cfgs/default/pcap/tls_cipher_lens.pcap", 3, "sni"): _MALFORMED.format(
        what="cipher_suites length 0x0085 = 133 is odd; the list is of 2-byte suites "
        "(RFC 5246 §7.4.1.2 CipherSuite cipher_suites<2..2^16-2>)",
        theirs="no SNI"),
    ("nDPI/tests/cfgs/default/pcap/tls_cipher_lens.pcap", 5, "sni"): _MALFORMED.format(
        what="cipher_suites length 0 (the vector's minimum is 2, RFC 5246 §7.4.1.2); read "
        "on, the compression list is empty and the extensions length is 0xffc0 = 65472 "
        "with 130 bytes left",
        theirs="no SNI, JA3 string '769,,'"),
    ("nDPI/tests/cfgs/default/pcap/tls_cipher_lens.pcap", 5, "ja3"): (
        "See the 'sni' entry of this frame: a malformed hello gets no JA3; tshark's JA3 "
        "'769,,' (MD5 12f72b38...) describes an empty cipher list no TLS stack sends."
    ),
    ("nDPI/tests/cfgs/default/pcap/tls_cipher_lens.pcap", 5, "ja3_string"): (
        "See the 'sni' entry of this frame."
    ),
    ("nDPI/tests/cfgs/default/pcap/tls_invalid_reads.pcap", 4, "sni"): _MALFORMED.format(
        what="after the compression methods '01 00' one stray byte '00' remains where the "
        "2-byte extensions length would start (RFC 5246 §7.4.1.2: either no extensions "
        "block or a whole one); the hello's 0x5d length counts that byte",
        theirs="no SNI, JA3 string '769,4-5-10-9-100-98-3-6-19-18-37,'"),
    ("nDPI/tests/cfgs/default/pcap/tls_invalid_reads.pcap", 4, "ja3"): (
        "See the 'sni' entry of this frame: no JA3 for a malformed hello."
    ),
    ("nDPI/tests/cfgs/default/pcap/tls_invalid_reads.pcap", 4, "ja3_string"): (
        "See the 'sni' entry of this frame."
    ),
    ("nDPI/tests/cfgs/default/pcap/tls_invalid_reads.pcap", 12, "sni"): _MALFORMED.format(
        what="the ALPN extension (type 16, length 11) declares a protocol list of 0xb889 = "
        "47241 bytes, and only 9 follow (RFC 7301 §3.1); tshark: 'Vector length 47241 is "
        "too large, truncating it to 9'",
        theirs="the server_name e.crashlytics.com, read before the broken ALPN"),
    ("pcapplusplus/Tests/Packet++Test/PacketExamples/ssl-malformed1.pcap", 1, "sni"):
        _MALFORMED.format(
            what="the server_name extension has length 1 (payload '0000 0001 01'), too "
            "short for its own 2-byte list length (RFC 6066 §3); tshark: 'No more room "
            "for vector of length 2'",
            theirs="no SNI"),
}

# Keys of BASELINES: (capture path under files/, baseline source, flow text as the normalized
# baseline prints it, aspect).
BASELINES: dict[tuple[str, str, str, str], str] = {}

_ZEEK_RST_AFTER_FINS = (
    "A known limit of flows.py (documented in its header): a flow closes at its second FIN, "
    "so a RST that follows both FINs (frames {frames}) adds no 'r'/'R' to sniparse's "
    "history; Zeek keeps tracking the closed connection and appends it. conn_state agrees "
    "(SF: Zeek's UpdateClosedState ignores a RST once both sides sent FIN)."
)

BASELINES.update({
    # --- JA4: the spec against FoxIO's code at the corpus commit ---------------------------
    **{
        ("ja4/pcap/tls-non-ascii-alpn.pcapng", src,
         "tcp 142.251.16.94:443<->192.168.1.168:50112", "ja4"): (
            "The first ALPN value is the two bytes 'ba ad' (not alphanumeric). The JA4 spec "
            "takes the first and last hex digits of such a value, 'bd'; FoxIO's Python and "
            "Rust code at the corpus commit print '99' (FoxIO/ja4 issue #326). sniparse "
            "follows the spec: t13d1516bd_... against the baseline's t13d151699_...; the "
            "cipher and extension hashes agree (test_fingerprint checks the same case)."
        )
        for src in ("ja4-python", "ja4-rust")
    },
    # --- nDPI ---------------------------------------------------------------------------------
    **{
        ("nDPI/tests/cfgs/default/pcap/heuristic_tcp_ack_payload.pcap", "nDPI", flow, "flow"):
            DIFFERENTIAL[("nDPI/tests/cfgs/default/pcap/heuristic_tcp_ack_payload.pcap", 4,
                          "missing")]
        for flow in (
            "tcp 194.226.199.61:27453<->35.241.9.150:443",
            "tcp 194.226.199.61:6946<->2.22.40.186:443",
            "tcp 194.226.199.21:58155<->52.18.127.189:443",
            "tcp 194.226.199.103:62580<->217.69.139.59:443",
            "tcp 194.226.199.9:49756<->92.223.106.21:443",
        )
    },
    ("nDPI/tests/cfgs/default/pcap/pinterest.pcap", "nDPI",
     "tcp 2600:1901::7a0b:::443<->2a01:cb01:2049:8b07:991d:ec85:28df:f629:47032", "flow"): (
        "The baseline's server address '2600:1901::7a0b::' is not a valid IPv6 address (two "
        "'::'), a printing defect of the nDPI result file (the corpus README lists it), so "
        "no endpoint can match it. sniparse reports the flow's hello with the real address."
    ),
    ("nDPI/tests/cfgs/default/pcap/smtp-starttls.pcap", "nDPI",
     "tcp 10.0.0.1:57406<->173.194.68.26:25", "sni"): (
        "sniparse is right (the corpus README's known trap, tshark agrees): nDPI reports "
        "'mx.google.com' taken from the SMTP dialogue (the server's 220 banner / EHLO reply); "
        "the ClientHello after STARTTLS has no server_name extension, so sni_status is "
        "'absent'."
    ),
    ("nDPI/tests/cfgs/default/pcap/tls_invalid_reads.pcap", "nDPI",
     "tcp 10.191.139.17:58552<->54.221.224.45:443", "sni"): DIFFERENTIAL[
        ("nDPI/tests/cfgs/default/pcap/tls_invalid_reads.pcap", 12, "sni")],
    ("nDPI/tests/cfgs/default/pcap/tls_invalid_reads.pcap", "nDPI",
     "tcp 10.191.139.17:58552<->54.221.224.45:443", "ja3"): (
        "The same malformed hello (ALPN list length 47241 in a 9-byte extension, frame 12): "
        "sniparse computes no JA3 for a hello that breaks its format; nDPI hashes what it "
        "read."
    ),
    # --- Zeek ---------------------------------------------------------------------------------
    ("zeek/testing/btest/Traces/globus-url-copy.pcap", "zeek",
     "tcp 192.168.57.101:2811<->192.168.57.103:60108", "flow"): (
        "Out of reach by design: this is the GridFTP control channel. After 'AUTH GSSAPI' the "
        "TLS handshake travels base64-encoded inside FTP 'ADAT' commands (frame 9 payload "
        "'ADAT FgMBAGsBAABnAwFQ...', i.e. 16 03 01 00 6b 01 ...), which Zeek's GSSAPI/FTP "
        "analyzer decodes. sniparse reads TLS records from the TCP byte stream only."
    ),
    ("zeek/testing/btest/Traces/globus-url-copy.pcap", "zeek",
     "tcp 192.168.57.101:55968<->192.168.57.103:35391", "conn_state"): (
        "sniparse is right for the packets: both sides send FIN (frames 54 and 56), so SF. "
        "Zeek's gridftp script calls skip_further_processing() once it has classified the "
        "connection as a GridFTP data channel (ConnThreshold bytes_threshold_crossed, "
        "skip_data), so Zeek stops updating the state and logs S1 / history ShADad."
    ),
    ("zeek/testing/btest/Traces/globus-url-copy.pcap", "zeek",
     "tcp 192.168.57.101:55968<->192.168.57.103:35391", "history"): (
        "See the conn_state entry of this flow: Zeek stops processing the data channel "
        "before the FINs, sniparse records them (ShADadfF)."
    ),
    ("zeek/testing/btest/Traces/tls/imap-starttls.pcap", "zeek",
     "tcp 192.168.17.53:49640<->212.227.17.186:143", "history"): _ZEEK_RST_AFTER_FINS.format(
        frames="27 server FIN, 31 client FIN, 32 server RST"),
    ("zeek/testing/btest/Traces/tls/pop3-starttls.pcap", "zeek",
     "tcp 192.168.4.149:110<->192.168.4.149:54775", "history"): _ZEEK_RST_AFTER_FINS.format(
        frames="27 server FIN, 31 client FIN, 32/33 server RST"),
    ("zeek/testing/btest/Traces/tls/xmpp-starttls.pcap", "zeek",
     "tcp 146.255.57.229:5222<->198.128.203.95:56048", "history"): _ZEEK_RST_AFTER_FINS.format(
        frames="29 server FIN, 32 client FIN, 33/34 server RST"),
    **{
        (cap, "zeek", flow, "rst"): (
            f"The flow's only RST comes after both FINs ({frames}); sniparse's flow closed at "
            "the second FIN (see the history entry of this flow), so its history has no r; "
            "Zeek's rst is true."
        )
        for cap, flow, frames in (
            ("zeek/testing/btest/Traces/tls/imap-starttls.pcap",
             "tcp 192.168.17.53:49640<->212.227.17.186:143", "frame 32"),
            ("zeek/testing/btest/Traces/tls/pop3-starttls.pcap",
             "tcp 192.168.4.149:110<->192.168.4.149:54775", "frames 32/33"),
            ("zeek/testing/btest/Traces/tls/xmpp-starttls.pcap",
             "tcp 146.255.57.229:5222<->198.128.203.95:56048", "frames 33/34"),
        )
    },
})
