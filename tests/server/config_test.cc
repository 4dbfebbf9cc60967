// config/grinqh.yaml and server/config.h: the shipped file, each class of refused value,
// flag overrides, and the `auto` tier's autoscaler.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/autoscaler.h"
#include "server/config.h"

namespace grinqh {

// gtest prints a mismatched config as YAML rather than bytes.
void PrintTo(const ServerConfig& config, std::ostream* os) { *os << "\n" << FormatServerConfig(config); }

namespace {

using ::testing::HasSubstr;

const std::string kShippedConfig = std::string(GRINQH_SOURCE_DIR) + "/config/grinqh.yaml";

// Every leaf key path of a YAML document ("batching.max_queue", "tiers.fast", ...); list items
// count once, as "autoscaler.levels[].load".
void CollectKeyPaths(const YAML::Node& node, const std::string& path, std::set<std::string>& out) {
  if (node.IsMap()) {
    for (auto it = node.begin(); it != node.end(); ++it) {
      CollectKeyPaths(it->second, path.empty() ? it->first.Scalar() : path + "." + it->first.Scalar(), out);
    }
  } else if (node.IsSequence()) {
    for (const YAML::Node& item : node) CollectKeyPaths(item, path + "[]", out);
  } else {
    out.insert(path);
  }
}

TEST(ShippedConfig, ParsesToTheCodeDefaults) {
  absl::StatusOr<ServerConfig> config = LoadServerConfig(kShippedConfig);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(*config, ServerConfig{});  // the file documents the defaults the code has
  // ... which are those the issue and the file's comments name.
  EXPECT_EQ(config->model.path, "models/tiny-llama3");
  EXPECT_EQ(config->backend, BackendKind::kAuto);
  EXPECT_EQ(config->server.port, 50051);
  EXPECT_EQ(config->metrics.port, 9400);
  EXPECT_TRUE(config->metrics.enabled);
  EXPECT_TRUE(config->http.enabled);
  EXPECT_EQ(config->http.port, 8000);
  EXPECT_EQ(config->http.EffectiveHost(), "127.0.0.1");  // loopback unless configured
  EXPECT_EQ(config->log_level, LogLevel::kInfo);
  EXPECT_EQ(config->default_tier, "quality");
  ASSERT_EQ(config->tiers.size(), 5u);
  EXPECT_EQ(config->tiers[0], (Tier{"quality", kFullDepthBits, false}));
  EXPECT_EQ(config->tiers[1], (Tier{"balanced", 4.0f, false}));
  EXPECT_EQ(config->tiers[2], (Tier{"fast", 3.0f, false}));
  EXPECT_EQ(config->tiers[3], (Tier{"turbo", 2.0f, false}));
  EXPECT_TRUE(config->tiers[4].autoscaled);
  EXPECT_EQ(config->tiers[4].name, "auto");
  EXPECT_TRUE(CheckConfig(*config).ok());
}

// A config with every field changed from its default. The structured bindings stop compiling
// when a field is added to a section: add it here, to FormatServerConfig, to the parser and to
// config/grinqh.yaml (the tests below then check all four agree).
ServerConfig EveryFieldChanged() {
  ServerConfig c;
  auto& [model, backend, server, metrics, http, tls, auth, batching, kv_cache, limits, tiers, default_tier, autoscaler,
         log_level, log_format] = c;
  auto& [path, threads] = model;
  path = "/models/other dir";
  threads = 3;
  backend = BackendKind::kCuda;
  auto& [host, port, streams, grace, message_bytes, keepalive_time, keepalive_timeout, connection_age, reflection] =
      server;
  host = "::";
  port = 7000;
  streams = 9;
  grace = 2.5;
  message_bytes = 4096;
  keepalive_time = 30;
  keepalive_timeout = 5;
  connection_age = 600;
  reflection = false;
  auto& [metrics_enabled, metrics_host, metrics_port] = metrics;
  metrics_enabled = false;
  metrics_host = "127.0.0.1";
  metrics_port = 7001;
  auto& [http_enabled, http_host, http_port] = http;
  http_enabled = false;
  http_host = "0.0.0.0";
  http_port = 7002;
  auto& [cert_file, key_file, client_ca_file, tls_metrics] = tls;
  cert_file = "/tls/server.crt";
  key_file = "/tls/server.key";
  client_ca_file = "/tls/ca.crt";
  tls_metrics = false;
  auto& [tokens_file, tokens_env, auth_metrics] = auth;
  tokens_file = "/secrets/tokens";
  tokens_env = "GRINQH_TOKENS";
  auth_metrics = false;
  auto& [max_batch_size, max_queue, prefill_chunk, max_step_tokens] = batching;
  max_batch_size = 4;
  max_queue = 5;
  prefill_chunk = 6;
  max_step_tokens = 70;
  auto& [budget_tokens] = kv_cache;
  budget_tokens = 5000000000;  // beyond 32 bits
  auto& [default_max_tokens, max_tokens, max_prompt_bytes, max_messages, max_stop_strings, max_stop_bytes] = limits;
  default_max_tokens = 10;
  max_tokens = 20;
  max_prompt_bytes = 1000;
  max_messages = 7;
  max_stop_strings = 2;
  max_stop_bytes = 30;
  tiers = {{"best", kFullDepthBits, false}, {"cheap", 2.5f, false}, {"dynamic", kFullDepthBits, true}};
  default_tier = "cheap";
  auto& [interval_seconds, smoothing, hysteresis, levels] = autoscaler;
  interval_seconds = 0.25;
  smoothing = 0.3;
  hysteresis = 0.05;
  levels = {{0, kFullDepthBits}, {0.7, 3.3f}, {2, 1.5f}};
  log_level = LogLevel::kDebug;
  log_format = LogFormat::kJson;
  return c;
}

TEST(ShippedConfig, EveryFieldIsWrittenAndReadBack) {
  const ServerConfig changed = EveryFieldChanged();
  ASSERT_TRUE(CheckConfig(changed).ok()) << CheckConfig(changed);
  const std::string yaml = FormatServerConfig(changed);
  absl::StatusOr<ServerConfig> parsed = ParseServerConfig(yaml);
  ASSERT_TRUE(parsed.ok()) << parsed.status() << "\n" << yaml;
  EXPECT_EQ(*parsed, changed) << yaml;
}

TEST(ShippedConfig, HasExactlyTheKeysOfTheCode) {
  std::set<std::string> file_keys, code_keys;
  CollectKeyPaths(YAML::LoadFile(kShippedConfig), "", file_keys);
  CollectKeyPaths(YAML::Load(FormatServerConfig(ServerConfig{})), "", code_keys);
  EXPECT_EQ(file_keys, code_keys);
  EXPECT_TRUE(file_keys.count("batching.max_queue"));  // the collection itself works
}

TEST(ParseServerConfig, MissingKeysKeepDefaultsAndEmptyTextIsAllDefaults) {
  absl::StatusOr<ServerConfig> partial = ParseServerConfig("server:\n  port: 6000\nbatching:\n");
  ASSERT_TRUE(partial.ok()) << partial.status();
  ServerConfig expected;
  expected.server.port = 6000;
  EXPECT_EQ(*partial, expected);
  absl::StatusOr<ServerConfig> empty = ParseServerConfig("# nothing set\n");
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(*empty, ServerConfig{});
}

// Expects INVALID_ARGUMENT whose message contains each of `parts`.
void ExpectRefused(const std::string& yaml, const std::vector<std::string>& parts) {
  absl::StatusOr<ServerConfig> config = ParseServerConfig(yaml, "test.yaml");
  ASSERT_FALSE(config.ok()) << "accepted:\n" << yaml;
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument) << config.status();
  EXPECT_THAT(std::string(config.status().message()), HasSubstr("test.yaml")) << yaml;
  for (const std::string& part : parts) {
    EXPECT_THAT(std::string(config.status().message()), HasSubstr(part)) << yaml;
  }
}

TEST(ParseServerConfig, RefusesUnknownKeysAtEveryLevel) {
  ExpectRefused("modle:\n  path: x\n", {"test.yaml:1:1: modle: unknown key", "model, backend"});
  ExpectRefused("batching:\n  max_que: 3\n", {"test.yaml:2:3: batching.max_que: unknown key", "max_queue"});
  ExpectRefused("autoscaler:\n  levels:\n    - {load: 0, bits: full, extra: 1}\n",
                {"autoscaler.levels[0].extra: unknown key"});
}

TEST(ParseServerConfig, RefusesWrongTypes) {
  ExpectRefused("server:\n  port: fifty\n", {"server.port: must be an integer, got 'fifty'"});
  ExpectRefused("batching:\n  max_batch_size: 1.5\n", {"batching.max_batch_size: must be an integer"});
  ExpectRefused("metrics:\n  enabled: maybe\n", {"metrics.enabled: must be true or false"});
  ExpectRefused("model: models/x\n", {"model: must be a mapping, got 'models/x'"});
  ExpectRefused("model:\n  path: [a, b]\n", {"model.path: must be a string, got a list"});
  ExpectRefused("server:\n  port:\n", {"server.port: must be an integer, got nothing"});
  ExpectRefused("server:\n  shutdown_grace_seconds: soon\n", {"server.shutdown_grace_seconds: must be a number"});
  ExpectRefused("autoscaler:\n  levels: {load: 0}\n", {"autoscaler.levels: must be a list"});
  ExpectRefused("- a\n- b\n", {"the top level must be a mapping"});
}

// Found by server_config_fuzz: strings with control or ill-formed UTF-8 bytes, and hosts with
// any byte a host name cannot hold, printed back (FormatServerConfig) read as other values.
TEST(ParseServerConfig, RefusesHostsThatAreNotNamesOrAddresses) {
  ExpectRefused("server:\n  host: \"a b\"\n", {"server.host: not a host name or address"});
  ExpectRefused("http: {host: \"::1\\x06v2\", port: 8080}\n", {"http.host: must be UTF-8 text without control"});
  ExpectRefused("model:\n  path: \"/t\\x01q\"\n", {"model.path: must be UTF-8 text without control"});
  ExpectRefused("metrics:\n  host: \"h\\u00e9\"\n", {"metrics.host: not a host name or address"});
}

TEST(ParseServerConfig, RefusesOutOfRangeValues) {
  ExpectRefused("batching:\n  max_queue: 0\n", {"test.yaml:2:14: batching.max_queue: must be >= 1, got 0"});
  ExpectRefused("model:\n  threads: -1\n", {"model.threads: must be in [0, 1024], got -1"});
  ExpectRefused("kv_cache:\n  budget_tokens: 0\n", {"kv_cache.budget_tokens: must be >= 1, got 0"});
  ExpectRefused("limits:\n  max_tokens: 99999999999\n", {"limits.max_tokens: must be in [1, 2147483647], got 99999999999"});
  ExpectRefused("server:\n  shutdown_grace_seconds: -1\n",
                {"server.shutdown_grace_seconds: must be in [0, 3600], got -1"});
  ExpectRefused("autoscaler:\n  smoothing: 0\n", {"autoscaler.smoothing: must be in (0, 1], got 0"});
  ExpectRefused("autoscaler:\n  smoothing: .nan\n", {"autoscaler.smoothing: must be in (0, 1]"});
  ExpectRefused("autoscaler:\n  levels:\n    - {load: -1, bits: full}\n", {"autoscaler.levels[0].load: must be >= 0"});
  ExpectRefused("autoscaler:\n  levels:\n    - {bits: full}\n", {"autoscaler.levels[0]: missing key 'load'"});
  ExpectRefused("server:\n  max_message_bytes: 100\n", {"server.max_message_bytes: must be >= 1024, got 100"});
  ExpectRefused("server:\n  keepalive_time_seconds: 0\n", {"server.keepalive_time_seconds: must be in (0, 604800], got 0"});
  ExpectRefused("server:\n  max_connection_age_seconds: -1\n", {"server.max_connection_age_seconds: must be in [0"});
}

TEST(ParseServerConfig, TlsNeedsACertificateAndItsKey) {
  ExpectRefused("tls:\n  cert_file: a.crt\n", {"tls.key_file: tls.cert_file and tls.key_file are set together"});
  ExpectRefused("tls:\n  key_file: a.key\n", {"tls.cert_file: tls.cert_file and tls.key_file are set together"});
  ExpectRefused("tls:\n  client_ca_file: ca.crt\n", {"tls.client_ca_file: client certificates need TLS"});
  ExpectRefused("tls:\n  cert_file: ''\n", {"tls.cert_file"});
  absl::StatusOr<ServerConfig> tls = ParseServerConfig("tls:\n  cert_file: a.crt\n  key_file: a.key\n");
  ASSERT_TRUE(tls.ok()) << tls.status();
  EXPECT_TRUE(tls->tls.enabled());
  EXPECT_FALSE(ServerConfig{}.tls.enabled());  // plaintext by default
  EXPECT_FALSE(ServerConfig{}.auth.enabled());  // and no token asked
}

TEST(CheckTokensStayPrivate, TokensNeedTlsOrLoopback) {
  ServerConfig config;
  config.server.host = "0.0.0.0";
  EXPECT_TRUE(CheckTokensStayPrivate(config).ok());  // no tokens: nothing to protect
  config.auth.tokens_env = "TOKENS";
  EXPECT_THAT(std::string(CheckTokensStayPrivate(config).message()),
              HasSubstr("auth: bearer tokens would cross the network in clear text to server.host (0.0.0.0)"));
  config.server.host = "127.0.0.1";
  EXPECT_TRUE(CheckTokensStayPrivate(config).ok());  // the HTTP API is on loopback by default too
  config.metrics.host = "10.1.2.3";
  EXPECT_THAT(std::string(CheckTokensStayPrivate(config).message()), HasSubstr("metrics.host (10.1.2.3)"));
  config.auth.metrics = false;  // /metrics asks for no token: nothing to leak
  EXPECT_TRUE(CheckTokensStayPrivate(config).ok());
  config.http.host = "::";
  EXPECT_THAT(std::string(CheckTokensStayPrivate(config).message()), HasSubstr("http.host (::)"));
  config.tls.cert_file = "a.crt";
  config.tls.key_file = "a.key";
  EXPECT_TRUE(CheckTokensStayPrivate(config).ok());
  config.auth.metrics = true;
  config.tls.metrics = false;  // tokens to a plaintext /metrics off loopback
  EXPECT_THAT(std::string(CheckTokensStayPrivate(config).message()), HasSubstr("metrics.host"));
  EXPECT_TRUE(IsLoopbackHost("127.0.0.2") && IsLoopbackHost("::1") && IsLoopbackHost("localhost"));
  EXPECT_FALSE(IsLoopbackHost("0.0.0.0") || IsLoopbackHost("10.0.0.1") || IsLoopbackHost("127.evil.example"));
}

TEST(ParseServerConfig, RefusesPortsOutOfRangeAndClashing) {
  ExpectRefused("server:\n  port: 65536\n", {"server.port: must be in [0, 65535], got 65536"});
  ExpectRefused("metrics:\n  port: -5\n", {"metrics.port: must be in [0, 65535], got -5"});
  ExpectRefused("metrics:\n  port: 50051\n", {"metrics.port: must differ from server.port"});
  EXPECT_TRUE(ParseServerConfig("metrics:\n  enabled: false\n  port: 50051\n").ok());  // no listener, no clash
  EXPECT_TRUE(ParseServerConfig("server:\n  port: 0\nmetrics:\n  port: 0\n").ok());    // both pick a free port
  ExpectRefused("http:\n  port: 9400\n", {"http.port: must differ from metrics.port"});
  ExpectRefused("http:\n  hots: x\n", {"http.hots: unknown key"});
  EXPECT_TRUE(ParseServerConfig("http:\n  enabled: false\n  port: 50051\n").ok());
}

TEST(ParseServerConfig, RefusesUnknownEnumValues) {
  ExpectRefused("backend: gpu\n", {"backend: must be one of auto, cpu, cuda; got 'gpu'"});
  ExpectRefused("log_level: verbose\n", {"log_level: must be one of debug, info, warning, error; got 'verbose'"});
  ExpectRefused("log_format: xml\n", {"log_format: must be one of text, json; got 'xml'"});
}

TEST(ParseServerConfig, RefusesBadTiers) {
  ExpectRefused("tiers:\n  fast: 0\n", {"tiers.fast: must be `full`, `auto` or a number of bits in (0, 8], got '0'"});
  ExpectRefused("tiers:\n  fast: 8.5\n", {"tiers.fast: must be `full`"});
  ExpectRefused("tiers:\n  fast: -2\n", {"tiers.fast: must be `full`"});
  ExpectRefused("tiers:\n  fast: fullest\n", {"tiers.fast: must be `full`"});
  ExpectRefused("tiers:\n  quality: full\n  fast: 3\n  fast: 2\n", {"test.yaml:4:3: tiers.fast: duplicate key"});
  ExpectRefused("tiers:\n  Fast!: 3\n", {"tiers.Fast!: tier names are lowercase"});
  ExpectRefused("tiers: {}\n", {"tiers: must define at least one tier"});
  ExpectRefused("default_tier: premium\n", {"default_tier: 'premium' is not one of the tiers (quality, balanced"});
  // Tiers replace the defaults; the default tier must then be one of the new ones.
  ExpectRefused("tiers:\n  best: full\n", {"default_tier: 'quality' is not one of the tiers (best)"});
  absl::StatusOr<ServerConfig> ok = ParseServerConfig("tiers:\n  best: full\n  small: 8\ndefault_tier: small\n");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->tiers, (std::vector<Tier>{{"best", kFullDepthBits, false}, {"small", 8.0f, false}}));
}

