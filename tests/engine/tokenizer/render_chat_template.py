#!/usr/bin/python3
"""Renders a Hugging Face chat template with Jinja, as transformers' apply_chat_template does.

The reference for tests/chat_template_test.cc. Reads {"template", "messages", "bos_token",
"eos_token"} as JSON on stdin and writes the prompt for the assistant's next turn to stdout.
"""
import json
import sys

from jinja2.sandbox import ImmutableSandboxedEnvironment


def raise_exception(message):
    raise ValueError(message)


def main():
    request = json.load(sys.stdin)
    # The environment transformers builds for chat templates.
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.filters["tojson"] = lambda x, **kw: json.dumps(x, ensure_ascii=False, **kw)
    env.globals["raise_exception"] = raise_exception
    text = env.from_string(request["template"]).render(
        messages=request["messages"], add_generation_prompt=True,
        bos_token=request.get("bos_token", ""), eos_token=request.get("eos_token", ""))
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
