// `grinqh eval`: quality of quantized variants of a model against the model itself,
// all configurations in one pass over the evaluation text (docs/METHOD.md §3).
#include <chrono>
#include <fstream>
#include <iostream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "engine/calibration/calibration.h"
#include "engine/calibration/evaluation.h"
#include "engine/model/grinqh_file.h"
#include "engine/calibration/grinqh_writer.h"
#include "engine/base/status_macros.h"
#include "nlohmann/json.hpp"
#include "server/commands.h"
#include "server/flags.h"
#include "server/progress.h"

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
    if (o.method == "grinqh-curve") o.method = "grinqh", o.grading = "curve";
    out.push_back(o);
  }
  return out;
}

// The progress of every stage of the run, on stderr.
void Progress(const std::string& what, double fraction) {
  static ProgressReporter reporter = ProgressReporter::ForStderr();
  reporter(what, fraction);
}

struct Row {
  std::string method;
  std::string model;  // the .grinqh file, when the row is one
  double target_bits, effective_bits, footprint_bits;
  EvalStats stats;
  double plane_bits = 0;  // graded rows: bit planes actually read per weight (the target, met)
};

// One configuration scored against the reference: a backend, the target its items carry
// (0: full depth), and for graded ones what their products read.
struct Candidate {
  Backend* backend;
  float target_bits;
  size_t row;
  bool graded = false;
  int metadata_bytes_per_channel = 0;
  int metadata_bytes_per_product = 0;
  ForwardStats reads;
};

// What a file stores for its quantized layers: the bytes of their tensors (planes, scales,
// zeros, channel_scale, input_scale) and of the schedules, over the reference's weights.
absl::StatusOr<double> FileFootprintBits(const std::string& path, const GrinqhFileSummary& summary,
                                         const Model& reference) {
  GRINQH_ASSIGN_OR_RETURN(auto file, GrinqhFile::Open(path, /*verify_checksums=*/false));
  ModelWeights weights = reference.weights();
  const auto linears = LinearLayers(weights, reference.config());
  BitsAccount a;
  for (const LinearLayerRef& l : linears) {
    a.weights += double(l.weights->rows()) * l.weights->cols();
    for (const char* suffix : {".planes", ".scales", ".zeros", ".channel_scale", ".input_scale"}) {
      if (const GrinqhTensor* t = file->Find(GrinqhLayerPrefix(l.name) + suffix)) a.bytes += double(t->nbytes);
    }
  }
  a.bytes += double(linears.size() * summary.schedule_targets.size()) * 2 * sizeof(float);
  return a.bits();
}

void WriteOutputs(const std::vector<Row>& rows, const Flags& flags) {
  std::cout << absl::StrFormat("%-14s %8s %10s %10s %10s %10s %8s\n", "method", "bits", "effective", "footprint",
                               "ppl", "kld", "top1");
  nlohmann::json records = nlohmann::json::array();
  std::string csv = "method,target_bits,effective_bits,footprint_bits,ppl,kld,top1,plane_bits,model\n";
  for (const Row& r : rows) {
    std::cout << absl::StrFormat("%-14s %8.2f %10.3f %10.3f %10.4f %10.5f %8.4f\n", r.method, r.target_bits,
                                 r.effective_bits, r.footprint_bits, r.stats.ppl(), r.stats.kld(), r.stats.top1());
    nlohmann::json record = {{"method", r.method}, {"target_bits", r.target_bits},
                             {"effective_bits", r.effective_bits}, {"footprint_bits", r.footprint_bits},
                             {"ppl", r.stats.ppl()}, {"kld", r.stats.kld()}, {"top1", r.stats.top1()},
                             {"positions", r.stats.positions}};
    if (r.plane_bits > 0) record["plane_bits"] = r.plane_bits;
    if (!r.model.empty()) record["model"] = r.model;
    records.push_back(record);
    csv += absl::StrFormat("%s,%g,%.6g,%.6g,%.6f,%.6g,%.6f,%.6g,%s\n", r.method, r.target_bits, r.effective_bits,
                           r.footprint_bits, r.stats.ppl(), r.stats.kld(), r.stats.top1(), r.plane_bits, r.model);
  }
  if (auto path = flags.String("json")) std::ofstream(*path) << records.dump(1) << "\n";
  if (auto path = flags.String("csv")) std::ofstream(*path) << csv;
}

