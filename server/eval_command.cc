// `grinqh eval`: quality of quantized variants of a model against the model itself,
// all configurations in one pass over the evaluation text (../shared/DESIGN.md §3).
#include <chrono>
#include <fstream>
#include <iostream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "engine/calibration.h"
#include "engine/evaluation.h"
#include "engine/file_util.h"
#include "engine/status_macros.h"
#include "nlohmann/json.hpp"
#include "server/commands.h"
#include "server/flags.h"

namespace grinqh {
namespace {

// "rtn:4,gptq:3,grinqh-gains:8" → options, with the shared group size.
absl::StatusOr<std::vector<BaselineOptions>> ParseMethods(const std::string& text, int group_size) {
  std::vector<BaselineOptions> out;
  for (absl::string_view item : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    std::vector<std::string> parts = absl::StrSplit(item, ':');
    BaselineOptions o;
    o.group_size = group_size;
    if (parts.size() != 2 || !absl::SimpleAtoi(parts[1], &o.bits)) {
      return absl::InvalidArgumentError(absl::StrCat("--methods: '", std::string(item), "' is not METHOD:BITS"));
    }
    o.method = parts[0];
    if (o.method == "grinqh-gains") o.method = "grinqh", o.grading = "gains";
    out.push_back(o);
  }
  return out;
}

absl::StatusOr<std::vector<int32_t>> TokenizeFile(const Model& model, const std::string& path) {
  GRINQH_ASSIGN_OR_RETURN(const std::string text, ReadFileToString(path));
  return model.tokenizer()->Encode(text, /*add_special_tokens=*/false);
}

void Progress(const std::string& what, double fraction) {
  std::cerr << absl::StrFormat("\r%-40s %5.1f%%", what, 100 * fraction) << (fraction >= 1 ? "\n" : "") << std::flush;
}

struct Row {
  std::string method;
  double target_bits, effective_bits, footprint_bits;
  EvalStats stats;
};

void WriteOutputs(const std::vector<Row>& rows, const Flags& flags) {
  std::cout << absl::StrFormat("%-10s %8s %10s %10s %10s %10s %8s\n", "method", "bits", "effective", "footprint",
                               "ppl", "kld", "top1");
  nlohmann::json records = nlohmann::json::array();
  std::string csv = "method,target_bits,effective_bits,footprint_bits,ppl,kld,top1\n";
  for (const Row& r : rows) {
    std::cout << absl::StrFormat("%-10s %8.2f %10.3f %10.3f %10.4f %10.5f %8.4f\n", r.method, r.target_bits,
                                 r.effective_bits, r.footprint_bits, r.stats.ppl(), r.stats.kld(), r.stats.top1());
    records.push_back({{"method", r.method}, {"target_bits", r.target_bits}, {"effective_bits", r.effective_bits},
                       {"footprint_bits", r.footprint_bits}, {"ppl", r.stats.ppl()}, {"kld", r.stats.kld()},
                       {"top1", r.stats.top1()}, {"positions", r.stats.positions}});
    csv += absl::StrFormat("%s,%g,%g,%g,%.6f,%.6g,%.6f\n", r.method, r.target_bits, r.effective_bits,
                           r.footprint_bits, r.stats.ppl(), r.stats.kld(), r.stats.top1());
  }
  if (auto path = flags.String("json")) std::ofstream(*path) << records.dump(1) << "\n";
  if (auto path = flags.String("csv")) std::ofstream(*path) << csv;
}

}  // namespace

absl::Status RunEval(const std::vector<std::string>& args) {
  GRINQH_ASSIGN_OR_RETURN(
      const Flags flags,
      Flags::Parse(args, {"model", "reference", "text", "calib", "methods", "bits", "ctx", "windows", "calib-windows",
                          "group-size", "json", "csv", "threads"},
                   {}));
  for (const char* required : {"reference", "text"}) {
    if (!flags.Has(required)) return absl::InvalidArgumentError(absl::StrCat("--", required, " is required"));
  }
  int ctx = 512, windows = 128, calib_windows = 64, group_size = 128;
  ModelOptions options;
  GRINQH_RETURN_IF_ERROR(flags.ReadInt("ctx", 2, 1 << 20, ctx));
  GRINQH_RETURN_IF_ERROR(flags.ReadInt("windows", 1, 1 << 20, windows));
  GRINQH_RETURN_IF_ERROR(flags.ReadInt("calib-windows", 1, 1 << 20, calib_windows));
  GRINQH_RETURN_IF_ERROR(flags.ReadInt("group-size", 1, 1 << 20, group_size));
  GRINQH_RETURN_IF_ERROR(flags.ReadInt("threads", 0, 1024, options.num_threads));
  GRINQH_ASSIGN_OR_RETURN(const std::vector<BaselineOptions> methods,
                          ParseMethods(flags.String("methods").value_or(""), group_size));

  GRINQH_ASSIGN_OR_RETURN(std::unique_ptr<Model> model, Model::Load(*flags.String("reference"), options));
  if (model->tokenizer() == nullptr) return absl::FailedPreconditionError("the reference model has no tokenizer");
  GRINQH_ASSIGN_OR_RETURN(const std::vector<int32_t> text_ids, TokenizeFile(*model, *flags.String("text")));
  const auto eval_windows = MakeWindows(text_ids, ctx, windows);
  if (eval_windows.empty()) return absl::InvalidArgumentError("the evaluation text is shorter than one window");
  std::vector<std::vector<int32_t>> calibration;
  if (auto calib = flags.String("calib")) {
    GRINQH_ASSIGN_OR_RETURN(const std::vector<int32_t> calib_ids, TokenizeFile(*model, *calib));
    calibration = MakeWindows(calib_ids, ctx, calib_windows);
  }

  std::vector<float> grinqh_bits;
  for (absl::string_view item : absl::StrSplit(flags.String("bits").value_or("2,2.5,3,4"), ',', absl::SkipWhitespace())) {
    float b = 0;
    if (!absl::SimpleAtof(item, &b) || !(b > 0 && b <= 8)) {
      return absl::InvalidArgumentError(absl::StrCat("--bits: '", std::string(item), "' is not a bit width in (0, 8]"));
    }
    grinqh_bits.push_back(b);
  }

  std::vector<std::unique_ptr<QuantizedVariant>> variants;
  for (const BaselineOptions& m : methods) {
    const auto start = std::chrono::steady_clock::now();
    GRINQH_ASSIGN_OR_RETURN(auto variant,
                            QuantizedVariant::Create(*model, m, calibration, [&](const std::string& stage, double f) {
                              Progress(absl::StrCat(m.Name(), " ", stage), f);
                            }));
    std::cerr << absl::StrFormat("%s quantized in %.1f s\n", m.Name(),
                                 std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    variants.push_back(std::move(variant));
  }

  // Every (variant, decode target) pair: a fixed-width variant reads all its bits; a GRINQH
  // variant is graded at each --bits target.
  struct Candidate {
    Backend* backend;
    float target_bits;  // ForwardItem::target_bits; 0 for fixed-width methods
  };
  std::vector<Candidate> candidates;
  std::vector<Row> rows;
  rows.push_back({"bf16", 16, 16, 16, {}});
  // A .grinqh file made by `grinqh quantize`, graded at each --bits target.
  std::unique_ptr<Model> file_model;
  if (auto path = flags.String("model")) {
    GRINQH_ASSIGN_OR_RETURN(file_model, Model::Load(*path, options));
    if (file_model->max_decode_bits() == 0) return absl::InvalidArgumentError("--model must be a .grinqh file");
    if (file_model->config().vocab_size != model->config().vocab_size) {
      return absl::InvalidArgumentError("--model and --reference have different vocabularies");
    }
    const double footprint = file_model->max_decode_bits() + 32.0 / file_model->group_size();
    for (float b : grinqh_bits) {
      if (b > float(file_model->max_decode_bits())) continue;
      candidates.push_back({&file_model->backend(), b});
      rows.push_back({"grinqh-file", b, b + 32.0 / file_model->group_size(), footprint, {}});
    }
  }
  for (auto& v : variants) {
    const BaselineOptions& m = v->options();
    const double footprint = m.EffectiveBits();
    if (m.method != "grinqh") {
      candidates.push_back({&v->backend(), 0.f});
      rows.push_back({m.method, double(m.bits), footprint, footprint, {}});
      continue;
    }
    for (float b : grinqh_bits) {
      candidates.push_back({&v->backend(), b});
      rows.push_back({m.grading == "gains" ? "grinqh-gains" : m.method, b, m.EffectiveBits(b), footprint, {}});
    }
  }
  const int vocab = model->config().vocab_size;
  std::vector<float> reference, candidate;
  for (size_t w = 0; w < eval_windows.size(); ++w) {
    auto cache = model->backend().NewCache();
    const ForwardItem item{cache.get(), eval_windows[w], true};
    GRINQH_RETURN_IF_ERROR(model->backend().Forward({&item, 1}, reference));
    ScoreWindow(reference, reference, eval_windows[w], vocab, rows[0].stats);
    for (size_t c = 0; c < candidates.size(); ++c) {
      Backend& backend = *candidates[c].backend;
      auto candidate_cache = backend.NewCache();
      // Decode emulated everywhere: every position is graded from its own activations.
      const ForwardItem candidate_item{candidate_cache.get(), eval_windows[w], true, candidates[c].target_bits};
      GRINQH_RETURN_IF_ERROR(backend.Forward({&candidate_item, 1}, candidate));
      ScoreWindow(reference, candidate, eval_windows[w], vocab, rows[c + 1].stats);
    }
    Progress(absl::StrCat("evaluating ", eval_windows.size(), " windows of ", ctx), double(w + 1) / double(eval_windows.size()));
  }
  WriteOutputs(rows, flags);
  return absl::OkStatus();
}

}  // namespace grinqh
