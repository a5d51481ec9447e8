"""rmem over TLS (``rediss://``) and over a Unix socket (``unix://``): the sync and async
clients and the sync thread, end to end (every other test uses plain TCP).

The embedded Redis is built without TLS, so the TLS runs go through a TLS-terminating proxy
in front of it: a thread of this process, with a certificate made for the run. What rmem sees
is a Redis that speaks TLS: its pooled connections, the async backend's own send
(``rmem/_wire.py``) over an SSL transport, and the sync thread's own reads of its pub/sub
socket (``rmem/_subscription.py``), here an SSL socket. The Unix socket runs use a Redis of
their own that listens on one.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import rmem
from rmem import _subscription
from rmem.server import EmbeddedRedis
from tests.test_sync import replica_messages, wait_until

BIG = "x" * 600_000  # one message bigger than a TLS record and the proxy's reads


def _certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rmem test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class TlsProxy:
    """Accepts TLS connections and relays each, decrypted, to ``host:port``."""

    def __init__(self, host: str, port: int, context: ssl.SSLContext) -> None:
        self._target = (host, port)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._relay, "127.0.0.1", 0, ssl=context), self._loop
        ).result(timeout=10)
        self.port: int = self._server.sockets[0].getsockname()[1]

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self._target)

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            finally:
                sink.close()

        await asyncio.gather(
            pipe(reader, up_writer), pipe(up_reader, writer), return_exceptions=True
        )

    def close(self) -> None:
        async def stop() -> None:
            self._server.close()
            relays = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in relays:
                task.cancel()
            await asyncio.gather(*relays, return_exceptions=True)
            await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


@pytest.fixture(scope="module")
def tls_url(redis_server: EmbeddedRedis, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    cert, key = _certificate(tmp_path_factory.mktemp("tls"))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    host, port = redis_server.url.removeprefix("redis://").split("/")[0].rsplit(":", 1)
    proxy = TlsProxy(host, int(port), context)
    try:
        yield f"rediss://127.0.0.1:{proxy.port}/0?ssl_ca_certs={cert}&ssl_cert_reqs=required"
    finally:
        proxy.close()


@pytest.fixture(scope="module")
def unix_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    path = tmp_path_factory.mktemp("unix") / "redis.sock"
    with EmbeddedRedis(extra_args=["--unixsocket", str(path), "--unixsocketperm", "700"]):
        yield f"unix://{path}?db=0"


@pytest.fixture(params=["tls", "unix"])
def url(request: pytest.FixtureRequest) -> str:
    """The URL of a Redis reached over TLS, or over a Unix socket."""
    return str(request.getfixturevalue(f"{request.param}_url"))


def test_the_async_client_works(url: str, namespace: str) -> None:
    async def main() -> None:
        async with rmem.AsyncClient.from_url(url, namespace=namespace, sync=False) as c:
            session = c.session("async-client")
            small = await session.append({"role": "user", "content": "hello"})
            big = await session.append({"role": "assistant", "content": BIG})
            batch = await session.extend({"role": "user", "content": f"m{i}"} for i in range(50))
            got = await session.messages()
            assert [m.id for m in got] == [small.id, big.id, *(m.id for m in batch)]
            assert got[1].content == BIG
            # Many round trips in flight at once, each on its own pooled TLS connection.
            counts = await asyncio.gather(*(session.count() for _ in range(20)))
            assert set(counts) == {52}

    asyncio.run(main())


def test_the_sync_client_works(url: str, namespace: str) -> None:
    with rmem.Client.from_url(url, namespace=namespace, sync=False) as c:
        session = c.session("sync-client")
        big = session.append({"role": "user", "content": BIG})
        assert [m.content for m in session.messages()] == [BIG]
        assert session.messages()[0].id == big.id


def test_replicas_follow_other_instances(url: str, namespace: str) -> None:
    with (
        rmem.Client.from_url(url, namespace=namespace) as a,
        rmem.Client.from_url(url, namespace=namespace) as b,
    ):
        sa, sb = a.session("replicas"), b.session("replicas")
        first = sa.append({"role": "user", "content": "hello"})
        assert [m.id for m in sb.messages()] == [first.id]  # read through: b holds a replica
        wait_until(lambda: replica_messages(b, "replicas") == [first.id])
        # A large message between two small ones: the replica takes all three.
        big = sa.append({"role": "assistant", "content": BIG})
        last = sa.append({"role": "user", "content": "after"})
        wait_until(lambda: replica_messages(b, "replicas") == [first.id, big.id, last.id])
        assert [m.content for m in sb.messages(last=2)] == [BIG, "after"]
        # A burst of hints, read off the SSL socket as they come.
        burst = [sa.append({"role": "user", "content": f"burst {i}"}).id for i in range(200)]
        wait_until(lambda: replica_messages(b, "replicas") == [first.id, big.id, last.id, *burst])


def test_tls_bytes_held_by_the_ssl_layer_are_read_without_waiting(
    tls_url: str, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With a read buffer smaller than a TLS record, a read leaves the rest of the record
    # decrypted inside the SSL object, where the socket's readiness cannot see it: the sync
    # thread's subscription must read it without waiting for the server to send more.
    monkeypatch.setattr(_subscription, "_BUFFER", 1024)
    channel, hint = f"test-transports-{namespace}", b"y" * 12_000  # one record, 12 buffers
    with redis.Redis.from_url(tls_url) as publisher:
        subscription = _subscription.open_subscription(publisher)
        try:
            subscription.subscribe(channel)
            pushed = subscription.read(5.0)
            assert [(kind, name) for kind, name, _ in pushed] == [("subscribe", channel.encode())]
            assert publisher.publish(channel, hint) == 1
            got: list[bytes] = []
            for _ in range(50):  # ~12 reads with the SSL layer's bytes read, 50 x 0.1 s without
                got += [data for kind, _, data in subscription.read(0.1) if kind == "message"]
                if got:
                    break
            assert got == [hint]
        finally:
            subscription.close()