TEST(ParseServerConfig, RefusesDuplicateKeysAndCrossFieldConflicts) {
  ExpectRefused("server:\n  port: 1\nserver:\n  port: 2\n", {"test.yaml:3:1: server: duplicate key"});
  ExpectRefused("limits:\n  default_max_tokens: 200\n  max_tokens: 100\n",
                {"limits.default_max_tokens: must be <= limits.max_tokens (100), got 200"});
  ExpectRefused("kv_cache:\n  budget_tokens: 1000\n", {"limits.max_tokens: must be <= kv_cache.budget_tokens (1000)"});
  ExpectRefused("batching:\n  max_batch_size: 1024\n", {"batching.max_step_tokens: must be >= batching.max_batch_size"});
  ExpectRefused("batching:\n  prefill_chunk: 1024\n", {"batching.prefill_chunk: must be <= batching.max_step_tokens"});
}

TEST(ParseServerConfig, RefusesBadAutoscalerLevels) {
  const auto levels = [](const std::string& items, const std::string& extra = "") {
    return absl::StrCat("autoscaler:\n", extra, "  levels:\n", items);
  };
  ExpectRefused(levels("    - {load: 0.2, bits: full}\n"), {"autoscaler.levels[0].load: the first level must be at load 0"});
  ExpectRefused(levels("    - {load: 0, bits: full}\n    - {load: 0, bits: 3}\n"),
                {"autoscaler.levels[1].load: must be > autoscaler.levels[0].load (0), got 0"});
  ExpectRefused(levels("    - {load: 0, bits: 3}\n    - {load: 1, bits: 4}\n"),
                {"autoscaler.levels[1].bits: must be fewer bits than autoscaler.levels[0].bits (3), got 4"});
  ExpectRefused(levels("    - {load: 0, bits: 3}\n    - {load: 1, bits: full}\n"), {"autoscaler.levels[1].bits"});
  ExpectRefused(levels("    - {load: 0, bits: auto}\n"), {"autoscaler.levels[0].bits: must be `full` or a number"});
  ExpectRefused(levels("    - {load: 0, bits: full}\n    - {load: 0.3, bits: 3}\n", "  hysteresis: 0.3\n"),
                {"autoscaler.hysteresis: must be < the smallest gap between level loads (0.3), got 0.3"});
  ExpectRefused("autoscaler:\n  levels: []\n", {"autoscaler.levels: must list at least one level"});
}

