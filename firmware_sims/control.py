"""Switching faults and scanning codes while a simulation runs, through a local UNIX socket.

One JSON object per line in, one per line out:

    {"op": "fault", "device": "b1-u03-elec", "fault": "stuck"}        -> {"ok": true}
    {"op": "fault", "device": "b1-u03-elec", "fault": null}           -> {"ok": true}   (clear)
    {"op": "fault", "device": "...", "fault": "exception", "exception_code": 6}
    {"op": "scan", "scanner": "gate-scanner", "code": "CP-7F3A"}      -> {"ok": true, "delivered": true}
    {"op": "status"}                                                  -> {"ok": true, "faults": {device: kind}}

Errors come back as {"ok": false, "error": "..."}; the connection stays usable.
"""

from __future__ import annotations

import json
import os
import socket
import socketserver
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from pydantic import ValidationError

from firmware_sims.device import SimulatedDevice
from firmware_sims.faults import Fault
from firmware_sims.scanner import SimulatedScanner

DEFAULT_SOCKET = Path(os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()) / "estatehub-sim.sock"


class ControlError(RuntimeError):
    """The simulation refused or could not be reached."""


def execute(
    request: Any, devices: Mapping[str, SimulatedDevice], scanners: Mapping[str, SimulatedScanner]
) -> dict[str, Any]:
    """One control request against the running devices and scanners."""
    if not isinstance(request, dict):
        return {"ok": False, "error": "a request is a JSON object with an 'op'"}
    op = request.get("op")
    if op == "status":
        return {"ok": True, "faults": {name: (d.fault.kind.value if d.fault else None) for name, d in devices.items()}}
    if op == "fault":
        device = devices.get(request.get("device", ""))
        if device is None:
            return {"ok": False, "error": f"no device {request.get('device')!r}; there are {len(devices)}"}
        kind = request.get("fault")
        options = {k: v for k, v in request.items() if k in ("exception_code", "wrap_after_s")}
        try:
            fault = None if kind is None else Fault(kind=kind, **options)
        except ValidationError as exc:
            return {
                "ok": False,
                "error": "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()),
            }
        device.set_fault(fault)
        return {"ok": True}
    if op == "scan":
        scanner = scanners.get(request.get("scanner", ""))
        if scanner is None:
            return {
                "ok": False,
                "error": f"no scanner {request.get('scanner')!r}; there are {', '.join(scanners) or 'none'}",
            }
        try:
            return {"ok": True, "delivered": scanner.scan(str(request.get("code", "")))}
        except ValueError as exc:
            return {"ok": False, "error": str(exc)}
    return {"ok": False, "error": f"unknown op {op!r}; use fault, scan or status"}


class _Handler(socketserver.StreamRequestHandler):
    server: _Listener

    def handle(self) -> None:
        for line in self.rfile:
            try:
                request = json.loads(line)
            except json.JSONDecodeError as exc:
                reply: dict[str, Any] = {"ok": False, "error": f"not JSON: {exc}"}
            else:
                reply = execute(request, self.server.devices, self.server.scanners)
            self.wfile.write(json.dumps(reply).encode() + b"\n")


class _Listener(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True
    block_on_close = False

    def __init__(
        self, path: Path, devices: Mapping[str, SimulatedDevice], scanners: Mapping[str, SimulatedScanner]
    ) -> None:
        self.devices = devices
        self.scanners = scanners
        super().__init__(str(path), _Handler)


class ControlServer:
    def __init__(
        self,
        devices: Mapping[str, SimulatedDevice],
        scanners: Mapping[str, SimulatedScanner] | None = None,
        path: Path = DEFAULT_SOCKET,
    ) -> None:
        self.path = path
        self._devices = devices
        self._scanners = scanners or {}
        self._listener: _Listener | None = None

    def start(self) -> ControlServer:
        self.path.unlink(missing_ok=True)
        self._listener = _Listener(self.path, self._devices, self._scanners)
        threading.Thread(target=self._listener.serve_forever, args=(0.2,), name="sim-control", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._listener is not None:
            self._listener.shutdown()
            self._listener.server_close()
            self._listener = None
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> ControlServer:
        return self.start()

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()


def send(request: dict[str, Any], path: Path = DEFAULT_SOCKET, timeout_s: float = 5.0) -> dict[str, Any]:
    """Send one request to a running simulation; raises ControlError if it refused or is not running."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout_s)
            sock.connect(str(path))
            sock.sendall(json.dumps(request).encode() + b"\n")
            reply: dict[str, Any] = json.loads(sock.makefile("rb").readline())
    except (OSError, json.JSONDecodeError) as exc:
        raise ControlError(f"no simulation answering on {path}: {exc}") from None
    if not reply.get("ok"):
        raise ControlError(reply.get("error", "refused"))
    return reply
