"""Did the client receive every byte? Asked of the connection before a download counts as finished.

gunicorn's sendfile returns once the last bytes are queued in the kernel's socket buffer, which on Linux grows
to several MB (tcp_wmem): a visitor who reads 12 KB of a 2.25 MB photo and hangs up may still have had every
byte "sent" as far as the app can tell. So after the send we ask the kernel, without reading or writing:

- SIOCOUTQ: bytes written to the socket that the client's TCP stack has not acknowledged yet; we wait
  (bounded, ACK_WAIT_SECONDS) until it is 0;
- TCP_INFO's state: still ESTABLISHED, or CLOSE_WAIT (the client closed in order after reading). A reset
  empties the queue too, but leaves the socket CLOSED: that download did not finish.

What still over-counts: bytes the client's kernel acknowledged but its application never read (a file that
fits in the client's receive buffer, tens to a few hundred KB, then a reset), and a client that received
everything and threw it away. When the peer is nginx (proxying without X-Accel) the acknowledgement is
nginx's, which may buffer the response. Without TCP_INFO (not Linux) or on a Unix socket nothing can be asked,
and a complete send counts as before.
"""

from __future__ import annotations

import fcntl
import socket
import struct
import termios
import time

# A slow phone may take this long to take in what the kernel still buffers (MBs at mobile speeds); a client
# that has not acknowledged the last byte by then is not counted.
ACK_WAIT_SECONDS = 60.0
_TCP_ESTABLISHED, _TCP_CLOSE_WAIT = 1, 8  # include/net/tcp_states.h


def all_acknowledged(sock: socket.socket, timeout: float = ACK_WAIT_SECONDS) -> bool:
    """True once the client's TCP stack acknowledged every byte written to `sock` and the connection was not
    reset; False on a reset, a closed socket, or `timeout` seconds without it. Never reads or writes `sock`."""
    if not _can_ask(sock):
        return True
    # The first looks come soon (on a LAN the last ACK follows within a fraction of a millisecond, and a
    # keep-alive connection's next request waits for this), then further apart, up to 50 ms.
    deadline, pause = time.monotonic() + timeout, 0.0002
    while True:
        try:
            state = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]
            unacknowledged = struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0" * 4))[0]
        except (OSError, ValueError):  # closed under us
            return False
        if state not in (_TCP_ESTABLISHED, _TCP_CLOSE_WAIT):
            return False
        if unacknowledged == 0:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


def _can_ask(sock: object) -> bool:
    return (
        isinstance(sock, socket.socket)
        and hasattr(socket, "TCP_INFO")
        and hasattr(termios, "TIOCOUTQ")
        and sock.family in (socket.AF_INET, socket.AF_INET6)
    )
