"""Modbus TCP slaves: MBAP framing (a gateway or a TCP-native device), or RTU frames over TCP (a serial
converter in transparent mode). Several unit ids share one port; all connections share one line, so
with timing enabled transactions take turns as they would on the serial bus behind a gateway.

On MBAP a bad_crc fault drops the reply (the gateway saw a corrupt serial frame), so it looks like
no_response; RTU-over-TCP forwards the corrupt frame as is.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import socketserver
import struct
import threading
import time
from collections.abc import Iterable
from types import TracebackType
from typing import Literal

from firmware_sims.device import SimulatedDevice
from firmware_sims.line import Line
from firmware_sims.responder import Responder
from firmware_sims.rtu_link import RtuLink
from protocols.modbus.wire import LineTiming

log = logging.getLogger(__name__)
Framing = Literal["mbap", "rtu"]
MBAP_HEADER = struct.Struct(">HHHB")
"""transaction id, protocol id (0), length (unit id + PDU), unit id."""
MAX_PDU = 253


class _Listener(socketserver.ThreadingTCPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, sim: TcpServer, address: tuple[str, int]) -> None:
        self.sim = sim
        super().__init__(address, _Connection)


class _Connection(socketserver.BaseRequestHandler):
    server: _Listener
    request: socket.socket

    def handle(self) -> None:
        sim = self.server.sim
        sim.connections.add(self.request)
        try:
            sim.serve(self.request)
        except OSError:
            pass
        except Exception:
            log.exception("%s: connection failed", sim.name)
        finally:
            sim.connections.discard(self.request)


class TcpServer:
    """Devices behind one TCP port (127.0.0.1, a free port by default: read `port` after start)."""

    def __init__(
        self,
        devices: Iterable[SimulatedDevice],
        framing: Framing = "mbap",
        timing: LineTiming | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        name: str = "tcp",
    ) -> None:
        self.name = name
        self.framing = framing
        self.responder = Responder(devices)
        self.line = Line(timing)
        self.host = host
        self.port = port
        self.connections: set[socket.socket] = set()
        self._listener: _Listener | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> TcpServer:
        self._listener = _Listener(self, (self.host, self.port))
        self.port = self._listener.server_address[1]
        self._thread = threading.Thread(
            target=self._listener.serve_forever, args=(0.1,), name=f"sim-{self.name}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._listener is None or self._thread is None:
            return
        self._listener.shutdown()
        self._thread.join()
        for conn in list(self.connections):
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._listener.server_close()
        self._listener = None

    def __enter__(self) -> TcpServer:
        return self.start()

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()

    def serve(self, sock: socket.socket) -> None:
        """One client connection, until it closes."""
        if self.framing == "mbap":
            self._serve_mbap(sock)
        else:
            self._serve_rtu(sock)

    def _serve_rtu(self, sock: socket.socket) -> None:
        link = RtuLink(self.responder, self.line, sock.sendall)
        while True:
            sock.settimeout(self.line.gap_s if link.pending else None)
            try:
                data = sock.recv(4096)
            except TimeoutError:
                link.idle()
                continue
            if not data:
                return
            link.received(data, time.perf_counter())

    def _serve_mbap(self, sock: socket.socket) -> None:
        buf = b""
        while data := sock.recv(4096):
            arrived = time.perf_counter()
            buf += data
            while len(buf) >= MBAP_HEADER.size:
                tid, protocol, length, unit_id = MBAP_HEADER.unpack_from(buf)
                if protocol != 0 or not 2 <= length <= MAX_PDU + 1:
                    log.info("%s: not a Modbus TCP header (%s), closing the connection", self.name, buf[:7].hex())
                    return
                if len(buf) < 6 + length:
                    break
                pdu, buf = buf[MBAP_HEADER.size : 6 + length], buf[6 + length :]
                self._answer_mbap(sock, tid, unit_id, pdu, arrived)

    def _answer_mbap(self, sock: socket.socket, tid: int, unit_id: int, pdu: bytes, arrived: float) -> None:
        reply = self.responder.answer(unit_id, pdu)
        serial_request = len(pdu) + 3
        if reply is None or reply.corrupt:
            self.line.transmit(arrived, serial_request, 0, None)
            return
        frame = MBAP_HEADER.pack(tid, 0, len(reply.pdu) + 1, unit_id) + reply.pdu
        self.line.transmit(arrived, serial_request, len(reply.pdu) + 3, lambda: sock.sendall(frame))
