#include "server/model_table.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace grinqh {
namespace {

std::string TierList(const v1::ModelInfo& model) {
  std::vector<std::string> tiers;
  for (const v1::Tier& tier : model.tiers()) {
    // 0 and the stored depth both mean the model decodes at its full depth.
    const bool full = tier.bits() == 0 || tier.bits() >= static_cast<float>(model.stored_bits());
    tiers.push_back(absl::StrCat(tier.name(), "=", full ? "full" : absl::StrCat(tier.bits())));
  }
  return absl::StrJoin(tiers, " ");
}

}  // namespace

std::string FormatModelTable(const v1::ListModelsResponse& models) {
  std::vector<std::vector<std::string>> rows = {
      {"NAME", "ARCHITECTURE", "BACKEND", "CONTEXT", "VOCAB", "LAYERS", "STORED BITS", "QUANTIZATION", "CHAT",
       "TIERS (bits)"}};
  for (const v1::ModelInfo& m : models.models()) {
    rows.push_back({m.name(), m.architecture(), m.backend(), absl::StrCat(m.context_length()),
                    absl::StrCat(m.vocab_size()), absl::StrCat(m.num_layers()), absl::StrCat(m.stored_bits()),
                    m.quantization(), m.chat_format().empty() ? "-" : m.chat_format(), TierList(m)});
  }
  std::vector<size_t> widths(rows[0].size(), 0);
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  std::string table;
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      absl::StrAppend(&line, row[i], i + 1 < row.size() ? std::string(widths[i] - row[i].size() + 2, ' ') : "");
    }
    absl::StrAppend(&table, line, "\n");
  }
  return table;
}

absl::StatusOr<std::string> FormatModelJson(const v1::ListModelsResponse& models) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;  // snake_case, as the .proto and the OpenAI API
  std::string json;
  if (const auto status = google::protobuf::util::MessageToJsonString(models, &json, options); !status.ok()) {
    return absl::InternalError(absl::StrCat("models as JSON: ", status.ToString()));
  }
  return json + "\n";
}

}  // namespace grinqh
