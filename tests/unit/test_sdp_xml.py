"""SDP text <-> the XIMSS XML presentation: real offers, the CommuniGate shape, round trips, junk."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from bridge import xml
from bridge.errors import BridgeError, ErrorKind
from bridge.ximss.sdp_xml import (
    MAX_FORMATS,
    MAX_LINE_CHARS,
    MAX_LINES,
    MAX_MEDIA,
    MAX_SDP_BYTES,
    Attribute,
    Codec,
    Endpoint,
    Line,
    Origin,
    default_media_ip,
    from_xml,
    parse_sdp,
    render_sdp,
    sdp_for_client,
    sdp_for_sip,
    sdp_to_xml,
    xml_to_sdp,
)


def crlf(text: str) -> str:
    return text.replace("\n", "\r\n")


def through_xml(text: str) -> str:
    """Text -> XML on the wire -> text, as a client's round trip would go."""
    return xml_to_sdp(xml.parse(xml.serialize(sdp_to_xml(text))))


def element(data: str) -> etree._Element:
    return xml.parse(data.encode())


# A Chrome offer: BUNDLE, rtcp-mux, ICE candidates, DTLS fingerprint, audio and video.
CHROME = """v=0
o=- 4611731400430051336 2 IN IP4 127.0.0.1
s=-
t=0 0
a=group:BUNDLE 0 1
a=extmap-allow-mixed
a=msid-semantic: WMS 5bd8c1
m=audio 54321 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126
c=IN IP4 198.51.100.7
a=rtcp:9 IN IP4 0.0.0.0
a=candidate:1467250027 1 udp 2122260223 192.168.1.20 54321 typ host generation 0 network-id 1
a=candidate:2157334355 1 udp 1686052607 198.51.100.7 54321 typ srflx raddr 192.168.1.20 rport 54321
a=end-of-candidates
a=ice-ufrag:EsAw
a=ice-pwd:bP+XJMM09aR8AiX1jdukzR6Y
a=ice-options:trickle
a=fingerprint:sha-256 D2:FA:0E:C3:22:59:5E:14:95:69:92:3D:13:B4:84:24:2C:C2:A2:C0:3E:FD:34:8E:5E
a=setup:actpass
a=mid:0
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level
a=sendrecv
a=msid:5bd8c1 a1b2c3
a=rtcp-mux
a=rtpmap:111 opus/48000/2
a=rtcp-fb:111 transport-cc
a=fmtp:111 minptime=10;useinbandfec=1
a=rtpmap:63 red/48000/2
a=fmtp:63 111/111
a=rtpmap:9 G722/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:13 CN/8000
a=rtpmap:110 telephone-event/48000
a=rtpmap:126 telephone-event/8000
a=ssrc:3570614608 cname:4TOk42mSjXCkVIa6
m=video 9 UDP/TLS/RTP/SAVPF 96 97
c=IN IP4 0.0.0.0
a=rtcp:9 IN IP4 0.0.0.0
a=ice-ufrag:EsAw
a=ice-pwd:bP+XJMM09aR8AiX1jdukzR6Y
a=fingerprint:sha-256 D2:FA:0E:C3:22:59:5E:14:95:69:92:3D:13:B4:84:24:2C:C2:A2:C0:3E:FD:34:8E:5E
a=setup:actpass
a=mid:1
a=sendrecv
a=rtcp-mux
a=rtcp-rsize
a=rtpmap:96 VP8/90000
a=rtcp-fb:96 nack pli
a=rtpmap:97 rtx/90000
a=fmtp:97 apt=96
"""

