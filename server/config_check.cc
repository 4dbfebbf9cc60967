// CheckConfig (across fields), command-line overrides, and writing a config back as YAML.
#include <arpa/inet.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/base/status_macros.h"
#include "server/config.h"
#include "server/config_values.h"

namespace grinqh {
namespace {

absl::Status Invalid(std::string_view path, std::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat(std::string(path), ": ", std::string(message)));
}

// Full depth reads more bits than any fixed width.
double BitsRank(float bits) { return bits == kFullDepthBits ? 1e9 : bits; }

absl::Status CheckAutoscaler(const AutoscalerConfig& a) {
  if (a.levels.empty()) return Invalid("autoscaler.levels", "must list at least one level");
  if (a.levels[0].load != 0) {
    return Invalid("autoscaler.levels[0].load",
                   absl::StrCat("the first level must be at load 0, got ", FormatNumber(a.levels[0].load)));
  }
  double smallest_gap = kUnbounded;
  for (size_t i = 1; i < a.levels.size(); ++i) {
    const AutoscalerLevel& previous = a.levels[i - 1];
    const AutoscalerLevel& level = a.levels[i];
    if (!(level.load > previous.load)) {
      return Invalid(absl::StrCat("autoscaler.levels[", i, "].load"),
                     absl::StrCat("must be > autoscaler.levels[", i - 1, "].load (", FormatNumber(previous.load),
                                  "), got ", FormatNumber(level.load)));
    }
    if (!(BitsRank(level.bits) < BitsRank(previous.bits))) {
      return Invalid(absl::StrCat("autoscaler.levels[", i, "].bits"),
                     absl::StrCat("must be fewer bits than autoscaler.levels[", i - 1, "].bits (",
                                  FormatBits(previous.bits, false), "), got ", FormatBits(level.bits, false)));
    }
    smallest_gap = std::min(smallest_gap, level.load - previous.load);
  }
  if (!(a.hysteresis < smallest_gap)) {
    return Invalid("autoscaler.hysteresis",
                   absl::StrCat("must be < the smallest gap between level loads (", FormatNumber(smallest_gap),
                                "), got ", FormatNumber(a.hysteresis)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckConfig(const ServerConfig& c) {
  if (c.tiers.empty()) return Invalid("tiers", "must define at least one tier");
  if (c.FindTier(c.default_tier) == nullptr) {
    std::vector<std::string> names;
    for (const Tier& tier : c.tiers) names.push_back(tier.name);
    return Invalid("default_tier", absl::StrCat("'", c.default_tier, "' is not one of the tiers (",
                                                absl::StrJoin(names, ", "), ")"));
  }
  if (c.limits.default_max_tokens > c.limits.max_tokens) {
    return Invalid("limits.default_max_tokens", absl::StrCat("must be <= limits.max_tokens (", c.limits.max_tokens,
                                                             "), got ", c.limits.default_max_tokens));
  }
  if (c.limits.max_tokens > c.kv_cache.budget_tokens) {
    return Invalid("limits.max_tokens",
                   absl::StrCat("must be <= kv_cache.budget_tokens (", c.kv_cache.budget_tokens,
                                ") or such a request could never be admitted, got ", c.limits.max_tokens));
  }
  if (c.batching.max_step_tokens < c.batching.max_batch_size) {
    return Invalid("batching.max_step_tokens",
                   absl::StrCat("must be >= batching.max_batch_size (", c.batching.max_batch_size,
                                ") so every running sequence decodes each step, got ", c.batching.max_step_tokens));
  }
  if (c.batching.prefill_chunk > c.batching.max_step_tokens) {
    return Invalid("batching.prefill_chunk", absl::StrCat("must be <= batching.max_step_tokens (",
                                                          c.batching.max_step_tokens, "), got ",
                                                          c.batching.prefill_chunk));
  }
  if (c.metrics.enabled && c.server.port != 0 && c.metrics.port == c.server.port) {
    return Invalid("metrics.port", absl::StrCat("must differ from server.port, both are ", c.server.port));
  }
  if (c.http.enabled && c.http.port != 0) {
    if (c.http.port == c.server.port) {
      return Invalid("http.port", absl::StrCat("must differ from server.port, both are ", c.server.port));
    }
    if (c.metrics.enabled && c.http.port == c.metrics.port) {
      return Invalid("http.port", absl::StrCat("must differ from metrics.port, both are ", c.metrics.port));
    }
  }
  if (c.tls.cert_file.empty() != c.tls.key_file.empty()) {
    return Invalid(c.tls.cert_file.empty() ? "tls.cert_file" : "tls.key_file",
                   "tls.cert_file and tls.key_file are set together (the certificate and its private key)");
  }
  if (!c.tls.client_ca_file.empty() && !c.tls.enabled()) {
    return Invalid("tls.client_ca_file", "client certificates need TLS: set tls.cert_file and tls.key_file");
  }
  return CheckAutoscaler(c.autoscaler);
}

bool IsLoopbackHost(std::string_view host) {
  if (host == "localhost" || host == "::1") return true;
  in_addr ipv4{};  // an address, not a name that merely starts with 127.
  return inet_pton(AF_INET, std::string(host).c_str(), &ipv4) == 1 && (ntohl(ipv4.s_addr) >> 24) == 127;
}

absl::Status CheckTokensStayPrivate(const ServerConfig& c) {
  if (!c.auth.enabled()) return absl::OkStatus();
  struct Listener {
    const char* key;
    std::string host;
    bool on, tls;
  };
  const Listener listeners[] = {
      {"server.host", c.server.host, true, c.tls.enabled()},
      {"http.host", c.http.EffectiveHost(), c.http.enabled, c.tls.enabled()},
      {"metrics.host", c.MetricsHost(), c.metrics.enabled && c.auth.metrics, c.tls.enabled() && c.tls.metrics}};
  for (const Listener& listener : listeners) {
    if (!listener.on || listener.tls || IsLoopbackHost(listener.host)) continue;
    return Invalid("auth", absl::StrCat("bearer tokens would cross the network in clear text to ", listener.key, " (",
                                        listener.host, "): set tls.cert_file and tls.key_file, or listen on loopback"));
  }
  return absl::OkStatus();
}

const std::vector<FlagSpec>& ConfigOverrideFlags() {
  // Each help line ends with the key the flag overrides.
  static const std::vector<FlagSpec> flags = {
      {"model", "PATH", "the model to serve (model.path)"},
      {"host", "H", "the address to listen on (server.host; /metrics and the HTTP API too unless metrics.host / http.host say otherwise)"},
      {"port", "N", "the gRPC port (server.port)"},
      {"metrics-port", "N", "the /metrics port (metrics.port)"},
      {"http-port", "N", "the OpenAI-compatible HTTP API's port (http.port)"},
      {"threads", "N", "CPU threads, 0: one per core (model.threads)"},
      {"backend", "auto|cpu|cuda", "what runs the model (backend)"},
      {"log-level", "debug|info|warning|error", "the least severe lines logged (log_level)"},
      {"log-format", "text|json", "log lines as text or as JSON objects (log_format)"}};
  return flags;
}

namespace {

absl::Status ReadNonEmpty(const Flags& flags, const std::string& name, std::string& out) {
  const std::optional<std::string> value = flags.String(name);
  if (!value) return absl::OkStatus();
  if (value->empty()) return absl::InvalidArgumentError(absl::StrCat("--", name, " must not be empty"));
  out = *value;
  return absl::OkStatus();
}

template <typename Enum, size_t N>
absl::Status ReadChoiceFlag(const Flags& flags, const std::string& name, const EnumNames<Enum, N>& names,
                            Enum& out) {
  const std::optional<std::string> value = flags.String(name);
  if (!value) return absl::OkStatus();
  const std::optional<Enum> choice = FindChoice(names, *value);
  if (!choice) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", name, " must be one of ", ChoiceList(names), "; got '", *value, "'"));
  }
  out = *choice;
  return absl::OkStatus();
}

}  // namespace

absl::Status ApplyOverrides(ServerConfig& config, const Flags& flags) {
  GRINQH_RETURN_IF_ERROR(ReadNonEmpty(flags, "model", config.model.path));
  GRINQH_RETURN_IF_ERROR(flags.ReadInt("threads", 0, 1024, config.model.threads));
  GRINQH_RETURN_IF_ERROR(ReadChoiceFlag(flags, "backend", kBackendNames, config.backend));
  GRINQH_RETURN_IF_ERROR(ReadNonEmpty(flags, "host", config.server.host));
  // The HTTP API follows --host unless the file binds it elsewhere.
  if (flags.Has("host") && config.http.host.empty()) config.http.host = config.server.host;
  GRINQH_RETURN_IF_ERROR(flags.ReadInt("port", 0, 65535, config.server.port));
  GRINQH_RETURN_IF_ERROR(flags.ReadInt("metrics-port", 0, 65535, config.metrics.port));
  GRINQH_RETURN_IF_ERROR(flags.ReadInt("http-port", 0, 65535, config.http.port));
  GRINQH_RETURN_IF_ERROR(ReadChoiceFlag(flags, "log-level", kLogLevelNames, config.log_level));
  GRINQH_RETURN_IF_ERROR(ReadChoiceFlag(flags, "log-format", kLogFormatNames, config.log_format));
  return CheckConfig(config);
}

std::string FormatServerConfig(const ServerConfig& c) {
  YAML::Emitter out;
  const auto key = [&out](std::string_view name) -> YAML::Emitter& {
    return out << YAML::Key << std::string(name) << YAML::Value;
  };
  const auto section = [&key](std::string_view name) -> YAML::Emitter& {
    return key(name) << YAML::BeginMap;
  };
  out << YAML::BeginMap;
  section("model");
  key("path") << c.model.path;
  key("threads") << c.model.threads;
  out << YAML::EndMap;
  key("backend") << std::string(BackendName(c.backend));
  section("server");
  key("host") << c.server.host;
  key("port") << c.server.port;
  key("max_concurrent_streams") << c.server.max_concurrent_streams;
  key("shutdown_grace_seconds") << FormatNumber(c.server.shutdown_grace_seconds);
  key("max_message_bytes") << c.server.max_message_bytes;
  key("keepalive_time_seconds") << FormatNumber(c.server.keepalive_time_seconds);
  key("keepalive_timeout_seconds") << FormatNumber(c.server.keepalive_timeout_seconds);
  key("max_connection_age_seconds") << FormatNumber(c.server.max_connection_age_seconds);
  key("reflection") << c.server.reflection;
  out << YAML::EndMap;
  section("metrics");
  key("enabled") << c.metrics.enabled;
  if (c.metrics.host) key("host") << *c.metrics.host;  // unset: server.host
  key("port") << c.metrics.port;
  out << YAML::EndMap;
  section("http");
  key("enabled") << c.http.enabled;
  if (!c.http.host.empty()) key("host") << c.http.host;  // left out: --host or loopback
  key("port") << c.http.port;
  out << YAML::EndMap;
  // Unset paths are left out: plaintext, no tokens.
  const auto path = [&key](std::string_view name, const std::string& value) {
    if (!value.empty()) key(name) << value;
  };
  section("tls");
  path("cert_file", c.tls.cert_file);
  path("key_file", c.tls.key_file);
  path("client_ca_file", c.tls.client_ca_file);
  key("metrics") << c.tls.metrics;
  out << YAML::EndMap;
  section("auth");
  path("tokens_file", c.auth.tokens_file);
  path("tokens_env", c.auth.tokens_env);
  key("metrics") << c.auth.metrics;
  out << YAML::EndMap;
  section("batching");
  key("max_batch_size") << c.batching.max_batch_size;
  key("max_queue") << c.batching.max_queue;
  key("prefill_chunk") << c.batching.prefill_chunk;
  key("max_step_tokens") << c.batching.max_step_tokens;
  out << YAML::EndMap;
  section("kv_cache");
  key("budget_tokens") << c.kv_cache.budget_tokens;
  out << YAML::EndMap;
  section("limits");
  key("default_max_tokens") << c.limits.default_max_tokens;
  key("max_tokens") << c.limits.max_tokens;
  key("max_prompt_bytes") << c.limits.max_prompt_bytes;
  key("max_messages") << c.limits.max_messages;
  key("max_stop_strings") << c.limits.max_stop_strings;
  key("max_stop_bytes") << c.limits.max_stop_bytes;
  out << YAML::EndMap;
  section("tiers");
  for (const Tier& tier : c.tiers) key(tier.name) << FormatBits(tier.bits, tier.autoscaled);
  out << YAML::EndMap;
  key("default_tier") << c.default_tier;
  section("autoscaler");
  key("interval_seconds") << FormatNumber(c.autoscaler.interval_seconds);
  key("smoothing") << FormatNumber(c.autoscaler.smoothing);
  key("hysteresis") << FormatNumber(c.autoscaler.hysteresis);
  key("levels") << YAML::BeginSeq;
  for (const AutoscalerLevel& level : c.autoscaler.levels) {
    out << YAML::Flow << YAML::BeginMap;
    key("load") << FormatNumber(level.load);
    key("bits") << FormatBits(level.bits, false);
    out << YAML::EndMap;
  }
  out << YAML::EndSeq << YAML::EndMap;
  key("log_level") << std::string(LogLevelName(c.log_level));
  key("log_format") << std::string(LogFormatName(c.log_format));
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

}  // namespace grinqh
