#!/usr/bin/python3
"""The real `grinqh serve` against what clients from outside can send it (issue 14): requests
over the configured limits, input echoed in errors, bytes that are no request, a second server
on a port in use, clients that trickle their requests, a second SIGTERM, and health probes
under a load of many streams. gRPC through Python's grpcio, HTTP through httpx and raw sockets.

Usage: hardening_test.py GRINQH_BINARY REPO_ROOT PYTHON_STUB_DIR...
"""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

GRINQH, ROOT = sys.argv[1], sys.argv[2]
sys.path[:0] = sys.argv[3:]
del sys.argv[1:]

import grpc  # noqa: E402
import httpx  # noqa: E402
from serve_process import ServeProcess  # noqa: E402

for stub_dir in list(sys.path):
    if os.path.isdir(os.path.join(stub_dir, "grpc", "health")):
        grpc.__path__.append(os.path.join(stub_dir, "grpc"))

from grpc.health.v1 import health_pb2, health_pb2_grpc  # noqa: E402
from grinqh.v1 import inference_pb2 as pb  # noqa: E402
from grinqh.v1 import inference_pb2_grpc as pb_grpc  # noqa: E402

MODEL = os.path.join(ROOT, "models", "tiny-llama3")
CONTEXT = 4096  # the bundled model's context length

# Small limits, so that going over them is cheap to send.
LIMITS = """
limits:
  max_tokens: 64
  default_max_tokens: 8
  max_prompt_bytes: 1000
  max_messages: 3
  max_stop_strings: 2
  max_stop_bytes: 8
"""


def config_file(text):
    file = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
    file.write(text)
    file.close()
    return file.name


class Server(ServeProcess):
    def __init__(self, *args):
        super().__init__(GRINQH, MODEL, *args)
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")
        self.stub = pb_grpc.InferenceServiceStub(self.channel)
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.http_port}", timeout=60)

    def close(self):
        self.http.close()
        self.channel.close()
        super().close()


def drain(stream):
    """The stream's last message."""
    last = None
    for last in stream:
        pass
    return last


