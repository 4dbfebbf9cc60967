#include "engine/model/model_config.h"

#include <cmath>
#include <cstdint>
#include <iterator>
#include <limits>
#include <optional>
#include <system_error>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/base/file_util.h"
#include "engine/base/json.h"
#include "engine/base/status_macros.h"

namespace grinqh {
namespace {

using json = nlohmann::json;

// Debian's abseil has its own string_view, which StrCat wants.
absl::string_view AV(std::string_view s) { return absl::string_view(s.data(), s.size()); }

std::string Quote(std::string_view s) {
  return json(std::string(s)).dump(-1, ' ', false, json::error_handler_t::replace);
}

// Typed access to the keys of one JSON object, with errors that name the file and the key
// ("config.json: \"rope_scaling.factor\" is a string, not a number"). A key whose value is
// null counts as absent, as transformers treats it.
class Fields {
 public:
  Fields(const json& object, std::string source, std::string prefix = "")
      : object_(object), source_(std::move(source)), prefix_(std::move(prefix)) {}

  std::string Key(std::string_view key) const { return absl::StrCat("\"", prefix_, AV(key), "\""); }

  absl::Status Error(std::string_view key, std::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat(source_, ": ", Key(key), " ", AV(what)));
  }
  absl::Status Refuse(std::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat(source_, ": ", AV(what)));
  }

  const json* Find(std::string_view key) const {
    auto it = object_.find(key);
    if (it == object_.end() || it->is_null()) return nullptr;
    return &*it;
  }
  bool Has(std::string_view key) const { return Find(key) != nullptr; }

  absl::Status WrongType(std::string_view key, const json& value, std::string_view want) const {
    std::string shown = value.dump(-1, ' ', false, json::error_handler_t::replace);
    if (shown.size() > 60) shown = absl::StrCat(shown.substr(0, 57), "...");
    return Error(key,
                 absl::StrCat("is ", shown, " (a JSON ", value.type_name(), "), not ", AV(want)));
  }

  absl::StatusOr<std::optional<std::string>> OptString(std::string_view key) const {
    const json* v = Find(key);
    if (v == nullptr) return std::optional<std::string>();
    if (!v->is_string()) return WrongType(key, *v, "a string");
    return std::optional<std::string>(v->get<std::string>());
  }
  absl::StatusOr<std::string> RequiredString(std::string_view key) const {
    GRINQH_ASSIGN_OR_RETURN(std::optional<std::string> v, OptString(key));
    if (!v) return Error(key, "is missing (required)");
    return *v;
  }

  absl::StatusOr<std::optional<bool>> OptBool(std::string_view key) const {
    const json* v = Find(key);
    if (v == nullptr) return std::optional<bool>();
    if (!v->is_boolean()) return WrongType(key, *v, "true or false");
    return std::optional<bool>(v->get<bool>());
  }

  static std::optional<int64_t> AsInt(const json& v) {
    if (v.is_number_unsigned()) {
      uint64_t u = v.get<uint64_t>();
      if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
      return static_cast<int64_t>(u);
    }
    if (v.is_number_integer()) return v.get<int64_t>();
    return std::nullopt;
  }

  absl::StatusOr<std::optional<int>> OptInt(std::string_view key, int64_t min) const {
    const json* v = Find(key);
    if (v == nullptr) return std::optional<int>();
    std::optional<int64_t> i = AsInt(*v);
    if (!i) return WrongType(key, *v, "an integer");
    if (*i < min || *i > std::numeric_limits<int>::max()) {
      return Error(key, absl::StrCat("is ", *i, ", out of range (must be ",
                                     min == 1 ? "positive" : absl::StrCat(">= ", min), ")"));
    }
    return std::optional<int>(static_cast<int>(*i));
  }
  absl::StatusOr<int> RequiredPositiveInt(std::string_view key) const {
    GRINQH_ASSIGN_OR_RETURN(std::optional<int> v, OptInt(key, 1));
    if (!v) return Error(key, "is missing (required)");
    return *v;
  }
  absl::StatusOr<int> PositiveInt(std::string_view key, int fallback) const {
    GRINQH_ASSIGN_OR_RETURN(std::optional<int> v, OptInt(key, 1));
    return v ? *v : fallback;
  }

