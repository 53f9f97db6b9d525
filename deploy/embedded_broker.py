"""An embedded MQTT broker (amqtt) for `make demo`, with per-client credentials and topic ACLs.

Only for the demo: amqtt speaks MQTT 3.1.1 only and does not redeliver unacknowledged QoS 1 messages,
which the edge's end-to-end ack covers. Real sites run Mosquitto (deploy/mosquitto/).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path

from amqtt.broker import Broker
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from protocols.topics import NAMESPACE, TOPIC_VERSION


@dataclass(frozen=True)
class Account:
    username: str
    password: str


class EmbeddedBroker:
    """Runs amqtt on its own thread and event loop; accounts for one site's edge and for the hub."""

    def __init__(self, workdir: Path, port: int, site: str, edge: str) -> None:
        self.port = port
        self.edge = Account(f"edge-{edge}", secrets.token_urlsafe(18))
        self.hub = Account("hub", secrets.token_urlsafe(18))
        base = f"{NAMESPACE}/{TOPIC_VERSION}"
        mine = f"{base}/{site}/{edge}"
        hasher = PasswordHash((Argon2Hasher(),))
        passwords = workdir / "broker-passwords"
        passwords.write_text("".join(f"{a.username}:{hasher.hash(a.password)}\n" for a in (self.edge, self.hub)))
        passwords.chmod(0o600)
        self._config = {
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
            "plugins": {
                "amqtt.plugins.authentication.FileAuthPlugin": {"password_file": str(passwords)},
                "amqtt.plugins.topic_checking.TopicAccessControlListPlugin": {  # "acl" is amqtt 0.12's subscribe ACL
                    "publish_acl": {self.edge.username: [f"{mine}/up/#"], self.hub.username: [f"{base}/+/+/down/#"]},
                    "acl": {self.edge.username: [f"{mine}/down/#"], self.hub.username: [f"{base}/+/+/up/#"]},
                },
            },
        }
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="embedded-broker", daemon=True)
        self._broker: Broker | None = None
        self._error: BaseException | None = None

    def start(self) -> EmbeddedBroker:
        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.WARNING)
        self._thread.start()
        self._ready.wait(15)
        if self._error is not None or self._broker is None:
            raise RuntimeError(f"embedded broker did not start on 127.0.0.1:{self.port}: {self._error}")
        return self

    def stop(self) -> None:
        if self._broker is not None:
            asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def boot() -> None:
            self._broker = Broker(self._config)
            await self._broker.start()

        try:
            self._loop.run_until_complete(boot())
        except Exception as exc:  # reported to start()
            logging.getLogger(__name__).exception("embedded broker failed")
            self._error = exc
            self._broker = None
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()
