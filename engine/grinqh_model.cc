#include "engine/grinqh_model.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "engine/bit_plane_matvec.h"
#include "engine/calibration.h"
#include "engine/cpu_backend.h"
#include "engine/file_util.h"
#include "engine/model.h"
#include "engine/quant.h"
#include "engine/status_macros.h"
#include "nlohmann/json.hpp"

namespace grinqh {
namespace {

using json = nlohmann::json;

constexpr char kMethod[] = "grinqh";

// "model.layers.0.mlp.up_proj.weight" → "model.layers.0.mlp.up_proj"
std::string Prefix(const std::string& weight_name) { return weight_name.substr(0, weight_name.rfind(".weight")); }

absl::StatusOr<std::string> ReadOptional(const std::filesystem::path& path) {
  if (!std::filesystem::exists(path)) return std::string();
  return ReadFileToString(path);
}

std::span<const std::byte> Bytes(const std::vector<float>& v) {
  return std::as_bytes(std::span<const float>(v));
}

}  // namespace

absl::Status QuantizeToGrinqhFile(const std::filesystem::path& hf_dir, const GrinqhQuantizeOptions& options,
                                  const std::filesystem::path& out,
                                  const std::function<void(const std::string&, double)>& progress) {
  if (options.max_bits < 1 || options.max_bits > 8) {
    return absl::InvalidArgumentError(absl::StrCat("--max-bits must be in [1, 8], got ", options.max_bits));
  }
  if (options.group_size < 1) return absl::InvalidArgumentError("--group-size must be positive");
  GRINQH_ASSIGN_OR_RETURN(std::unique_ptr<Model> model, Model::Load(hf_dir, {.num_threads = 1}));
  GRINQH_ASSIGN_OR_RETURN(std::unique_ptr<Checkpoint> checkpoint, Checkpoint::Open(hf_dir));
  ModelWeights weights = model->weights();
  const std::vector<LinearLayerRef> linears = LinearLayers(weights, model->config());

  GrinqhFileWriter writer;
  std::set<std::string> quantized;
  for (size_t i = 0; i < linears.size(); ++i) {
    const LinearLayerRef& l = linears[i];
    const Matrix& m = *l.matrix;
    const std::vector<float> w = WidenToFloat(m);
    const quant::QuantizedMatrix q = quant::QuantizeRtn(w, m.rows, m.cols, 8, options.group_size);
    GRINQH_ASSIGN_OR_RETURN(const BitPlaneMatrix planes, PackBitPlanes(q, kGrinqhTileRows, options.max_bits));
    const std::string prefix = Prefix(l.name);
    GRINQH_RETURN_IF_ERROR(writer.AddBitPlanes(prefix, planes));
    const std::vector<float> scale = ColumnNorms(q.DequantizeLevel(options.max_bits), m.rows, m.cols);
    GRINQH_RETURN_IF_ERROR(writer.AddTensor(prefix + ".channel_scale", GrinqhDType::kF32, {m.cols}, Bytes(scale)));
    quantized.insert(l.name);
    if (progress) progress("quantizing", double(i + 1) / double(linears.size()));
  }
  // Everything else (embedding, norms) as the checkpoint stores it.
  for (const std::string& name : checkpoint->Names()) {
    if (quantized.count(name) || name == "lm_head.weight") continue;
    GRINQH_ASSIGN_OR_RETURN(const TensorView t, checkpoint->Get(name));
    GRINQH_RETURN_IF_ERROR(writer.AddTensor(name, ToGrinqhDType(t.dtype), t.shape, {t.data, t.nbytes},
                                            GrinqhFileWriter::Storage::kReference));
  }

  GRINQH_ASSIGN_OR_RETURN(const std::string config_text, ReadFileToString(hf_dir / "config.json"));
  json config = json::parse(config_text, nullptr, /*allow_exceptions=*/false);
  if (!config.is_object()) return absl::InvalidArgumentError("config.json is not a JSON object");
  config["tie_word_embeddings"] = false;  // the LM head is stored (quantized) on its own
  GRINQH_RETURN_IF_ERROR(writer.SetSection("config", config.dump()));
  GRINQH_ASSIGN_OR_RETURN(const std::string generation, ReadOptional(hf_dir / "generation_config.json"));
  if (!generation.empty()) GRINQH_RETURN_IF_ERROR(writer.SetSection("generation_config", generation));
  GRINQH_ASSIGN_OR_RETURN(const std::string tokenizer, ReadOptional(hf_dir / "tokenizer.json"));
  if (!tokenizer.empty()) GRINQH_RETURN_IF_ERROR(writer.SetSectionString("tokenizer", tokenizer));
  GRINQH_ASSIGN_OR_RETURN(const std::string tokenizer_config, ReadOptional(hf_dir / "tokenizer_config.json"));
  if (!tokenizer_config.empty()) GRINQH_RETURN_IF_ERROR(writer.SetSection("tokenizer_config", tokenizer_config));
  const json quantization = {{"method", kMethod},
                             {"code_bits", 8},
                             {"max_bits", options.max_bits},
                             {"group_size", options.group_size},
                             {"tile_rows", kGrinqhTileRows},
                             {"scale_format", "fp16"},
                             {"zero_format", "fp16"},
                             {"codes", "round-to-nearest"},
                             {"grading", "water-filling on |x_k| * channel_scale_k"},
                             {"channel_statistic", "column norm of the full-depth weights"}};
  GRINQH_RETURN_IF_ERROR(writer.SetSection("quantization", quantization.dump()));
  if (progress) progress("writing", 1.0);
  return writer.Write(out);
}

absl::StatusOr<std::unique_ptr<Model>> Model::LoadGrinqh(const std::filesystem::path& path,
                                                         const ModelOptions& options) {
  std::unique_ptr<Model> model(new Model());
  model->options_ = options;
  GRINQH_ASSIGN_OR_RETURN(model->grinqh_file_, GrinqhFile::Open(path));
  const GrinqhFile& file = *model->grinqh_file_;
  const auto context = [&](const absl::Status& s) {
    return absl::Status(s.code(), absl::StrCat(path.string(), ": ", s.message()));
  };

  const std::optional<std::string> quantization_text = file.Section("quantization");
  const json quantization = json::parse(quantization_text.value_or(""), nullptr, false);
  if (!quantization.is_object() || quantization.value("method", "") != kMethod ||
      !quantization.contains("group_size") || !quantization["group_size"].is_number_integer() ||
      !quantization.contains("max_bits") || !quantization["max_bits"].is_number_integer()) {
    return context(absl::InvalidArgumentError(
        "the \"quantization\" section must name method \"grinqh\" with integer group_size and max_bits"));
  }
  const int group_size = quantization["group_size"].get<int>();
  model->group_size_ = group_size;
  model->max_decode_bits_ = quantization["max_bits"].get<int>();

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
  // full-depth weights (for prefill), dequantized once here.
  Model& m = *model;
  const auto lookup = [&](const std::string& name) -> absl::StatusOr<TensorView> {
    if (const GrinqhTensor* t = file.Find(name)) {
      const std::optional<DType> dtype = ToFloatDType(t->dtype);
      if (!dtype) return absl::InvalidArgumentError(absl::StrCat("tensor \"", name, "\" is not a float tensor"));
      return TensorView{name, *dtype, t->shape, t->data, t->nbytes};
    }
    GRINQH_ASSIGN_OR_RETURN(const BitPlaneView planes, file.BitPlanes(Prefix(name), group_size));
    GRINQH_ASSIGN_OR_RETURN(std::vector<float> dense, DequantizeLevel(planes, planes.shape.stored_planes));
    m.full_depth_.push_back(std::move(dense));
    const auto& stored = m.full_depth_.back();
    return TensorView{name, DType::kF32, {planes.shape.rows, planes.shape.cols},
                      reinterpret_cast<const std::byte*>(stored.data()), stored.size() * sizeof(float)};
  };
  auto weights = LoadWeights(lookup, m.config_);
  if (!weights.ok()) return context(weights.status());
  m.weights_ = *std::move(weights);

  for (const LinearLayerRef& l : LinearLayers(m.weights_, m.config_)) {
    auto nested = std::make_unique<NestedLinear>();
    auto planes = file.BitPlanes(Prefix(l.name), group_size);
    if (!planes.ok()) return context(planes.status());
    nested->planes = *planes;
    auto scale = file.Get(Prefix(l.name) + ".channel_scale");
    if (!scale.ok()) return context(scale.status());
    if ((*scale)->dtype != GrinqhDType::kF32 || (*scale)->shape != std::vector<int64_t>{l.matrix->cols}) {
      return context(absl::InvalidArgumentError(absl::StrCat("tensor \"", Prefix(l.name),
                                                             ".channel_scale\" must be F32 [", l.matrix->cols, "]")));
    }
    const auto values = (*scale)->as<float>();
    nested->channel_scale.assign(values.begin(), values.end());
    l.matrix->nested = nested.get();
    m.nested_.push_back(std::move(nested));
  }
  GRINQH_ASSIGN_OR_RETURN(m.backend_, CpuBackend::Create(m.config_, m.weights_, options.num_threads));
  return model;
}

}  // namespace grinqh
