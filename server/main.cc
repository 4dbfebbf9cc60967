// `grinqh`: one CLI, with subcommands in the way `vllm serve` or `ollama run` read.
#include <iostream>
#include <string>
#include <vector>

#include "server/commands.h"

namespace {

constexpr char kUsage[] = R"(usage: grinqh <command> [flags]

commands:
  serve      the gRPC server (grinqh.v1.InferenceService, health, reflection, /metrics)
             [--config FILE (default config/grinqh.yaml when present)] [--check-config]
             [--model PATH] [--host H] [--port N] [--metrics-port N] [--threads N]
             [--backend auto|cpu|cuda] [--log-level debug|info|warning|error]
  client     stream a completion from a running server
             [--server HOST:PORT=localhost:50051] (--prompt TEXT | --user TEXT [--system TEXT])
             [--max-tokens N] [--temperature T] [--top-k K] [--top-p P] [--seed S] [--stop TEXT]
             [--tier NAME | --bits B] [--min-bits B] [--timeout SECONDS]
             --models   list the served models
  generate   stream a completion from a model
             --model DIR (--prompt TEXT | --prompt-ids 1,2,3) [--max-tokens N=128]
             [--temperature T=0 (greedy)] [--top-k K] [--top-p P] [--seed S] [--stop TEXT]
             [--threads N] [--no-bos] [--json]
             [--bits B]  GRINQH models: average bits per weight read at each decode step
  quantize   write a GRINQH model file (nested 8-bit codes, graded at decode), or a baseline's
             --model HF_DIR --out MODEL.grinqh [--calib TEXT (fits per-layer schedules)]
             [--group-size 256 (baselines: 128)] [--max-bits 8] [--calib-windows 64] [--sensitivity-windows 4]
             [--threads N] | --method rtn|gptq|awq --bits N [--calib TEXT]
  tokenize   print the token ids of a text as JSON
             (--model DIR | --tokenizer tokenizer.json) --text TEXT [--add-special-tokens]
  bench      prefill and decode speed
             --model DIR|FILE [--prompt-tokens N=128] [--decode-tokens N=128] [--repeat N=5] [--threads N]
             [--bits B (GRINQH models)] [--json]
  eval       quality of quantized variants against the model (PPL, KLD, top-1)
             --reference DIR --text FILE [--model A.grinqh,B.grinqh] [--calib FILE]
             [--methods rtn:4,gptq:3,awq:2,grinqh:8,grinqh-gains:8,grinqh-curve:8]
             [--bits 2,2.5,3,4 (GRINQH decode targets)]
             [--ctx 512] [--windows 128] [--calib-windows 64] [--group-size 128] [--json FILE] [--csv FILE]
  help       this text
)";

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "help" || args[0] == "--help" || args[0] == "-h") {
    std::cout << kUsage;
    return args.empty() ? 2 : 0;
  }
  const std::string command = args[0];
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  absl::Status status;
  if (command == "serve") {
    status = grinqh::RunServe(rest);
  } else if (command == "client") {
    status = grinqh::RunClient(rest);
  } else if (command == "generate") {
    status = grinqh::RunGenerate(rest);
  } else if (command == "tokenize") {
    status = grinqh::RunTokenize(rest);
  } else if (command == "quantize") {
    status = grinqh::RunQuantize(rest);
  } else if (command == "eval") {
    status = grinqh::RunEval(rest);
  } else if (command == "bench") {
    status = grinqh::RunBench(rest);
  } else {
    std::cerr << "grinqh: unknown command '" << command << "'\n" << kUsage;
    return 2;
  }
  if (!status.ok()) {
    std::cerr << "grinqh " << command << ": " << status.message() << std::endl;
    return absl::IsInvalidArgument(status) ? 2 : 1;
  }
  return 0;
}
