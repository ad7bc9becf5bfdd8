"""Pipelined requests in one TCP write come back in order with their ids echoed byte for byte."""

from __future__ import annotations

import re

from tests.e2e.rawconn import RawConnection

IDS = [
    "noop", "1234567890123", "A001", "A001", "x-y_z.1", "7", "0007", "A 1", "&amp;amp", "тест",
    "r10", "r11", "r12", "r13", "r14", "r15", "r16", "r17", "r18", "r19",
]  # fmt: skip
RESPONSE_ID = re.compile(rb'^<(\w+) id="([^"]*)"')


async def test_twenty_pipelined_requests_in_one_write(bridge_port: int) -> None:
    conn = await RawConnection.open(bridge_port)
    try:
        await conn.send(b'<login id="L" authData="user1@example.test" password="user1pass"/>\0')
        await conn.frames(2)
        operations = ["noop", "readTime", "mailboxList", "bogusOp"]
        batch = b"".join(
            f'<{operations[i % 4]} id="{request_id}"/>\0'.encode()
            for i, request_id in enumerate(IDS)
        )
        await conn.send(batch)  # one write
        responses: list[bytes] = []
        data_ids: list[tuple[int, bytes]] = []
        while len(responses) < len(IDS):
            (frame,) = await conn.frames(1)
            match = RESPONSE_ID.match(frame)
            assert match is not None, frame
            if match.group(1) == b"response":
                responses.append(match.group(2))
            else:
                # A request's data messages carry its id and come before its response.
                data_ids.append((len(responses), match.group(2)))
        assert responses == [request_id.encode() for request_id in IDS]
        for index, data_id in data_ids:
            assert data_id == IDS[index].encode()
    finally:
        await conn.close()
