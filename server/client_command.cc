// `grinqh client`: streams a completion from a running server (a small real client of the
// API, and the quickest way to try a server by hand).
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdlib>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "engine/base/file_util.h"
#include "engine/base/status_macros.h"
#include "grinqh/v1/inference.grpc.pb.h"
#include "server/commands.h"
#include "server/flags.h"
#include "server/model_table.h"

namespace grinqh {
namespace {

std::string_view FinishName(v1::FinishReason reason) {
  switch (reason) {
    case v1::FINISH_REASON_LENGTH: return "length";
    case v1::FINISH_REASON_STOP: return "stop";
    case v1::FINISH_REASON_EOS: return "eos";
    case v1::FINISH_REASON_CANCELLED: return "cancelled";
    default: return "unspecified";
  }
}

absl::Status FromGrpc(const grpc::Status& status) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

constexpr char kTokenVariable[] = "GRINQH_TOKEN";

// Plaintext, or TLS with --tls / --ca (and a client certificate with --cert and --key).
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentials(const Flags& flags) {
  if (!flags.Has("tls") && !flags.Has("ca") && !flags.Has("cert")) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions options;  // empty roots: the system's
  if (auto ca = flags.String("ca")) {
    GRINQH_ASSIGN_OR_RETURN(options.pem_root_certs, ReadFileToString(*ca));
  }
  if (flags.Has("cert") != flags.Has("key")) return absl::InvalidArgumentError("--cert and --key go together");
  if (flags.Has("cert")) {
    GRINQH_ASSIGN_OR_RETURN(options.pem_cert_chain, ReadFileToString(*flags.String("cert")));
    GRINQH_ASSIGN_OR_RETURN(options.pem_private_key, ReadFileToString(*flags.String("key")));
  }
  return grpc::SslCredentials(options);
}

absl::Status RunClient(const Flags& flags) {
  const std::string server = flags.String("server").value_or("localhost:50051");
  GRINQH_ASSIGN_OR_RETURN(std::shared_ptr<grpc::ChannelCredentials> credentials, ChannelCredentials(flags));
  auto channel = grpc::CreateChannel(server, credentials);
  auto stub = v1::InferenceService::NewStub(channel);
  grpc::ClientContext context;
  // From the environment rather than a flag, so the token stays out of `ps` and shell history.
  if (const char* token = std::getenv(kTokenVariable); token != nullptr && *token != '\0') {
    context.AddMetadata("authorization", absl::StrCat("Bearer ", token));
  }
  float timeout = 0;
  GRINQH_RETURN_IF_ERROR(flags.ReadFloat("timeout", timeout));
  if (timeout > 0) {
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::milliseconds(static_cast<int64_t>(timeout * 1000)));
  }

  if (flags.Has("models")) {
    v1::ListModelsResponse models;
    GRINQH_RETURN_IF_ERROR(FromGrpc(stub->ListModels(&context, {}, &models)));
    if (flags.Has("json")) {
      GRINQH_ASSIGN_OR_RETURN(const std::string json, FormatModelJson(models));
      std::cout << json;
    } else {
      std::cout << FormatModelTable(models);
    }
    return absl::OkStatus();
  }

