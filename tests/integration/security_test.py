#!/usr/bin/python3
"""`grinqh serve`'s security settings against real clients: TLS and mutual TLS on gRPC (the
Python grpc client with grpc.ssl_channel_credentials) and on HTTP (httpx, curl); bearer tokens
on every RPC and route but health and readiness; reflection switched off; the listeners bound to
--host; and the gRPC channel arguments (message size, concurrent streams, keepalive, connection
age), the last three read off the HTTP/2 wire. Certificates come from make_test_certs.sh, made
afresh in a temporary folder.

Usage: security_test.py GRINQH_BINARY REPO_ROOT PYTHON_STUB_DIR...
"""
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

GRINQH, ROOT = sys.argv[1], sys.argv[2]
sys.path[:0] = sys.argv[3:] + [os.path.join(ROOT, "clients", "python")]
del sys.argv[1:]

import grpc  # noqa: E402
import httpx  # noqa: E402
from serve_process import ServeProcess  # noqa: E402

for stub_dir in list(sys.path):  # grpc.health / grpc.reflection, as in server_python_test.py
    if os.path.isdir(os.path.join(stub_dir, "grpc", "health")):
        grpc.__path__.append(os.path.join(stub_dir, "grpc"))

from grpc.health.v1 import health_pb2, health_pb2_grpc  # noqa: E402
from grpc.reflection.v1alpha import reflection_pb2, reflection_pb2_grpc  # noqa: E402
from grinqh_client import Client  # noqa: E402
from grinqh.v1 import inference_pb2 as pb  # noqa: E402
from grinqh.v1 import inference_pb2_grpc as pb_grpc  # noqa: E402

MODEL = os.path.join(ROOT, "models", "tiny-llama3")
TOKEN, OTHER_TOKEN, ENV_TOKEN = "s3cret-token-one", "second-token", "token-from-the-environment"
CERTS = tempfile.mkdtemp(prefix="grinqh-certs-")
subprocess.run([os.path.join(ROOT, "tests", "integration", "make_test_certs.sh"), CERTS], check=True)


def cert(name):
    return os.path.join(CERTS, name)


def read(name):
    with open(cert(name), "rb") as f:
        return f.read()


def serve(config_yaml, *args, **kwargs):
    """`grinqh serve` with `config_yaml` as its config file."""
    path = os.path.join(CERTS, f"config-{time.monotonic_ns()}.yaml")
    with open(path, "w") as f:
        f.write(config_yaml)
    return ServeProcess(GRINQH, MODEL, "--config", path, *args, **kwargs)


def bearer(token):
    return (("authorization", f"Bearer {token}"),)


def tls_channel(port, client_cert=True):
    credentials = grpc.ssl_channel_credentials(
        root_certificates=read("ca.crt"),
        private_key=read("client.key") if client_cert else None,
        certificate_chain=read("client.crt") if client_cert else None)
    return grpc.secure_channel(f"127.0.0.1:{port}", credentials)


def list_models(channel, metadata=()):
    return pb_grpc.InferenceServiceStub(channel).ListModels(pb.ListModelsRequest(), metadata=metadata, timeout=20)


def code_of(call):
    """The status code `call()` fails with (None when it succeeds)."""
    try:
        call()
    except grpc.RpcError as error:
        return error.code()
    return None


def health(channel):
    return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=20).status


def list_services(channel, metadata=()):
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    (response,) = list(stub.ServerReflectionInfo(iter([request]), metadata=metadata, timeout=20))
    return [s.name for s in response.list_services_response.service]


TOKENS_FILE = os.path.join(CERTS, "tokens")
with open(TOKENS_FILE, "w") as f:
    f.write(f"# API tokens\n{TOKEN}\n\n{OTHER_TOKEN}\n")