# Firefox writes its attributes in alphabetical order, the direction first.
FIREFOX = """v=0
o=mozilla...THIS_IS_SDPARTA-99.0 7052848360639826063 0 IN IP4 0.0.0.0
s=-
t=0 0
a=fingerprint:sha-256 6B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43
a=group:BUNDLE 0
a=ice-options:trickle
a=msid-semantic:WMS *
m=audio 9 UDP/TLS/RTP/SAVPF 109 9 0 8 101
c=IN IP4 0.0.0.0
a=sendrecv
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level
a=fmtp:109 maxplaybackrate=48000;stereo=1;useinbandfec=1
a=fmtp:101 0-15
a=ice-pwd:c74ecf6c1ac8e8e0a5e1d7f1f2f6bd5a
a=ice-ufrag:3e5a2b1c
a=mid:0
a=msid:{0f2d3a1c-5b7e-4d8e-9a6b-2c1d0e9f8a7b} {4a5b6c7d-8e9f-4a0b-9c1d-2e3f4a5b6c7d}
a=rtcp-mux
a=rtpmap:109 opus/48000/2
a=rtpmap:9 G722/8000/1
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000/1
a=setup:actpass
a=ssrc:2215283040 cname:{5b1d5f2e-9c0e-4d3b-8f5e-6a7b8c9d0e1f}
"""

# A plain SIP softphone offer: G.711 both laws and RFC 4733 events, direction last.
SOFTPHONE = """v=0
o=alice 2890844526 2890844526 IN IP4 192.0.2.10
s=Talk
c=IN IP4 192.0.2.10
t=0 0
m=audio 49170 RTP/AVP 0 8 101
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ptime:20
a=sendrecv
"""

# Linphone: static payload types without rtpmap lines, fmtp for one of them, audio and video.
LINPHONE = """v=0
o=bob 1234 5678 IN IP4 192.168.0.10
s=Talk
c=IN IP4 192.168.0.10
t=0 0
a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics
m=audio 7078 RTP/AVP 96 97 0 8 18 101
a=rtpmap:96 opus/48000/2
a=fmtp:96 useinbandfec=1
a=rtpmap:97 speex/16000
a=fmtp:97 vbr=on
a=fmtp:18 annexb=yes
a=rtpmap:101 telephone-event/48000
a=rtcp-fb:* trr-int 1000
m=video 9078 RTP/AVP 96 97
b=AS:512
a=rtpmap:96 VP8/90000
a=rtpmap:97 H264/90000
a=fmtp:97 profile-level-id=42801F;packetization-mode=1
a=rtcp-fb:96 nack pli
a=sendrecv
"""

# SDES-SRTP from a mediation server: c= at both levels, rtcp, crypto, inactive mid-section.
SDES = """v=0
o=- 0 4 IN IP4 192.0.2.63
s=session
c=IN IP4 192.0.2.63
b=CT:99980
t=0 0
m=audio 6354 RTP/SAVP 0 13 101
c=IN IP4 192.0.2.63
a=rtcp:6355
a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:6kAMn8ieN/mPZNbxZTJjdkROJGc4GJzEYlkoHPhY|2^31|1:1
a=inactive
a=rtpmap:0 PCMU/8000
a=rtpmap:13 CN/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ptime:20
"""

# A data channel next to audio, IPv6, and lines no one knows.
ODDITIES = """v=0
o=carol 1 1 IN IP6 2001:db8::1
s=-
i=A call about nothing
c=IN IP6 2001:db8::1
t=0 0
x=unknown line type
a=ice-lite
m=audio 5004/2 RTP/AVP 0
a=rtpmap:0 PCMU/8000
a=recvonly
m=application 5000 UDP/DTLS/SCTP webrtc-datachannel
c=IN IP6 2001:db8::2
a=sctp-port:5000
a=max-message-size:262144
a=setup:active
"""

# How a deployed client binds a device: plain text in <sdp>, o= after t=.
DEVICE = "v=0\ns=-\nt=0 0\no=- 1 2 IN IP4 127.0.0.1\n"

OFFERS = [CHROME, FIREFOX, SOFTPHONE, LINPHONE, SDES, ODDITIES, DEVICE]

# The shape CommuniGate's client library sends (attribute names as on the wire).
CLIENT_XML = """<sdp origUser="-" sessionID="4711" sessionVersion="2" origIP="[192.0.2.10]">
  <attr name="group">BUNDLE audio</attr>
  <media media="audio" protocol="RTP/SAVPF" ip="[192.0.2.10]:50000" rtcp="[0.0.0.0]:9"
         direction="sendrecv">
    <codec id="0" name="PCMU/8000"/><codec id="8" name="PCMA/8000"/>
    <codec id="101" name="telephone-event/8000"/>
  </media>
  <attr name="webrtc">yes</attr>
</sdp>"""