  absl::StatusOr<std::optional<double>> OptNumber(std::string_view key) const {
    const json* v = Find(key);
    if (v == nullptr) return std::optional<double>();
    if (!v->is_number()) return WrongType(key, *v, "a number");
    double d = v->get<double>();
    if (!std::isfinite(d)) return Error(key, "is not finite");
    return std::optional<double>(d);
  }
  absl::StatusOr<double> PositiveNumber(std::string_view key,
                                        std::optional<double> fallback) const {
    GRINQH_ASSIGN_OR_RETURN(std::optional<double> v, OptNumber(key));
    if (!v) {
      if (!fallback) return Error(key, "is missing (required)");
      return *fallback;
    }
    if (!(*v > 0.0)) return Error(key, absl::StrCat("is ", *v, ", must be positive"));
    return *v;
  }

  // An int, or a list of ints (eos_token_id); appended to out.
  absl::Status TokenIds(std::string_view key, std::vector<int>* out) const {
    const json* v = Find(key);
    if (v == nullptr) return absl::OkStatus();
    auto one = [&](const json& item) -> absl::Status {
      std::optional<int64_t> i = AsInt(item);
      if (!i) return WrongType(key, *v, "a token id or a list of token ids");
      if (*i < 0 || *i > std::numeric_limits<int>::max()) {
        return Error(key, absl::StrCat("has token id ", *i, ", out of range"));
      }
      out->push_back(static_cast<int>(*i));
      return absl::OkStatus();
    };
    if (v->is_array()) {
      for (const json& item : *v) GRINQH_RETURN_IF_ERROR(one(item));
      return absl::OkStatus();
    }
    return one(*v);
  }

  const std::string& source() const { return source_; }
  const std::string& prefix() const { return prefix_; }

 private:
  const json& object_;
  std::string source_;
  std::string prefix_;
};

absl::StatusOr<json> ParseObject(std::string_view text, std::string_view source) {
  GRINQH_ASSIGN_OR_RETURN(json j, ParseStrictJson(text, source));
  if (!j.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(AV(source), ": is a JSON ", j.type_name(), ", not an object"));
  }
  return j;
}