  v1::GenerateRequest request;
  if (auto prompt = flags.String("prompt")) {
    request.set_prompt(*prompt);
  } else if (auto user = flags.String("user")) {
    if (auto system = flags.String("system")) {
      auto* m = request.mutable_messages()->add_messages();
      m->set_role("system");
      m->set_content(*system);
    }
    auto* m = request.mutable_messages()->add_messages();
    m->set_role("user");
    m->set_content(*user);
  } else {
    return absl::InvalidArgumentError("give --prompt TEXT, or --user TEXT [--system TEXT] for chat");
  }
  long long max_tokens = 0, top_k = 0, seed = 0;
  float temperature = 0, top_p = 1, bits = 0, min_bits = 0;
  GRINQH_RETURN_IF_ERROR(flags.ReadInt("max-tokens", 0, 1 << 30, max_tokens));
  GRINQH_RETURN_IF_ERROR(flags.ReadInt("top-k", 0, 1 << 30, top_k));
  GRINQH_RETURN_IF_ERROR(flags.ReadInt("seed", 0, LLONG_MAX, seed));
  GRINQH_RETURN_IF_ERROR(flags.ReadFloat("temperature", temperature));
  GRINQH_RETURN_IF_ERROR(flags.ReadFloat("top-p", top_p));
  GRINQH_RETURN_IF_ERROR(flags.ReadFloat("bits", bits));
  GRINQH_RETURN_IF_ERROR(flags.ReadFloat("min-bits", min_bits));
  request.set_max_tokens(static_cast<uint32_t>(max_tokens));
  request.set_top_k(static_cast<uint32_t>(top_k));
  request.set_seed(static_cast<uint64_t>(seed));
  request.set_temperature(temperature);
  if (flags.Has("top-p")) request.set_top_p(top_p);
  if (auto stop = flags.String("stop")) request.add_stop(*stop);
  if (auto tier = flags.String("tier")) request.set_tier(*tier);
  if (flags.Has("bits")) request.set_target_bits(bits);
  request.set_min_bits(min_bits);

  auto reader = stub->Generate(&context, request);
  v1::GenerateResponse response;
  v1::GenerateResponse last;
  while (reader->Read(&response)) {
    std::cout << response.text() << std::flush;
    last = response;
  }
  GRINQH_RETURN_IF_ERROR(FromGrpc(reader->Finish()));
  const v1::Usage& usage = last.usage();
  std::cout << std::endl;
  std::cerr << absl::StrFormat("[%s] finish: %s; %d prompt + %d completion tokens; first token %.3f s; %.2f bits/weight%s%s\n",
                               last.request_id(), FinishName(last.finish_reason()), usage.prompt_tokens(),
                               usage.completion_tokens(), usage.time_to_first_token_seconds(), usage.effective_bits(),
                               usage.tier().empty() ? "" : absl::StrCat(" (tier ", usage.tier(), ")"),
                               usage.precision_note().empty() ? "" : absl::StrCat("; ", usage.precision_note()));
  return absl::OkStatus();
}

}  // namespace

const Command& ClientCommand() {
  static const Command command{
      {"client",
       "stream a completion from a running server",
       {{"server", "HOST:PORT", "the server (localhost:50051)"},
        {"prompt", "TEXT", "the prompt, as text (or --user for chat)"},
        {"user", "TEXT", "a chat: the user's message"},
        {"system", "TEXT", "a chat: the system message"},
        {"max-tokens", "N", "tokens to generate at most (the server's default)"},
        {"temperature", "T", "sampling temperature (0: greedy)"},
        {"top-k", "K", "sample among the K likeliest tokens (0: all)"},
        {"top-p", "P", "sample among the likeliest tokens of total probability P"},
        {"seed", "S", "sampling seed"},
        {"stop", "TEXT", "stop when the completion produces TEXT"},
        {"tier", "NAME", "a precision tier of the server's config (or --bits)"},
        {"bits", "B", "average bits per weight read at each decode step"},
        {"min-bits", "B", "the fewest bits the request accepts"},
        {"timeout", "SECONDS", "give up after this long"},
        {"tls", "", "connect over TLS, trusting the system's CAs (a bearer token comes from $GRINQH_TOKEN)"},
        {"ca", "FILE", "connect over TLS, trusting the CA certificates in FILE (PEM)"},
        {"cert", "FILE", "mutual TLS: this client's certificate (PEM), with --key"},
        {"key", "FILE", "mutual TLS: the client certificate's private key (PEM)"},
        {"models", "", "list the served models, as a table"},
        {"json", "", "with --models: as JSON"}}},
      RunClient};
  return command;
}

}  // namespace grinqh