@pytest.mark.parametrize("offer", OFFERS)
def test_offers_survive_text_xml_text_exactly(offer: str) -> None:
    assert render_sdp(parse_sdp(offer)) == crlf(offer)
    assert through_xml(offer) == crlf(offer)
    assert through_xml(crlf(offer)) == crlf(offer)


@pytest.mark.parametrize("offer", OFFERS)
def test_xml_we_write_survives_xml_text_xml(offer: str) -> None:
    first = xml.serialize(sdp_to_xml(offer))
    assert xml.serialize(sdp_to_xml(xml_to_sdp(xml.parse(first)))) == first


def test_softphone_offer_takes_the_communigate_shape() -> None:
    root = sdp_to_xml(SOFTPHONE)
    assert dict(root.attrib) == {
        "origUser": "alice",
        "sessionID": "2890844526",
        "sessionVersion": "2890844526",
        "origIP": "[192.0.2.10]",
        "ip": "[192.0.2.10]",
        "sessionName": "Talk",
    }
    (media,) = root
    assert dict(media.attrib) == {
        "media": "audio",
        "protocol": "RTP/AVP",
        "ip": "[192.0.2.10]:49170",
        "direction": "sendrecv",
    }
    assert [(c.tag, dict(c.attrib), c.text) for c in media] == [
        ("codec", {"id": "0", "name": "PCMU/8000"}, None),
        ("codec", {"id": "8", "name": "PCMA/8000"}, None),
        ("codec", {"id": "101", "name": "telephone-event/8000"}, None),
        ("attr", {"name": "fmtp"}, "101 0-16"),
        ("attr", {"name": "ptime"}, "20"),
    ]


def test_webrtc_offer_keeps_ice_dtls_and_bundle() -> None:
    sdp = parse_sdp(CHROME)
    audio, video = sdp.media
    assert sdp.origin == Origin("-", "4611731400430051336", "2", "127.0.0.1")
    assert sdp.address is None and audio.address == "198.51.100.7"
    assert audio.rtcp == Endpoint(9, "0.0.0.0")
    assert [c.payload for c in audio.codecs] == ["111", "63", "9", "0", "8", "13", "110", "126"]
    assert audio.codecs[0] == Codec("111", "opus/48000/2")
    assert len(audio.values("candidate")) == 2 and audio.values("end-of-candidates") == (None,)
    assert audio.values("ice-ufrag") == ("EsAw",) and audio.values("setup") == ("actpass",)
    assert audio.values("fingerprint")[0].startswith("sha-256 D2:FA")  # type: ignore[union-attr]
    assert audio.values("rtcp-mux") == (None,)
    # Chrome writes the direction mid-section: it stays an attribute, in its place.
    assert audio.direction is None and audio.values("sendrecv") == (None,)
    assert Attribute("group", "BUNDLE 0 1") in sdp.items
    assert Attribute("msid-semantic", " WMS 5bd8c1") in sdp.items  # the space is Chrome's
    assert video.values("fmtp") == ("97 apt=96",) and [c.name for c in video.codecs] == [
        "VP8/90000",
        "rtx/90000",
    ]
    media = sdp_to_xml(CHROME)[3]
    assert media.get("ip") == "[198.51.100.7]:54321" and media.get("rtcp") == "[0.0.0.0]:9"


def test_firefox_direction_first_stays_in_place() -> None:
    (audio,) = parse_sdp(FIREFOX).media
    assert audio.direction is None and audio.items[0] == Attribute("sendrecv")
    assert audio.codecs[0].name == "opus/48000/2"