TEST(ParseServerConfig, ReportsSyntaxErrorsWithLineAndColumn) {
  ExpectRefused("server:\n  port: [1, 2\nmetrics: {}\n", {"test.yaml:", "YAML syntax error"});
  absl::StatusOr<ServerConfig> config = ParseServerConfig("server:\n  port: 1\n   host: x\n", "bad.yaml");
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(std::string(config.status().message()), HasSubstr("bad.yaml:3:"));
}

TEST(LoadServerConfig, NamesAMissingFile) {
  absl::StatusOr<ServerConfig> config = LoadServerConfig("/nonexistent/grinqh.yaml");
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(std::string(config.status().message()), HasSubstr("/nonexistent/grinqh.yaml"));
}

absl::StatusOr<Flags> OverrideFlags(const std::vector<std::string>& args) {
  return Flags::Parse(args, CommandSpec{"serve", "", ConfigOverrideFlags()});
}

TEST(ApplyOverrides, FlagsWinOverTheFile) {
  absl::StatusOr<ServerConfig> config =
      ParseServerConfig("model:\n  path: a\n  threads: 2\nserver:\n  port: 1000\nlog_level: error\n");
  ASSERT_TRUE(config.ok()) << config.status();
  absl::StatusOr<Flags> flags =
      OverrideFlags({"--model", "b", "--port=2000", "--metrics-port", "2001", "--host", "127.0.0.1", "--threads", "4",
                     "--backend", "cpu", "--log-level", "debug", "--log-format", "json"});
  ASSERT_TRUE(flags.ok()) << flags.status();
  ASSERT_TRUE(ApplyOverrides(*config, *flags).ok());
  EXPECT_EQ(config->model.path, "b");
  EXPECT_EQ(config->model.threads, 4);
  EXPECT_EQ(config->server.port, 2000);
  EXPECT_EQ(config->metrics.port, 2001);
  EXPECT_EQ(config->server.host, "127.0.0.1");
  EXPECT_EQ(config->backend, BackendKind::kCpu);
  EXPECT_EQ(config->log_level, LogLevel::kDebug);
  EXPECT_EQ(config->log_format, LogFormat::kJson);
  EXPECT_EQ(config->http.host, "127.0.0.1");  // --host binds the HTTP API the file leaves unbound

  absl::StatusOr<ServerConfig> http_bound = ParseServerConfig("http:\n  host: 10.0.0.1\n");
  ASSERT_TRUE(http_bound.ok()) << http_bound.status();
  ASSERT_TRUE(ApplyOverrides(*http_bound, *OverrideFlags({"--host", "0.0.0.0", "--http-port", "8080"})).ok());
  EXPECT_EQ(http_bound->http.host, "10.0.0.1");  // the file's http.host wins over --host
  EXPECT_EQ(http_bound->http.port, 8080);

  ServerConfig untouched;  // no flags: nothing changes
  ASSERT_TRUE(ApplyOverrides(untouched, *OverrideFlags({})).ok());
  EXPECT_EQ(untouched, ServerConfig{});
}

