"""A raw WebSocket client over a plain socket, for clients that misbehave on purpose
(never reading, flooding, trickling): the polite client libraries cannot misbehave."""

from __future__ import annotations

import base64
import os
import socket
import struct


class RawWebSocket:
    """Client side of RFC 6455, just enough to handshake, send frames and read some."""

    def __init__(self, port: int, path: str = "/hubs/test", rcvbuf: int | None = None) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(10)
        self.sock.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            if not chunk:
                raise ConnectionError("closed during the upgrade")
            head += chunk
        self.status = int(head.split(b" ", 2)[1])
        self.buffer = b""

    def send_text(self, text: str | bytes, opcode: int = 0x1) -> None:
        """One masked frame."""
        data = text.encode() if isinstance(text, str) else text
        mask = os.urandom(4)
        header = bytes([0x80 | opcode])
        length = len(data)
        if length < 126:
            header += bytes([0x80 | length])
        elif length < 65536:
            header += bytes([0x80 | 126]) + struct.pack("!H", length)
        else:
            header += bytes([0x80 | 127]) + struct.pack("!Q", length)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        self.sock.sendall(header + mask + masked)

    def recv_frame(self) -> tuple[int, bytes]:
        """The next frame (opcode, payload); unfragmented frames only."""
        while True:
            if len(self.buffer) >= 2:
                opcode = self.buffer[0] & 0x0F
                length = self.buffer[1] & 0x7F
                offset = 2
                if length == 126:
                    if len(self.buffer) < 4:
                        length = -1
                    else:
                        length = struct.unpack("!H", self.buffer[2:4])[0]
                        offset = 4
                elif length == 127:
                    if len(self.buffer) < 10:
                        length = -1
                    else:
                        length = struct.unpack("!Q", self.buffer[2:10])[0]
                        offset = 10
                if length >= 0 and len(self.buffer) >= offset + length:
                    payload = self.buffer[offset : offset + length]
                    self.buffer = self.buffer[offset + length :]
                    return opcode, payload
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buffer += chunk

    def recv_text(self) -> str:
        """The next text or binary frame's payload, skipping pings."""
        while True:
            opcode, payload = self.recv_frame()
            if opcode == 0x8:
                raise ConnectionError(f"close frame {payload!r}")
            if opcode in (0x1, 0x2):
                return payload.decode("utf-8", "replace")

    def close(self) -> None:
        """Drop the socket."""
        self.sock.close()