def test_static_payload_types_without_rtpmap_are_nameless_codecs() -> None:
    audio, video = parse_sdp(LINPHONE).media
    assert [(c.payload, c.name) for c in audio.codecs] == [
        ("96", "opus/48000/2"),
        ("97", "speex/16000"),
        ("0", None),
        ("8", None),
        ("18", None),
        ("101", "telephone-event/48000"),
    ]
    assert Line("b", "AS:512") in video.items and video.direction == "sendrecv"
    # The nameless ones stand before the next named codec, where m= has them.
    media = sdp_to_xml(LINPHONE).findall("media")[0]
    assert [c.get("id") for c in media[4:9]] == [None, "0", "8", "18", "101"]
    assert [c.tag for c in media[4:9]] == ["attr", "codec", "codec", "codec", "codec"]


def test_repeated_connection_line_survives() -> None:
    sdp = parse_sdp(SDES)
    (audio,) = sdp.media
    assert sdp.address == audio.address == "192.0.2.63"
    assert audio.rtcp == Endpoint(6355) and audio.values("inactive") == (None,)
    media = sdp_to_xml(SDES)[1]
    assert media.get("rtcp") == "6355" and media.get("ip") == "[192.0.2.63]:6354"
    assert media[0].tag == "line" and media[0].text == "IN IP4 192.0.2.63"


def test_oddities_ipv6_port_count_and_unknown_lines() -> None:
    sdp = parse_sdp(ODDITIES)
    audio, data = sdp.media
    assert sdp.address == "2001:db8::1" and Line("x", "unknown line type") in sdp.items
    assert audio.port_count == 2 and audio.direction == "recvonly"
    assert data.codecs == (Codec("webrtc-datachannel"),) and data.address == "2001:db8::2"
    root = sdp_to_xml(ODDITIES)
    assert root.get("ip") == "[2001:db8::1]"
    audio_xml, data_xml = root.findall("media")
    assert audio_xml.get("portCount") == "2" and data_xml.get("ip") == "[2001:db8::2]:5000"


def test_misordered_device_descriptor_keeps_its_order() -> None:
    sdp = parse_sdp(DEVICE)
    assert sdp.origin is None and Line("o", "- 1 2 IN IP4 127.0.0.1") in sdp.items
    body = element(f"<sdp>{DEVICE}</sdp>")
    assert xml_to_sdp(body) == crlf(DEVICE)
    assert sdp_for_sip(body, session_id=9, session_version=9, fallback_ip="192.0.2.1") == crlf(
        DEVICE
    )


def test_client_xml_becomes_sip_sdp() -> None:
    text = sdp_for_sip(
        element(CLIENT_XML), session_id=1, session_version=1, fallback_ip="203.0.113.1"
    )
    assert text == crlf(
        "v=0\n"
        "o=- 4711 2 IN IP4 192.0.2.10\n"
        "s=-\n"
        "t=0 0\n"
        "a=group:BUNDLE audio\n"
        "a=webrtc:yes\n"
        "m=audio 50000 RTP/SAVPF 0 8 101\n"
        "c=IN IP4 192.0.2.10\n"
        "a=rtcp:9 IN IP4 0.0.0.0\n"
        "a=rtpmap:0 PCMU/8000\n"
        "a=rtpmap:8 PCMA/8000\n"
        "a=rtpmap:101 telephone-event/8000\n"
        "a=sendrecv\n"
    )


@pytest.mark.parametrize(
    ("body", "origin"),
    [
        # The `ip` attribute is the default media address.
        (
            '<sdp ip="[192.0.2.5]"><media media="audio" protocol="RTP/AVP" ip="[192.0.2.5]:4000">'
            '<codec id="0"/></media></sdp>',
            "o=- 77 3 IN IP4 192.0.2.5",
        ),
        # Without one, the first media address that is not 0.0.0.0.
        (
            '<sdp><media media="audio" protocol="RTP/AVP" ip="[0.0.0.0]:9"><codec id="0"/></media>'
            '<media media="video" protocol="RTP/AVP" ip="[2001:db8::7]:9"><codec id="96"/></media>'
            "</sdp>",
            "o=- 77 3 IN IP6 2001:db8::7",
        ),
        # Without any, the bridge's own.
        (
            '<sdp><media media="audio" protocol="RTP/AVP" port="4000"><codec id="0"/></media></sdp>',
            "o=- 77 3 IN IP4 203.0.113.1",
        ),
    ],
)
def test_sip_sdp_gets_an_origin(body: str, origin: str) -> None:
    text = sdp_for_sip(element(body), session_id=77, session_version=3, fallback_ip="203.0.113.1")
    assert text.split("\r\n")[1] == origin


