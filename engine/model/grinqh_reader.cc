// Reading a .grinqh file (docs/FORMAT.md) as a Model: Model::Load's .grinqh path.
#include "engine/model/grinqh_model.h"

#include <cmath>
#include <map>

#include "absl/strings/str_cat.h"
#include "engine/backends/cpu/cpu_backend.h"
#include "engine/model/model.h"
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
    const double n = double(linears[i].matrix->rows) * linears[i].matrix->cols;
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

absl::StatusOr<std::unique_ptr<Model>> Model::LoadGrinqh(const std::filesystem::path& path,
                                                         const ModelOptions& options) {
  std::unique_ptr<Model> model(new Model());
  model->options_ = options;
  GRINQH_ASSIGN_OR_RETURN(model->grinqh_file_, GrinqhFile::Open(path));
  const GrinqhFile& file = *model->grinqh_file_;
  const auto context = [&](const absl::Status& s) { return WithContext(s, path.string()); };

  auto summary = ParseQuantization(file);
  if (!summary.ok()) return context(summary.status());
  const int group_size = summary->group_size;
  model->group_size_ = group_size;
  const int code_bits = summary->graded() ? kCodeBits : summary->bits;  // a baseline stores its N-bit codes
  // A fixed-width baseline decodes at its full width only: no graded reads.
  model->max_decode_bits_ = summary->graded() ? summary->bits : 0;

  const std::optional<std::string> config_text = file.Section("config");
  if (!config_text) return context(absl::InvalidArgumentError("no \"config\" section"));
  auto config = ModelConfig::FromJson(*config_text, file.Section("generation_config").value_or(""));
  if (!config.ok()) return context(config.status());
  model->config_ = *config;
  if (auto tokenizer_text = file.SectionString("tokenizer"); tokenizer_text.ok()) {
    auto tokenizer = Tokenizer::FromJson(*tokenizer_text, file.Section("tokenizer_config").value_or(""));
    if (!tokenizer.ok()) return context(tokenizer.status());
    model->tokenizer_ = *std::move(tokenizer);
  }

  // Plain tensors are read in place; a quantized layer is presented to LoadWeights as its
  // full-depth weights (for prefill, and every step of a baseline), dequantized once here.
  Model& m = *model;
  std::map<std::string, BitPlaneView> stores;  // by weight name: graded layers view them again below
  const auto lookup = [&](const std::string& name) -> absl::StatusOr<TensorView> {
    if (const GrinqhTensor* t = file.Find(name)) {
      if (!IsFloat(t->dtype)) return absl::InvalidArgumentError(absl::StrCat("tensor \"", name, "\" is not a float tensor"));
      return TensorView{name, t->dtype, t->shape, t->data, t->nbytes};
    }
    const std::string prefix = GrinqhLayerPrefix(name);
    GRINQH_ASSIGN_OR_RETURN(const BitPlaneView planes, file.BitPlanes(prefix, group_size, code_bits));
    stores[name] = planes;
    GRINQH_ASSIGN_OR_RETURN(std::vector<float> dense, DequantizeLevel(planes, planes.shape.stored_planes));
    if (const GrinqhTensor* s = file.Find(prefix + ".input_scale")) {  // AWQ: W = dequant(q) · diag(1/s)
      const int cols = planes.shape.cols;
      if (s->dtype != DType::kF32 || s->shape != std::vector<int64_t>{cols}) {
        return absl::InvalidArgumentError(absl::StrCat("tensor \"", prefix, ".input_scale\" must be F32 [", cols, "]"));
      }
      const auto scale = s->as<float>();
      for (size_t i = 0; i < dense.size(); ++i) dense[i] /= scale[i % static_cast<size_t>(cols)];
    }
    m.full_depth_.push_back(std::move(dense));
    const auto& stored = m.full_depth_.back();
    return TensorView{name, DType::kF32, {planes.shape.rows, planes.shape.cols},
                      reinterpret_cast<const std::byte*>(stored.data()), stored.size() * sizeof(float)};
  };
  auto weights = LoadWeights(lookup, m.config_);
  if (!weights.ok()) return context(weights.status());
  m.weights_ = *std::move(weights);

  if (summary->graded()) {
    const std::vector<LinearLayerRef> linears = LinearLayers(m.weights_, m.config_);
    auto schedules = ParseSchedules(file, linears, summary->bits);
    if (!schedules.ok()) return context(schedules.status());
    for (size_t i = 0; i < linears.size(); ++i) {
      const LinearLayerRef& l = linears[i];
      const auto store = stores.find(l.name);
      if (store == stores.end()) {  // stored as a plain tensor: nothing to grade
        return context(absl::NotFoundError(absl::StrCat("layer \"", l.name, "\" has no bit planes (",
                                                        GrinqhLayerPrefix(l.name), ".planes)")));
      }
      auto nested = std::make_unique<NestedLinear>();
      nested->planes = store->second;
      const std::string scale_name = GrinqhLayerPrefix(l.name) + ".channel_scale";
      auto scale = file.Get(scale_name);
      if (!scale.ok()) return context(scale.status());
      if ((*scale)->dtype != DType::kF16 || (*scale)->shape != std::vector<int64_t>{l.matrix->cols}) {
        return context(absl::InvalidArgumentError(
            absl::StrCat("tensor \"", scale_name, "\" must be F16 [", l.matrix->cols, "]")));
      }
      const auto values = (*scale)->as<uint16_t>();
      nested->channel_scale.assign(values.begin(), values.end());
      nested->schedule = std::move((*schedules)[i]);
      l.matrix->nested = nested.get();
      m.nested_.push_back(std::move(nested));
    }
  }
  GRINQH_ASSIGN_OR_RETURN(m.backend_, CpuBackend::Create(m.config_, m.weights_, options.num_threads));
  return model;
}

}  // namespace grinqh
