"""
A minimal HTTP/2 client that writes its own frames, for sending what
real gRPC clients never would.

It encodes header blocks itself (literal fields, no Huffman, no
indexing) and decodes the server's with libnghttp2's HPACK inflater
through ctypes: the server's blocks use Huffman codes and the dynamic
table, and a decoder of its own would be a second thing to test.
"""

import ctypes
import ctypes.util
import socket
import struct
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

DATA = 0x0
HEADERS = 0x1
RST_STREAM = 0x3
SETTINGS = 0x4
PING = 0x6
GOAWAY = 0x7
WINDOW_UPDATE = 0x8
CONTINUATION = 0x9

END_STREAM = 0x1
ACK = 0x1
END_HEADERS = 0x4

SETTINGS_HEADER_TABLE_SIZE = 0x1
SETTINGS_MAX_CONCURRENT_STREAMS = 0x3
SETTINGS_INITIAL_WINDOW_SIZE = 0x4
SETTINGS_MAX_HEADER_LIST_SIZE = 0x6

NO_ERROR = 0x0
PROTOCOL_ERROR = 0x1
CANCEL = 0x8
REFUSED_STREAM = 0x7
ENHANCE_YOUR_CALM = 0xb


def frame(ftype, flags, sid, payload=b""):
    return (struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) +
            struct.pack(">I", sid & 0x7fffffff) + payload)


def settings(*pairs):
    return frame(SETTINGS, 0, 0,
                 b"".join(struct.pack(">HI", k, v) for k, v in pairs))


def rst_stream(sid, code=CANCEL):
    return frame(RST_STREAM, 0, sid, struct.pack(">I", code))


def window_update(sid, increment):
    return frame(WINDOW_UPDATE, 0, sid, struct.pack(">I", increment))


def _hpack_int(value, prefix_bits, first=0):
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = [first | limit]
    value -= limit
    while value >= 128:
        out.append(value % 128 + 128)
        value //= 128
    out.append(value)
    return bytes(out)


def _hpack_str(s):
    if isinstance(s, str):
        s = s.encode()
    return _hpack_int(len(s), 7) + s


def header_block(headers):
    """Literal header fields without indexing, new names."""
    return b"".join(b"\x00" + _hpack_str(n) + _hpack_str(v)
                    for n, v in headers)


def request_headers(path, content_type="application/grpc", method="POST",
                    extra=()):
    h = [(":method", method), (":scheme", "http"), (":path", path),
         (":authority", "localhost")]
    if content_type is not None:
        h.append(("content-type", content_type))
    h.append(("te", "trailers"))
    h.extend(extra)
    return h


def data_frames(sid, body, end_stream=True):
    """body in DATA frames of 16 KiB at most."""
    data = [body[i:i + 16384] for i in range(0, len(body), 16384)] or [b""]
    return (b"".join(frame(DATA, 0, sid, d) for d in data[:-1]) +
            frame(DATA, END_STREAM if end_stream else 0, sid, data[-1]))


def grpc_message(payload, flag=0, length=None):
    if length is None:
        length = len(payload)
    return bytes([flag]) + struct.pack(">I", length) + payload


class _NV(ctypes.Structure):
    _fields_ = [("name", ctypes.POINTER(ctypes.c_uint8)),
                ("value", ctypes.POINTER(ctypes.c_uint8)),
                ("namelen", ctypes.c_size_t),
                ("valuelen", ctypes.c_size_t),
                ("flags", ctypes.c_uint8)]


class Inflater:
    """libnghttp2's HPACK decoder, one per connection."""

    _lib = None
    FINAL = 0x01
    EMIT = 0x02

    def __init__(self):
        if Inflater._lib is None:
            lib = ctypes.CDLL(ctypes.util.find_library("nghttp2") or
                              "libnghttp2.so.14")
            lib.nghttp2_hd_inflate_new.argtypes = [
                ctypes.POINTER(ctypes.c_void_p)]
            lib.nghttp2_hd_inflate_hd2.argtypes = [
                ctypes.c_void_p, ctypes.POINTER(_NV),
                ctypes.POINTER(ctypes.c_int), ctypes.c_void_p,
                ctypes.c_size_t, ctypes.c_int]
            lib.nghttp2_hd_inflate_hd2.restype = ctypes.c_ssize_t
            lib.nghttp2_hd_inflate_end_headers.argtypes = [ctypes.c_void_p]
            lib.nghttp2_hd_inflate_del.argtypes = [ctypes.c_void_p]
            Inflater._lib = lib
        self.ptr = ctypes.c_void_p()
        if self._lib.nghttp2_hd_inflate_new(ctypes.byref(self.ptr)) != 0:
            raise MemoryError("nghttp2_hd_inflate_new")

    def __del__(self):
        if self._lib is not None and self.ptr:
            self._lib.nghttp2_hd_inflate_del(self.ptr)
            self.ptr = ctypes.c_void_p()

    def decode(self, block):
        buf = (ctypes.c_uint8 * max(len(block), 1)).from_buffer_copy(
            block or b"\0")
        base = ctypes.addressof(buf)
        off = 0
        out = []
        while True:
            nv = _NV()
            flags = ctypes.c_int(0)
            n = self._lib.nghttp2_hd_inflate_hd2(
                self.ptr, ctypes.byref(nv), ctypes.byref(flags),
                base + off, len(block) - off, 1)
            if n < 0:
                raise ValueError("HPACK error %d" % n)
            off += n
            if flags.value & self.EMIT:
                out.append((ctypes.string_at(nv.name, nv.namelen).decode(),
                            ctypes.string_at(nv.value,
                                             nv.valuelen).decode()))
            if flags.value & self.FINAL:
                self._lib.nghttp2_hd_inflate_end_headers(self.ptr)
                return out
            if n == 0 and not flags.value & self.EMIT:
                raise ValueError("HPACK block ends early")