def test_session_ip_and_inherited_media_address() -> None:
    body = element(
        '<sdp ip="[192.0.2.5]"><media media="audio" protocol="RTP/AVP" ip="[192.0.2.5]:4000">'
        '<codec id="0"/></media><media media="video" protocol="RTP/AVP" ip="[192.0.2.6]:4002">'
        '<codec id="31" name="H261/90000"/></media></sdp>'
    )
    sdp = from_xml(body)
    assert default_media_ip(sdp) == "192.0.2.5"
    assert sdp.media[0].address is None and sdp.media[1].address == "192.0.2.6"
    assert xml_to_sdp(body) == crlf(
        "v=0\ns=-\nc=IN IP4 192.0.2.5\nt=0 0\n"
        "m=audio 4000 RTP/AVP 0\n"
        "m=video 4002 RTP/AVP 31\nc=IN IP4 192.0.2.6\na=rtpmap:31 H261/90000\n"
    )


def test_text_bodies_are_read_as_sdp() -> None:
    for tag in ("sdp", "sdpText"):
        body = element(f"<{tag}>\n  {SOFTPHONE.replace(chr(10), chr(10) + '  ')}</{tag}>")
        assert xml_to_sdp(body) == crlf(SOFTPHONE)


def test_peer_sdp_for_the_client_is_an_sdp_element() -> None:
    root = sdp_for_client(crlf(SOFTPHONE).encode())
    assert root.tag == "sdp" and root[0].get("ip") == "[192.0.2.10]:49170"


def test_pretty_printed_client_xml_is_read() -> None:
    sdp = from_xml(element(CLIENT_XML))
    assert sdp.items == (Attribute("group", "BUNDLE audio"), Attribute("webrtc", "yes"))
    (audio,) = sdp.media
    assert audio.direction == "sendrecv" and audio.rtcp == Endpoint(9, "0.0.0.0")
    assert [c.payload for c in audio.codecs] == ["0", "8", "101"]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "o=- 1 1 IN IP4 192.0.2.1\n",  # no v=
        "v=1\ns=-\n",
        "v=0\nv=0\n",
        "v=0\ns=-\nthis is not sdp\n",
        "v=0\nS=-\n",
        "v=0\ns=a\x00b\n",
        "v=0\ns=a\rb\n",
        "v=0\nm=audio\n",
        "v=0\nm=audio 70000 RTP/AVP 0\n",
        "v=0\nm=audio port RTP/AVP 0\n",
        "v=0\nm=audio 4000/0 RTP/AVP 0\n",
        "v=0\nm=audio 4000 RTP/AVP 0 (x)\n",
    ],
)
def test_junk_sdp_is_refused(text: str) -> None:
    with pytest.raises(BridgeError) as caught:
        parse_sdp(text)
    assert caught.value.kind is ErrorKind.BAD_REQUEST


def test_non_utf8_sdp_is_refused() -> None:
    with pytest.raises(BridgeError) as caught:
        parse_sdp(b"v=0\r\ns=\xff\r\n")
    assert caught.value.kind is ErrorKind.BAD_REQUEST


MEDIA = '<media media="audio" protocol="RTP/AVP" ip="[192.0.2.1]:4000"><codec id="0"/></media>'


