// The server's configuration: config/grinqh.yaml, read with yaml-cpp, then command-line
// overrides. Every field below is documented (meaning, units, default, allowed values) in
// config/grinqh.yaml; the defaults here and there are the same (config_test checks both,
// and that every field appears in the file).
//
// Unknown keys and bad values are refused with INVALID_ARGUMENT naming the file and the key's
// full path, e.g. "grinqh.yaml:41:14: batching.max_queue: must be >= 1, got 0". Keys left out
// of the file keep their defaults.
//
// Typical use:   GRINQH_ASSIGN_OR_RETURN(ServerConfig config, LoadServerConfig(path));
//                GRINQH_RETURN_IF_ERROR(ApplyOverrides(config, flags));  // re-runs CheckConfig
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/autoscaler.h"
#include "server/flags.h"
#include "server/log.h"

namespace grinqh {

enum class BackendKind { kAuto, kCpu, kCuda };  // auto: CUDA when a GPU is present, else CPU
std::string_view BackendName(BackendKind backend);     // "auto", "cpu", "cuda"
std::string_view LogLevelName(LogLevel level);     // "debug", "info", "warning", "error"
std::string_view LogFormatName(LogFormat format);  // "text", "json"

// Where each section maps: model/backend → Model loading; batching and kv_cache →
// SchedulerOptions (same names; kv_cache.budget_tokens → kv_budget_tokens); server and
// metrics → the gRPC and HTTP listeners; http → the OpenAI-compatible HTTP API; limits and tiers → request validation.
struct ModelSection {
  std::string path = "models/tiny-llama3";  // relative to the working directory
  int threads = 0;                          // CPU threads; 0 = all cores
  bool operator==(const ModelSection&) const = default;
};

struct ServerSection {
  std::string host = "0.0.0.0";
  int port = 50051;  // 0 = any free port
  int max_concurrent_streams = 256;
  double shutdown_grace_seconds = 30;
  // gRPC channel arguments. The message limit is the HTTP API's body limit, so a prompt at
  // the 4 MiB text limit fits (gRPC's own default is 4 MiB).
  int max_message_bytes = 16 << 20;
  double keepalive_time_seconds = 7200;  // gRPC's default: two hours
  double keepalive_timeout_seconds = 20;
  double max_connection_age_seconds = 0;  // 0 = unlimited
  bool reflection = true;
  bool operator==(const ServerSection&) const = default;
};

struct MetricsSection {  // Prometheus text exposition, always at /metrics
  bool enabled = true;
  // Unset: server.host (which --host sets), so one address binds both listeners unless the
  // file splits them. ServerConfig::MetricsHost() resolves it.
  std::optional<std::string> host;
  int port = 9400;  // 0 = any free port
  bool operator==(const MetricsSection&) const = default;
};

// The OpenAI-compatible HTTP API (/v1/completions, /v1/chat/completions, /v1/models,
// /health, /ready), beside gRPC on the same model and scheduler.
struct HttpSection {
  bool enabled = true;
  // Empty: the address --host gives, or 127.0.0.1 (loopback only) without it. EffectiveHost().
  std::string host;
  int port = 8000;  // vLLM's default; 0 = any free port
  std::string EffectiveHost() const { return host.empty() ? "127.0.0.1" : host; }
  bool operator==(const HttpSection&) const = default;
};

// TLS for every listener: gRPC, the HTTP API and (unless `metrics` is false) /metrics.
// PEM file paths; an empty cert_file means plaintext.
struct TlsSection {
  std::string cert_file;
  std::string key_file;
  std::string client_ca_file;  // set: clients must present a certificate it signed (mTLS)
  bool metrics = true;         // /metrics over TLS too
  bool enabled() const { return !cert_file.empty(); }
  bool operator==(const TlsSection&) const = default;
};

// Bearer tokens asked of every RPC and HTTP route but health and readiness. Off unless a
// tokens file or variable is named; both may be, and then either's tokens are accepted.
struct AuthSection {
  std::string tokens_file;  // one token per line; blank lines and # comments skipped
  std::string tokens_env;   // the name of an environment variable: tokens separated by commas
  bool metrics = true;      // /metrics asks for a token too
  bool enabled() const { return !tokens_file.empty() || !tokens_env.empty(); }
  bool operator==(const AuthSection&) const = default;
};

struct BatchingSection {  // as SchedulerOptions
  int max_batch_size = 32;
  int max_queue = 64;
  int prefill_chunk = 256;
  int max_step_tokens = 512;
  bool operator==(const BatchingSection&) const = default;
};

struct KvCacheSection {
  int64_t budget_tokens = 65536;  // SchedulerOptions::kv_budget_tokens
  bool operator==(const KvCacheSection&) const = default;
};

// What one request may ask for, checked before any work is done for it (bytes before tokens).
struct LimitsSection {
  int default_max_tokens = 128;  // when a request leaves max tokens unset
  int max_tokens = 4096;         // the most a request may ask for (bounds the reply)
  int max_prompt_bytes = 1 << 20;  // prompt text, all messages together, or Tokenize text
  int max_messages = 1024;         // chat messages in one request
  int max_stop_strings = 16;
  int max_stop_bytes = 256;        // each stop string
  bool operator==(const LimitsSection&) const = default;
};

// A named quality tier: a fixed decode width, the full stored depth, or `auto`.
struct Tier {
  std::string name;
  float bits = kFullDepthBits;  // decode bits (GenerationRequest::decode_bits); 0 = full depth
  bool autoscaled = false;      // `auto`: bits come from the Autoscaler; `bits` is unused
  bool operator==(const Tier&) const = default;
};

std::vector<Tier> DefaultTiers();  // quality = full, balanced = 4, fast = 3, turbo = 2, auto

struct ServerConfig {
  ModelSection model;
  BackendKind backend = BackendKind::kAuto;
  ServerSection server;
  MetricsSection metrics;
  HttpSection http;
  TlsSection tls;
  AuthSection auth;
  BatchingSection batching;
  KvCacheSection kv_cache;
  LimitsSection limits;
  std::vector<Tier> tiers = DefaultTiers();  // in file order
  std::string default_tier = "quality";      // for requests that name no tier and no bits
  AutoscalerConfig autoscaler;
  LogLevel log_level = LogLevel::kInfo;
  LogFormat log_format = LogFormat::kText;

