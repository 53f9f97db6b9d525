"""Byte-exact framing and PDUs of the simulated slave side."""

from __future__ import annotations

import pytest

from firmware_sims.pdu import ModbusError, ReadRequest, exception_response, parse_request, read_response
from firmware_sims.rtu_frames import MAX_BUFFER, RequestHunter, crc16, rtu_frame

READ_10_FROM_UNIT_1 = bytes.fromhex("01030000000AC5CD")
"""The textbook example: read 10 holding registers from unit 1, CRC C5 CD."""


def test_crc_matches_the_textbook_frame() -> None:
    assert crc16(READ_10_FROM_UNIT_1[:-2]) == bytes.fromhex("C5CD")
    assert rtu_frame(1, bytes.fromhex("030000000A")) == READ_10_FROM_UNIT_1


def test_corrupt_frame_fails_its_crc() -> None:
    frame = rtu_frame(1, bytes.fromhex("030000000A"), corrupt=True)
    assert frame[:-2] == READ_10_FROM_UNIT_1[:-2]
    assert crc16(frame[:-2]) != frame[-2:]


def test_hunter_finds_a_request_split_across_reads() -> None:
    hunter = RequestHunter()
    assert hunter.feed(READ_10_FROM_UNIT_1[:3]) == []
    assert hunter.pending
    assert hunter.feed(READ_10_FROM_UNIT_1[3:]) == [(1, bytes.fromhex("030000000A"))]
    assert not hunter.pending


def test_hunter_resyncs_after_noise_and_takes_back_to_back_frames() -> None:
    second = rtu_frame(7, bytes.fromhex("0420000002"))
    noise = bytes.fromhex("FF0110AA00FF55")  # looks like the start of a long write-multiple
    assert RequestHunter().feed(noise + READ_10_FROM_UNIT_1 + second) == [
        (1, bytes.fromhex("030000000A")),
        (7, bytes.fromhex("0420000002")),
    ]


def test_hunter_drops_a_frame_with_a_bad_crc() -> None:
    hunter = RequestHunter()
    assert hunter.feed(READ_10_FROM_UNIT_1[:-1] + b"\x00") == []
    assert hunter.idle() is None
    assert not hunter.pending


def test_hunter_takes_an_unsized_function_when_the_line_goes_quiet() -> None:
    diagnostics = rtu_frame(1, bytes.fromhex("0800001234"))
    hunter = RequestHunter()
    assert hunter.feed(diagnostics) == []
    assert hunter.idle() == (1, bytes.fromhex("0800001234"))


def test_hunter_survives_endless_noise() -> None:
    hunter = RequestHunter()
    hunter.feed(bytes(range(256)) * 4)
    assert hunter.feed(READ_10_FROM_UNIT_1) == [(1, bytes.fromhex("030000000A"))]
    promise_of_a_long_write = bytes.fromhex("01100000007BF6")
    hunter.feed(promise_of_a_long_write + bytes(2 * MAX_BUFFER))
    assert hunter.feed(READ_10_FROM_UNIT_1) == [(1, bytes.fromhex("030000000A"))]


def test_parse_read_request() -> None:
    assert parse_request(bytes.fromhex("04 2000 0002")) == ReadRequest(4, 0x2000, 2)


@pytest.mark.parametrize(
    ("pdu", "code"),
    [
        ("0600010003", 1),  # write single register: not supported
        ("2B0E0100", 1),  # read device identification
        ("0300000000", 3),  # zero registers
        ("030000007E", 3),  # 126 registers
        ("01000007D1", 3),  # 2001 coils
        ("03FFFF0002", 2),  # runs past 65535
        ("0300", 3),  # truncated
    ],
)
def test_request_errors_follow_the_modbus_order(pdu: str, code: int) -> None:
    with pytest.raises(ModbusError) as err:
        parse_request(bytes.fromhex(pdu))
    assert err.value.code == code


def test_register_and_bit_replies_are_byte_exact() -> None:
    assert read_response(3, [0x4509, 0x8000]) == bytes.fromhex("03 04 4509 8000")
    # Bits go LSB first: coils 1,0,1,1,0,0,1,1 then 1,0 -> 0xCD 0x01.
    assert read_response(1, [1, 0, 1, 1, 0, 0, 1, 1, 1, 0]) == bytes.fromhex("0102CD01")
    assert exception_response(4, 2) == bytes.fromhex("8402")