class TlsAndTokens(unittest.TestCase):
    """TLS (no client certificate) and tokens from a file, on every listener."""

    @classmethod
    def setUpClass(cls):
        cls.server = serve(f"tls:\n  cert_file: {cert('server.crt')}\n  key_file: {cert('server.key')}\n"
                           f"auth:\n  tokens_file: {TOKENS_FILE}\n")
        cls.channel = tls_channel(cls.server.port, client_cert=False)
        cls.https = httpx.Client(base_url=f"https://127.0.0.1:{cls.server.http_port}", verify=cert("ca.crt"),
                                 timeout=60)

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        cls.https.close()
        cls.server.close()

    def test_grpc_over_tls_with_a_token(self):
        for token in (TOKEN, OTHER_TOKEN):  # every token of the file
            self.assertEqual([m.name for m in list_models(self.channel, bearer(token)).models], ["tiny-llama3"])
        stub = pb_grpc.InferenceServiceStub(self.channel)
        responses = list(stub.Generate(pb.GenerateRequest(prompt="def f(x):", max_tokens=4), metadata=bearer(TOKEN),
                                       timeout=60))
        self.assertEqual(responses[-1].usage.completion_tokens, 4)

    def test_grpc_without_or_with_a_wrong_token_is_unauthenticated(self):
        for metadata in ((), bearer("wrong"), bearer(TOKEN + "x"), (("authorization", TOKEN),)):
            self.assertEqual(code_of(lambda: list_models(self.channel, metadata)), grpc.StatusCode.UNAUTHENTICATED,
                             metadata)
        stub = pb_grpc.InferenceServiceStub(self.channel)
        generate = lambda: list(stub.Generate(pb.GenerateRequest(prompt="x", max_tokens=1), timeout=20))  # noqa: E731
        self.assertEqual(code_of(generate), grpc.StatusCode.UNAUTHENTICATED)

    def test_health_needs_no_token_and_reflection_does(self):
        self.assertEqual(health(self.channel), health_pb2.HealthCheckResponse.SERVING)
        self.assertEqual(code_of(lambda: list_services(self.channel)), grpc.StatusCode.UNAUTHENTICATED)
        self.assertIn("grinqh.v1.InferenceService", list_services(self.channel, bearer(TOKEN)))

    def test_a_plaintext_grpc_client_is_refused(self):
        with grpc.insecure_channel(f"127.0.0.1:{self.server.port}") as plain:
            self.assertEqual(code_of(lambda: list_models(plain, bearer(TOKEN))), grpc.StatusCode.UNAVAILABLE)

    def test_https_api_with_and_without_a_token(self):
        ok = self.https.get("/v1/models", headers={"Authorization": f"Bearer {TOKEN}"})
        self.assertEqual(ok.status_code, 200, ok.text)
        self.assertEqual(ok.json()["data"][0]["id"], "tiny-llama3")
        completion = self.https.post("/v1/completions", headers={"Authorization": f"bearer {OTHER_TOKEN}"},
                                     json={"prompt": "import os", "max_tokens": 3, "temperature": 0})
        self.assertEqual(completion.json()["usage"]["completion_tokens"], 3, completion.text)
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
            refused = self.https.post("/v1/completions", headers=headers, json={"prompt": "x", "max_tokens": 1})
            self.assertEqual(refused.status_code, 401, headers)
            self.assertEqual(refused.headers["www-authenticate"], "Bearer")
            self.assertEqual(refused.json()["error"]["code"], "invalid_api_key")
            self.assertEqual(refused.json()["error"]["type"], "invalid_request_error")

    def test_health_and_ready_need_no_token(self):
        self.assertEqual(self.https.get("/health").json(), {"status": "ok"})
        self.assertEqual(self.https.get("/ready").status_code, 200)

    def test_metrics_over_https_need_a_token_by_default(self):
        url = f"https://127.0.0.1:{self.server.metrics_port}/metrics"
        self.assertEqual(httpx.get(url, verify=cert("ca.crt")).status_code, 401)
        scrape = httpx.get(url, verify=cert("ca.crt"), headers={"Authorization": f"Bearer {TOKEN}"})
        self.assertEqual(scrape.status_code, 200)
        self.assertIn("grinqh_build_info", scrape.text)

    def test_plain_http_to_the_tls_port_fails(self):
        with self.assertRaises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{self.server.http_port}/health", timeout=10)

    def test_curl_over_https_checks_the_certificate(self):
        url = f"https://127.0.0.1:{self.server.http_port}/v1/models"
        curl = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "20"]
        trusted = subprocess.run(curl + ["--cacert", cert("ca.crt"), "-H", f"Authorization: Bearer {TOKEN}", url],
                                 capture_output=True, text=True)
        self.assertEqual(trusted.stdout, "200", trusted.stderr)
        untrusted = subprocess.run(curl + [url], capture_output=True, text=True)
        self.assertEqual(untrusted.returncode, 60, untrusted.stderr)  # curl: the peer's certificate is not trusted


