#include "server/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <functional>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/base/file_util.h"
#include "engine/base/status_macros.h"
#include "server/config_values.h"

namespace grinqh {
namespace {

std::string ChildPath(const std::string& parent, std::string_view key) {
  return parent.empty() ? std::string(key) : absl::StrCat(parent, ".", std::string(key));
}

// One YAML mapping being read: a mapping (or null, read as empty) without duplicate keys.
// Each Field call names a key it knows; Finish refuses the keys nobody asked for.
class MapReader {
 public:
  using ReadValue = std::function<absl::Status(const YAML::Node& value, const std::string& path)>;

  static absl::StatusOr<MapReader> Open(const ValueReader& values, const YAML::Node& node, std::string path) {
    MapReader map(values, node, std::move(path));
    if (node.IsNull()) return map;
    if (!node.IsMap()) return values.Error(node, map.path_, absl::StrCat("must be a mapping, got ", NodeKind(node)));
    for (auto it = node.begin(); it != node.end(); ++it) {
      if (!it->first.IsScalar()) return values.Error(it->first, map.path_, "keys must be plain names");
      std::string key = it->first.Scalar();
      for (const Entry& seen : map.entries_) {
        if (seen.key == key) return values.Error(it->first, ChildPath(map.path_, key), "duplicate key");
      }
      map.entries_.push_back({std::move(key), it->first, it->second});
    }
    return map;
  }

  // Reads the key's value with `read` when it is present; `required` refuses its absence.
  absl::Status Field(std::string_view key, const ReadValue& read, bool required = false) {
    known_.emplace_back(key);
    for (const Entry& entry : entries_) {
      if (entry.key == key) return read(entry.value, ChildPath(path_, key));
    }
    if (!required) return absl::OkStatus();
    return values_.Error(node_, path_, absl::StrCat("missing key '", std::string(key), "'"));
  }
  template <typename Integer>
  absl::Status Int(std::string_view key, long long min, long long max, Integer& out) {
    return Field(key, [&](const YAML::Node& v, const std::string& p) { return values_.ReadInt(v, p, min, max, out); });
  }
  absl::Status Number(std::string_view key, NumberRange range, double& out, bool required = false) {
    return Field(
        key, [&](const YAML::Node& v, const std::string& p) { return values_.ReadNumber(v, p, range, out); },
        required);
  }
  absl::Status Bool(std::string_view key, bool& out) {
    return Field(key, [&](const YAML::Node& v, const std::string& p) { return values_.ReadBool(v, p, out); });
  }
  absl::Status String(std::string_view key, std::string& out) {
    return Field(key, [&](const YAML::Node& v, const std::string& p) { return values_.ReadString(v, p, out); });
  }
  // A host name or address: letters, digits and . - _ : [ ] % only, so it means the same to
  // the resolver, in logs and when the configuration is printed and read again.
  absl::Status Host(std::string_view key, std::string& out) {
    return Field(key, [&](const YAML::Node& v, const std::string& p) -> absl::Status {
      GRINQH_RETURN_IF_ERROR(values_.ReadString(v, p, out));
      for (const char c : out) {
        if (c == '\0' || (!std::isalnum(static_cast<unsigned char>(c)) && std::strchr(".-_:[]%", c) == nullptr)) {
          return values_.Error(v, p, "not a host name or address (letters, digits and . - _ : [ ] % only)");
        }
      }
      return absl::OkStatus();
    });
  }
  template <typename Enum, size_t N>
  absl::Status Choice(std::string_view key, const EnumNames<Enum, N>& names, Enum& out) {
    return Field(key, [&](const YAML::Node& v, const std::string& p) { return values_.ReadChoice(v, p, names, out); });
  }

  absl::Status Finish() const {
    for (const Entry& entry : entries_) {
      if (std::find(known_.begin(), known_.end(), entry.key) != known_.end()) continue;
      return values_.Error(entry.key_node, ChildPath(path_, entry.key),
                           absl::StrCat("unknown key (expected one of: ", absl::StrJoin(known_, ", "), ")"));
    }
    return absl::OkStatus();
  }

  struct Entry {
    std::string key;
    YAML::Node key_node;  // for its line and column
    YAML::Node value;
  };
  const std::vector<Entry>& entries() const { return entries_; }

