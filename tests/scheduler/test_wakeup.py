"""Wake-ups between processes of one host: real UDP sockets on 127.0.0.1."""

from __future__ import annotations

import logging
import socket
import threading
import time

import pytest

from lockgate.scheduler.wakeup import WakeListener, wake

HOST = socket.gethostname()


class Counter:
    """A callback that counts its calls and signals each one."""

    def __init__(self) -> None:
        self.calls = 0
        self.called = threading.Event()

    def __call__(self) -> None:
        self.calls += 1
        self.called.set()


def test_the_address_names_this_host_and_the_listening_port() -> None:
    with WakeListener() as listener:
        host, _, port = listener.address.rpartition(":")
        assert host == HOST
        assert int(port) == listener.port > 0


def test_a_wake_reaches_the_listener() -> None:
    counter = Counter()
    with WakeListener() as listener:
        listener.start(counter)
        assert wake([listener.address]) == 1
        assert counter.called.wait(5)
        counter.called.clear()
        assert wake(iter([listener.address])) == 1  # any iterable; and again
        assert counter.called.wait(5)


def test_every_listener_of_this_host_is_woken_once() -> None:
    first, second = Counter(), Counter()
    with WakeListener() as a, WakeListener() as b:
        a.start(first)
        b.start(second)
        # duplicates and a differently-cased host name are the same listener
        addresses = [a.address, b.address, a.address, f"{HOST.upper()}:{b.port}"]
        assert wake(addresses) == 2
        assert first.called.wait(5) and second.called.wait(5)


@pytest.mark.parametrize(
    "address",
    [
        "",
        "garbage",
        ":",
        f"{HOST}:",
        f"{HOST}:abc",
        f"{HOST}:0",
        f"{HOST}:70000",
        f"{HOST}:-1",
        f"{HOST}: 1",
        f"{HOST}:\u00b2",  # a digit to str.isdigit(), not to int()
        f"{HOST}:" + "9" * 5000,  # longer than int() accepts
        ":12345",
        "127.0.0.1:12345",  # not a host name: only "<hostname>:<port>" is ours
        f"not-{HOST}.example:12345",
        None,
        12345,
        b"host:1",
    ],
)
def test_other_hosts_and_garbage_are_ignored(address: object) -> None:
    assert wake([address]) == 0  # type: ignore[list-item]


def test_garbage_beside_a_good_address_does_not_stop_it() -> None:
    counter = Counter()
    with WakeListener() as listener:
        listener.start(counter)
        other = f"other-{HOST}:{listener.port}"  # another host, same port: not sent
        assert wake(["garbage", None, other, listener.address, f"{HOST}:x"]) == 1  # type: ignore[list-item]
        assert counter.called.wait(5)


def test_a_failing_iterable_wakes_nobody_and_does_not_raise() -> None:
    def addresses():  # type: ignore[no-untyped-def]
        yield "garbage"
        raise RuntimeError("the database went away")

    assert wake(addresses()) == 0


def test_a_closed_port_is_ignored() -> None:
    listener = WakeListener()
    address = listener.address
    listener.close()
    # UDP: the datagram goes out and nobody reads it; nothing raises, nothing blocks
    assert wake([address, address]) in (0, 1)
    assert wake([]) == 0


def test_a_burst_is_coalesced_and_content_is_ignored() -> None:
    counter = Counter()
    with WakeListener() as listener:
        listener.start(counter)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for payload in (b"", b"\xff" * 60_000, b"please run everything"):
                sock.sendto(payload, ("127.0.0.1", listener.port))
        for _ in range(50):
            wake([listener.address])
        assert counter.called.wait(5)
        assert 1 <= counter.calls <= 53
        # still listening after odd datagrams
        counter.called.clear()
        assert wake([listener.address]) == 1
        assert counter.called.wait(5)


def test_a_failing_callback_is_logged_and_the_listener_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    failed, called = threading.Event(), threading.Event()

    def callback() -> None:
        if not failed.is_set():
            failed.set()
            raise ValueError("boom")
        called.set()

    with caplog.at_level(logging.ERROR, logger="lockgate.scheduler"), WakeListener() as listener:
        listener.start(callback)
        wake([listener.address])
        assert failed.wait(5)
        wake([listener.address])
        assert called.wait(5)
    assert any(
        r.name == "lockgate.scheduler" and r.exc_info and "boom" in str(r.exc_info[1])
        for r in caplog.records
    )


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def test_close_is_prompt_and_frees_the_port() -> None:
    listener = WakeListener()
    before = set(threading.enumerate())
    listener.start(Counter())
    threads = set(threading.enumerate()) - before
    assert threads
    started = time.monotonic()
    listener.close()
    assert time.monotonic() - started < 2  # no timeout-based polling to wait out
    assert not any(t.is_alive() for t in threads)
    assert _port_is_free(listener.port)
    listener.close()  # twice is fine


def test_close_without_start_and_from_the_callback() -> None:
    idle = WakeListener()
    port = idle.port
    idle.close()
    assert _port_is_free(port)

    done = threading.Event()
    listener = WakeListener()
    port = listener.port

    def close_me() -> None:
        listener.close()
        done.set()

    listener.start(close_me)
    wake([listener.address])
    assert done.wait(5)
    deadline = time.monotonic() + 5
    while not _port_is_free(port) and time.monotonic() < deadline:
        done.wait(0.01)  # the thread closes the socket right after the callback returns
    assert _port_is_free(port)


def test_start_twice_or_after_close_is_refused() -> None:
    listener = WakeListener()
    listener.start(Counter())
    with pytest.raises(RuntimeError, match="already started"):
        listener.start(Counter())
    listener.close()
    with pytest.raises(RuntimeError, match="closed"):
        listener.start(Counter())
