#!/usr/bin/python3
"""The OpenAI-compatible HTTP API of the real `grinqh serve`, driven by Python's httpx
(Debian's python3-httpx): completions streamed and not, token-id prompts, stop strings,
OpenAI's error objects, /v1/models, /health and /ready, a client that leaves mid-stream,
and the SIGTERM drain.

Usage: openai_http_test.py GRINQH_BINARY REPO_ROOT
"""
import json
import os
import signal
import sys
import tempfile
import time
import unittest

try:
    import httpx
except ImportError:
    print("python3-httpx is not installed (scripts/setup.sh installs it): skipped")
    sys.exit(77)

from serve_process import ServeProcess, generate_alone  # noqa: E402

GRINQH, ROOT = sys.argv[1], sys.argv[2]
del sys.argv[1:]
MODEL = os.path.join(ROOT, "models", "tiny-llama3")


class HttpServer(ServeProcess):
    """`grinqh serve` on the bundled model, and an httpx client for its HTTP API."""

    def __init__(self, *args):
        super().__init__(GRINQH, MODEL, *args)
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.http_port}", timeout=120)

    def close(self):
        self.client.close()
        super().close()


def generate_cli(prompt, max_tokens, *flags):
    return generate_alone(GRINQH, MODEL, prompt, max_tokens, *flags)


def sse_events(response):
    """The JSON bodies of a server-sent event stream, checking it ends with [DONE]."""
    events, done = [], False
    for line in response.iter_lines():
        line = line.rstrip("\r\n")  # httpx 0.23 keeps the line ending
        if not line:
            continue
        assert line.startswith("data: "), line
        assert not done, "an event after [DONE]"
        if line == "data: [DONE]":
            done = True
        else:
            events.append(json.loads(line[len("data: "):]))
    assert done, "the stream did not end with data: [DONE]"
    return events


class OpenAiHttpTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = HttpServer()
        cls.http = cls.server.client

    @classmethod
    def tearDownClass(cls):
        cls.server.close()

    def complete(self, **body):
        return self.http.post("/v1/completions", json={"model": "tiny-llama3", **body})

    def assert_error(self, response, status, param, text=""):
        self.assertEqual(response.status_code, status, response.text)
        error = response.json()["error"]
        self.assertEqual(error["param"], param, error)
        self.assertIn(text, error["message"])
        self.assertEqual(error["type"], "invalid_request_error" if status < 429 else error["type"])

    def test_health_ready_and_models(self):
        self.assertEqual(self.http.get("/health").status_code, 200)
        self.assertEqual(self.http.get("/ready").json(), {"status": "ready"})
        models = self.http.get("/v1/models").json()
        self.assertEqual(models["object"], "list")
        self.assertEqual([m["id"] for m in models["data"]], ["tiny-llama3"])
        self.assertEqual(self.http.get("/v1/models/tiny-llama3").json()["id"], "tiny-llama3")
        self.assert_error(self.http.get("/v1/models/gpt-4"), 404, "model")
        self.assertEqual(self.http.get("/v1/nothing").status_code, 404)

    def test_completion_equals_the_engine_alone(self):
        expected = generate_cli("def fibonacci(n):", 24)
        response = self.complete(prompt="def fibonacci(n):", max_tokens=24, temperature=0)
        self.assertEqual(response.status_code, 200, response.text)
        body = response.json()
        self.assertEqual(body["object"], "text_completion")
        self.assertEqual(body["model"], "tiny-llama3")
        self.assertTrue(body["id"].startswith("cmpl-"))
        self.assertEqual(body["choices"][0]["text"], expected["text"])
        self.assertEqual(body["choices"][0]["finish_reason"], "length" if expected["finish_reason"] == "length" else "stop")
        usage = body["usage"]
        self.assertEqual(usage["completion_tokens"], len(expected["token_ids"]))
        self.assertEqual(usage["prompt_tokens"], len(expected["prompt_ids"]))
        self.assertEqual(usage["total_tokens"], usage["prompt_tokens"] + usage["completion_tokens"])
        self.assertEqual(usage["grinqh_tier"], "quality")
        self.assertEqual(usage["grinqh_effective_bits"], 16)  # a bf16 model decodes at full precision

    def test_stream_equals_the_engine_alone(self):
        expected = generate_cli("def quicksort(items):", 24)
        body = {"prompt": "def quicksort(items):", "max_tokens": 24, "temperature": 0, "stream": True,
                "stream_options": {"include_usage": True}}
        with self.http.stream("POST", "/v1/completions", json=body) as response:
            self.assertEqual(response.status_code, 200)
            self.assertTrue(response.headers["content-type"].startswith("text/event-stream"))
            events = sse_events(response)
        chunks, usage_chunk = events[:-1], events[-1]
        self.assertGreater(len(chunks), 2)  # streamed, not one body at the end
        self.assertEqual("".join(c["choices"][0]["text"] for c in chunks), expected["text"])
        self.assertTrue(all(c["object"] == "text_completion" and c["usage"] is None for c in chunks))
        self.assertEqual([c["choices"][0]["finish_reason"] for c in chunks[:-1]], [None] * (len(chunks) - 1))
        self.assertIn(chunks[-1]["choices"][0]["finish_reason"], ("length", "stop"))
        self.assertEqual(usage_chunk["choices"], [])
        self.assertEqual(usage_chunk["usage"]["completion_tokens"], len(expected["token_ids"]))

    def test_token_id_prompts_and_stop_strings(self):
        # transformers' greedy continuation of "import numpy as np\n" (cli_test.sh).
        by_ids = self.complete(prompt=[0, 779, 1568, 383, 488, 201], max_tokens=4, temperature=0).json()
        self.assertEqual(by_ids["choices"][0]["text"], generate_cli("import numpy as np\n", 4)["text"])
        self.assertEqual(by_ids["usage"]["prompt_tokens"], 6)
        stopped = self.complete(prompt="import numpy as np\n", max_tokens=8, temperature=0, stop=["scipy"]).json()
        self.assertEqual(stopped["choices"][0]["text"], generate_cli("import numpy as np\n", 8, "--stop", "scipy")["text"])
        self.assertEqual(stopped["choices"][0]["finish_reason"], "stop")

    def test_seeded_sampling_repeats(self):
        body = dict(prompt="def main():", max_tokens=12, temperature=0.9, top_p=0.9, top_k=40, seed=7)
        first, second = self.complete(**body).json(), self.complete(**body).json()
        self.assertEqual(first["choices"][0]["text"], second["choices"][0]["text"])

    def test_logprobs_in_openais_shape(self):
        prompt = [0, 779, 1568, 383, 488, 201]
        body = self.complete(prompt=prompt, max_tokens=6, temperature=0, logprobs=3, ignore_eos=True).json()
        logprobs = body["choices"][0]["logprobs"]
        self.assertEqual(len(logprobs["tokens"]), 6)
        self.assertEqual(len(logprobs["token_logprobs"]), 6)
        self.assertEqual("".join(logprobs["tokens"]), body["choices"][0]["text"])
        offsets = [0]
        for token in logprobs["tokens"][:-1]:
            offsets.append(offsets[-1] + len(token.encode()))
        self.assertEqual(logprobs["text_offset"], offsets)
        for token, logprob, top in zip(logprobs["tokens"], logprobs["token_logprobs"], logprobs["top_logprobs"]):
            self.assertEqual(len(top), 3)
            self.assertAlmostEqual(max(top.values()), logprob, places=5)  # greedy chose the most likely
            self.assertEqual(top[token], logprob)
        # Streamed: the same logprobs, spread over the chunks.
        streamed = {"prompt": prompt, "max_tokens": 6, "temperature": 0, "logprobs": 3, "ignore_eos": True, "stream": True}
        with self.http.stream("POST", "/v1/completions", json=streamed) as response:
            chunks = sse_events(response)
        self.assertEqual(sum((c["choices"][0]["logprobs"]["token_logprobs"] for c in chunks), []),
                         logprobs["token_logprobs"])

    def test_penalties_and_bias_steer_the_output(self):
        prompt = [0, 779, 1568, 383, 488, 201]
        plain = self.complete(prompt=prompt, max_tokens=8, temperature=0, ignore_eos=True).json()
        biased = self.complete(prompt=prompt, max_tokens=8, temperature=0, ignore_eos=True,
                               logit_bias={"4000": 100}, logprobs=0).json()
        self.assertEqual(biased["usage"]["completion_tokens"], 8)
        self.assertEqual(len(set(biased["choices"][0]["logprobs"]["tokens"])), 1)  # token 4000 every time
        penalized = self.complete(prompt=prompt, max_tokens=8, temperature=0, ignore_eos=True,
                                  frequency_penalty=2, presence_penalty=2, repetition_penalty=1.5).json()
        self.assertEqual(penalized["usage"]["completion_tokens"], 8)
        self.assertNotEqual(plain["choices"][0]["text"], biased["choices"][0]["text"])
        ended = self.complete(prompt=prompt, max_tokens=8, temperature=0, logit_bias={"1": 100}, min_tokens=2).json()
        self.assertEqual(ended["usage"]["completion_tokens"], 2)
        self.assertEqual(ended["choices"][0]["finish_reason"], "stop")

    def test_neutral_values_of_unsupported_fields_are_accepted(self):
        response = self.complete(prompt="x", max_tokens=2, n=1, logprobs=None, user="someone", best_of=1, echo=False,
                                 some_future_field={"a": 1})
        self.assertEqual(response.status_code, 200, response.text)

    def test_invalid_requests_name_the_parameter(self):
        cases = [
            (dict(prompt="x", n=2), "n", "only n = 1"),
            (dict(prompt="x", temperature="hot"), "temperature", "must be a number"),
            (dict(prompt="x", temperature=-1), "temperature", ""),
            (dict(prompt="x", top_p=1.5), "top_p", ""),
            (dict(prompt="x", max_tokens=0), "max_tokens", ">= 1"),
            (dict(prompt="x", max_tokens=10**6), "max_tokens", ""),
            (dict(prompt="x", presence_penalty=2.5), "presence_penalty", "[-2, 2]"),
            (dict(prompt="x", logprobs=21), "logprobs", "[0, 20]"),
            (dict(prompt="x", logit_bias={"99999": 1}), "logit_bias", "outside the vocabulary"),
            (dict(prompt="x", logit_bias={"5": 101}), "logit_bias", "[-100, 100]"),
            (dict(prompt="x", min_p=-0.1), "min_p", ""),
            (dict(prompt="x", repetition_penalty=0), "repetition_penalty", ""),
            (dict(prompt="x", stop_token_ids=["a"]), "stop_token_ids[0]", "token id"),
            (dict(prompt="x", stop=[1]), "stop[0]", "must be a string"),
            (dict(prompt=[0, 99999]), "prompt[1]", "outside the vocabulary"),
            (dict(prompt=""), "prompt", "must not be empty"),
            (dict(prompt=["a", "b"]), "prompt", "batches"),
            (dict(prompt="x", grinqh_tier="warp"), "grinqh_tier", "unknown tier"),
            (dict(prompt="x", grinqh_target_bits=3), "grinqh_target_bits", "no graded decoding"),
            (dict(prompt="x", stream_options={"include_usage": True}), "stream_options", "stream is true"),
            (dict(max_tokens=3), "prompt", "is required"),
        ]
        for body, param, text in cases:
            with self.subTest(body=body):
                self.assert_error(self.complete(**body), 400, param, text)
        self.assert_error(self.complete(prompt="x", model="gpt-4"), 404, "model", "gpt-4")
        self.assert_error(self.http.post("/v1/completions", content=b"{not json"), 400, "body", "not valid JSON")

    def test_chat_on_a_model_without_a_template_is_a_clear_error(self):
        response = self.http.post("/v1/chat/completions",
                                  json={"messages": [{"role": "user", "content": "hi"}], "max_completion_tokens": 4})
        self.assert_error(response, 400, "messages", "chat template")
        response = self.http.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": 5}]})
        self.assert_error(response, 400, "messages[0].content", "must be a string")

    def test_a_client_leaving_mid_stream_cancels_its_request(self):
        cancelled = 'code="CANCELLED"'
        before = self.server.metric("grinqh_requests_total", cancelled)
        body = {"prompt": "def main():", "max_tokens": 4000, "temperature": 0, "stream": True}
        with self.http.stream("POST", "/v1/completions", json=body) as response:
            next(line for line in response.iter_lines() if line.startswith("data: "))  # it has started
        # The connection is closed: the server cancels the request and frees its slot and cache.
        self.assertEqual(self.server.await_metric("grinqh_requests_total", before + 1, cancelled), before + 1)
        self.assertEqual(self.server.await_metric("grinqh_running_batch_size", 0), 0)
        self.assertEqual(self.server.await_metric("grinqh_kv_cache_used_tokens", 0), 0)