TEST(ApplyOverrides, HostBindsMetricsTooUnlessMetricsHostIsSet) {
  // Without metrics.host (the default, and the shipped file), both listeners take server.host.
  EXPECT_EQ(ServerConfig{}.MetricsHost(), "0.0.0.0");
  absl::StatusOr<ServerConfig> shipped = LoadServerConfig(kShippedConfig);
  ASSERT_TRUE(shipped.ok()) << shipped.status();
  ASSERT_TRUE(ApplyOverrides(*shipped, *OverrideFlags({"--host", "127.0.0.1"})).ok());
  EXPECT_EQ(shipped->server.host, "127.0.0.1");
  EXPECT_EQ(shipped->MetricsHost(), "127.0.0.1");

  // metrics.host in the file says otherwise: --host moves the gRPC listener only.
  absl::StatusOr<ServerConfig> split = ParseServerConfig("metrics:\n  host: 0.0.0.0\n");
  ASSERT_TRUE(split.ok()) << split.status();
  ASSERT_TRUE(ApplyOverrides(*split, *OverrideFlags({"--host", "127.0.0.1"})).ok());
  EXPECT_EQ(split->server.host, "127.0.0.1");
  EXPECT_EQ(split->MetricsHost(), "0.0.0.0");

  // An unset metrics.host is left out when the config is written, and stays unset read back.
  const std::string yaml = FormatServerConfig(*shipped);
  EXPECT_FALSE(YAML::Load(yaml)["metrics"]["host"].IsDefined()) << yaml;
  absl::StatusOr<ServerConfig> reread = ParseServerConfig(yaml);
  ASSERT_TRUE(reread.ok()) << reread.status();
  EXPECT_EQ(*reread, *shipped);
  ExpectRefused("metrics:\n  host: \"\"\n", {"metrics.host: must not be empty"});
}