 private:
  MapReader(const ValueReader& values, const YAML::Node& node, std::string path)
      : values_(values), node_(node), path_(std::move(path)) {}

  const ValueReader& values_;
  YAML::Node node_;
  std::string path_;
  std::vector<Entry> entries_;
  std::vector<std::string> known_;
};

constexpr long long kNoLimit = std::numeric_limits<int>::max();
constexpr NumberRange kSeconds{0, 3600};
// Up to a week (gRPC takes its times as int milliseconds, at most ~24 days).
constexpr NumberRange kGrpcSeconds{0, 604800, /*min_open=*/true};

// A section: `read` takes the section's MapReader; unknown keys are refused after it.
MapReader::ReadValue Section(const ValueReader& values, const std::function<absl::Status(MapReader&)>& read) {
  return [&values, read](const YAML::Node& node, const std::string& path) -> absl::Status {
    GRINQH_ASSIGN_OR_RETURN(MapReader map, MapReader::Open(values, node, path));
    GRINQH_RETURN_IF_ERROR(read(map));
    return map.Finish();
  };
}

bool IsTierName(std::string_view name) {
  if (name.empty()) return false;
  for (const char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) return false;
  }
  return true;
}

absl::Status ReadTiers(const ValueReader& values, const YAML::Node& node, const std::string& path,
                       std::vector<Tier>& tiers) {
  GRINQH_ASSIGN_OR_RETURN(MapReader map, MapReader::Open(values, node, path));
  tiers.clear();
  for (const MapReader::Entry& entry : map.entries()) {
    const std::string tier_path = ChildPath(path, entry.key);
    if (!IsTierName(entry.key)) {
      return values.Error(entry.key_node, tier_path, "tier names are lowercase letters, digits, '_' and '-'");
    }
    Tier tier{.name = entry.key};
    GRINQH_RETURN_IF_ERROR(values.ReadBits(entry.value, tier_path, /*allow_auto=*/true, tier.bits, tier.autoscaled));
    tiers.push_back(std::move(tier));
  }
  return absl::OkStatus();
}

absl::Status ReadLevels(const ValueReader& values, const YAML::Node& node, const std::string& path,
                        std::vector<AutoscalerLevel>& levels) {
  if (!node.IsSequence()) return values.Error(node, path, absl::StrCat("must be a list, got ", NodeKind(node)));
  levels.clear();
  for (size_t i = 0; i < node.size(); ++i) {
    AutoscalerLevel level;
    const auto read_level = Section(values, [&](MapReader& m) {
      GRINQH_RETURN_IF_ERROR(m.Number("load", {0, kUnbounded}, level.load, /*required=*/true));
      bool autoscaled = false;  // refused by allow_auto = false
      return m.Field("bits", [&](const YAML::Node& v, const std::string& p) {
        return values.ReadBits(v, p, /*allow_auto=*/false, level.bits, autoscaled);
      }, /*required=*/true);
    });
    GRINQH_RETURN_IF_ERROR(read_level(node[i], absl::StrCat(path, "[", i, "]")));
    levels.push_back(level);
  }
  return absl::OkStatus();
}

absl::Status ReadModel(MapReader& m, ModelSection& model) {
  GRINQH_RETURN_IF_ERROR(m.String("path", model.path));
  return m.Int("threads", 0, 1024, model.threads);
}

absl::Status ReadServer(MapReader& m, ServerSection& server) {
  GRINQH_RETURN_IF_ERROR(m.Host("host", server.host));
  GRINQH_RETURN_IF_ERROR(m.Int("port", 0, 65535, server.port));
  GRINQH_RETURN_IF_ERROR(m.Int("max_concurrent_streams", 1, kNoLimit, server.max_concurrent_streams));
  GRINQH_RETURN_IF_ERROR(m.Number("shutdown_grace_seconds", kSeconds, server.shutdown_grace_seconds));
  GRINQH_RETURN_IF_ERROR(m.Int("max_message_bytes", 1024, kNoLimit, server.max_message_bytes));
  GRINQH_RETURN_IF_ERROR(m.Number("keepalive_time_seconds", kGrpcSeconds, server.keepalive_time_seconds));
  GRINQH_RETURN_IF_ERROR(m.Number("keepalive_timeout_seconds", kGrpcSeconds, server.keepalive_timeout_seconds));
  GRINQH_RETURN_IF_ERROR(m.Number("max_connection_age_seconds", {0, kGrpcSeconds.max},
                                  server.max_connection_age_seconds));
  return m.Bool("reflection", server.reflection);
}

absl::Status ReadTls(MapReader& m, TlsSection& tls) {
  GRINQH_RETURN_IF_ERROR(m.String("cert_file", tls.cert_file));
  GRINQH_RETURN_IF_ERROR(m.String("key_file", tls.key_file));
  GRINQH_RETURN_IF_ERROR(m.String("client_ca_file", tls.client_ca_file));
  return m.Bool("metrics", tls.metrics);
}

absl::Status ReadAuth(MapReader& m, AuthSection& auth) {
  GRINQH_RETURN_IF_ERROR(m.String("tokens_file", auth.tokens_file));
  GRINQH_RETURN_IF_ERROR(m.String("tokens_env", auth.tokens_env));
  return m.Bool("metrics", auth.metrics);
}

absl::Status ReadMetrics(MapReader& m, MetricsSection& metrics) {
  GRINQH_RETURN_IF_ERROR(m.Bool("enabled", metrics.enabled));
  std::string host;  // absent keeps it unset (String refuses an empty value)
  GRINQH_RETURN_IF_ERROR(m.Host("host", host));
  if (!host.empty()) metrics.host = host;
  return m.Int("port", 0, 65535, metrics.port);
}

absl::Status ReadHttp(MapReader& m, HttpSection& http) {
  GRINQH_RETURN_IF_ERROR(m.Bool("enabled", http.enabled));
  GRINQH_RETURN_IF_ERROR(m.Host("host", http.host));
  return m.Int("port", 0, 65535, http.port);
}

absl::Status ReadBatching(MapReader& m, BatchingSection& batching) {
  GRINQH_RETURN_IF_ERROR(m.Int("max_batch_size", 1, kNoLimit, batching.max_batch_size));
  GRINQH_RETURN_IF_ERROR(m.Int("max_queue", 1, kNoLimit, batching.max_queue));
  GRINQH_RETURN_IF_ERROR(m.Int("prefill_chunk", 1, kNoLimit, batching.prefill_chunk));
  return m.Int("max_step_tokens", 1, kNoLimit, batching.max_step_tokens);
}

absl::Status ReadLimits(MapReader& m, LimitsSection& limits) {
  GRINQH_RETURN_IF_ERROR(m.Int("default_max_tokens", 1, kNoLimit, limits.default_max_tokens));
  GRINQH_RETURN_IF_ERROR(m.Int("max_tokens", 1, kNoLimit, limits.max_tokens));
  GRINQH_RETURN_IF_ERROR(m.Int("max_prompt_bytes", 1, kNoLimit, limits.max_prompt_bytes));
  GRINQH_RETURN_IF_ERROR(m.Int("max_messages", 1, kNoLimit, limits.max_messages));
  GRINQH_RETURN_IF_ERROR(m.Int("max_stop_strings", 0, kNoLimit, limits.max_stop_strings));
  return m.Int("max_stop_bytes", 1, kNoLimit, limits.max_stop_bytes);
}

absl::Status ReadAutoscaler(const ValueReader& values, MapReader& m, AutoscalerConfig& autoscaler) {
  GRINQH_RETURN_IF_ERROR(m.Number("interval_seconds", {0, 3600, /*min_open=*/true}, autoscaler.interval_seconds));
  GRINQH_RETURN_IF_ERROR(m.Number("smoothing", {0, 1, /*min_open=*/true}, autoscaler.smoothing));
  GRINQH_RETURN_IF_ERROR(m.Number("hysteresis", {0, kUnbounded}, autoscaler.hysteresis));
  return m.Field("levels", [&](const YAML::Node& node, const std::string& path) {
    return ReadLevels(values, node, path, autoscaler.levels);
  });
}

absl::Status ReadConfig(const ValueReader& values, const YAML::Node& root, ServerConfig& c) {
  if (!root.IsNull() && !root.IsMap()) {
    return values.Error(root, "", absl::StrCat("the top level must be a mapping of sections, got ", NodeKind(root)));
  }
  GRINQH_ASSIGN_OR_RETURN(MapReader top, MapReader::Open(values, root, ""));
  const auto section = [&values](auto read, auto& out) {
    return Section(values, [read, &out](MapReader& m) { return read(m, out); });
  };
  GRINQH_RETURN_IF_ERROR(top.Field("model", section(ReadModel, c.model)));
  GRINQH_RETURN_IF_ERROR(top.Choice("backend", kBackendNames, c.backend));
  GRINQH_RETURN_IF_ERROR(top.Field("server", section(ReadServer, c.server)));
  GRINQH_RETURN_IF_ERROR(top.Field("metrics", section(ReadMetrics, c.metrics)));
  GRINQH_RETURN_IF_ERROR(top.Field("http", section(ReadHttp, c.http)));
  GRINQH_RETURN_IF_ERROR(top.Field("tls", section(ReadTls, c.tls)));
  GRINQH_RETURN_IF_ERROR(top.Field("auth", section(ReadAuth, c.auth)));
  GRINQH_RETURN_IF_ERROR(top.Field("batching", section(ReadBatching, c.batching)));
  const auto read_kv_cache = [](MapReader& m, KvCacheSection& kv) {
    return m.Int("budget_tokens", 1, std::numeric_limits<int64_t>::max(), kv.budget_tokens);
  };
  GRINQH_RETURN_IF_ERROR(top.Field("kv_cache", section(read_kv_cache, c.kv_cache)));
  GRINQH_RETURN_IF_ERROR(top.Field("limits", section(ReadLimits, c.limits)));
  const auto read_tiers = [&values, &c](const YAML::Node& node, const std::string& path) {
    return ReadTiers(values, node, path, c.tiers);
  };
  GRINQH_RETURN_IF_ERROR(top.Field("tiers", read_tiers));
  GRINQH_RETURN_IF_ERROR(top.String("default_tier", c.default_tier));
  const auto read_autoscaler = [&values](MapReader& m, AutoscalerConfig& a) { return ReadAutoscaler(values, m, a); };
  GRINQH_RETURN_IF_ERROR(top.Field("autoscaler", section(read_autoscaler, c.autoscaler)));
  GRINQH_RETURN_IF_ERROR(top.Choice("log_level", kLogLevelNames, c.log_level));
  GRINQH_RETURN_IF_ERROR(top.Choice("log_format", kLogFormatNames, c.log_format));
  return top.Finish();
}

}  // namespace

