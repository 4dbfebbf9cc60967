// Reading a .grinqh file (docs/FORMAT.md): its summary, and LoadModelFiles's .grinqh path.
#include "engine/model/grinqh_model.h"

#include <cmath>
#include <map>

#include "absl/strings/str_cat.h"
#include "engine/model/model_files.h"
#include "engine/base/json.h"
#include "engine/base/status_macros.h"

namespace grinqh {
namespace {

using json = nlohmann::json;

// The "quantization" section: a method this reader knows, with integer group_size and
// max_bits (and bits, = max_bits, for a fixed-width baseline).
absl::StatusOr<GrinqhFileSummary> ParseQuantization(const GrinqhFile& file) {
  // The file parsed its sections strictly; a missing one parses to null, refused below.
  const json q = ParseStrictJson(file.Section("quantization").value_or(""), "quantization").value_or(json());
  const auto integer = [&](const char* key) { return q.contains(key) && q[key].is_number_integer(); };
  if (!q.is_object() || !integer("group_size") || !integer("max_bits")) {
    return absl::InvalidArgumentError(
        "the \"quantization\" section must give a method with integer group_size and max_bits");
  }
  GrinqhFileSummary summary;
  summary.method = q.value("method", "");
  summary.group_size = q["group_size"].get<int>();
  summary.bits = q["max_bits"].get<int>();
  if (summary.method != "grinqh" && summary.method != "rtn" && summary.method != "gptq" && summary.method != "awq") {
    return absl::InvalidArgumentError(absl::StrCat("quantization method \"", summary.method,
                                                   "\" is not one this reader knows (grinqh, rtn, gptq, awq)"));
  }
  if (!summary.graded() && (!integer("bits") || q["bits"].get<int>() != summary.bits)) {
    return absl::InvalidArgumentError(
        absl::StrCat("a ", summary.method, " file must give integer bits equal to max_bits"));
  }
  if (summary.group_size < 1 || summary.bits < 1 || summary.bits > 8) {
    return absl::InvalidArgumentError("group_size must be positive and max_bits in [1, 8]");
  }
  return summary;
}

// The "schedules" section, as each layer's LayerSchedule (empty when the file has none).
// Refused unless it covers every layer with one budget in (0, max_bits] per ascending
// target, and every target's budgets average to that target over the weights.
absl::StatusOr<std::vector<LayerSchedule>> ParseSchedules(const GrinqhFile& file,
                                                         const std::vector<LinearLayerRef>& linears, int max_bits) {
  std::vector<LayerSchedule> schedules(linears.size());
  const std::optional<std::string> text = file.Section("schedules");
  if (!text) return schedules;
  const json s = ParseStrictJson(*text, "schedules").value_or(json());
  const auto bad = [](const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat("\"schedules\": ", why));
  };
  if (!s.is_object() || !s.contains("model_targets") || !s["model_targets"].is_array() || !s.contains("layers") ||
      !s["layers"].is_object() || s["model_targets"].empty()) {
    return bad("needs a non-empty array model_targets and an object layers");
  }
  std::vector<float> targets;
  for (const json& t : s["model_targets"]) {
    if (!t.is_number() || !(t.get<double>() > 0 && t.get<double>() <= max_bits) ||
        (!targets.empty() && !(t.get<float>() > targets.back()))) {
      return bad(absl::StrCat("model_targets must ascend within (0, ", max_bits, "]"));
    }
    targets.push_back(t.get<float>());
  }
  std::vector<double> weighted(targets.size(), 0.0);
  double total = 0;
  for (size_t i = 0; i < linears.size(); ++i) {
    const std::string name = GrinqhLayerPrefix(linears[i].name);
    const auto it = s["layers"].find(name);
    if (it == s["layers"].end() || !it->is_array() || it->size() != targets.size()) {
      return bad(absl::StrCat("layer \"", name, "\" needs one budget per model target"));
    }
    const double n = double(linears[i].weights->rows()) * linears[i].weights->cols();
    total += n;
    schedules[i].model_targets = targets;
    for (size_t t = 0; t < targets.size(); ++t) {
      const json& b = (*it)[t];
      if (!b.is_number() || !(b.get<double>() > 0 && b.get<double>() <= max_bits)) {
        return bad(absl::StrCat("layer \"", name, "\": budgets must lie in (0, ", max_bits, "]"));
      }
      schedules[i].budgets.push_back(b.get<float>());
      weighted[t] += n * b.get<double>();
    }
  }
  for (size_t t = 0; t < targets.size(); ++t) {
    if (std::abs(weighted[t] / total - targets[t]) > 1e-3) {
      return bad(absl::StrCat("at target ", targets[t], " the budgets average ", weighted[t] / total));
    }
  }
  return schedules;
}

}  // namespace

std::string GrinqhLayerPrefix(const std::string& weight_name) {
  return weight_name.substr(0, weight_name.rfind(".weight"));
}

