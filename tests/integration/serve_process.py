"""`grinqh serve` on free loopback ports, for the Python integration tests: started, waited
for until it announces where it listens, its stderr kept (in a thread) for failure messages."""
import json
import math
import re
import subprocess
import threading
import time
import urllib.request

# "... on HOST:PORT, metrics on HOST:PORT/metrics, OpenAI-compatible HTTP API on http(s)://HOST:PORT/v1"
LISTENING = re.compile(r"on [0-9.]+:(\d+), metrics on [0-9.]+:(\d+)/metrics"
                       r", OpenAI-compatible HTTP API on https?://[0-9.]+:(\d+)/v1")


class ServeProcess:
    def __init__(self, grinqh, model, *args, host="127.0.0.1", env=None):
        self.process = subprocess.Popen(
            [grinqh, "serve", "--model", model, "--host", host, "--port", "0", "--metrics-port", "0",
             "--http-port", "0", *args], stderr=subprocess.PIPE, text=True, env=env)
        self.log = []
        listening = threading.Event()

        def read_log():
            for line in self.process.stderr:
                self.log.append(line)
                if match := LISTENING.search(line):
                    self.port, self.metrics_port, self.http_port = int(match[1]), int(match[2]), int(match[3])
                    listening.set()

        threading.Thread(target=read_log, daemon=True).start()
        if not listening.wait(60):
            self.process.kill()
            raise RuntimeError("grinqh serve did not start:\n" + "".join(self.log))

    def metric(self, name, label=""):
        """The sum of the series of `name` whose labels include `label`: NaN when `name` has
        no series, 0 when none has `label` yet."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        body = urllib.request.urlopen(url, timeout=10).read().decode()
        values = [float(line.split()[-1]) for line in body.splitlines()
                  if re.match(re.escape(name) + r"[{ ]", line) and label in line.split()[0]]
        return sum(values) if values else 0.0 if label else math.nan

    def await_metric(self, name, value, label="", timeout=10):
        deadline = time.time() + timeout
        while self.metric(name, label) != value and time.time() < deadline:
            time.sleep(0.05)
        return self.metric(name, label)

    def close(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process.stderr.close()


def generate_alone(grinqh, model, prompt, max_tokens, *flags):
    """`grinqh generate --json`'s summary (greedy): the engine alone, no server."""
    out = subprocess.run([grinqh, "generate", "--model", model, "--prompt", prompt, "--max-tokens", str(max_tokens),
                          "--json", *flags], check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])