class HttpDrainTest(unittest.TestCase):
    def test_sigterm_turns_ready_off_and_lets_streams_finish(self):
        config = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
        # As server_python_test's drain test: sanitizer builds decode slower (test.sh --tsan).
        scale = float(os.environ.get("GRINQH_TEST_TIME_SCALE", "1"))
        config.write(f"server: {{shutdown_grace_seconds: {60 * scale:g}}}\n")
        config.close()
        server = HttpServer("--config", config.name)
        try:
            body = {"prompt": "def main():", "max_tokens": 2000, "temperature": 0, "stream": True,
                    "stream_options": {"include_usage": True}}
            with server.client.stream("POST", "/v1/completions", json=body) as response:
                lines = response.iter_lines()
                first = next(line for line in lines if line.startswith("data: "))
                server.process.send_signal(signal.SIGTERM)
                status = None
                for _ in range(200):
                    status = server.client.get("/ready").status_code
                    if status == 503:
                        break
                    time.sleep(0.05)
                self.assertEqual(status, 503)
                refused = server.client.post("/v1/completions", json={"prompt": "x", "max_tokens": 2})
                self.assertEqual(refused.status_code, 503)
                self.assertEqual(refused.json()["error"]["type"], "service_unavailable")
                rest = [line.rstrip("\r\n") for line in lines if line.strip()]
            self.assertEqual(rest[-1], "data: [DONE]")
            last_chunk, usage_chunk = json.loads(rest[-3][6:]), json.loads(rest[-2][6:])
            self.assertEqual(last_chunk["choices"][0]["finish_reason"], "length")
            self.assertEqual(usage_chunk["usage"]["completion_tokens"], 2000)
            self.assertTrue(first.startswith("data: "))
            self.assertEqual(server.process.wait(30 * scale), 0, "".join(server.log))
        finally:
            server.close()
            os.unlink(config.name)


if __name__ == "__main__":
    unittest.main(verbosity=2)