absl::Status RunEval(const Flags& flags) {
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
  if (auto backend = flags.String("backend")) options.name = *backend;
  GRINQH_ASSIGN_OR_RETURN(const std::vector<BaselineOptions> methods,
                          ParseMethods(flags.String("methods").value_or(""), group_size));

  GRINQH_ASSIGN_OR_RETURN(std::unique_ptr<Model> model, Model::Load(*flags.String("reference"), options));
  if (model->tokenizer() == nullptr) return absl::FailedPreconditionError("the reference model has no tokenizer");
  GRINQH_ASSIGN_OR_RETURN(const auto eval_windows, TextWindows(*model, *flags.String("text"), ctx, windows));
  if (eval_windows.empty()) return absl::InvalidArgumentError("the evaluation text is shorter than one window");
  std::vector<std::vector<int32_t>> calibration;
  if (auto calib = flags.String("calib")) {
    GRINQH_ASSIGN_OR_RETURN(calibration, TextWindows(*model, *calib, ctx, calib_windows));
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
  std::vector<Candidate> candidates;
  std::vector<Row> rows;
  rows.push_back({"bf16", "", 16, 16, 16, {}});
  const auto add_graded = [&](Backend& backend, float bits, Row row, int per_channel, int per_product) {
    candidates.push_back({&backend, bits, rows.size(), true, per_channel, per_product, {}});
    rows.push_back(std::move(row));
  };
  const auto add_fixed = [&](Backend& backend, Row row) {
    candidates.push_back({&backend, 0.f, rows.size(), false, 0, 0, {}});
    rows.push_back(std::move(row));
  };
  // .grinqh files made by `grinqh quantize`: GRINQH graded at each --bits target (through
  // its schedules when calibrated), a baseline at its width.
  std::vector<std::unique_ptr<Model>> file_models;
  if (auto paths = flags.String("model")) {
    for (absl::string_view item : absl::StrSplit(*paths, ',', absl::SkipWhitespace())) {
      const std::string path(item);
      GRINQH_ASSIGN_OR_RETURN(const GrinqhFileSummary summary, ReadGrinqhSummary(path));
      GRINQH_ASSIGN_OR_RETURN(auto file_model, Model::Load(path, options));
      if (file_model->config().vocab_size != model->config().vocab_size) {
        return absl::InvalidArgumentError(absl::StrCat(path, " and --reference have different vocabularies"));
      }
      GRINQH_ASSIGN_OR_RETURN(const double footprint, FileFootprintBits(path, summary, *model));
      Backend& backend = file_model->backend();
      if (!summary.graded()) {
        const double bits = FixedWidthBits(model->weights(), model->config(), summary.bits, summary.group_size).bits();
        add_fixed(backend, {summary.method + "-file", path, double(summary.bits), bits, footprint, {}});
      } else {
        const bool scheduled = !summary.schedule_targets.empty();
        // Per channel the fp16 channel_scale; per product, with schedules, the two budgets
        // around the target.
        const int per_product = scheduled ? 2 * int(sizeof(float)) : 0;
        for (float b : grinqh_bits) {
          if (b > float(summary.bits)) continue;
          add_graded(backend, b, {scheduled ? "grinqh-sched" : "grinqh-file", path, b, 0, footprint, {}},
                     sizeof(uint16_t), per_product);
        }
      }
      file_models.push_back(std::move(file_model));
    }
  }
  for (auto& v : variants) {
    const BaselineOptions& m = v->options();
    if (m.method != "grinqh") {
      const double bits = FixedWidthBits(model->weights(), model->config(), m.bits, m.group_size).bits();
      add_fixed(v->backend(), {m.method, "", double(m.bits), bits, bits, {}});
      continue;
    }
    const double footprint = NestedFootprintBits(v->weights(), model->config(), v->grading_table_bytes()).bits();
    const int per_channel = m.grading == "gains" ? m.bits * int(sizeof(float)) : int(sizeof(uint16_t));
    const int per_product = m.grading == "curve" ? m.bits * int(sizeof(float)) : 0;
    for (float b : grinqh_bits) {
      const std::string label = m.grading == "statistic" ? m.method : "grinqh-" + m.grading;
      add_graded(v->backend(), b, {label, "", b, 0, footprint, {}}, per_channel, per_product);
    }
  }
  const int vocab = model->config().vocab_size;
  std::vector<float> reference, candidate;
  std::vector<ForwardStats> read;
  for (size_t w = 0; w < eval_windows.size(); ++w) {
    auto cache = model->backend().NewCache();
    const ForwardItem item{cache.get(), eval_windows[w], Logits::kAll};
    GRINQH_RETURN_IF_ERROR(model->backend().Forward({&item, 1}, reference));
    ScoreWindow(reference, reference, eval_windows[w], vocab, rows[0].stats);
    for (Candidate& c : candidates) {
      auto candidate_cache = c.backend->NewCache();
      // Decode emulated everywhere: every position is graded from its own activations.
      const ForwardItem candidate_item{candidate_cache.get(), eval_windows[w], Logits::kAll, c.target_bits};
      GRINQH_RETURN_IF_ERROR(c.backend->Forward({&candidate_item, 1}, candidate, &read));
      c.reads += read[0];
      ScoreWindow(reference, candidate, eval_windows[w], vocab, rows[c.row].stats);
    }
    Progress(absl::StrCat("evaluating ", eval_windows.size(), " windows of ", ctx), double(w + 1) / double(eval_windows.size()));
  }
  for (const Candidate& c : candidates) {
    if (!c.graded) continue;
    rows[c.row].effective_bits =
        GradedReadBits(c.reads, c.metadata_bytes_per_channel, c.metadata_bytes_per_product).bits();
    rows[c.row].plane_bits = 8.0 * double(c.reads.plane_bytes) / double(c.reads.weights);
  }
  WriteOutputs(rows, flags);
  return absl::OkStatus();
}

}  // namespace

const Command& EvalCommand() {
  static const Command command{
      {"eval",
       "quality of quantized variants against the model (PPL, KLD, top-1)",
       {{"reference", "DIR", "the Hugging Face model the variants are compared with (required)"},
        {"text", "FILE", "the evaluation text (required)"},
        {"model", "A.grinqh,B.grinqh", ".grinqh files to evaluate as they are stored"},
        {"methods", "LIST", "variants to quantize, e.g. rtn:4,gptq:3,awq:2,grinqh:8,grinqh-gains:8,grinqh-curve:8"},
        {"bits", "LIST", "GRINQH decode targets, in bits per weight (2,2.5,3,4)"},
        {"calib", "FILE", "calibration text (for gptq, awq and schedules)"},
        {"ctx", "N", "tokens per window (512)"},
        {"windows", "N", "evaluation windows at most (128)"},
        {"calib-windows", "N", "calibration windows at most (64)"},
        {"group-size", "N", "quantization group size (128)"},
        kThreadsFlag,
        kBackendFlag,
        {"json", "FILE", "write the results as JSON"},
        {"csv", "FILE", "write the results as CSV"}}},
      RunEval};
  return command;
}

}  // namespace grinqh
