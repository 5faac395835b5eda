"""
A real gRPC client (python3-grpcio) for the auth worker, reaching it the
way standard gRPC clients must: ALPN h2 on the name the test
configuration routes to it (auth.test).  The message classes are made
from proto/ by protoc, once per test run.
"""

import importlib
import os
import ssl
import struct
import subprocess
import sys
import tempfile

import grpc
import h2.config
import h2.connection
import h2.events

from conftest import tls_connect

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO = os.path.join(HERE, "..", "..", "proto")
AUTH_NAME = "auth.test"

_pb = {}


def pb():
    """The generated modules: pb()["auth"], pb()["health"] and
    pb()["tunnel"] (the tunnels' Hello)."""
    if not _pb:
        out = tempfile.mkdtemp(prefix="mezite-pb")
        subprocess.run(["protoc", "--python_out=" + out, "-I", PROTO,
                        "auth.proto", "health.proto", "tunnel.proto"],
                       check=True)
        sys.path.insert(0, out)
        _pb["auth"] = importlib.import_module("auth_pb2")
        _pb["health"] = importlib.import_module("health_pb2")
        _pb["tunnel"] = importlib.import_module("tunnel_pb2")
    return _pb


def keypair(d, name="client"):
    """A fresh P-256 key in d: (key path, DER SubjectPublicKeyInfo)."""
    key = os.path.join(d, name + ".key")
    subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-out", key],
                   check=True, capture_output=True)
    spki = subprocess.run(["openssl", "pkey", "-in", key, "-pubout",
                           "-outform", "DER"], check=True,
                          capture_output=True).stdout
    return key, spki


class Client:
    """One channel to the auth worker; with cert and key, mutual TLS."""

    def __init__(self, port, ca, cert=None, key=None):
        with open(ca, "rb") as f:
            root = f.read()
        chain = priv = None
        if cert is not None:
            with open(cert, "rb") as f:
                chain = f.read()
            with open(key, "rb") as f:
                priv = f.read()
        creds = grpc.ssl_channel_credentials(root_certificates=root,
                                             private_key=priv,
                                             certificate_chain=chain)
        self.channel = grpc.secure_channel(
            "127.0.0.1:%d" % port, creds,
            options=[("grpc.ssl_target_name_override", AUTH_NAME)])

    def close(self):
        self.channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def call(self, path, req, reply_cls, timeout=20):
        fn = self.channel.unary_unary(
            path, request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=reply_cls.FromString)
        return fn(req, timeout=timeout)

    def auth(self, method, req, timeout=20):
        a = pb()["auth"]
        reply = getattr(a, method + "Response")
        return self.call("/mezite.auth.v1.Auth/" + method, req, reply,
                         timeout)

    def login(self, user, password, spki):
        a = pb()["auth"]
        return self.auth("Login", a.LoginRequest(
            user=user, password=password, public_key=spki))

    def join(self, token, node, spki, labels=()):
        a = pb()["auth"]
        return self.auth("Join", a.JoinRequest(
            token=token, node=node, public_key=spki,
            labels=[a.Label(key=k, value=v) for k, v in labels]))

    def renew(self, spki, labels=()):
        a = pb()["auth"]
        return self.call("/mezite.auth.v1.Auth/Renew", a.RenewRequest(
            public_key=spki,
            labels=[a.Label(key=k, value=v) for k, v in labels]),
            a.JoinResponse)

    def whoami(self):
        return self.auth("WhoAmI", pb()["auth"].WhoAmIRequest())

    def list_nodes(self):
        return self.auth("ListNodes", pb()["auth"].ListNodesRequest())

    def health(self, service=""):
        h = pb()["health"]
        return self.call("/grpc.health.v1.Health/Check",
                         h.HealthCheckRequest(service=service),
                         h.HealthCheckResponse)


def code_of(call, *args):
    """The gRPC status code a call ends with (grpc.StatusCode.OK if it
    succeeds), and its message."""
    try:
        call(*args)
    except grpc.RpcError as e:
        return e.code(), e.details()
    return grpc.StatusCode.OK, ""


# --------------------------------------------------------------------------
# HTTP/2 driven by hand (python3-h2), for what a gRPC library will not send


def grpc_message(data, flag=0, length=None):
    """A length-prefixed gRPC message; its length may lie."""
    return bytes([flag]) + struct.pack(
        ">I", len(data) if length is None else length) + data


class RawH2:
    """An HTTP/2 client connection to the auth worker over TLS (ALPN h2,
    its server name), whose every frame the test chooses."""

    def __init__(self, port, timeout=20):
        self.sock = tls_connect(port, alpn=["h2"], sni=AUTH_NAME,
                                timeout=timeout)
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True,
                                      header_encoding="utf-8"))
        self.conn.initiate_connection()
        self.streams = {}
        self.closed = False
        self.flush()

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def close(self):
        self.sock.close()

    def open(self, path, body=b"", end=True,
             content_type="application/grpc", flush=True):
        """A request on a new stream: its id."""
        sid = self.conn.get_next_available_stream_id()
        self.conn.send_headers(sid, [
            (":method", "POST"), (":scheme", "https"), (":path", path),
            (":authority", AUTH_NAME), ("content-type", content_type),
            ("te", "trailers")], end_stream=end and not body)
        if body:
            self.conn.send_data(sid, body, end_stream=end)
        self.streams[sid] = {"headers": {}, "data": b"", "ended": False,
                             "reset": None}
        if flush:
            self.flush()
        return sid

    def pump(self):
        """Read what the server sent and handle it; False at its end."""
        try:
            b = self.sock.recv(65536)
        except ssl.SSLError:
            b = b""
        if not b:
            self.closed = True
            return False
        for ev in self.conn.receive_data(b):
            st = self.streams.get(getattr(ev, "stream_id", 0))
            if isinstance(ev, (h2.events.ResponseReceived,
                               h2.events.TrailersReceived)):
                st["headers"].update(dict(ev.headers))
            elif isinstance(ev, h2.events.DataReceived):
                st["data"] += ev.data
                self.conn.acknowledge_received_data(
                    ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                st["ended"] = True
            elif isinstance(ev, h2.events.StreamReset):
                if st is not None:
                    st["reset"] = ev.error_code
                    st["ended"] = True
            elif isinstance(ev, h2.events.ConnectionTerminated):
                self.closed = True
        self.flush()
        return True

    def wait(self, sid):
        """The stream's end: its headers and trailers, data, reset."""
        while not self.streams[sid]["ended"]:
            if not self.pump():
                raise AssertionError("connection closed before stream "
                                     "%d ended" % sid)
        return self.streams[sid]


def grpc_status(st):
    """The grpc-status of an ended stream, as an int (None if absent)."""
    v = st["headers"].get("grpc-status")
    return None if v is None else int(v)
