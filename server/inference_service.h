// grinqh.v1.InferenceService over one model and its scheduler (the synchronous gRPC API:
// one handler thread per call). Generate submits the request to the scheduler and relays
// its events as stream messages; a client that cancels, disconnects or runs out of deadline
// has its request cancelled in the scheduler, which frees the batch slot and KV cache at the
// next step.
#pragma once

#include <atomic>
#include <functional>
#include <string>

#include "engine/serving/model.h"
#include "engine/serving/scheduler.h"
#include "grinqh/v1/inference.grpc.pb.h"
#include "server/config.h"
#include "server/serving_metrics.h"

namespace grinqh {

class InferenceService final : public v1::InferenceService::Service {
 public:
  struct Options {
    std::string model_name;  // the model's name in the API
    std::string backend;     // "cpu" or "cuda", reported by GetModel
  };
  // Everything must outlive the service. `auto_bits` reads what the autoscaled tier decodes at.
  InferenceService(Model& model, Scheduler& scheduler, const ServerConfig& config, ServingMetrics& metrics,
                   std::function<float()> auto_bits, Options options);

  grpc::Status Generate(grpc::ServerContext* context, const v1::GenerateRequest* request,
                        grpc::ServerWriter<v1::GenerateResponse>* writer) override;
  grpc::Status Tokenize(grpc::ServerContext* context, const v1::TokenizeRequest* request,
                        v1::TokenizeResponse* response) override;
  grpc::Status ListModels(grpc::ServerContext* context, const v1::ListModelsRequest* request,
                          v1::ListModelsResponse* response) override;
  grpc::Status GetModel(grpc::ServerContext* context, const v1::GetModelRequest* request,
                        v1::ModelInfo* response) override;

 private:
  void DescribeModel(v1::ModelInfo& info) const;

  Model& model_;
  Scheduler& scheduler_;
  const ServerConfig& config_;
  ServingMetrics& metrics_;
  std::function<float()> auto_bits_;
  Options options_;
  std::atomic<uint64_t> next_request_number_{1};
};

// The gRPC status for an engine status: same code and message.
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace grinqh
