// `grinqh serve`: the gRPC server and the OpenAI-compatible HTTP API. Starts the HTTP API
// (answering "loading" until the model is in), loads the model, starts the scheduler, the
// autoscaler, the metrics endpoint and the gRPC listener (with health and reflection; TLS and
// bearer tokens on every listener as `tls:` and `auth:` say), then
// waits for SIGTERM or SIGINT and drains: health turns NOT_SERVING and /ready 503, new
// requests are refused, running streams get the grace period to finish, and the process exits 0.
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "engine/serving/model.h"
#include "engine/serving/scheduler.h"
#include "engine/base/status_macros.h"
#include "server/bearer_tokens.h"
#include "server/commands.h"
#include "server/config.h"
#include "server/generate_request.h"
#include "server/grpc_listener.h"
#include "server/inference_service.h"
#include "server/log.h"
#include "server/scheduler_log.h"
#include "server/metrics_http.h"
#include "server/openai_http.h"
#include "server/serving_metrics.h"
#include "server/version.h"

namespace grinqh {
namespace {

constexpr char kServiceName[] = "grinqh.v1.InferenceService";
constexpr char kDefaultConfig[] = "config/grinqh.yaml";
// Handler threads for Tokenize, ListModels and reflection calls.
constexpr int kUnaryHandlerThreads = 16;
// What a Generate message may hold beside its prompt text: stop strings, logit bias, ids.
constexpr int kRequestOverheadBytes = 1 << 20;

absl::StatusOr<ServerConfig> ReadConfig(const Flags& flags) {
  ServerConfig config;
  if (auto path = flags.String("config")) {
    GRINQH_ASSIGN_OR_RETURN(config, LoadServerConfig(*path));
  } else if (std::filesystem::exists(kDefaultConfig)) {
    GRINQH_ASSIGN_OR_RETURN(config, LoadServerConfig(kDefaultConfig));
  }
  GRINQH_RETURN_IF_ERROR(ApplyOverrides(config, flags));
  return config;
}

SchedulerOptions ToSchedulerOptions(const ServerConfig& config) {
  SchedulerOptions options;
  options.max_batch_size = config.batching.max_batch_size;
  options.max_queue = config.batching.max_queue;
  options.prefill_chunk = config.batching.prefill_chunk;
  options.max_step_tokens = config.batching.max_step_tokens;
  options.kv_budget_tokens = config.kv_cache.budget_tokens;
  return options;
}

// Samples the load at the configured interval and publishes the autoscaled tier's bits.
class AutoscalerThread {
 public:
  AutoscalerThread(const AutoscalerConfig& config, Scheduler& scheduler)
      : autoscaler_(config), thread_([this, &config, &scheduler] {
          const auto interval = std::chrono::duration<double>(config.interval_seconds);
          std::unique_lock lock(mutex_);
          while (!stop_) {
            const SchedulerStats stats = scheduler.stats();
            bits_ = autoscaler_.Observe({stats.queued, stats.running, scheduler.options().max_batch_size});
            wake_.wait_for(lock, interval, [this] { return stop_; });
          }
        }) {}
  ~AutoscalerThread() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }
  float bits() const { return bits_.load(); }

 private:
  Autoscaler autoscaler_;
  std::atomic<float> bits_{kFullDepthBits};
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;
};

// During the drain, a second SIGTERM or SIGINT cancels what still runs at once (the streams
// end with finish reason `cancelled`), as operators expect of a second Ctrl-C.
class SecondSignal {
 public:
  SecondSignal(const sigset_t& signals, Scheduler& scheduler)
      : signals_(signals), thread_([this, &scheduler] {
          int signal_number = 0;
          sigwait(&signals_, &signal_number);
          if (done_) return;
          LogLine(LogLevel::kWarning, "second signal: cancelling the running requests now");
          scheduler.CancelAll();
        }) {}
  ~SecondSignal() {  // the drain ended: wake the waiting thread with a signal of its own
    done_ = true;
    pthread_kill(thread_.native_handle(), SIGTERM);
    thread_.join();
  }

 private:
  const sigset_t signals_;
  std::atomic<bool> done_{false};
  std::thread thread_;
};

ModelOptions ToModelOptions(const ServerConfig& config) {
  ModelOptions options;
  options.name = std::string(BackendName(config.backend));  // the registry chooses and says why not
  options.num_threads = config.model.threads;
  options.kv_cache_tokens = config.kv_cache.budget_tokens;
  return options;
}

// The same error, its message led by the config key it is about.
absl::Status AboutKey(const char* key, const absl::Status& status) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat(key, ": ", status.message()));
}

