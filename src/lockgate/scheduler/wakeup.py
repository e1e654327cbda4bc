"""Cross-process wake-ups on one host: a UDP datagram to 127.0.0.1 makes a sleeping scheduler
re-read the database now instead of at its next due time.

The scheduler stores its listener's `address` ("<hostname>:<port>") in the database; a process
that changes something the scheduler should react to (a manual trigger, a dataset update)
calls `wake()` with the stored addresses after its commit. Wake-ups are best effort: a lost one
only delays the scheduler to its next due time or periodic check.

Security: the listener binds 127.0.0.1 only, so any process of this host (and no other host)
can wake the scheduler. That is harmless: a wake-up carries no data (its content is ignored)
and only makes the scheduler re-read the database, which it trusts; a flood of them costs at
most one re-read per burst, as bursts are coalesced.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import threading
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

logger = logging.getLogger("lockgate.scheduler")

_LOOPBACK = "127.0.0.1"
_MESSAGE = b"wake"


class WakeListener:
    """A UDP socket on 127.0.0.1 (ephemeral port) whose datagrams call `callback()` in a
    daemon thread; a burst of datagrams waiting together gives one call."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind((_LOOPBACK, 0))
        self._sock.setblocking(False)
        self._port: int = self._sock.getsockname()[1]
        # close() writes to this pair to end the thread's select() at once, without a timeout
        self._stop_r, self._stop_w = socket.socketpair()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._close_on_exit = False  # close() was called by the callback, in the thread

    @property
    def port(self) -> int:
        """The UDP port on 127.0.0.1 (still known after close)."""
        return self._port

    @property
    def address(self) -> str:
        """Where `wake()` finds this listener: "<hostname>:<port>", stored in the database."""
        return f"{socket.gethostname()}:{self.port}"

    def start(self, callback: Callable[[], None]) -> None:
        """Call `callback()` from a daemon thread for each datagram (or burst) received."""
        if self._closed:
            raise RuntimeError("this WakeListener is closed")
        if self._thread is not None:
            raise RuntimeError("this WakeListener is already started")
        self._thread = threading.Thread(
            target=self._listen, args=(callback,), name="lockgate-wake-listener", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        """Stop the thread (it is between two select() calls or in one: it returns at once)
        and close the socket. Safe to call twice, and from the callback."""
        if self._closed:
            return
        self._closed = True
        self._stopping.set()
        with contextlib.suppress(OSError):  # only one byte is ever sent: cannot really fail
            self._stop_w.send(b"x")
        thread = self._thread
        if thread is threading.current_thread():
            self._close_on_exit = True  # the thread closes the sockets once the callback returns
            return
        if thread is not None:
            thread.join()
        self._close_sockets()

    def _close_sockets(self) -> None:
        for sock in (self._sock, self._stop_r, self._stop_w):
            sock.close()

    def _listen(self, callback: Callable[[], None]) -> None:
        try:
            while not self._stopping.is_set():
                readable, _, _ = select.select([self._sock, self._stop_r], [], [])
                if self._stopping.is_set() or self._stop_r in readable:
                    return
                if self._drain():
                    try:
                        callback()
                    except Exception:
                        logger.exception("the wake-up callback failed; still listening")
        finally:
            if self._close_on_exit:
                self._close_sockets()

    def _drain(self) -> bool:
        """Read every datagram waiting (their content means nothing); True if there was one."""
        received = False
        while True:
            try:
                self._sock.recv(64)
            except BlockingIOError:
                return received
            except OSError:  # e.g. an oversized datagram on Windows: it still counts
                pass
            received = True

    def __enter__(self) -> WakeListener:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def wake(addresses: Iterable[str]) -> int:
    """Send one datagram to each listener address of this host ("<hostname>:<port>"); skip
    other hosts' and malformed addresses. Never blocks or raises; returns how many were sent."""
    try:
        ports = _local_ports(addresses)
    except Exception:  # a failing iterable: best effort means waking nobody, not raising
        logger.debug("could not read the wake-up addresses", exc_info=True)
        return 0
    if not ports:
        return 0
    sent = 0
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            for port in ports:
                try:
                    sock.sendto(_MESSAGE, (_LOOPBACK, port))
                    sent += 1
                except OSError:  # nobody listening any more, a full buffer: best effort
                    logger.debug("could not wake port %d", port, exc_info=True)
    except OSError:  # pragma: no cover - no UDP socket available at all
        logger.debug("could not open a socket to send wake-ups", exc_info=True)
    return sent


def _local_ports(addresses: Iterable[str]) -> list[int]:
    """The ports of the addresses naming this host, each once, in order."""
    host = socket.gethostname().casefold()
    ports: list[int] = []
    for address in addresses:
        if not isinstance(address, str):
            continue
        name, sep, port_text = address.strip().rpartition(":")
        if not sep or name.casefold() != host:
            continue
        if not (port_text.isascii() and port_text.isdigit() and len(port_text) <= 5):
            continue  # refuses signs, spaces, an empty port and non-ASCII digits
        port = int(port_text)
        if 0 < port < 65536 and port not in ports:
            ports.append(port)
    return ports


def wake_schedulers(store: Any) -> int:
    """Wake the schedulers of a store's database that run on this host (after a commit they
    should react to); how many were woken."""
    return wake(row["wake_address"] for row in store.live_schedulers() if row["wake_address"])