absl::Status ParseRope(const Fields& top, RopeConfig* rope) {
  // transformers 5.x: rope_parameters {rope_type, rope_theta, ...}; 4.x: rope_theta at the
  // top level and rope_scaling {rope_type (or type), factor, ...} or null.
  GRINQH_ASSIGN_OR_RETURN(std::optional<double> top_theta, top.OptNumber("rope_theta"));
  const json* params = top.Find("rope_parameters");
  const json* scaling = top.Find("rope_scaling");
  const json* section = params != nullptr ? params : scaling;
  const char* section_name = params != nullptr ? "rope_parameters" : "rope_scaling";

  rope->theta = top_theta.value_or(10000.0);
  rope->type = "default";
  if (section != nullptr) {
    if (!section->is_object()) return top.WrongType(section_name, *section, "an object");
    Fields f(*section, top.source(), absl::StrCat(section_name, "."));
    GRINQH_ASSIGN_OR_RETURN(std::optional<std::string> type, f.OptString("rope_type"));
    if (!type) {
      GRINQH_ASSIGN_OR_RETURN(type, f.OptString("type"));  // older configs
    }
    if (!type) {
      if (params == nullptr) return f.Error("rope_type", "is missing (required in rope_scaling)");
      type = "default";
    }
    if (*type != "default" && *type != "llama3") {
      return top.Refuse(absl::StrCat("unsupported rope type ", Quote(*type), " in \"", section_name,
                                     "\" (supported: default, llama3)"));
    }
    rope->type = *type;
    GRINQH_ASSIGN_OR_RETURN(std::optional<double> theta, f.OptNumber("rope_theta"));
    if (theta) rope->theta = *theta;
    GRINQH_ASSIGN_OR_RETURN(std::optional<double> partial, f.OptNumber("partial_rotary_factor"));
    if (partial && *partial != 1.0) {
      return f.Error("partial_rotary_factor",
                     absl::StrCat("is ", *partial, "; only 1.0 is supported"));
    }
    if (rope->type == "llama3") {
      GRINQH_ASSIGN_OR_RETURN(rope->factor, f.PositiveNumber("factor", std::nullopt));
      GRINQH_ASSIGN_OR_RETURN(rope->low_freq_factor,
                              f.PositiveNumber("low_freq_factor", std::nullopt));
      GRINQH_ASSIGN_OR_RETURN(rope->high_freq_factor,
                              f.PositiveNumber("high_freq_factor", std::nullopt));
      GRINQH_ASSIGN_OR_RETURN(rope->original_max_position_embeddings,
                              f.RequiredPositiveInt("original_max_position_embeddings"));
      if (!(rope->high_freq_factor > rope->low_freq_factor)) {
        return f.Error("high_freq_factor", absl::StrCat("(", rope->high_freq_factor,
                                                        ") must be greater than low_freq_factor (",
                                                        rope->low_freq_factor, ")"));
      }
    }
  }
  if (!(rope->theta > 0.0)) {
    return top.Refuse(absl::StrCat("rope_theta is ", rope->theta, ", must be positive"));
  }
  return absl::OkStatus();
}