// The HTTP listeners' TLS files and tokens; /metrics may be left plaintext or open by `tls:`
// and `auth:`.
HttpSecurity ApiHttpSecurity(const ServerConfig& config, std::shared_ptr<const BearerTokens> tokens) {
  return {config.tls.cert_file, config.tls.key_file, config.tls.client_ca_file, std::move(tokens)};
}
HttpSecurity MetricsHttpSecurity(const ServerConfig& config, std::shared_ptr<const BearerTokens> tokens) {
  HttpSecurity security = ApiHttpSecurity(config, config.auth.metrics ? std::move(tokens) : nullptr);
  if (!config.tls.metrics) security.cert_file = security.key_file = security.client_ca_file = "";
  return security;
}

// The tokens `auth:` names; null when it names none.
absl::StatusOr<std::shared_ptr<const BearerTokens>> LoadTokens(const ServerConfig& config) {
  if (!config.auth.enabled()) return nullptr;
  GRINQH_RETURN_IF_ERROR(CheckTokensStayPrivate(config));
  GRINQH_ASSIGN_OR_RETURN(BearerTokens tokens, BearerTokens::Load(config.auth));
  return std::make_shared<const BearerTokens>(std::move(tokens));
}

// What `serve` would refuse before listening: the tokens and certificates, the backend
// (compiled in, with a device) and the model (it exists and loads, on that backend).
absl::Status CheckServable(const ServerConfig& config) {
  GRINQH_ASSIGN_OR_RETURN(std::shared_ptr<const BearerTokens> tokens, LoadTokens(config));
  GRINQH_RETURN_IF_ERROR(GrpcServerCredentials(config, tokens).status());
  GRINQH_RETURN_IF_ERROR(CheckHttpSecurity(ApiHttpSecurity(config, tokens)));
  GRINQH_RETURN_IF_ERROR(AboutKey("backend", CheckBackend(std::string(BackendName(config.backend)))));
  return AboutKey("model.path", Model::Load(config.model.path, ToModelOptions(config)).status());
}

