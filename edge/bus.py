"""One hub object per physical bus (serial port or TCP gateway).

The hub owns the pymodbus client, the one-transaction-at-a-time lock, the silent gap a serial line needs
between frames (t3.5) and the per-request deadline. Drivers never touch the port directly.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.framer import FramerType
from pymodbus.framer.rtu import FramerRTU

from edge.config import Bus, RtuBus, RtuOverTcpBus, TcpBus
from protocols.modbus.planner import ReadRequest
from protocols.modbus.wire import LineTiming

log = logging.getLogger(__name__)
logging.getLogger("pymodbus").setLevel(logging.CRITICAL)  # it logs every timeout; link health counts them


class BusError(Exception):
    """A read that produced no usable answer; ``kind`` says why, for link health."""

    kind = "error"


class DeviceTimeout(BusError):
    kind = "timeout"


class CrcError(BusError):
    kind = "crc_error"


class DeviceException(BusError):
    """The device answered with a Modbus exception (e.g. 2: illegal data address)."""

    kind = "exception"

    def __init__(self, code: int) -> None:
        super().__init__(f"Modbus exception code {code}")
        self.code = code


class LinkDown(BusError):
    """The port or gateway itself is unreachable; not the device's fault."""

    kind = "link_down"


RECONNECT_MAX_S = 30.0
_READERS = {
    1: "read_coils",
    2: "read_discrete_inputs",
    3: "read_holding_registers",
    4: "read_input_registers",
}


@dataclass
class _FrameWatch:
    """Notices replies that arrived but failed their CRC, which pymodbus silently discards."""

    bad_crc: bool = False

    def trace(self, sending: bool, data: bytes) -> bytes:
        if not sending and len(data) >= 4:
            crc = int.from_bytes(data[-2:], "big")
            if not FramerRTU.check_CRC(data[:-2], crc):
                self.bad_crc = True
        return data


def line_timing(bus: Bus) -> LineTiming:
    """The cost model the planner uses for this bus: the serial line's own, or a fast link for TCP."""
    if isinstance(bus, TcpBus):
        return LineTiming(baudrate=10_000_000, device_latency_s=bus.device_latency_s)
    return LineTiming(bus.baudrate, bus.parity, bus.stopbits, bus.device_latency_s)


class BusHub:
    """Serialises transactions on one bus and classifies what went wrong."""

    def __init__(self, config: Bus) -> None:
        self.config = config
        self.timing = line_timing(config)
        self.serial_line = not isinstance(config, TcpBus)
        self._exclusive = self.serial_line or (isinstance(config, TcpBus) and config.serialize)
        self._lock = asyncio.Lock()
        self._watch = _FrameWatch()
        self._quiet_until = 0.0
        self._client: AsyncModbusSerialClient | AsyncModbusTcpClient | None = None

    @property
    def client(self) -> AsyncModbusSerialClient | AsyncModbusTcpClient:
        """Made on first use: pymodbus clients bind to the running event loop."""
        if self._client is None:
            self._client = self._make_client()
        return self._client

    def _make_client(self) -> AsyncModbusSerialClient | AsyncModbusTcpClient:
        c = self.config
        # retries=0: the poller's breaker decides what a missed reply means, not the client
        if isinstance(c, RtuBus):
            return AsyncModbusSerialClient(
                c.port, baudrate=c.baudrate, parity=c.parity, stopbits=c.stopbits,
                timeout=c.timeout_s, retries=0, reconnect_delay_max=RECONNECT_MAX_S, trace_packet=self._watch.trace,
            )  # fmt: skip
        if isinstance(c, RtuOverTcpBus):
            return AsyncModbusTcpClient(
                c.host, port=c.port, framer=FramerType.RTU,
                timeout=c.timeout_s, retries=0, reconnect_delay_max=RECONNECT_MAX_S, trace_packet=self._watch.trace,
            )  # fmt: skip
        return AsyncModbusTcpClient(
            c.host, port=c.port, timeout=c.timeout_s, retries=0, reconnect_delay_max=RECONNECT_MAX_S
        )

    @property
    def name(self) -> str:
        return self.config.name

    async def connect(self) -> bool:
        return bool(await self.client.connect())

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    async def read(self, unit_id: int, request: ReadRequest) -> list[int]:
        """Registers (or bits as 0/1) for one planned request; raises a BusError subclass on failure."""
        if self._exclusive:
            async with self._lock:
                return await self._transact(unit_id, request)
        return await self._transact(unit_id, request)

    async def _transact(self, unit_id: int, request: ReadRequest) -> list[int]:
        if not self.client.connected and not await self.connect():
            raise LinkDown(f"bus {self.name}: cannot open {self._where()}")
        if self.serial_line:
            wait = self._quiet_until - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
        self._watch.bad_crc = False
        reader = getattr(self.client, _READERS[request.function])
        try:
            response = await reader(request.address, count=request.count, device_id=unit_id)
        except ModbusIOException:
            raise (CrcError if self._watch.bad_crc else DeviceTimeout)(
                f"unit {unit_id} on {self.name}: no valid reply within {self.config.timeout_s}s"
            ) from None
        except ConnectionException as exc:
            raise LinkDown(f"bus {self.name}: {exc}") from None
        except ModbusException as exc:
            raise DeviceTimeout(f"unit {unit_id} on {self.name}: {exc}") from None
        finally:
            self._quiet_until = time.perf_counter() + self.timing.t35_s
        if response.isError():
            raise DeviceException(getattr(response, "exception_code", 0))
        if request.function in (1, 2):
            return [1 if b else 0 for b in response.bits[: request.count]]
        return list(response.registers)

    def _where(self) -> str:
        c = self.config
        return c.port if isinstance(c, RtuBus) else f"{c.host}:{c.port}"