@pytest.mark.parametrize(
    "body",
    [
        "<sessionDescription/>",
        "<sdp><media media='audio' protocol='RTP/AVP' ip='[192.0.2.1]:4000'/></sdp>",  # no codec
        "<sdp><media media='audio' protocol='RTP/AVP'><codec id='0'/></media></sdp>",  # no port
        "<sdp><media media='audio' protocol='RTP/AVP' ip='[192.0.2.1]'><codec id='0'/></media></sdp>",
        "<sdp><media media='audio' protocol='RTP/AVP' ip='[192.0.2.1]:99999'><codec id='0'/></media></sdp>",
        "<sdp><media media='a b' protocol='RTP/AVP' port='1'><codec id='0'/></media></sdp>",
        "<sdp><media media='audio' protocol='RTP/AVP' port='1' direction='up'><codec id='0'/></media></sdp>",
        "<sdp><media media='audio' protocol='RTP/AVP' port='1' portCount='0'><codec id='0'/></media></sdp>",
        "<sdp><media media='audio' protocol='RTP/AVP' port='1' rtcp='x'><codec id='0'/></media></sdp>",
        "<sdp><media media='audio' protocol='RTP/AVP' port='1'><codec/></media></sdp>",
        "<sdp><media media='audio' protocol='RTP/AVP' port='1'><codec id='0' name='a b'/></media></sdp>",
        f"<sdp><codec id='0'/>{MEDIA}</sdp>",  # a codec outside a media
        f"<sdp><candidate/>{MEDIA}</sdp>",  # an element we would drop
        f"<sdp><attr>x</attr>{MEDIA}</sdp>",
        f"<sdp><attr name='a b'>x</attr>{MEDIA}</sdp>",
        f"<sdp><attr name='x'><b/></attr>{MEDIA}</sdp>",
        f"<sdp><line type='m'>audio 1 RTP/AVP 0</line>{MEDIA}</sdp>",
        f"<sdp><line type='vv'>0</line>{MEDIA}</sdp>",
        f"<sdp origUser='-'>{MEDIA}</sdp>",  # half an origin
        f"<sdp origUser='-' sessionID='1' sessionVersion='1' origIP='[a b]'>{MEDIA}</sdp>",
        f"<sdp ip='[192.0.2.1]:5'>{MEDIA}</sdp>",
        # A value that would smuggle a line into the SIP body.
        f"<sdp><attr name='x'>1&#13;&#10;a=evil</attr>{MEDIA}</sdp>",
        f"<sdp><line type='i'>one&#10;m=audio 1 RTP/AVP 0</line>{MEDIA}</sdp>",
        "<sdp>not sdp at all</sdp>",
    ],
)
def test_junk_xml_is_refused(body: str) -> None:
    with pytest.raises(BridgeError) as caught:
        xml_to_sdp(element(body))
    assert caught.value.kind is ErrorKind.BAD_REQUEST


def test_origin_fallback_must_be_an_address() -> None:
    with pytest.raises(BridgeError) as caught:
        sdp_for_sip(
            element(f"<sdp>{MEDIA}</sdp>".replace('ip="[192.0.2.1]:4000"', 'port="4"')),
            session_id=1,
            session_version=1,
            fallback_ip="not an address",
        )
    assert caught.value.kind is ErrorKind.BAD_REQUEST


@pytest.mark.parametrize(
    "text",
    [
        "v=0\n" + "a=x\n" * MAX_LINES,
        "v=0\ns=" + "x" * MAX_LINE_CHARS + "\n",
        "v=0\n" + "m=audio 1 RTP/AVP 0\n" * (MAX_MEDIA + 1),
        "v=0\nm=audio 1 RTP/AVP " + " ".join(str(i) for i in range(MAX_FORMATS + 1)) + "\n",
        "v=0\n" + "i=" + "x" * (MAX_SDP_BYTES // 2) + "\n" + "i=" + "x" * (MAX_SDP_BYTES // 2),
    ],
)
def test_limits(text: str) -> None:
    with pytest.raises(BridgeError) as caught:
        parse_sdp(text)
    assert caught.value.kind is ErrorKind.LIMIT


def test_xml_limits() -> None:
    many_media = "".join([MEDIA] * (MAX_MEDIA + 1))
    many_codecs = "".join(f"<codec id='{i}'/>" for i in range(MAX_FORMATS + 1))
    many_attrs = "<attr name='x'/>" * (MAX_LINES + 1)
    long_value = "y" * MAX_LINE_CHARS
    for body in (
        f"<sdp>{many_media}</sdp>",
        f"<sdp><media media='audio' protocol='RTP/AVP' port='1'>{many_codecs}</media></sdp>",
        f"<sdp><attr name='x'>{long_value}</attr>{MEDIA}</sdp>",
        f"<sdp>{many_attrs}{MEDIA}</sdp>",
    ):
        with pytest.raises(BridgeError) as caught:
            xml_to_sdp(element(body))
        assert caught.value.kind is ErrorKind.LIMIT


# --- properties ----------------------------------------------------------------------------------

_VALUE = st.text(
    st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="\ufffe\uffff")
    | st.just("\t"),
    max_size=24,
)
_FORMATS = ["0", "8", "9", "96", "97", "101", "111"]


