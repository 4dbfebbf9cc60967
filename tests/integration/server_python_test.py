#!/usr/bin/python3
"""The real `grinqh serve` driven by Python: generation through the repository's Python client
(clients/python, on Debian's python3-grpcio): streaming, validation, cancellation, concurrency;
the standard health service through a SIGTERM drain, server reflection, and the `grinqh client`
CLI.

Usage: server_python_test.py GRINQH_BINARY REPO_ROOT PYTHON_STUB_DIR...
"""
import os
import signal
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
from serve_process import ServeProcess, generate_alone  # noqa: E402

# The health and reflection stubs live in grpc.health / grpc.reflection, as the pip packages
# grpcio-health-checking and grpcio-reflection put them: extend the grpc package to find them.
for stub_dir in list(sys.path):
    if os.path.isdir(os.path.join(stub_dir, "grpc", "health")):
        grpc.__path__.append(os.path.join(stub_dir, "grpc"))

from grpc.health.v1 import health_pb2, health_pb2_grpc  # noqa: E402
from grpc.reflection.v1alpha import reflection_pb2, reflection_pb2_grpc  # noqa: E402
from grinqh_client import Client  # noqa: E402
# The raw stubs, for fields the client's keyword arguments do not cover (logprobs, Tokenize's bytes).
from grinqh.v1 import inference_pb2 as pb  # noqa: E402
from grinqh.v1 import inference_pb2_grpc as pb_grpc  # noqa: E402

MODEL = os.path.join(ROOT, "models", "tiny-llama3")


class Server(ServeProcess):
    """`grinqh serve` on the bundled model, the Python client, and a channel for health and reflection."""

    def __init__(self, *args):
        super().__init__(GRINQH, MODEL, *args)
        self.client = Client(f"127.0.0.1:{self.port}", timeout=120)
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")
        self.stub = pb_grpc.InferenceServiceStub(self.channel)

    def close(self):
        self.client.close()
        self.channel.close()
        super().close()


def generate(stub, timeout=120, **fields):
    """The stream's text, token ids and last message."""
    text, ids, last = "", [], None
    for response in stub.Generate(pb.GenerateRequest(**fields), timeout=timeout):
        text += response.text
        ids += response.token_ids
        last = response
    return text, ids, last


def generate_cli(prompt, max_tokens):
    return generate_alone(GRINQH, MODEL, prompt, max_tokens)


class ServerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server()
        cls.client = cls.server.client
        cls.stub = cls.server.stub

    @classmethod
    def tearDownClass(cls):
        cls.server.close()

    def test_stream_matches_the_engine_alone(self):
        expected = generate_cli("def quicksort(items):", 20)
        completion = self.client.complete("def quicksort(items):", max_tokens=20)
        self.assertEqual(completion.token_ids, expected["token_ids"])
        self.assertEqual(completion.text, expected["text"])
        self.assertIn(completion.finish_reason, ("length", "eos"))
        self.assertEqual(completion.usage.completion_tokens, len(completion.token_ids))
        self.assertGreater(completion.usage.time_to_first_token_seconds, 0)

    def test_client_tokenizes_and_lists_models(self):
        self.assertEqual(self.client.tokenize("import numpy as np\n"), [779, 1568, 383, 488, 201])
        models = self.client.models()
        self.assertEqual([m.name for m in models], ["tiny-llama3"])
        self.assertIn("quality", [t.name for t in models[0].tiers])

    def test_concurrent_streams_get_their_solo_text(self):
        prompts = [f"class Model{i}:" for i in range(8)]
        expected = [generate_cli(p, 12) for p in prompts]
        results = [None] * len(prompts)

        def run(i):
            results[i] = self.client.complete(prompts[i], max_tokens=12)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(prompts))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for i, completion in enumerate(results):
            self.assertEqual(completion.token_ids, expected[i]["token_ids"], f"stream {i}")
            self.assertEqual(completion.text, expected[i]["text"], f"stream {i}")

    def test_invalid_requests_name_the_field(self):
        cases = [
            (dict(prompt=""), grpc.StatusCode.INVALID_ARGUMENT, "prompt"),
            (dict(prompt="x", top_p=2.0), grpc.StatusCode.INVALID_ARGUMENT, "top_p"),
            (dict(prompt="x", temperature=float("nan")), grpc.StatusCode.INVALID_ARGUMENT, "temperature"),
            (dict(prompt="x", tier="warp"), grpc.StatusCode.INVALID_ARGUMENT, "tier"),
            (dict(prompt="x", max_tokens=10**6), grpc.StatusCode.INVALID_ARGUMENT, "max_tokens"),
            (dict(messages=[{"role": "user", "content": "hi"}]),
             grpc.StatusCode.FAILED_PRECONDITION, "chat template"),
        ]
        for fields, code, field in cases:
            with self.subTest(fields=str(fields)):
                with self.assertRaises(grpc.RpcError) as caught:
                    self.client.complete(**fields)
                self.assertEqual(caught.exception.code(), code)
                self.assertIn(field, caught.exception.details())

    def test_logprobs_and_penalties(self):
        prompt_ids = pb.TokenIds(ids=[0, 512, 77, 3001, 42])
        logprobs = []
        for response in self.stub.Generate(pb.GenerateRequest(prompt_ids=prompt_ids, max_tokens=12, logprobs=True,
                                                              top_logprobs=4, ignore_eos=True), timeout=120):
            self.assertEqual([lp.token_id for lp in response.logprobs], list(response.token_ids))
            logprobs += response.logprobs
        self.assertEqual(len(logprobs), 12)
        for lp in logprobs:  # greedy: the chosen token is the most likely, and the top is sorted
            self.assertEqual(lp.top_logprobs[0].token_id, lp.token_id)
            self.assertAlmostEqual(lp.top_logprobs[0].logprob, lp.logprob, places=5)
            values = [t.logprob for t in lp.top_logprobs]
            self.assertEqual(values, sorted(values, reverse=True))
            self.assertLessEqual(lp.logprob, 0)
        # A repetition penalty of 100 all but bans every token already seen.
        _, ids, _ = generate(self.stub, prompt_ids=prompt_ids, max_tokens=12, ignore_eos=True, repetition_penalty=100)
        seen = list(prompt_ids.ids) + ids
        self.assertEqual(len(seen), len(set(seen)))
        # logit_bias steers greedy decoding; min_tokens holds EOS (id 1) back.
        _, ids, last = generate(self.stub, prompt_ids=prompt_ids, max_tokens=8, logit_bias={1: 100.0}, min_tokens=3)
        self.assertEqual(len(ids), 3)
        self.assertEqual(last.finish_reason, pb.FINISH_REASON_EOS)
        for fields, field in [(dict(logit_bias={8192: 1.0}), "logit_bias"), (dict(min_p=2.0), "min_p"),
                              (dict(top_logprobs=21), "top_logprobs"), (dict(stop_token_ids=[-3]), "stop_token_ids"),
                              (dict(presence_penalty=3.0), "presence_penalty")]:
            with self.subTest(field=field):
                with self.assertRaises(grpc.RpcError) as caught:
                    generate(self.stub, prompt_ids=prompt_ids, **fields)
                self.assertEqual(caught.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
                self.assertIn(field, caught.exception.details())

    def test_tokenize_returns_bytes(self):
        text = "héllo wörld 日本"
        response = self.stub.Tokenize(pb.TokenizeRequest(text=text), timeout=60)
        self.assertEqual(len(response.token_bytes), len(response.ids))
        self.assertEqual(b"".join(response.token_bytes).decode("utf-8"), text)
        self.assertEqual(len(response.tokens), len(response.ids))  # deprecated, but still there, as text

    def test_cancel_mid_stream_returns_the_slot_and_cache(self):
        stream = self.client.generate("def main():", max_tokens=4000)
        for _ in range(3):
            next(stream)
        self.assertEqual(self.server.metric("grinqh_running_batch_size"), 1)
        self.assertGreater(self.server.metric("grinqh_kv_cache_used_tokens"), 0)
        stream.close()  # the client cancels the call
        self.assertEqual(self.server.await_metric("grinqh_running_batch_size", 0), 0)
        self.assertEqual(self.server.await_metric("grinqh_kv_cache_used_tokens", 0), 0)

    def test_health_and_reflection(self):
        health = health_pb2_grpc.HealthStub(self.server.channel)
        for service in ("", "grinqh.v1.InferenceService"):
            response = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
            self.assertEqual(response.status, health_pb2.HealthCheckResponse.SERVING)

        reflection = reflection_pb2_grpc.ServerReflectionStub(self.server.channel)
        requests = [reflection_pb2.ServerReflectionRequest(list_services=""),
                    reflection_pb2.ServerReflectionRequest(file_containing_symbol="grinqh.v1.InferenceService")]
        listed, files = list(reflection.ServerReflectionInfo(iter(requests), timeout=10))
        names = {s.name for s in listed.list_services_response.service}
        self.assertIn("grinqh.v1.InferenceService", names)
        self.assertIn("grpc.health.v1.Health", names)
        from google.protobuf import descriptor_pb2
        descriptor = descriptor_pb2.FileDescriptorProto.FromString(
            files.file_descriptor_response.file_descriptor_proto[0])
        self.assertEqual(descriptor.name, "grinqh/v1/inference.proto")
        self.assertIn("Generate", [m.name for m in descriptor.service[0].method])

    def test_client_cli_streams_a_completion(self):
        completion = self.client.complete("import sys", max_tokens=10)
        cli = subprocess.run([GRINQH, "client", "--server", f"127.0.0.1:{self.server.port}", "--prompt", "import sys",
                              "--max-tokens", "10"], capture_output=True, text=True, timeout=60)
        self.assertEqual(cli.returncode, 0, cli.stderr)
        self.assertEqual(cli.stdout, completion.text + "\n")
        self.assertIn(f"{completion.usage.completion_tokens} completion tokens", cli.stderr)


class DrainTest(unittest.TestCase):
    def test_sigterm_turns_health_not_serving_and_drains(self):
        config = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
        # The grace must outlast 2000 tokens of decoding; sanitizer builds (test.sh --tsan)
        # decode several times slower and say so in GRINQH_TEST_TIME_SCALE.
        scale = float(os.environ.get("GRINQH_TEST_TIME_SCALE", "1"))
        config.write(f"server: {{shutdown_grace_seconds: {60 * scale:g}}}\n")
        config.close()
        server = Server("--config", config.name)
        try:
            health = health_pb2_grpc.HealthStub(server.channel)
            stream = server.client.generate("def main():", max_tokens=2000, timeout=120 * scale)
            first = next(stream)
            server.process.send_signal(signal.SIGTERM)
            deadline = time.time() + 10
            status = None
            while time.time() < deadline:
                status = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status
                if status == health_pb2.HealthCheckResponse.NOT_SERVING:
                    break
                time.sleep(0.05)
            self.assertEqual(status, health_pb2.HealthCheckResponse.NOT_SERVING)
            rest = list(stream)
            tokens = len(first.token_ids) + sum(len(r.token_ids) for r in rest)
            self.assertEqual(rest[-1].finish_reason, "length")
            self.assertEqual(tokens, 2000)
            self.assertEqual(server.process.wait(30 * scale), 0, "".join(server.log))
        finally:
            server.close()
            os.unlink(config.name)


if __name__ == "__main__":
    unittest.main(verbosity=2)
