"""A thin Python client for GRINQH Serve's gRPC API (grinqh.v1.InferenceService).

    from grinqh_client import Client
    for delta in Client("localhost:50051").generate("def fibonacci(n):", max_tokens=32):
        print(delta.text, end="", flush=True)

The stubs (`grinqh.v1.inference_pb2`, `..._pb2_grpc`) are generated from
proto/grinqh/v1/inference.proto: by `pip install` (setup.py runs protoc), or by the CMake
build into build/proto/python, which the integration tests put on sys.path.
"""
from dataclasses import dataclass, field
from typing import Iterator, List, Optional

import grpc
from grinqh.v1 import inference_pb2 as pb
from grinqh.v1 import inference_pb2_grpc as pb_grpc

__all__ = ["Client", "Delta", "Completion", "pb"]

_FINISH_REASONS = {pb.FINISH_REASON_LENGTH: "length", pb.FINISH_REASON_STOP: "stop",
                   pb.FINISH_REASON_EOS: "eos", pb.FINISH_REASON_CANCELLED: "cancelled"}


@dataclass
class Delta:
    """One stream message: the text it adds (whole UTF-8 characters) and its token ids. The
    last one also has the finish reason ("length", "stop", "eos", "cancelled") and the usage
    (a grinqh.v1.Usage: prompt_tokens, completion_tokens, effective_bits, tier, ...)."""
    text: str
    token_ids: List[int]
    request_id: str
    finish_reason: Optional[str] = None
    usage: Optional[object] = None


@dataclass
class Completion:
    """A whole generation: the deltas joined, and the last delta's finish reason and usage."""
    text: str = ""
    token_ids: List[int] = field(default_factory=list)
    request_id: str = ""
    finish_reason: Optional[str] = None
    usage: Optional[object] = None


def _messages(messages):
    """Chat messages as [{"role": ..., "content": ...}] or (role, content) pairs."""
    chat = pb.ChatMessages()
    for message in messages:
        role, content = (message["role"], message["content"]) if isinstance(message, dict) else message
        chat.messages.add(role=role, content=content)
    return chat


class Client:
    """A channel to one server. `timeout` (seconds) is each call's default deadline.

    For a server with `tls:` set, pass `tls=True` (the system's CAs) or `root_certificates`
    (PEM bytes of the CA that signed the server's certificate), and for mutual TLS the client's
    `certificate_chain` and `private_key` (PEM bytes). For one with `auth:` set, pass `token`:
    every call then carries `authorization: Bearer <token>`."""

    def __init__(self, address="localhost:50051", timeout: Optional[float] = None, *, tls: bool = False,
                 root_certificates: Optional[bytes] = None, certificate_chain: Optional[bytes] = None,
                 private_key: Optional[bytes] = None, token: Optional[str] = None):
        if tls or root_certificates or certificate_chain:
            credentials = grpc.ssl_channel_credentials(root_certificates, private_key, certificate_chain)
            self._channel = grpc.secure_channel(address, credentials)
        else:
            self._channel = grpc.insecure_channel(address)
        self._stub = pb_grpc.InferenceServiceStub(self._channel)
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self.timeout = timeout

    def generate(self, prompt: Optional[str] = None, *, messages=None, timeout: Optional[float] = None,
                 **options) -> Iterator[Delta]:
        """Streams a completion as Deltas. `options` are GenerateRequest's fields (max_tokens,
        temperature, top_k, top_p, seed, stop, tier, target_bits, ...). Errors raise grpc.RpcError;
        closing the iterator early cancels the call."""
        if messages is not None:
            options["messages"] = _messages(messages)
        if prompt is not None:
            options["prompt"] = prompt
        call = self._stub.Generate(pb.GenerateRequest(**options), timeout=timeout or self.timeout,
                                   metadata=self._metadata)
        try:
            for response in call:
                finished = response.HasField("usage")
                yield Delta(text=response.text, token_ids=list(response.token_ids), request_id=response.request_id,
                            finish_reason=_FINISH_REASONS.get(response.finish_reason) if finished else None,
                            usage=response.usage if finished else None)
        finally:
            call.cancel()  # a no-op once the stream has ended

    def complete(self, prompt: Optional[str] = None, **options) -> Completion:
        """generate(), collected."""
        completion = Completion()
        for delta in self.generate(prompt, **options):
            completion.text += delta.text
            completion.token_ids += delta.token_ids
            completion.request_id = delta.request_id
            if delta.usage is not None:
                completion.finish_reason, completion.usage = delta.finish_reason, delta.usage
        return completion

    def tokenize(self, text: str, add_special_tokens: bool = False, model: str = "",
                 timeout: Optional[float] = None) -> List[int]:
        """The token ids of `text`."""
        request = pb.TokenizeRequest(text=text, add_special_tokens=add_special_tokens)
        if model:
            request.model = model
        return list(self._stub.Tokenize(request, timeout=timeout or self.timeout, metadata=self._metadata).ids)

    def models(self, timeout: Optional[float] = None):
        """The served models (grinqh.v1.ModelInfo: name, architecture, tiers, ...)."""
        return list(self._stub.ListModels(pb.ListModelsRequest(), timeout=timeout or self.timeout,
                                          metadata=self._metadata).models)

    def close(self):
        self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