class MutualTls(unittest.TestCase):
    """Client certificates required; tokens from the environment; reflection off; /metrics left
    plaintext and open."""

    @classmethod
    def setUpClass(cls):
        env = dict(os.environ, GRINQH_TEST_TOKENS=f"{ENV_TOKEN}, {OTHER_TOKEN}")
        cls.server = serve(
            f"server:\n  reflection: false\n"
            f"tls:\n  cert_file: {cert('server.crt')}\n  key_file: {cert('server.key')}\n"
            f"  client_ca_file: {cert('ca.crt')}\n  metrics: false\n"
            f"auth:\n  tokens_env: GRINQH_TEST_TOKENS\n  metrics: false\n", env=env)

    @classmethod
    def tearDownClass(cls):
        cls.server.close()

    def test_grpc_with_a_client_certificate_and_a_token_from_the_environment(self):
        with tls_channel(self.server.port) as channel:
            self.assertEqual(len(list_models(channel, bearer(ENV_TOKEN)).models), 1)
            self.assertEqual(len(list_models(channel, bearer(OTHER_TOKEN)).models), 1)
            self.assertEqual(code_of(lambda: list_models(channel, bearer(TOKEN))), grpc.StatusCode.UNAUTHENTICATED)

    def test_the_python_client_with_tls_a_client_certificate_and_a_token(self):
        client = Client(f"127.0.0.1:{self.server.port}", timeout=60, root_certificates=read("ca.crt"),
                        certificate_chain=read("client.crt"), private_key=read("client.key"), token=ENV_TOKEN)
        self.assertEqual(client.complete("def f(x):", max_tokens=3).usage.completion_tokens, 3)
        self.assertEqual([m.name for m in client.models()], ["tiny-llama3"])
        client.close()
        tokenless = Client(f"127.0.0.1:{self.server.port}", timeout=60, root_certificates=read("ca.crt"),
                           certificate_chain=read("client.crt"), private_key=read("client.key"))
        self.assertEqual(code_of(tokenless.models), grpc.StatusCode.UNAUTHENTICATED)
        tokenless.close()

    def test_the_grinqh_client_cli_with_tls_a_client_certificate_and_a_token(self):
        command = [GRINQH, "client", "--server", f"127.0.0.1:{self.server.port}", "--ca", cert("ca.crt"),
                   "--cert", cert("client.crt"), "--key", cert("client.key"), "--models", "--json", "--timeout", "60"]
        ok = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ, GRINQH_TOKEN=ENV_TOKEN))
        self.assertEqual(ok.returncode, 0, ok.stderr)
        self.assertIn("tiny-llama3", ok.stdout)
        refused = subprocess.run(command, capture_output=True, text=True,
                                 env={k: v for k, v in os.environ.items() if k != "GRINQH_TOKEN"})
        self.assertEqual(refused.returncode, 1)
        self.assertIn("bearer token", refused.stderr)

    def test_grpc_without_a_client_certificate_is_refused(self):
        with tls_channel(self.server.port, client_cert=False) as channel:
            self.assertEqual(code_of(lambda: list_models(channel, bearer(ENV_TOKEN))), grpc.StatusCode.UNAVAILABLE)
            self.assertEqual(code_of(lambda: health(channel)), grpc.StatusCode.UNAVAILABLE)

    def test_reflection_off_means_no_reflection_service(self):
        with tls_channel(self.server.port) as channel:
            self.assertEqual(code_of(lambda: list_services(channel, bearer(ENV_TOKEN))), grpc.StatusCode.UNIMPLEMENTED)
            self.assertEqual(health(channel), health_pb2.HealthCheckResponse.SERVING)

    def test_https_with_and_without_a_client_certificate(self):
        url = f"https://127.0.0.1:{self.server.http_port}/v1/models"
        headers = {"Authorization": f"Bearer {ENV_TOKEN}"}
        ok = httpx.get(url, verify=cert("ca.crt"), cert=(cert("client.crt"), cert("client.key")), headers=headers)
        self.assertEqual(ok.status_code, 200)
        with self.assertRaises(httpx.HTTPError):
            httpx.get(url, verify=cert("ca.crt"), headers=headers, timeout=10)

    def test_metrics_can_stay_plaintext_and_open(self):
        scrape = httpx.get(f"http://127.0.0.1:{self.server.metrics_port}/metrics", timeout=10)
        self.assertEqual(scrape.status_code, 200)
        self.assertIn("grinqh_build_info", scrape.text)