class LimitsTest(unittest.TestCase):
    """Every refusal names the limit, and comes before the work it guards."""

    @classmethod
    def setUpClass(cls):
        cls.config = config_file(LIMITS)
        cls.server = Server("--config", cls.config)

    @classmethod
    def tearDownClass(cls):
        cls.server.close()
        os.unlink(cls.config)

    def assert_grpc_refused(self, call, code, *parts):
        with self.assertRaises(grpc.RpcError) as caught:
            call()
        self.assertEqual(caught.exception.code(), code, caught.exception.details())
        for part in parts:
            self.assertIn(part, caught.exception.details())
        return caught.exception.details()

    def generate(self, **fields):
        return lambda: drain(self.server.stub.Generate(pb.GenerateRequest(**fields), timeout=60))

    def test_generate_over_each_limit_is_refused_naming_it(self):
        invalid = grpc.StatusCode.INVALID_ARGUMENT
        self.assert_grpc_refused(self.generate(prompt="x" * 1001), invalid, "prompt", "limits.max_prompt_bytes")
        self.assert_grpc_refused(self.generate(prompt="x", max_tokens=65), invalid, "max_tokens", "limits.max_tokens")
        self.assert_grpc_refused(self.generate(prompt="x", stop=["a", "b", "c"]), invalid, "stop",
                                 "limits.max_stop_strings")
        self.assert_grpc_refused(self.generate(prompt="x", stop=["a", "123456789"]), invalid, "stop[1]",
                                 "limits.max_stop_bytes")
        # The bundled model has no chat template: sizes are checked before that is found out.
        three = [pb.ChatMessage(role="user", content="hi")] * 4
        self.assert_grpc_refused(self.generate(messages=pb.ChatMessages(messages=three)), invalid, "messages",
                                 "limits.max_messages")
        two = [pb.ChatMessage(role="user", content="x" * 600)] * 2
        self.assert_grpc_refused(self.generate(messages=pb.ChatMessages(messages=two)), invalid, "messages",
                                 "limits.max_prompt_bytes")
        # The count before the ids: the last one is outside the vocabulary, and not what is named.
        ids = [5] * (CONTEXT - 1) + [10 ** 6]
        self.assert_grpc_refused(self.generate(prompt_ids=pb.TokenIds(ids=ids)), invalid, "prompt_ids",
                                 "context length")
        # Just under the limits, the same requests run.
        last = drain(self.server.stub.Generate(
            pb.GenerateRequest(prompt="x" * 1000, max_tokens=2, stop=["a", "12345678"]), timeout=60))
        self.assertEqual(last.usage.completion_tokens, 2)

    def test_tokenize_over_the_byte_limit_is_refused(self):
        tokenize = self.server.stub.Tokenize
        self.assert_grpc_refused(lambda: tokenize(pb.TokenizeRequest(text="x" * 1001), timeout=30),
                                 grpc.StatusCode.INVALID_ARGUMENT, "text", "limits.max_prompt_bytes")
        self.assertGreater(len(tokenize(pb.TokenizeRequest(text="x" * 1000), timeout=30).ids), 0)

    def test_a_message_larger_than_any_request_is_refused_by_grpc(self):
        # max_prompt_bytes + 1 MiB is the most a message may hold.
        self.assert_grpc_refused(self.generate(prompt="x" * (1000 + (1 << 20) + 1)),
                                 grpc.StatusCode.RESOURCE_EXHAUSTED)

    def assert_http_refused(self, route, body, status, param, part):
        response = self.server.http.post(route, json=body)
        self.assertEqual(response.status_code, status, response.text)
        error = response.json()["error"]
        self.assertEqual(error["param"], param, error)
        self.assertIn(part, error["message"])

    def test_http_routes_over_each_limit_answer_400_naming_the_parameter(self):
        completions, chat = "/v1/completions", "/v1/chat/completions"
        self.assert_http_refused(completions, {"prompt": "x" * 1001}, 400, "prompt", "limits.max_prompt_bytes")
        self.assert_http_refused(completions, {"prompt": "x", "max_tokens": 65}, 400, "max_tokens",
                                 "limits.max_tokens")
        self.assert_http_refused(completions, {"prompt": "x", "stop": ["a", "b", "c"]}, 400, "stop",
                                 "limits.max_stop_strings")
        self.assert_http_refused(completions, {"prompt": "x", "stop": "123456789"}, 400, "stop[0]",
                                 "limits.max_stop_bytes")
        self.assert_http_refused(chat, {"messages": [{"role": "user", "content": "hi"}] * 4}, 400, "messages",
                                 "limits.max_messages")
        self.assert_http_refused(chat, {"messages": [{"role": "user", "content": "x" * 600}] * 2}, 400, "messages",
                                 "limits.max_prompt_bytes")

    def test_an_http_body_larger_than_any_request_gets_413(self):
        response = self.server.http.post("/v1/completions", content=b"x" * (6 * 1000 + (1 << 20) + 1),
                                         headers={"Content-Type": "application/json"})
        self.assertEqual(response.status_code, 413)
        self.assertIn("limits.max_prompt_bytes", response.json()["error"]["message"])