TEST(ApplyOverrides, RefusesBadFlagValuesNamingTheFlag) {
  const auto refused = [](const std::vector<std::string>& args, const std::string& part) {
    ServerConfig config;
    absl::Status status = ApplyOverrides(config, *OverrideFlags(args));
    EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
    EXPECT_THAT(std::string(status.message()), HasSubstr(part));
  };
  refused({"--port", "70000"}, "--port must be in [0, 65535], got 70000");
  refused({"--metrics-port", "x"}, "--metrics-port must be an integer");
  refused({"--backend", "tpu"}, "--backend must be one of auto, cpu, cuda; got 'tpu'");
  refused({"--log-level", "loud"}, "--log-level must be one of debug, info, warning, error");
  refused({"--model", ""}, "--model must not be empty");
  refused({"--metrics-port", "50051"}, "metrics.port: must differ from server.port");  // CheckConfig runs
  refused({"--http-port", "9400"}, "http.port: must differ from metrics.port");
  refused({"--http-port", "50051"}, "http.port: must differ from server.port");
}

// ---- Autoscaler ----

AutoscalerConfig TestPolicy() {  // no smoothing, so each observation's load is the smoothed load
  AutoscalerConfig policy;
  policy.smoothing = 1;
  policy.hysteresis = 0.1;
  policy.levels = {{0, kFullDepthBits}, {0.5, 4}, {1.0, 3}, {2.0, 2}};
  return policy;
}

