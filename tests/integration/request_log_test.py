#!/usr/bin/python3
"""The real `grinqh serve`'s request log: one JSON line per finished request, from the gRPC
service and from the OpenAI HTTP API, with a UTC timestamp on every line; and the scheduler's
lines at --log-level debug.

Usage: request_log_test.py GRINQH_BINARY REPO_ROOT PYTHON_STUB_DIR
"""
import json
import os
import re
import sys
import time
import unittest
import urllib.request

GRINQH, ROOT = sys.argv[1], sys.argv[2]
sys.path[:0] = sys.argv[3:] + [os.path.join(ROOT, "clients", "python")]
del sys.argv[1:]

import grpc  # noqa: E402
from grinqh_client import Client  # noqa: E402
from serve_process import ServeProcess  # noqa: E402

MODEL = os.path.join(ROOT, "models", "tiny-llama3")
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def await_lines(server, predicate, timeout=30):
    """The JSON log lines so far once one satisfies `predicate` (or at the deadline)."""
    deadline = time.time() + timeout
    while True:
        lines = [json.loads(line) for line in list(server.log) if line.startswith("{")]
        if any(predicate(line) for line in lines) or time.time() > deadline:
            return lines
        time.sleep(0.05)


class RequestLogTest(unittest.TestCase):
    def test_json_lines_for_grpc_and_http_requests(self):
        server = ServeProcess(GRINQH, MODEL, "--log-format", "json", "--log-level", "debug")
        self.addCleanup(server.close)
        with Client(f"127.0.0.1:{server.port}", timeout=120) as client:
            client.complete("Hello", max_tokens=5, request_id="log-me")
            with self.assertRaises(grpc.RpcError):
                client.complete("Hello", max_tokens=5, tier="no-such-tier")
        body = json.dumps({"prompt": "Hello", "max_tokens": 4}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{server.http_port}/v1/completions", data=body,
                                         headers={"Content-Type": "application/json"})
        completion = json.loads(urllib.request.urlopen(request, timeout=120).read())

        lines = await_lines(server, lambda line: line.get("api") == "http")
        for line in lines:  # every line: a UTC timestamp with milliseconds, a level, a message
            self.assertRegex(line["time"], TIMESTAMP)
            self.assertIn(line["level"], ("debug", "info", "warning", "error"))
            self.assertIsInstance(line["message"], str)
        requests = [line for line in lines if line["message"] == "request finished"]
        by_id = {line["request_id"]: line for line in requests}

        grpc_line = by_id["log-me"]
        self.assertEqual(grpc_line["api"], "grpc")
        self.assertEqual(grpc_line["model"], "tiny-llama3")
        self.assertEqual(grpc_line["tier"], "quality")  # config/grinqh.yaml's default tier
        self.assertEqual(grpc_line["bits"], 16)  # a bf16 model decodes at full precision
        self.assertEqual(grpc_line["completion_tokens"], 5)
        self.assertGreater(grpc_line["prompt_tokens"], 0)
        self.assertEqual(grpc_line["finish_reason"], "length")
        self.assertEqual((grpc_line["status"], grpc_line["status_code"]), ("OK", 0))
        self.assertGreaterEqual(grpc_line["duration_s"], grpc_line["ttft_s"])

        refused = [line for line in requests if line["status"] == "INVALID_ARGUMENT"]
        self.assertEqual(len(refused), 1)
        self.assertEqual((refused[0]["status_code"], refused[0]["finish_reason"]), (3, "none"))

        http_line = by_id[completion["id"]]
        self.assertEqual(http_line["api"], "http")
        self.assertEqual(http_line["completion_tokens"], completion["usage"]["completion_tokens"])
        self.assertEqual(http_line["status"], "OK")

        # The scheduler's sampled lines, at debug, once it has stepped.
        lines = await_lines(server, lambda line: line["message"] == "scheduler")
        scheduler = [line for line in lines if line["message"] == "scheduler"]
        self.assertTrue(scheduler, "no scheduler line at --log-level debug")
        self.assertGreater(scheduler[0]["steps"], 0)

    def test_text_lines_are_timestamped(self):
        server = ServeProcess(GRINQH, MODEL)
        self.addCleanup(server.close)
        serving = [line for line in server.log if "serving tiny-llama3" in line]
        self.assertEqual(len(serving), 1)
        self.assertRegex(serving[0], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z info serving ")
        self.assertFalse(any('"message"' in line for line in server.log))


if __name__ == "__main__":
    unittest.main()