  const Tier* FindTier(std::string_view name) const;  // nullptr when not defined
  const std::string& MetricsHost() const { return metrics.host ? *metrics.host : server.host; }
  bool operator==(const ServerConfig&) const = default;
};

// Reads and validates (including CheckConfig) the YAML file. Errors name `path`.
absl::StatusOr<ServerConfig> LoadServerConfig(const std::filesystem::path& path);
// The same for YAML text; `source` names it in errors (a file name).
absl::StatusOr<ServerConfig> ParseServerConfig(std::string_view yaml_text, std::string_view source = "<config>");

// Checks across fields, for a config that may have been built or overridden in code:
// default_tier is defined, limits.default_max_tokens <= limits.max_tokens <=
// kv_cache.budget_tokens, a step holds a decode token for every batch slot and a whole prefill
// chunk, the listeners do not share a port, and the autoscaler's levels are well ordered.
absl::Status CheckConfig(const ServerConfig& config);

// Where a listener asks for a bearer token, it must encrypt it (TLS) or listen on loopback
// only, so that tokens never cross a network in clear text. Checked at start rather than in
// CheckConfig, because --host may move a listener after the file is read.
absl::Status CheckTokensStayPrivate(const ServerConfig& config);
bool IsLoopbackHost(std::string_view host);  // 127.0.0.0/8, ::1, localhost

// The command-line flags ApplyOverrides reads (valued flags): model, host, port,
// metrics-port, http-port, threads, backend, log-level, log-format. `grinqh serve` takes them.
const std::vector<FlagSpec>& ConfigOverrideFlags();
// Flags win over the file. Refuses malformed values naming the flag, then runs CheckConfig.
absl::Status ApplyOverrides(ServerConfig& config, const Flags& flags);

// The config as YAML, every field written (e.g. for a startup log or `--check-config`).
// ParseServerConfig reads it back to an equal ServerConfig.
std::string FormatServerConfig(const ServerConfig& config);

}  // namespace grinqh