@st.composite
def sdp_texts(draw: st.DrawFn) -> str:
    """Real-looking lines in any order: whatever the order, every line must come back in place."""
    realistic = st.sampled_from(
        [
            ("o", "- 1 2 IN IP4 192.0.2.1"),
            ("o", "user 1 2 IN IP6 ::1"),
            ("s", "-"),
            ("s", "Talk"),
            ("c", "IN IP4 192.0.2.1"),
            ("c", "IN IP6 2001:db8::1"),
            ("c", "IN IP4 224.2.1.1/127"),
            ("t", "0 0"),
            ("t", "3034423619 3042462419"),
            ("b", "AS:64"),
            ("a", "group:BUNDLE 0 1"),
            ("a", "ice-lite"),
            ("a", "x:"),
            ("a", "rtcp:9 IN IP4 0.0.0.0"),
            ("a", "rtcp:5001"),
            ("a", "sendrecv"),
            ("a", "inactive"),
            ("a", "candidate:1 1 udp 2122260223 192.0.2.1 5000 typ host"),
            ("a", "fingerprint:sha-256 AB:CD"),
            ("a", "crypto:1 AES_CM_128_HMAC_SHA1_80 inline:abc"),
        ]
    )
    anything = st.tuples(st.sampled_from("osiuepcbtrzkaxy"), _VALUE)
    line = realistic | anything

    def lines(formats: list[str]) -> st.SearchStrategy[tuple[str, str]]:
        rtpmap = st.builds(
            lambda pt, name: ("a", f"rtpmap:{pt} {name}"),
            st.sampled_from([*formats, "127"]),
            st.sampled_from(["PCMU/8000", "opus/48000/2", "telephone-event/8000"]),
        )
        return line | rtpmap

    out = [("v", "0"), *draw(st.lists(line, max_size=8))]
    for _ in range(draw(st.integers(0, 3))):
        formats = draw(st.lists(st.sampled_from(_FORMATS), min_size=1, max_size=5))
        port = draw(st.sampled_from(["0", "9", "49170", "5004/2"]))
        out.append(("m", f"audio {port} RTP/AVP {' '.join(formats)}"))
        out.extend(draw(st.lists(lines(formats), max_size=10)))
    return "".join(f"{kind}={value}\n" for kind, value in out)


@settings(max_examples=400)
@given(sdp_texts())
def test_any_line_order_survives_text_model_text(text: str) -> None:
    assert render_sdp(parse_sdp(text)) == crlf(text)


@settings(max_examples=400)
@given(sdp_texts())
def test_any_line_order_survives_the_xml_wire(text: str) -> None:
    session = text.split("\nm=", maxsplit=1)[0]
    kinds = {line[:1] for line in session.splitlines()}
    expected = render_sdp(parse_sdp(text))
    if "s" in kinds and "t" in kinds:  # XML cannot say "no s=" or "no t="
        assert through_xml(text) == expected
    first = xml.serialize(sdp_to_xml(text))
    assert xml.serialize(sdp_to_xml(xml_to_sdp(xml.parse(first)))) == first


@given(st.binary(max_size=512))
def test_binary_junk_raises_only_bridge_errors(data: bytes) -> None:
    with contextlib.suppress(BridgeError):
        sdp_to_xml(data)


@given(st.text(max_size=256))
def test_text_junk_raises_only_bridge_errors(data: str) -> None:
    with contextlib.suppress(BridgeError):
        xml_to_sdp(sdp_to_xml("v=0\n" + data))