absl::StatusOr<ModelConfig> Parse(std::string_view config_json, std::string_view config_source,
                                  std::string_view generation_json,
                                  std::string_view generation_source) {
  GRINQH_ASSIGN_OR_RETURN(json root, ParseObject(config_json, config_source));
  Fields top(root, std::string(config_source));
  ModelConfig c;

  GRINQH_ASSIGN_OR_RETURN(std::string model_type, top.RequiredString("model_type"));
  if (model_type == "llama") {
    c.arch = Architecture::kLlama;
  } else if (model_type == "qwen3") {
    c.arch = Architecture::kQwen3;
  } else {
    return top.Refuse(
        absl::StrCat("unsupported model_type ", Quote(model_type), " (supported: llama, qwen3)"));
  }
  const bool qwen3 = c.arch == Architecture::kQwen3;

  if (const json* q = top.Find("quantization_config")) {
    std::string method;
    if (q->is_object() && q->contains("quant_method") && (*q)["quant_method"].is_string()) {
      method = absl::StrCat(" (quant_method ", Quote((*q)["quant_method"].get<std::string>()), ")");
    }
    return top.Refuse(absl::StrCat("\"quantization_config\" is present", method,
                                   ": quantized checkpoints are not supported; "
                                   "use a bf16, fp16 or fp32 checkpoint"));
  }

  GRINQH_ASSIGN_OR_RETURN(c.hidden_size, top.RequiredPositiveInt("hidden_size"));
  GRINQH_ASSIGN_OR_RETURN(c.intermediate_size, top.RequiredPositiveInt("intermediate_size"));
  GRINQH_ASSIGN_OR_RETURN(c.num_layers, top.RequiredPositiveInt("num_hidden_layers"));
  GRINQH_ASSIGN_OR_RETURN(c.num_heads, top.RequiredPositiveInt("num_attention_heads"));
  GRINQH_ASSIGN_OR_RETURN(c.vocab_size, top.RequiredPositiveInt("vocab_size"));
  GRINQH_ASSIGN_OR_RETURN(c.num_kv_heads, top.PositiveInt("num_key_value_heads", c.num_heads));
  if (c.num_heads % c.num_kv_heads != 0) {
    return top.Error("num_key_value_heads",
                     absl::StrCat("(", c.num_kv_heads, ") does not divide num_attention_heads (",
                                  c.num_heads, ")"));
  }
  GRINQH_ASSIGN_OR_RETURN(std::optional<int> head_dim, top.OptInt("head_dim", 1));
  if (head_dim) {
    c.head_dim = *head_dim;
  } else {
    if (c.hidden_size % c.num_heads != 0) {
      return top.Refuse(absl::StrCat("hidden_size (", c.hidden_size,
                                     ") is not a multiple of num_attention_heads (", c.num_heads,
                                     ") and no head_dim is given"));
    }
    c.head_dim = c.hidden_size / c.num_heads;
  }
  if (c.head_dim % 2 != 0) {
    return top.Error("head_dim",
                     absl::StrCat("is ", c.head_dim, "; rotary embedding needs it even"));
  }
  GRINQH_ASSIGN_OR_RETURN(c.max_position_embeddings,
                          top.PositiveInt("max_position_embeddings", qwen3 ? 32768 : 2048));
  GRINQH_ASSIGN_OR_RETURN(c.rms_norm_eps, top.PositiveNumber("rms_norm_eps", 1e-6));
  GRINQH_ASSIGN_OR_RETURN(std::optional<bool> tie, top.OptBool("tie_word_embeddings"));
  c.tie_word_embeddings = tie.value_or(false);
  c.qk_norm = qwen3;

  GRINQH_ASSIGN_OR_RETURN(std::optional<std::string> act, top.OptString("hidden_act"));
  if (act && *act != "silu") {
    return top.Refuse(absl::StrCat("unsupported hidden_act ", Quote(*act), " (supported: silu)"));
  }
  for (const char* key : {"attention_bias", "mlp_bias"}) {
    GRINQH_ASSIGN_OR_RETURN(std::optional<bool> bias, top.OptBool(key));
    if (bias.value_or(false)) {
      return top.Refuse(absl::StrCat(key, " is true: biases in the ",
                                     std::string_view(key) == "mlp_bias" ? "MLP" : "attention",
                                     " projections are not supported"));
    }
  }
  GRINQH_ASSIGN_OR_RETURN(std::optional<bool> sliding, top.OptBool("use_sliding_window"));
  if (sliding.value_or(false)) {
    return top.Refuse("use_sliding_window is true: sliding-window attention is not supported");
  }
  if (const json* layer_types = top.Find("layer_types")) {
    if (!layer_types->is_array()) return top.WrongType("layer_types", *layer_types, "a list");
    for (const json& t : *layer_types) {
      if (!t.is_string() || t.get<std::string>() != "full_attention") {
        return top.Refuse(absl::StrCat("layer_types has ", t.dump(),
                                       ": only \"full_attention\" layers are supported"));
      }
    }
  }
  GRINQH_ASSIGN_OR_RETURN(std::optional<double> partial, top.OptNumber("partial_rotary_factor"));
  if (partial && *partial != 1.0) {
    return top.Error("partial_rotary_factor",
                     absl::StrCat("is ", *partial, "; only 1.0 is supported"));
  }

  GRINQH_RETURN_IF_ERROR(ParseRope(top, &c.rope));

  GRINQH_ASSIGN_OR_RETURN(std::optional<int> bos, top.OptInt("bos_token_id", 0));
  c.bos_token_id = bos.value_or(-1);
  if (c.bos_token_id >= c.vocab_size) {
    return top.Error("bos_token_id", absl::StrCat("is ", c.bos_token_id, ", outside the vocabulary (vocab_size ",
                                                  c.vocab_size, ")"));
  }
  std::vector<int> eos;
  GRINQH_RETURN_IF_ERROR(top.TokenIds("eos_token_id", &eos));
  if (!generation_json.empty()) {
    GRINQH_ASSIGN_OR_RETURN(json gen, ParseObject(generation_json, generation_source));
    Fields g(gen, std::string(generation_source));
    GRINQH_RETURN_IF_ERROR(g.TokenIds("eos_token_id", &eos));
  }
  for (int id : eos) {
    if (id >= c.vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat("eos_token_id ", id, " (config.json or generation_config.json) is ",
                                                     "outside the vocabulary (vocab_size ", c.vocab_size, ")"));
    }
    bool seen = false;
    for (int have : c.eos_token_ids) seen = seen || have == id;
    if (!seen) c.eos_token_ids.push_back(id);
  }
  return c;
}

}  // namespace