class Stream:
    def __init__(self):
        self.headers = []       # one list of (name, value) per block
        self.data = b""
        self.ended = False      # END_STREAM seen
        self.ended_by = None    # on a frame of this type
        self.rst = None         # RST_STREAM's code

    @property
    def done(self):
        return self.ended or self.rst is not None

    def first(self):
        return dict(self.headers[0]) if self.headers else {}

    def last(self):
        return dict(self.headers[-1]) if self.headers else {}


class H2:
    """One connection.  Frames the server sends are read by pump().
    H2.opened holds every connection made, for close_all()."""

    opened = []

    @classmethod
    def close_all(cls):
        for h in cls.opened:
            h.close()
        cls.opened = []

    def __init__(self, port, client_settings=(), ack_settings=True,
                 rcvbuf=None, timeout=10):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        H2.opened.append(self)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.inflater = Inflater()
        self.buf = b""
        self.streams = {}
        self.goaways = []       # (last stream id, error code, debug data)
        self.server_settings = None
        self.eof = False
        self.frames = 0
        self.counts = {}        # frames read, by type
        self.ack_settings = ack_settings
        self._block = None      # (stream id, header block so far)
        self.next_id = 1
        self.send(PREFACE + settings(*client_settings))

    def close(self):
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data)

    def new_id(self):
        sid = self.next_id
        self.next_id += 2
        return sid

    def stream(self, sid):
        return self.streams.setdefault(sid, Stream())

    def open(self, headers, end_stream=False, sid=None):
        """HEADERS opening a stream; returns (stream id, the frame)."""
        if sid is None:
            sid = self.new_id()
        return sid, frame(HEADERS, END_HEADERS |
                          (END_STREAM if end_stream else 0), sid,
                          header_block(headers))

    def call(self, path, body, content_type="application/grpc",
             method="POST", extra=(), end_stream=True):
        """Send a request; returns its stream id."""
        sid, f = self.open(request_headers(path, content_type, method,
                                           extra))
        self.stream(sid)
        self.send(f + data_frames(sid, body, end_stream))
        return sid

    def _read_frame(self, deadline):
        while True:
            if len(self.buf) >= 9:
                n = int.from_bytes(self.buf[:3], "big")
                if len(self.buf) >= 9 + n:
                    hdr, self.buf = self.buf[:9], self.buf[9:]
                    payload, self.buf = self.buf[:n], self.buf[n:]
                    sid = int.from_bytes(hdr[5:9], "big") & 0x7fffffff
                    return hdr[3], hdr[4], sid, payload
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no frame from the server")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(1 << 16)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                self.eof = True
                return None
            self.buf += chunk

    def _handle(self, ftype, flags, sid, payload):
        self.frames += 1
        self.counts[ftype] = self.counts.get(ftype, 0) + 1
        if ftype in (HEADERS, CONTINUATION):
            if ftype == HEADERS:
                self._block = (sid, payload)
                if flags & END_STREAM:
                    self.stream(sid).ended = True
                    self.stream(sid).ended_by = HEADERS
            else:
                self._block = (sid, self._block[1] + payload)
            if flags & END_HEADERS:
                self.stream(sid).headers.append(
                    self.inflater.decode(self._block[1]))
                self._block = None
        elif ftype == DATA:
            s = self.stream(sid)
            s.data += payload
            if flags & END_STREAM:
                s.ended = True
                s.ended_by = DATA
        elif ftype == RST_STREAM:
            self.stream(sid).rst = int.from_bytes(payload, "big")
        elif ftype == GOAWAY:
            self.goaways.append((
                int.from_bytes(payload[:4], "big") & 0x7fffffff,
                int.from_bytes(payload[4:8], "big"), payload[8:]))
        elif ftype == SETTINGS and not flags & ACK:
            self.server_settings = {
                int.from_bytes(payload[i:i + 2], "big"):
                int.from_bytes(payload[i + 2:i + 6], "big")
                for i in range(0, len(payload), 6)}
            if self.ack_settings:
                self._answer(frame(SETTINGS, ACK, 0))
        elif ftype == PING and not flags & ACK:
            self._answer(frame(PING, ACK, 0, payload))

    def _answer(self, data):
        """What the server asks for, if it still reads."""
        try:
            self.send(data)
        except OSError:
            pass

    def pump(self, until=None, timeout=None):
        """Read frames until until() is true or the server closes;
        returns until()'s last value.  Without until(), read for the
        time given, or until the server closes."""
        deadline = time.monotonic() + (timeout or self.timeout)
        if until is None:
            def until():
                return self.eof
            try:
                return self._pump(until, deadline)
            except TimeoutError:
                return self.eof
        return self._pump(until, deadline)

    def _pump(self, until, deadline):
        while not until():
            f = self._read_frame(deadline)
            if f is None:
                break
            self._handle(*f)
        return until()

    def wait(self, sid, timeout=None):
        """The stream once the server has ended or reset it."""
        s = self.stream(sid)
        if not self.pump(lambda: s.done, timeout):
            raise AssertionError("stream %d: no end (eof %s)" %
                                 (sid, self.eof))
        return s

    def wait_eof(self, timeout=None):
        self._pump(lambda: self.eof,
                   time.monotonic() + (timeout or self.timeout))
        return self.eof
