"""Kamailio's health check in deploy/compose.yaml: an OPTIONS to the server itself over UDP
(from probe.invalid, which the configuration answers without a challenge); exit 0 on a 200."""

import os
import socket
import sys
import uuid

port = int(os.environ.get("KAMAILIO_PORT", "5060"))
call_id = uuid.uuid4().hex
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
    s.settimeout(3)
    s.connect(("127.0.0.1", port))
    local = s.getsockname()[1]
    s.send(
        (
            f"OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{local};branch=z9hG4bK{call_id[:16]};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:health@probe.invalid>;tag={call_id[16:24]}\r\n"
            f"To: <sip:127.0.0.1:{port}>\r\n"
            f"Call-ID: {call_id}\r\n"
            "CSeq: 1 OPTIONS\r\n"
            "Content-Length: 0\r\n\r\n"
        ).encode()
    )
    sys.exit(0 if s.recv(65535).startswith(b"SIP/2.0 200") else 1)