std::string_view ArchitectureName(Architecture arch) {
  switch (arch) {
    case Architecture::kLlama:
      return "llama";
    case Architecture::kQwen3:
      return "qwen3";
  }
  return "?";
}

absl::StatusOr<ModelConfig> ModelConfig::FromJson(std::string_view config_json,
                                                  std::string_view generation_config_json) {
  return Parse(config_json, "config.json", generation_config_json, "generation_config.json");
}

absl::StatusOr<ModelConfig> ModelConfig::FromDirectory(const std::filesystem::path& model_dir) {
  const std::filesystem::path config_path = model_dir / "config.json";
  const std::filesystem::path gen_path = model_dir / "generation_config.json";
  std::error_code ec;
  if (!std::filesystem::is_regular_file(config_path, ec)) {
    return absl::NotFoundError(absl::StrCat(config_path.string(), ": no such file (",
                                            model_dir.string(),
                                            " is not a Hugging Face model directory?)"));
  }
  GRINQH_ASSIGN_OR_RETURN(std::string config_text, ReadFileToString(config_path));
  std::string gen_text;
  if (std::filesystem::exists(gen_path, ec)) {
    GRINQH_ASSIGN_OR_RETURN(gen_text, ReadFileToString(gen_path));
    if (gen_text.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(gen_path.string(), ": file is empty"));
    }
  }
  return Parse(config_text, config_path.string(), gen_text, gen_path.string());
}

std::vector<float> RopeInverseFrequencies(const ModelConfig& config) {
  // transformers: inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2).float() / dim)),
  // every operation in fp32 (the exponent, the power with base cast to fp32, the reciprocal).
  const int dim = config.head_dim;
  const int half = dim / 2;
  std::vector<float> inv_freq(static_cast<size_t>(half > 0 ? half : 0));
  const float base = static_cast<float>(config.rope.theta);
  for (int i = 0; i < half; ++i) {
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(dim);
    inv_freq[static_cast<size_t>(i)] = 1.0f / std::pow(base, exponent);
  }
  if (config.rope.type != "llama3") return inv_freq;

  // transformers' _compute_llama3_parameters, op for op in fp32 (a Python scalar meeting an
  // fp32 tensor is cast to fp32; `scalar / tensor` is `tensor.reciprocal() * scalar`).
  const RopeConfig& r = config.rope;
  const float factor = static_cast<float>(r.factor);
  const float low_freq_factor = static_cast<float>(r.low_freq_factor);
  const float old_context_len = static_cast<float>(r.original_max_position_embeddings);
  const float low_freq_wavelen = static_cast<float>(
      static_cast<double>(r.original_max_position_embeddings) / r.low_freq_factor);
  const float high_freq_wavelen = static_cast<float>(
      static_cast<double>(r.original_max_position_embeddings) / r.high_freq_factor);
  const float factor_span = static_cast<float>(r.high_freq_factor - r.low_freq_factor);
  const float two_pi = static_cast<float>(2.0 * 3.14159265358979323846);
  for (float& f : inv_freq) {
    const float wavelen = (1.0f / f) * two_pi;
    float scaled = wavelen > low_freq_wavelen ? f / factor : f;
    const bool medium = !(wavelen < high_freq_wavelen) && !(wavelen > low_freq_wavelen);
    if (medium) {
      const float smooth = ((1.0f / wavelen) * old_context_len - low_freq_factor) / factor_span;
      scaled = (1.0f - smooth) * scaled / factor + smooth * scaled;
    }
    f = scaled;
  }
  return inv_freq;
}

}  // namespace grinqh