absl::Status RunServe(const Flags& flags) {
  GRINQH_ASSIGN_OR_RETURN(const ServerConfig config, ReadConfig(flags));
  if (flags.Has("check-config")) {
    std::cout << FormatServerConfig(config) << std::flush;
    GRINQH_RETURN_IF_ERROR(CheckServable(config));
    std::cerr << "grinqh serve: the configuration is valid" << std::endl;
    return absl::OkStatus();
  }
  SetLogOptions(config.log_level, config.log_format);  // before any thread logs
  // Signals are taken by sigwait below; block them before any thread starts (gRPC starts its
  // own when the credentials are made) so none of the threads gets them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  GRINQH_ASSIGN_OR_RETURN(std::shared_ptr<const BearerTokens> tokens, LoadTokens(config));
  GRINQH_ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> grpc_credentials,
                          GrpcServerCredentials(config, tokens));
  GRINQH_RETURN_IF_ERROR(CheckBackend(std::string(BackendName(config.backend))));  // before a long load

  std::unique_ptr<OpenAiHttpServer> http_server;
  if (config.http.enabled) {
    // A handler thread for every request the scheduler may hold (running or queued), and a
    // few for probes and for refusing the rest.
    const int threads = config.batching.max_batch_size + config.batching.max_queue + 4;
    // JSON may escape each byte of the prompt into 6 (\u0000); the rest of a body is small.
    const size_t max_body = size_t{6} * static_cast<size_t>(config.limits.max_prompt_bytes) + kRequestOverheadBytes;
    GRINQH_ASSIGN_OR_RETURN(http_server, OpenAiHttpServer::Start(config.http.EffectiveHost(), config.http.port,
                                                                 threads, max_body, ApiHttpSecurity(config, tokens)));
  }

  GRINQH_ASSIGN_OR_RETURN(std::unique_ptr<Model> model, Model::Load(config.model.path, ToModelOptions(config)));
  const std::string model_name = std::filesystem::path(config.model.path).stem().string();
  Scheduler scheduler(*model, ToSchedulerOptions(config));
  AutoscalerThread autoscaler(config.autoscaler, scheduler);
  const SchedulerLog scheduler_log(scheduler, std::chrono::seconds(1));

  ServingMetricsOptions metrics_options;
  metrics_options.model = model_name;
  metrics_options.version = std::string(Version());
  for (const Tier& tier : config.tiers) metrics_options.tiers.push_back(tier.name);
  ServingMetrics metrics(metrics_options, [&scheduler] {
    const SchedulerStats stats = scheduler.stats();
    return ServingSnapshot{stats.queued, stats.running, stats.kv_tokens_reserved, stats.kv_budget_tokens,
                           stats.decode_bits_in_use};
  });
  std::unique_ptr<MetricsHttpServer> metrics_server;
  if (config.metrics.enabled) {
    GRINQH_ASSIGN_OR_RETURN(metrics_server, MetricsHttpServer::Start(metrics, config.MetricsHost(), config.metrics.port,
                                                                     MetricsHttpSecurity(config, tokens)));
  }

  InferenceService service(*model, scheduler, config, metrics, [&autoscaler] { return autoscaler.bits(); },
                           {model_name, std::string(model->backend().name())});
  OpenAiServing openai{*model, scheduler, config, metrics, [&autoscaler] { return autoscaler.bits(); }, model_name,
                       static_cast<int64_t>(std::time(nullptr))};
  // Whatever path leaves this function, the HTTP handlers stop before what they use is gone.
  const std::unique_ptr<OpenAiHttpServer, void (*)(OpenAiHttpServer*)> stop_http(
      http_server.get(), [](OpenAiHttpServer* s) { s->Stop(); });
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  int port = 0;
  const std::string address = absl::StrCat(config.server.host, ":", config.server.port);
  builder.AddListeningPort(address, grpc_credentials, &port);
  ApplyServerSection(config.server, int64_t{config.limits.max_prompt_bytes} + kRequestOverheadBytes, builder);
  // A handler thread per call: for every Generate call the scheduler holds (running and
  // queued), and a connection's worth of calls more, so that calls beyond the scheduler's
  // capacity reach it and are refused where the metrics count them
  // (grinqh_requests_total{code="RESOURCE_EXHAUSTED"}), rather than by gRPC, unseen, for want
  // of a thread. Health checks need none of these threads: gRPC serves them apart.
  grpc::ResourceQuota quota("grinqh");
  quota.SetMaxThreads(config.batching.max_batch_size + config.batching.max_queue +
                      config.server.max_concurrent_streams + kUnaryHandlerThreads);
  builder.SetResourceQuota(quota);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", address, " (server.port): is another server using it?"));
  }
  grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService();
  health->SetServingStatus(true);
  health->SetServingStatus(kServiceName, true);

  LogLine(LogLevel::kInfo, absl::StrCat("serving ", model_name, " (", std::string(ArchitectureName(model->config().arch)), ", ",
                        model->max_decode_bits() > 0 ? absl::StrCat("GRINQH ", model->max_decode_bits(), "-bit store")
                                                     : std::string("bf16, full precision only"),
                        ", ", std::string(model->backend().name()), " backend, KV pool of ",
                        model->backend().kv_capacity_tokens(), " tokens) on ", config.server.host, ":", port,
                        metrics_server ? absl::StrCat(", metrics on ", config.MetricsHost(), ":", metrics_server->port(), "/metrics")
                                       : std::string(),
                        http_server ? absl::StrCat(", OpenAI-compatible HTTP API on ", config.tls.enabled() ? "https" : "http",
                                                   "://", config.http.EffectiveHost(), ":", http_server->port(), "/v1")
                                    : std::string(),
                        config.tls.enabled() ? (config.tls.client_ca_file.empty() ? "; TLS" : "; mutual TLS") : "",
                        tokens ? "; bearer tokens required" : ""));
  if (http_server) http_server->Serve(openai);

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  const auto grace = std::chrono::milliseconds(static_cast<int64_t>(config.server.shutdown_grace_seconds * 1000));
  LogLine(LogLevel::kInfo, absl::StrCat("received ", signal_number == SIGTERM ? "SIGTERM" : "SIGINT", ": draining for up to ",
                        config.server.shutdown_grace_seconds, " s"));
  // Probes see NOT_SERVING at once; the scheduler refuses new requests (UNAVAILABLE) and lets
  // the running ones finish within the grace period, then the listener closes.
  health->SetServingStatus(false);
  if (http_server) http_server->Drain();
  {
    const SecondSignal second_signal(signals, scheduler);
    scheduler.Shutdown(grace);
  }
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  server->Wait();
  if (http_server) http_server->Stop();  // every stream has had its last event
  if (metrics_server) metrics_server->Stop();
  LogLine(LogLevel::kInfo, "stopped");
  return absl::OkStatus();
}

}  // namespace

const Command& ServeCommand() {
  static const Command command = [] {
    std::vector<FlagSpec> flags = {
        {"config", "FILE", "the server's configuration (config/grinqh.yaml when present)"},
        {"check-config", "", "print the configuration, check it, the backend and the model (loaded), and exit"}};
    // Then the flags that win over keys of the file.
    for (const FlagSpec& flag : ConfigOverrideFlags()) flags.push_back(flag);
    return Command{{"serve", "the gRPC server (grinqh.v1.InferenceService, health, reflection, /metrics) and the OpenAI-compatible HTTP API",
                    std::move(flags)},
                   RunServe};
  }();
  return command;
}

}  // namespace grinqh
