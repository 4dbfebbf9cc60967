// `grinqh quantize`: a Hugging Face checkpoint in, a .grinqh file out (docs/FORMAT.md).
#include <set>

#include "absl/strings/str_cat.h"
#include "engine/quant/awq.h"
#include "engine/quant/bit_planes.h"
#include "engine/base/file_util.h"
#include "engine/base/json.h"
#include "engine/model/grinqh_file.h"
#include "engine/quant/gptq.h"
#include "engine/calibration/grinqh_writer.h"
#include "engine/serving/model.h"
#include "engine/quant/quant.h"
#include "engine/base/status_macros.h"

namespace grinqh {
namespace {

using json = nlohmann::json;

absl::StatusOr<std::string> ReadOptional(const std::filesystem::path& path) {
  if (!std::filesystem::exists(path)) return std::string();
  return ReadFileToString(path);
}

template <typename T>
std::span<const std::byte> Bytes(const std::vector<T>& v) { return std::as_bytes(std::span(v)); }

// Config (the LM head untied: it is stored quantized on its own), tokenizer, generation config.
absl::Status AddModelSections(const std::filesystem::path& hf_dir, GrinqhFileWriter& writer) {
  GRINQH_ASSIGN_OR_RETURN(const std::string config_text, ReadFileToString(hf_dir / "config.json"));
  GRINQH_ASSIGN_OR_RETURN(json config, ParseStrictJson(config_text, "config.json"));
  if (!config.is_object()) return absl::InvalidArgumentError("config.json is not a JSON object");
  config["tie_word_embeddings"] = false;
  GRINQH_RETURN_IF_ERROR(writer.SetSection("config", config.dump()));
  GRINQH_ASSIGN_OR_RETURN(const std::string generation, ReadOptional(hf_dir / "generation_config.json"));
  if (!generation.empty()) GRINQH_RETURN_IF_ERROR(writer.SetSection("generation_config", generation));
  GRINQH_ASSIGN_OR_RETURN(const std::string tokenizer, ReadOptional(hf_dir / "tokenizer.json"));
  if (!tokenizer.empty()) GRINQH_RETURN_IF_ERROR(writer.SetSectionString("tokenizer", tokenizer));
  GRINQH_ASSIGN_OR_RETURN(const std::string tokenizer_config, ReadOptional(hf_dir / "tokenizer_config.json"));
  if (!tokenizer_config.empty()) GRINQH_RETURN_IF_ERROR(writer.SetSection("tokenizer_config", tokenizer_config));
  return absl::OkStatus();
}

// Everything not quantized (embedding, norms) as the checkpoint stores it, by reference:
// the checkpoint stays mapped until the file is written.
absl::Status AddPlainTensors(const Checkpoint& checkpoint, const std::set<std::string>& quantized,
                             GrinqhFileWriter& writer) {
  for (const std::string& name : checkpoint.Names()) {
    if (quantized.count(name) || name == "lm_head.weight") continue;
    GRINQH_ASSIGN_OR_RETURN(const TensorView t, checkpoint.Get(name));
    GRINQH_RETURN_IF_ERROR(writer.AddTensor(name, t.dtype, t.shape, {t.data, t.nbytes},
                                            GrinqhFileWriter::Storage::kReference));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::vector<int32_t>>> CalibrationWindows(const Model& model,
                                                                     const GrinqhQuantizeOptions& options) {
  if (options.calib.empty()) return std::vector<std::vector<int32_t>>();
  if (model.tokenizer() == nullptr) return absl::FailedPreconditionError("calibration needs the model's tokenizer");
  GRINQH_ASSIGN_OR_RETURN(auto windows, TextWindows(model, options.calib, options.window_tokens, options.calib_windows));
  if (windows.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(options.calib.string(), " is shorter than one window of ",
                                                   options.window_tokens, " tokens"));
  }
  return windows;
}

json CalibrationText(const GrinqhQuantizeOptions& options, size_t windows) {
  return {{"text", options.calib.filename().string()},
          {"windows", windows},
          {"window_tokens", options.window_tokens},
          {"special_tokens_added", false}};
}

// What every file's quantization section says of its store, GRINQH or baseline (whose
// codes are max_bits wide, all kept).
json StoreJson(const std::string& method, int max_bits, int group_size) {
  return {{"method", method},
          {"code_bits", method == "grinqh" ? kCodeBits : max_bits},
          {"max_bits", max_bits},
          {"group_size", group_size},
          {"tile_rows", kGrinqhTileRows},  // or a smaller matrix's own height
          {"scale_format", "fp16"},
          {"zero_format", "u8 integer code"}};
}

// The "schedules" section: per layer, its budget at each fitted model-wide target.
json SchedulesJson(const ScheduleFit& fit) {
  json layers = json::object();
  for (const LayerFit& l : fit.layers) layers[GrinqhLayerPrefix(l.name)] = l.budgets;
  return {{"model_targets", fit.model_targets},
          {"rule", "per-layer budgets minimizing the sum over layers of sensitivity x graded output error, "
                   "weight-count-weighted average = target; linear between targets, proportional below the first"},
          {"layers", layers}};
}

// The "calibration" section: what the schedules were fitted on and what was measured.
json CalibrationJson(const ScheduleFit& fit, const GrinqhQuantizeOptions& options) {
  json c = CalibrationText(options, static_cast<size_t>(fit.windows));
  json layers = json::object();
  for (const LayerFit& l : fit.layers) {
    layers[GrinqhLayerPrefix(l.name)] = {{"weights", l.weights},
                                         {"output_error", l.error},
                                         {"probe_error", l.probe_error},
                                         {"probe_kld", l.probe_kld},
                                         {"sensitivity", l.sensitivity}};
  }
  c["rows_sampled_per_layer"] = fit.rows_sampled;
  c["budget_grid"] = fit.grid;
  c["sensitivity_windows"] = fit.sensitivity_windows;
  c["probe"] = absl::StrCat("rtn-", options.schedule.probe_bits);
  c["seconds"] = fit.seconds;
  c["layers"] = layers;
  return c;
}

// What the writer references until the file is written.
struct Stores {
  std::vector<BitPlaneMatrix> planes;
  std::vector<std::vector<uint16_t>> channel_scales;  // grinqh: the grading statistics
  std::vector<PlaneWeights> nested;  // grinqh: the views and statistics the schedule fit reads
  std::vector<std::vector<float>> vectors;  // baselines: AWQ's input scales
};

// GRINQH: nested 8-bit codes per layer, the grading statistic, and (with calibration
// text) the per-layer schedules.
absl::Status QuantizeGrinqh(const Model& model, const GrinqhQuantizeOptions& options, GrinqhFileWriter& writer,
                            Stores& stores, std::set<std::string>& quantized, const ProgressFn& progress) {
  ModelWeights weights = model.weights();
  const std::vector<LinearLayerRef> linears = LinearLayers(weights, model.config());
  stores.planes.resize(linears.size());
  stores.channel_scales.resize(linears.size());
  stores.nested.resize(linears.size());
  for (size_t i = 0; i < linears.size(); ++i) {
    const LinearWeights& w = *linears[i].weights;
    GRINQH_ASSIGN_OR_RETURN(NestedStore store,
                            QuantizeNested(w.ToFloat(), w.rows(), w.cols(), options.group_size, options.max_bits));
    stores.planes[i] = std::move(store.planes);
    stores.channel_scales[i] = std::move(store.channel_scale);
    PlaneWeights& nested = stores.nested[i];
    nested.planes = stores.planes[i].view();
    nested.channel_scale = stores.channel_scales[i];
    const std::string prefix = GrinqhLayerPrefix(linears[i].name);
    GRINQH_RETURN_IF_ERROR(writer.AddBitPlanes(prefix, stores.planes[i], GrinqhFileWriter::Storage::kReference));
    GRINQH_RETURN_IF_ERROR(writer.AddTensor(prefix + ".channel_scale", DType::kF16, {w.cols()},
                                            Bytes(stores.channel_scales[i]), GrinqhFileWriter::Storage::kReference));
    quantized.insert(linears[i].name);
    if (progress) progress("quantizing", double(i + 1) / double(linears.size()));
  }
  json quantization = StoreJson("grinqh", options.max_bits, options.group_size);
  quantization.update({{"codes", "round-to-nearest"},
                       {"grading", "water-filling on |x_k| * channel_scale_k"},
                       {"channel_statistic", "column norm of the full-depth weights"},
                       {"budgets", "uniform"}});
  GRINQH_ASSIGN_OR_RETURN(const auto windows, CalibrationWindows(model, options));
  if (!windows.empty()) {
    std::vector<const PlaneWeights*> views;
    for (const PlaneWeights& n : stores.nested) views.push_back(&n);
    ScheduleFitOptions schedule = options.schedule;
    schedule.num_threads = options.num_threads;
    GRINQH_ASSIGN_OR_RETURN(const ScheduleFit fit, FitSchedules(model, views, windows, schedule, progress));
    GRINQH_RETURN_IF_ERROR(writer.SetSection("schedules", SchedulesJson(fit).dump()));
    GRINQH_RETURN_IF_ERROR(writer.SetSection("calibration", CalibrationJson(fit, options).dump()));
    quantization["budgets"] = "calibrated per-layer schedules";
  }
  return writer.SetSection("quantization", quantization.dump());
}

// A fixed-width baseline, layer by layer as QuantizedVariant computes it (so the file and
// the in-memory variant agree exactly), each layer's codes in a store of depth `bits`.
absl::Status QuantizeBaseline(const Model& model, const GrinqhQuantizeOptions& options, GrinqhFileWriter& writer,
                              Stores& stores, std::set<std::string>& quantized, const ProgressFn& progress) {
  if (options.bits < 1 || options.bits > 8) {
    return absl::InvalidArgumentError(absl::StrCat("--bits must be in [1, 8] for ", options.method, ", got ",
                                                   options.bits));
  }
  GRINQH_ASSIGN_OR_RETURN(const auto windows, CalibrationWindows(model, options));
  BaselineOptions baseline;
  baseline.method = options.method;
  baseline.bits = options.bits;
  baseline.group_size = options.group_size;
  ModelWeights weights = model.weights();
  const size_t layers = LinearLayers(weights, model.config()).size();
  stores.planes.reserve(layers);  // the writer references elements: no reallocation
  stores.vectors.reserve(layers);
  const auto sink = [&](const LinearLayerRef& layer, const quant::QuantizedMatrix& q,
                        std::span<const float> input_scales) -> absl::Status {
    if (stores.planes.size() == layers) return absl::InternalError("more quantized layers than linear layers");
    GRINQH_ASSIGN_OR_RETURN(BitPlaneMatrix packed, PackBitPlanes(q, GrinqhTileRows(q.rows)));
    const std::string prefix = GrinqhLayerPrefix(layer.name);
    stores.planes.push_back(std::move(packed));
    GRINQH_RETURN_IF_ERROR(writer.AddBitPlanes(prefix, stores.planes.back(), GrinqhFileWriter::Storage::kReference));
    if (!input_scales.empty()) {
      stores.vectors.emplace_back(input_scales.begin(), input_scales.end());
      GRINQH_RETURN_IF_ERROR(writer.AddTensor(prefix + ".input_scale", DType::kF32, {q.cols},
                                              Bytes(stores.vectors.back()), GrinqhFileWriter::Storage::kReference));
    }
    quantized.insert(layer.name);
    return absl::OkStatus();
  };
  GRINQH_ASSIGN_OR_RETURN(auto variant, QuantizedVariant::Create(model, baseline, windows, progress, sink));
  variant.reset();
  if (quantized.size() != layers) return absl::InternalError("a linear layer was not quantized");

  json quantization = StoreJson(options.method, options.bits, options.group_size);
  quantization.update({{"bits", options.bits},
                       {"codes", absl::StrCat(options.method, " codes q of ", options.bits, " bits, stored as q << ",
                                              8 - options.bits, "; full depth reads scale * (q - zero)")},
                       {"decode", "full depth only"}});
  if (options.method == "gptq") {
    const GptqOptions gptq;
    quantization["gptq"] = {{"damp", gptq.damp}, {"block_size", gptq.block_size}, {"act_order", gptq.act_order}};
  } else if (options.method == "awq") {
    const AwqOptions awq;
    quantization["awq"] = {{"grid", awq.grid}, {"clip_search", awq.clip_search}, {"clip_grid", awq.clip_grid},
                           {"max_shrink", awq.max_shrink},
                           {"input_scale", "each layer's input channels are divided by input_scale"}};
  }
  GRINQH_RETURN_IF_ERROR(writer.SetSection("quantization", quantization.dump()));
  if (!windows.empty()) {
    GRINQH_RETURN_IF_ERROR(writer.SetSection("calibration", CalibrationText(options, windows.size()).dump()));
  }
  return absl::OkStatus();
}

}  // namespace


absl::Status QuantizeToGrinqhFile(const std::filesystem::path& hf_dir, GrinqhQuantizeOptions options,
                                  const std::filesystem::path& out, const ProgressFn& progress) {
  const bool grinqh = options.method == "grinqh";
  if (options.group_size == 0) options.group_size = grinqh ? kGrinqhGroupSize : kBaselineGroupSize;
  if (!grinqh && options.method != "rtn" && options.method != "gptq" && options.method != "awq") {
    return absl::InvalidArgumentError(absl::StrCat("unknown method '", options.method, "' (grinqh, rtn, gptq or awq)"));
  }
  if (options.max_bits < 1 || options.max_bits > 8) {
    return absl::InvalidArgumentError(absl::StrCat("--max-bits must be in [1, 8], got ", options.max_bits));
  }
  if (options.group_size < 1) return absl::InvalidArgumentError("--group-size must be positive");
  if (!grinqh && options.method != "rtn" && options.calib.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(options.method, " needs calibration text (--calib)"));
  }
  GRINQH_ASSIGN_OR_RETURN(std::unique_ptr<Model> model, Model::Load(hf_dir, {.num_threads = options.num_threads}));
  GRINQH_ASSIGN_OR_RETURN(std::unique_ptr<Checkpoint> checkpoint, Checkpoint::Open(hf_dir));
  GrinqhFileWriter writer;
  Stores stores;
  std::set<std::string> quantized;
  GRINQH_RETURN_IF_ERROR(grinqh ? QuantizeGrinqh(*model, options, writer, stores, quantized, progress)
                                : QuantizeBaseline(*model, options, writer, stores, quantized, progress));
  GRINQH_RETURN_IF_ERROR(AddPlainTensors(*checkpoint, quantized, writer));
  GRINQH_RETURN_IF_ERROR(AddModelSections(hf_dir, writer));
  if (progress) progress("writing", 1.0);
  return writer.Write(out);
}

}  // namespace grinqh