// Load `percent` / 100: the batch (100 slots) fills first, then the queue.
LoadObservation Percent(int percent) { return {std::max(percent - 100, 0), std::min(percent, 100), 100}; }

TEST(Autoscaler, LoadIsWaitingAndRunningOverTheBatchSize) {
  EXPECT_DOUBLE_EQ(Autoscaler::Load({5, 10, 10}), 1.5);
  EXPECT_DOUBLE_EQ(Autoscaler::Load({0, 0, 10}), 0);
  EXPECT_DOUBLE_EQ(Autoscaler::Load({-3, 2, 0}), 2);  // nonsense clamped, no division by zero
}

TEST(Autoscaler, StepsDownAsLoadRisesAndBackUpAsItFalls) {
  Autoscaler scaler(TestPolicy());  // full; 4 bits from 0.5; 3 from 1.0; 2 from 2.0; band 0.1
  EXPECT_EQ(scaler.bits(), kFullDepthBits);  // starts idle, at full depth
  EXPECT_EQ(scaler.Observe(Percent(20)), kFullDepthBits);
  EXPECT_EQ(scaler.Observe(Percent(50)), 4.0f);
  EXPECT_EQ(scaler.Observe(Percent(100)), 3.0f);
  EXPECT_EQ(scaler.Observe(Percent(200)), 2.0f);
  EXPECT_EQ(scaler.Observe(Percent(195)), 2.0f);  // within the band below 2.0
  EXPECT_EQ(scaler.Observe(Percent(150)), 3.0f);  // below 1.9: one level up
  EXPECT_EQ(scaler.Observe(Percent(45)), 4.0f);   // below 0.9, but not below 0.4
  EXPECT_EQ(scaler.Observe(Percent(10)), kFullDepthBits);
  // A burst jumps straight to the level it reaches; its end steps back up all the way.
  EXPECT_EQ(scaler.Observe(Percent(300)), 2.0f);
  EXPECT_EQ(scaler.level(), 3u);
  EXPECT_EQ(scaler.Observe(Percent(0)), kFullDepthBits);
  EXPECT_EQ(scaler.level(), 0u);
}