def h2_frames(sock):
    """HTTP/2 frames from `sock` as (type, flags, payload), until it closes."""
    buffer = b""
    while True:
        while len(buffer) >= 9 and len(buffer) >= 9 + int.from_bytes(buffer[:3], "big"):
            length = int.from_bytes(buffer[:3], "big")
            yield buffer[3], buffer[4], buffer[9:9 + length]
            buffer = buffer[9 + length:]
        data = sock.recv(65536)
        if not data:
            return
        buffer += data


SETTINGS, PING, GOAWAY = 0x4, 0x6, 0x7
SETTINGS_MAX_CONCURRENT_STREAMS = 0x3


class PlaintextTokensAndChannelArguments(unittest.TestCase):
    """No TLS, tokens on loopback, and the gRPC channel arguments set low enough to observe."""

    @classmethod
    def setUpClass(cls):
        cls.server = serve(f"server:\n  max_message_bytes: 4096\n  max_concurrent_streams: 7\n"
                           f"  keepalive_time_seconds: 1\n  keepalive_timeout_seconds: 1\n"
                           f"  max_connection_age_seconds: 2\nauth:\n  tokens_file: {TOKENS_FILE}\n")

    @classmethod
    def tearDownClass(cls):
        cls.server.close()

    def test_tokens_on_a_plaintext_loopback_listener(self):
        with grpc.insecure_channel(f"127.0.0.1:{self.server.port}") as channel:
            self.assertEqual(len(list_models(channel, bearer(TOKEN)).models), 1)
            self.assertEqual(code_of(lambda: list_models(channel)), grpc.StatusCode.UNAUTHENTICATED)
            self.assertEqual(health(channel), health_pb2.HealthCheckResponse.SERVING)
        api = f"http://127.0.0.1:{self.server.http_port}"
        self.assertEqual(httpx.get(f"{api}/v1/models").status_code, 401)
        self.assertEqual(httpx.get(f"{api}/v1/models", headers={"Authorization": f"Bearer {TOKEN}"}).status_code, 200)

    def test_a_message_over_the_limit_is_refused(self):
        with grpc.insecure_channel(f"127.0.0.1:{self.server.port}") as channel:
            tokenize = pb_grpc.InferenceServiceStub(channel).Tokenize
            small = tokenize(pb.TokenizeRequest(text="x" * 200), metadata=bearer(TOKEN), timeout=20)
            self.assertGreater(len(small.ids), 0)
            big = lambda: tokenize(pb.TokenizeRequest(text="x" * 5000), metadata=bearer(TOKEN), timeout=20)  # noqa
            self.assertEqual(code_of(big), grpc.StatusCode.RESOURCE_EXHAUSTED)

    def test_settings_and_keepalive_on_the_wire(self):
        """The server's SETTINGS carry max_concurrent_streams; it pings after keepalive_time and,
        the ping unanswered, closes the connection after keepalive_timeout."""
        sock = socket.create_connection(("127.0.0.1", self.server.port), timeout=10)
        sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + struct.pack(">I", 0)[1:] + bytes([SETTINGS, 0]) +
                     struct.pack(">I", 0))
        start, settings, ping_at = time.monotonic(), None, None
        for kind, flags, payload in h2_frames(sock):
            if kind == SETTINGS and not flags & 1:
                settings = {struct.unpack(">H", payload[i:i + 2])[0]: struct.unpack(">I", payload[i + 2:i + 6])[0]
                            for i in range(0, len(payload), 6)}
                sock.sendall(b"\x00\x00\x00" + bytes([SETTINGS, 1]) + struct.pack(">I", 0))  # ACK, nothing more
            elif kind == PING and not flags & 1:
                ping_at = time.monotonic() - start
            elif kind == GOAWAY:
                break
        closed_at = time.monotonic() - start
        sock.close()
        self.assertEqual(settings.get(SETTINGS_MAX_CONCURRENT_STREAMS), 7)
        self.assertIsNotNone(ping_at, "no keepalive ping")
        self.assertLess(ping_at, 3.5)  # keepalive_time 1 s (the default would be two hours)
        self.assertLess(closed_at - ping_at, 3.5)  # keepalive_timeout 1 s

    def test_old_connections_are_asked_to_reconnect(self):
        """max_connection_age 2 s: the server sends GOAWAY, and the channel leaves READY."""
        states, changed = [], threading.Event()

        def on_state(state):
            states.append(state)
            changed.set()

        with grpc.insecure_channel(f"127.0.0.1:{self.server.port}") as channel:
            self.assertEqual(health(channel), health_pb2.HealthCheckResponse.SERVING)
            channel.subscribe(on_state)
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and (grpc.ChannelConnectivity.READY not in states or
                                                   states[-1] == grpc.ChannelConnectivity.READY):
                changed.wait(0.2)
                changed.clear()
            channel.unsubscribe(on_state)
            self.assertIn(grpc.ChannelConnectivity.READY, states)
            self.assertNotEqual(states[-1], grpc.ChannelConnectivity.READY, states)


class Binding(unittest.TestCase):
    def test_host_binds_every_listener(self):
        """--host 127.0.0.2: gRPC, the HTTP API and /metrics listen there, not on 127.0.0.1."""
        server = ServeProcess(GRINQH, MODEL, host="127.0.0.2")
        try:
            for port in (server.port, server.http_port, server.metrics_port):
                socket.create_connection(("127.0.0.2", port), timeout=5).close()
                with self.assertRaises(ConnectionRefusedError):
                    socket.create_connection(("127.0.0.1", port), timeout=5)
        finally:
            server.close()

    def test_tokens_in_clear_text_off_loopback_are_refused(self):
        path = os.path.join(CERTS, "clear.yaml")
        with open(path, "w") as f:
            f.write(f"auth:\n  tokens_file: {TOKENS_FILE}\n")
        result = subprocess.run([GRINQH, "serve", "--config", path, "--model", MODEL, "--host", "0.0.0.0"],
                                capture_output=True, text=True, timeout=60)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("server.host (0.0.0.0)", result.stderr)
        self.assertIn("clear text", result.stderr)


if __name__ == "__main__":
    try:
        unittest.main(verbosity=2)
    finally:
        shutil.rmtree(CERTS, ignore_errors=True)
