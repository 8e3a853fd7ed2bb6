"""Running the app under uvicorn with the connection limits of `Settings`.

Uvicorn closes idle keep-alive connections (`timeout_keep_alive`) and answers 503 beyond
`limit_concurrency` connections, but it waits for a request's headers and body for as
long as the client likes, and never closes a connection that sends nothing at all. The
protocol classes here add that deadline: from the connection's first byte (or the next
request's first byte on a kept-alive connection) until the request's body is complete.
When it passes, the client gets `408 Request Timeout` (if no response started) and the
connection is closed; the app sees a client disconnect.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

REQUEST_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
    b"connection: close\r\ncontent-length: 87\r\n\r\n"
    b'{"error": "request_timeout", "message": "The request was not received in time. Retry."}'
)


class _ReadDeadline:
    """Closes a connection whose request (headers and body) is not received in time."""

    read_timeout_s: float = 15.0
    transport: asyncio.Transport
    cycle: Any
    loop: asyncio.AbstractEventLoop
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._arm()  # a connection that never sends a byte is closed too

    def data_received(self, data: bytes) -> None:
        if self._deadline is None:
            self._arm()
        super().data_received(data)  # type: ignore[misc]
        if not self._receiving_request():
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)  # type: ignore[misc]

    def _receiving_request(self) -> bool:
        raise NotImplementedError

    def _arm(self) -> None:
        self._deadline = self.loop.call_later(self.read_timeout_s, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self.cycle is None or not self.cycle.response_started:
            self.transport.write(REQUEST_TIMEOUT_RESPONSE)
        self.transport.close()


class DeadlineH11Protocol(_ReadDeadline, H11Protocol):
    def _receiving_request(self) -> bool:
        # IDLE with bytes buffered: headers so far; SEND_BODY: the body is arriving.
        return self.conn.their_state in (h11.IDLE, h11.SEND_BODY) and bool(
            self.conn.trailing_data[0] or self.conn.their_state is h11.SEND_BODY
        )


def _protocol_class(read_timeout_s: float) -> type[asyncio.Protocol]:
    """httptools when installed (uvicorn's own "auto" choice), else h11; with the deadline."""
    base: type[_ReadDeadline]
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        class DeadlineHttpToolsProtocol(_ReadDeadline, HttpToolsProtocol):
            _in_request = False

            def on_message_begin(self) -> None:
                self._in_request = True
                super().on_message_begin()

            def on_message_complete(self) -> None:
                self._in_request = False
                super().on_message_complete()

            def _receiving_request(self) -> bool:
                return self._in_request

        base = DeadlineHttpToolsProtocol
    except ImportError:  # uvicorn without the [standard] extra
        base = DeadlineH11Protocol
    return type(base.__name__, (base,), {"read_timeout_s": read_timeout_s})  # type: ignore[return-value]


def run(
    app: str,
    host: str,
    port: int,
    *,
    read_timeout_s: float,
    keep_alive_timeout_s: int,
    max_connections: int,
    **uvicorn_options: Any,
) -> None:
    """`uvicorn.run(app)` (an app factory) with the request deadline and connection limits."""
    uvicorn.run(
        app,
        factory=True,
        host=host,
        port=port,
        http=_protocol_class(read_timeout_s),
        timeout_keep_alive=keep_alive_timeout_s,
        limit_concurrency=max_connections,
        **uvicorn_options,
    )