class EchoAndParseTest(unittest.TestCase):
    """Errors quote at most a short prefix of what the client sent; bytes that are no request."""

    @classmethod
    def setUpClass(cls):
        cls.server = Server()

    @classmethod
    def tearDownClass(cls):
        cls.server.close()

    def test_long_model_and_tier_are_quoted_short(self):
        long = "m" * 100_000
        for fields, code in ((dict(model=long), grpc.StatusCode.NOT_FOUND),
                             (dict(tier=long), grpc.StatusCode.INVALID_ARGUMENT)):
            with self.assertRaises(grpc.RpcError) as caught:
                drain(self.server.stub.Generate(pb.GenerateRequest(prompt="x", **fields), timeout=30))
            self.assertEqual(caught.exception.code(), code, caught.exception.details()[:200])
            self.assertLess(len(caught.exception.details()), 300)
            self.assertIn("m" * 64 + "…'", caught.exception.details())
        with self.assertRaises(grpc.RpcError) as caught:
            self.server.stub.Tokenize(pb.TokenizeRequest(text="x", model=long), timeout=30)
        self.assertEqual(caught.exception.code(), grpc.StatusCode.NOT_FOUND)
        self.assertLess(len(caught.exception.details()), 300)

    def test_long_http_model_and_path_are_quoted_short(self):
        response = self.server.http.post("/v1/completions", json={"model": "m" * 100_000, "prompt": "x"})
        self.assertEqual(response.status_code, 404)
        self.assertLess(len(response.json()["error"]["message"]), 300)
        response = self.server.http.get("/" + "p" * 6000)
        self.assertEqual(response.status_code, 404)
        self.assertLess(len(response.json()["error"]["message"]), 300)

    def test_unparseable_request_bytes_get_internal_as_documented(self):
        # grpcio lets a test send raw bytes; C++ gRPC answers what it cannot parse itself,
        # before any handler runs: INTERNAL (README, "Errors").
        tokenize = self.server.channel.unary_unary("/grinqh.v1.InferenceService/Tokenize")
        with self.assertRaises(grpc.RpcError) as caught:
            tokenize(b"\xff\xff\xff\xff", timeout=30)
        self.assertEqual(caught.exception.code(), grpc.StatusCode.INTERNAL)
        # The server goes on serving.
        self.assertGreater(len(self.server.stub.Tokenize(pb.TokenizeRequest(text="hi"), timeout=30).ids), 0)


class PortInUseTest(unittest.TestCase):
    def test_a_second_server_on_a_port_in_use_refuses_to_start(self):
        first = Server()
        try:
            for flag, port, key in (("--port", first.port, "server.port"),
                                    ("--http-port", first.http_port, "http.port"),
                                    ("--metrics-port", first.metrics_port, "metrics.port")):
                ports = {"--port": "0", "--http-port": "0", "--metrics-port": "0", flag: str(port)}
                args = [a for pair in ports.items() for a in pair]
                second = subprocess.run([GRINQH, "serve", "--model", MODEL, "--host", "127.0.0.1", *args],
                                        capture_output=True, text=True, timeout=120)
                self.assertNotEqual(second.returncode, 0, second.stderr)
                self.assertIn(f"cannot listen on 127.0.0.1:{port} ({key})", second.stderr)
            # The first one still answers.
            self.assertGreater(len(first.stub.Tokenize(pb.TokenizeRequest(text="hi"), timeout=30).ids), 0)
        finally:
            first.close()


class Trickle:
    """A client that sends an HTTP request one byte every half second, on its own thread."""

    def __init__(self, port, request=b"GET /metrics HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: 1\r\n" * 200 + b"\r\n"):
        self.socket = socket.create_connection(("127.0.0.1", port))
        self.length, self.sent = len(request), 0
        self.stop = threading.Event()

        def trickle():
            try:
                for byte in request:
                    if self.stop.wait(0.5):
                        break
                    self.socket.sendall(bytes([byte]))
                    self.sent += 1
            except OSError:  # the server closed the connection
                pass

        self.thread = threading.Thread(target=trickle, daemon=True)
        self.thread.start()

    def close(self):
        self.stop.set()
        self.thread.join()
        self.socket.close()


