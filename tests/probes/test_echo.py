"""echoserver 1.4's text: rendering it like the real image, and reading the three report fields back."""

from __future__ import annotations

import pytest

from peerprobe.probes import echo

# Captured from k8s.gcr.io/echoserver:1.4 behind a NodePort (curl to node:31960).
REAL_1_4 = """CLIENT VALUES:
client_address=172.17.0.1
command=GET
real path=/
query=nil
request_version=1.1
request_uri=http://192.168.64.4:8080/

SERVER VALUES:
server_version=nginx: 1.10.0 - lua: 10001

HEADERS RECEIVED:
accept=*/*
content-type=application/json
host=192.168.64.4:31960
user-agent=curl/7.54.0
BODY:
-no body in request-"""

# The later images (1.10) print other titles and indent with tabs; the parser reads those too.
LATER_IMAGE = """

Hostname: echoserver-6c456d4fcc-drfnz

Request Information:
\tclient_address=10.0.2.125
\tmethod=GET
\treal path=/
\trequest_uri=http://echo.example:8080/

Request Headers:
\taccept=*/*
\thost=echo.example

Request Body:
\thost=not-a-header
"""


def test_render_matches_the_real_image() -> None:
    text = echo.render(
        "172.17.0.1",
        "192.168.64.4:31960",
        8080,
        "/",
        "GET",
        [("Accept", "*/*"), ("Content-Type", "application/json"), ("User-Agent", "curl/7.54.0")],
    )
    assert text == REAL_1_4


def test_parse_the_real_image() -> None:
    assert echo.parse(REAL_1_4) == echo.EchoFields(
        client_address="172.17.0.1", request_uri="http://192.168.64.4:8080/", host="192.168.64.4:31960"
    )


def test_parse_a_later_image_and_ignore_the_request_body() -> None:
    assert echo.parse(LATER_IMAGE) == echo.EchoFields("10.0.2.125", "http://echo.example:8080/", "echo.example")


@pytest.mark.parametrize(
    ("host_header", "port", "expected_uri"),
    [
        ("10.100.4.7", 8080, "http://10.100.4.7:8080/"),  # ClusterIP on :80: curl omits the port
        ("172.16.1.5:30080", 8080, "http://172.16.1.5:8080/"),  # NodePort: never shows in request_uri
        ("Internal-LB.elb.Amazonaws.com", 8080, "http://internal-lb.elb.amazonaws.com:8080/"),
        ("192.168.7.9", 80, "http://192.168.7.9:80/"),  # the EC2 host's server listens on 80
        ("[fd00::1]:8080", 8080, "http://[fd00::1]:8080/"),
    ],
)
def test_request_uri_uses_host_without_port_and_the_listening_port(
    host_header: str, port: int, expected_uri: str
) -> None:
    fields = echo.parse(echo.render("192.168.3.7", host_header, port, "/"))
    assert fields == echo.EchoFields("192.168.3.7", expected_uri, host_header)


def test_render_keeps_query_and_body() -> None:
    text = echo.render("10.0.0.1", "h", 8080, "/a?b=c", "POST", body="payload")
    assert "real path=/a?b=c\nquery=b=c\n" in text
    assert "command=POST" in text
    assert text.endswith("BODY:\npayload")


def test_render_without_host_header() -> None:
    fields = echo.parse(echo.render("10.0.0.1", None, 8080, "/", request_version="1.0"))
    assert fields == echo.EchoFields("10.0.0.1", "http://:8080/", None)


def test_repeated_headers_are_concatenated_and_host_is_not_doubled() -> None:
    text = echo.render("10.0.0.1", "h", 8080, "/", headers=[("X-A", "1"), ("x-a", "2"), ("Host", "other")])
    assert "host=h\nx-a=12\n" in text


@pytest.mark.parametrize(
    "text",
    [
        "",
        "<html><head><title>Welcome to nginx!</title></head></html>",
        "client_address=10.0.0.1\nhost=x",  # key=value lines outside any echo section
        "404 page not found",
    ],
)
def test_text_that_is_not_echo_output_gives_no_fields(text: str) -> None:
    fields = echo.parse(text)
    assert fields == echo.EchoFields()
    assert not fields.is_echo


def test_missing_lines_stay_none() -> None:
    fields = echo.parse("CLIENT VALUES:\nclient_address=10.1.2.3\ncommand=GET\n")
    assert fields == echo.EchoFields(client_address="10.1.2.3")
    assert fields.is_echo


@pytest.mark.parametrize(
    ("header", "hostname"),
    [("a.b", "a.b"), ("A.B:80", "a.b"), ("[::1]:80", "[::1]"), ("[::1]", "[::1]"), ("1.2.3.4:8080", "1.2.3.4")],
)
def test_host_without_port(header: str, hostname: str) -> None:
    assert echo.host_without_port(header) == hostname