std::vector<Tier> DefaultTiers() {
  return {{"quality", kFullDepthBits, false},
          {"balanced", 4.0f, false},
          {"fast", 3.0f, false},
          {"turbo", 2.0f, false},
          {"auto", kFullDepthBits, true}};
}

const Tier* ServerConfig::FindTier(std::string_view name) const {
  for (const Tier& tier : tiers) {
    if (tier.name == name) return &tier;
  }
  return nullptr;
}

std::string_view BackendName(BackendKind backend) { return NameOf(kBackendNames, backend); }
std::string_view LogLevelName(LogLevel level) { return NameOf(kLogLevelNames, level); }
std::string_view LogFormatName(LogFormat format) { return NameOf(kLogFormatNames, format); }

absl::StatusOr<ServerConfig> ParseServerConfig(std::string_view yaml_text, std::string_view source) {
  const ValueReader values{std::string(source)};
  ServerConfig config;
  try {
    const YAML::Node root = YAML::Load(std::string(yaml_text));
    GRINQH_RETURN_IF_ERROR(ReadConfig(values, root, config));
  } catch (const YAML::Exception& e) {  // syntax errors; the readers catch their own conversions
    return absl::InvalidArgumentError(
        absl::StrCat(std::string(source), ":", e.mark.line + 1, ":", e.mark.column + 1, ": YAML syntax error: ", e.msg));
  }
  if (absl::Status status = CheckConfig(config); !status.ok()) {
    return WithContext(status, source);
  }
  return config;
}

absl::StatusOr<ServerConfig> LoadServerConfig(const std::filesystem::path& path) {
  GRINQH_ASSIGN_OR_RETURN(const std::string text, ReadFileToString(path));
  return ParseServerConfig(text, path.string());
}

}  // namespace grinqh