TEST(Autoscaler, DoesNotFlapAroundAThreshold) {
  Autoscaler scaler(TestPolicy());
  std::vector<float> bits;
  for (int i = 0; i < 20; ++i) bits.push_back(scaler.Observe(Percent(i % 2 == 0 ? 50 : 42)));
  // Enters the 4-bit level at 0.5 and stays: 0.42 is not below 0.5 - 0.1.
  EXPECT_EQ(bits, std::vector<float>(20, 4.0f));

  // Without the band the same load flaps at every observation.
  AutoscalerConfig no_band = TestPolicy();
  no_band.hysteresis = 0;
  Autoscaler flappy(no_band);
  EXPECT_EQ(flappy.Observe(Percent(50)), 4.0f);
  EXPECT_EQ(flappy.Observe(Percent(42)), kFullDepthBits);
  EXPECT_EQ(flappy.Observe(Percent(50)), 4.0f);
}

TEST(Autoscaler, SmoothingDelaysTheResponseToASpike) {
  AutoscalerConfig policy = TestPolicy();
  policy.smoothing = 0.5;
  Autoscaler scaler(policy);
  EXPECT_EQ(scaler.Observe(Percent(80)), kFullDepthBits);  // smoothed 0.4
  EXPECT_DOUBLE_EQ(scaler.smoothed_load(), 0.4);
  EXPECT_EQ(scaler.Observe(Percent(80)), 4.0f);            // 0.6
  EXPECT_EQ(scaler.Observe(Percent(0)), kFullDepthBits);   // 0.3, below 0.4
}

TEST(Autoscaler, ShippedPolicyWorks) {
  absl::StatusOr<ServerConfig> config = LoadServerConfig(kShippedConfig);
  ASSERT_TRUE(config.ok()) << config.status();
  Autoscaler scaler(config->autoscaler);
  float bits = kFullDepthBits;
  for (int i = 0; i < 10; ++i) bits = scaler.Observe({64, 32, 32});  // batch full, queue full: load 3
  EXPECT_EQ(bits, 2.0f);
  for (int i = 0; i < 10; ++i) bits = scaler.Observe({0, 0, 32});
  EXPECT_EQ(bits, kFullDepthBits);
}

}  // namespace
}  // namespace grinqh