absl::StatusOr<GrinqhFileSummary> ReadGrinqhSummary(const std::filesystem::path& path) {
  auto file = GrinqhFile::Open(path, /*verify_checksums=*/false);
  if (!file.ok()) return file.status();
  auto summary = ParseQuantization(**file);
  if (!summary.ok()) return WithContext(summary.status(), path.string());
  const json s = ParseStrictJson((*file)->Section("schedules").value_or("{}"), "schedules").value_or(json());
  if (s.is_object() && s.contains("model_targets") && s["model_targets"].is_array()) {
    for (const json& t : s["model_targets"]) {
      if (t.is_number()) summary->schedule_targets.push_back(t.get<float>());
    }
  }
  return summary;
}

absl::StatusOr<std::unique_ptr<ModelFiles>> LoadGrinqhFiles(const std::filesystem::path& path) {
  auto model = std::make_unique<ModelFiles>();
  GRINQH_ASSIGN_OR_RETURN(model->grinqh_file, GrinqhFile::Open(path));
  const GrinqhFile& file = *model->grinqh_file;
  const auto context = [&](const absl::Status& s) { return WithContext(s, path.string()); };

  auto summary = ParseQuantization(file);
  if (!summary.ok()) return context(summary.status());
  const int group_size = summary->group_size;
  model->group_size = group_size;
  const int code_bits = summary->graded() ? kCodeBits : summary->bits;  // a baseline stores its N-bit codes
  // A fixed-width baseline decodes at its full width only: no graded reads.
  model->max_decode_bits = summary->graded() ? summary->bits : 0;

  const std::optional<std::string> config_text = file.Section("config");
  if (!config_text) return context(absl::InvalidArgumentError("no \"config\" section"));
  auto config = ModelConfig::FromJson(*config_text, file.Section("generation_config").value_or(""));
  if (!config.ok()) return context(config.status());
  model->config = *config;
  if (auto tokenizer_text = file.SectionString("tokenizer"); tokenizer_text.ok()) {
    auto tokenizer = Tokenizer::FromJson(*tokenizer_text, file.Section("tokenizer_config").value_or(""));
    if (!tokenizer.ok()) return context(tokenizer.status());
    model->tokenizer = *std::move(tokenizer);
  }

  // Plain tensors are read in place; a quantized layer is its planes as stored, with the
  // grading statistic (GRINQH) or AWQ's input scales beside them. Backends prepare their own
  // copies (the CPU backend's fp32 full-depth weights, a GPU's uploaded planes).
  ModelFiles& m = *model;
  const auto lookup = [&](const std::string& name) -> absl::StatusOr<TensorView> {
    if (const GrinqhTensor* t = file.Find(name)) {
      if (!IsFloat(t->dtype)) return absl::InvalidArgumentError(absl::StrCat("tensor \"", name, "\" is not a float tensor"));
      return TensorView{name, t->dtype, t->shape, t->data, t->nbytes};
    }
    return absl::NotFoundError(absl::StrCat("no tensor \"", name, "\""));
  };
  const auto planes = [&](const std::string& name) -> absl::StatusOr<std::optional<PlaneWeights>> {
    if (file.Find(name) != nullptr) return std::nullopt;  // a plain tensor
    const std::string prefix = GrinqhLayerPrefix(name);
    PlaneWeights w;
    GRINQH_ASSIGN_OR_RETURN(w.planes, file.BitPlanes(prefix, group_size, code_bits));
    const int cols = w.planes.shape.cols;
    if (summary->graded()) {
      const std::string scale_name = prefix + ".channel_scale";
      GRINQH_ASSIGN_OR_RETURN(const GrinqhTensor* scale, file.Get(scale_name));
      if (scale->dtype != DType::kF16 || scale->shape != std::vector<int64_t>{cols}) {
        return absl::InvalidArgumentError(absl::StrCat("tensor \"", scale_name, "\" must be F16 [", cols, "]"));
      }
      w.channel_scale = scale->as<uint16_t>();
    }
    if (const GrinqhTensor* s = file.Find(prefix + ".input_scale")) {  // AWQ: W = dequant(q) · diag(1/s)
      if (s->dtype != DType::kF32 || s->shape != std::vector<int64_t>{cols}) {
        return absl::InvalidArgumentError(absl::StrCat("tensor \"", prefix, ".input_scale\" must be F32 [", cols, "]"));
      }
      w.input_scale = s->as<float>();
    }
    return w;
  };
  auto weights = LoadWeights(lookup, m.config, planes);
  if (!weights.ok()) return context(weights.status());
  m.weights = *std::move(weights);

  if (summary->graded()) {
    const std::vector<LinearLayerRef> linears = LinearLayers(m.weights, m.config);
    auto schedules = ParseSchedules(file, linears, summary->bits);
    if (!schedules.ok()) return context(schedules.status());
    for (size_t i = 0; i < linears.size(); ++i) {
      auto* stored = std::get_if<PlaneWeights>(&linears[i].weights->stored);
      if (stored == nullptr) {  // stored as a plain tensor: nothing to grade
        return context(absl::NotFoundError(absl::StrCat("layer \"", linears[i].name, "\" has no bit planes (",
                                                        GrinqhLayerPrefix(linears[i].name), ".planes)")));
      }
      stored->schedule = std::move((*schedules)[i]);
    }
  }
  std::vector<std::string> names;
  for (const auto& [name, tensor] : file.tensors()) names.push_back(name);
  GRINQH_RETURN_IF_ERROR(context(CheckModelFiles(m, names)));
  return model;
}

}  // namespace grinqh
