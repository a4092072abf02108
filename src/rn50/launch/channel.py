"""The message channel between rn50 and an engine worker: a Unix SOCK_SEQPACKET socket pair.

Each message is a JSON object; packet boundaries are kept by the kernel, so a
small message (an inference request or reply) is one send and one receive. A
long one (a result with every raw sample) is split into packets of at most
PACKET_BYTES, each prefixed `M` (more follows) or `E` (end). File descriptors
(the shared-memory buffer) ride on a message's first packet (SCM_RIGHTS).
Sending is thread-safe: engine threads reply while the main thread reads.
"""

from __future__ import annotations

import json
import socket
import threading

PACKET_BYTES = 32_768
MAX_FDS = 4


def pair() -> tuple[socket.socket, socket.socket]:
    """(rn50's end, the worker's end); the worker's end is inherited by its process."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    theirs.set_inheritable(True)
    return ours, theirs


class Closed(Exception):
    """The other end has gone (closed its socket, exited or was killed)."""


class Channel:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._send_lock = threading.Lock()

    def send(self, message: dict, fds: tuple[int, ...] = ()) -> None:
        data = json.dumps(message, separators=(",", ":")).encode()
        parts = [data[i:i + PACKET_BYTES] for i in range(0, len(data), PACKET_BYTES)] or [b""]
        try:
            with self._send_lock:
                for index, part in enumerate(parts):
                    packet = (b"E" if index == len(parts) - 1 else b"M") + part
                    if index == 0 and fds:
                        socket.send_fds(self.sock, [packet], list(fds))
                    else:
                        self.sock.sendall(packet)
        except OSError as exc:
            raise Closed(str(exc)) from exc

    def recv(self) -> tuple[dict, list[int]]:
        """The next message and any file descriptors sent with it; Closed at the end."""
        chunks, fds = [], []
        resets = 0
        while True:
            try:
                packet, got, _, _ = socket.recv_fds(self.sock, PACKET_BYTES + 1, MAX_FDS)
            except ConnectionResetError as exc:
                # the other end closed with requests unread: Linux reports that first, then
                # still delivers what it had sent (its last result or error) - read on
                resets += 1
                if resets > 3:
                    raise Closed(str(exc)) from exc
                continue
            except OSError as exc:
                raise Closed(str(exc)) from exc
            if not packet:
                raise Closed("end of stream")
            fds += got
            chunks.append(packet[1:])
            if packet[:1] == b"E":
                return json.loads(b"".join(chunks)), fds

    def close(self) -> None:
        """Close, after discarding requests never read (so the peer sees a plain end of
        stream rather than a reset)."""
        try:
            self.sock.setblocking(False)
            while self.sock.recv(PACKET_BYTES + 1):
                pass
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass
