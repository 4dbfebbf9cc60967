// `grinqh quantize`: a Hugging Face checkpoint in, a .grinqh model file out.
#include <chrono>
#include <iostream>

#include "absl/strings/str_format.h"
#include "engine/grinqh_model.h"
#include "engine/status_macros.h"
#include "server/commands.h"
#include "server/flags.h"

namespace grinqh {

absl::Status RunQuantize(const std::vector<std::string>& args) {
  GRINQH_ASSIGN_OR_RETURN(const Flags flags, Flags::Parse(args, {"model", "out", "method", "group-size", "max-bits"}, {}));
  for (const char* required : {"model", "out"}) {
    if (!flags.Has(required)) return absl::InvalidArgumentError(absl::StrCat("--", required, " is required"));
  }
  if (flags.String("method").value_or("grinqh") != "grinqh") {
    return absl::InvalidArgumentError(
        "--method: only grinqh is written to a file so far; rtn, gptq and awq are evaluated in memory by `grinqh eval`");
  }
  GrinqhQuantizeOptions options;
  GRINQH_RETURN_IF_ERROR(flags.ReadInt("group-size", 1, 1 << 16, options.group_size));
  GRINQH_RETURN_IF_ERROR(flags.ReadInt("max-bits", 1, 8, options.max_bits));
  const auto start = std::chrono::steady_clock::now();
  GRINQH_RETURN_IF_ERROR(QuantizeToGrinqhFile(*flags.String("model"), options, *flags.String("out"),
                                              [](const std::string& stage, double f) {
                                                std::cerr << absl::StrFormat("\r%-12s %5.1f%%", stage, 100 * f)
                                                          << (f >= 1 ? "\n" : "") << std::flush;
                                              }));
  std::cerr << absl::StrFormat("wrote %s in %.1f s\n", *flags.String("out"),
                               std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return absl::OkStatus();
}

}  // namespace grinqh