class SlowClientsAndSignalsTest(unittest.TestCase):
    def test_trickling_clients_block_neither_scrapes_nor_exit(self):
        server = Server()
        slow = [Trickle(server.metrics_port) for _ in range(3)] + [Trickle(server.http_port) for _ in range(3)]
        try:
            time.sleep(2)
            for _ in range(3):  # scrapes and probes are answered while the slow ones hold their workers
                self.assertEqual(httpx.get(f"http://127.0.0.1:{server.metrics_port}/metrics", timeout=5).status_code,
                                 200)
                self.assertEqual(server.http.get("/health", timeout=5).status_code, 200)
            server.process.send_signal(signal.SIGTERM)
            # The exit does not wait for the slow requests, which would take minutes to arrive.
            self.assertEqual(server.process.wait(timeout=30), 0, "".join(server.log))
            for s in slow:
                self.assertLess(s.sent, s.length)
        finally:
            for s in slow:
                s.close()
            server.close()

    def test_a_second_sigterm_during_the_drain_cancels_the_streams(self):
        config = config_file("server:\n  shutdown_grace_seconds: 600\n")
        server = Server("--config", config)
        try:
            streams = [server.stub.Generate(pb.GenerateRequest(prompt="x", max_tokens=4000, ignore_eos=True),
                                            timeout=600) for _ in range(2)]
            for stream in streams:
                next(stream)  # generating
            server.process.send_signal(signal.SIGTERM)
            time.sleep(1)
            self.assertIsNone(server.process.poll(), "the drain waits for the streams")
            server.process.send_signal(signal.SIGTERM)
            for stream in streams:
                last = drain(stream)
                self.assertEqual(last.finish_reason, pb.FINISH_REASON_CANCELLED)
                self.assertLess(last.usage.completion_tokens, 4000)
            self.assertEqual(server.process.wait(timeout=60), 0, "".join(server.log))
            self.assertIn("second signal", "".join(server.log))
        finally:
            server.close()
            os.unlink(config)


class HealthUnderLoadTest(unittest.TestCase):
    def test_health_answers_while_many_streams_run_and_every_waiting_call_is_queued(self):
        # More calls than gRPC's default 256 streams per connection, spread over 4 connections;
        # a queue that holds all of them beside the batch of 32.
        streams, max_tokens = 350, 150
        config = config_file("batching:\n  max_queue: 400\n")
        server = Server("--config", config)
        refused, calls = [], []
        channels = [grpc.insecure_channel(f"127.0.0.1:{server.port}",
                                          options=[("grpc.use_local_subchannel_pool", 1)]) for _ in range(4)]
        stubs = [pb_grpc.InferenceServiceStub(c) for c in channels]

        def stream(i):
            call = stubs[i % len(stubs)].Generate(
                pb.GenerateRequest(prompt="x", max_tokens=max_tokens, ignore_eos=True), timeout=600)
            calls.append(call)
            try:
                drain(call)
            except grpc.RpcError as error:
                if error.code() != grpc.StatusCode.CANCELLED:
                    refused.append((error.code(), error.details()))

        threads = [threading.Thread(target=stream, args=(i,), daemon=True) for i in range(streams)]
        try:
            for t in threads:
                t.start()
            # Every call that waits for a batch slot waits in the scheduler's queue, where the
            # metric sees it: none is held (or refused) inside gRPC for want of a handler thread.
            self.assertEqual(server.await_metric("grinqh_queue_depth", streams - 32, timeout=120), streams - 32)
            health = health_pb2_grpc.HealthStub(server.channel)
            for _ in range(10):
                response = health.Check(health_pb2.HealthCheckRequest(service="grinqh.v1.InferenceService"),
                                        timeout=2)
                self.assertEqual(response.status, health_pb2.HealthCheckResponse.SERVING)
                time.sleep(0.2)
            self.assertEqual(refused, [])
            for call in calls:  # the rest of the load is not the test's business
                call.cancel()
            for t in threads:
                t.join(60)
            self.assertEqual(refused, [])
        finally:
            for c in channels:
                c.close()
            server.close()
            os.unlink(config)


if __name__ == "__main__":
    unittest.main(verbosity=2)
