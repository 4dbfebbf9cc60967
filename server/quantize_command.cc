// `grinqh quantize`: a Hugging Face checkpoint in, a .grinqh model file out.
#include <chrono>
#include <iostream>

#include "absl/strings/str_format.h"
#include "engine/calibration/grinqh_writer.h"
#include "engine/base/status_macros.h"
#include "server/commands.h"
#include "server/flags.h"
#include "server/progress.h"

namespace grinqh {
namespace {

absl::Status RunQuantize(const Flags& flags) {
  for (const char* required : {"model", "out"}) {
    if (!flags.Has(required)) return absl::InvalidArgumentError(absl::StrCat("--", required, " is required"));
  }
  GrinqhQuantizeOptions options;
  options.method = flags.String("method").value_or("grinqh");
  if (options.method == "grinqh" && flags.Has("bits")) {
    return absl::InvalidArgumentError("--bits is the code width of rtn, gptq and awq; grinqh stores --max-bits planes");
  }
  if (options.method != "grinqh" && !flags.Has("bits")) {
    return absl::InvalidArgumentError(absl::StrCat("--method ", options.method, " needs --bits (e.g. 4)"));
  }
  GRINQH_RETURN_IF_ERROR(flags.ReadInt("bits", 1, 8, options.bits));
  GRINQH_RETURN_IF_ERROR(flags.ReadInt("group-size", 1, 1 << 16, options.group_size));  // else the method's
  GRINQH_RETURN_IF_ERROR(flags.ReadInt("max-bits", 1, 8, options.max_bits));
  GRINQH_RETURN_IF_ERROR(flags.ReadInt("calib-windows", 1, 1 << 20, options.calib_windows));
  GRINQH_RETURN_IF_ERROR(flags.ReadInt("sensitivity-windows", 0, 1 << 20, options.schedule.sensitivity_windows));
  GRINQH_RETURN_IF_ERROR(flags.ReadInt("threads", 0, 1024, options.num_threads));
  options.schedule.use_sensitivity = options.schedule.sensitivity_windows > 0;
  if (auto calib = flags.String("calib")) options.calib = *calib;
  const auto start = std::chrono::steady_clock::now();
  ProgressReporter progress = ProgressReporter::ForStderr();
  GRINQH_RETURN_IF_ERROR(QuantizeToGrinqhFile(*flags.String("model"), options, *flags.String("out"),
                                              [&](const std::string& stage, double f) { progress(stage, f); }));
  std::cerr << absl::StrFormat("wrote %s in %.1f s\n", *flags.String("out"),
                               std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return absl::OkStatus();
}

}  // namespace

const Command& QuantizeCommand() {
  static const Command command{
      {"quantize",
       "write a GRINQH model file (nested 8-bit codes, graded at decode), or a baseline's",
       {{"model", "HF_DIR", "the Hugging Face model to quantize (required)"},
        {"out", "MODEL.grinqh", "the file to write (required)"},
        {"method", "M", "grinqh (default), or a fixed-width baseline: rtn, gptq or awq"},
        {"bits", "N", "a baseline's code width (required with rtn, gptq and awq)"},
        {"max-bits", "N", "GRINQH: bit planes stored, the deepest decode level (8)"},
        {"group-size", "N", "input channels per scale and zero (GRINQH 256, baselines 128)"},
        {"calib", "TEXT", "calibration text (GRINQH fits per-layer schedules to it; gptq and awq calibrate on it)"},
        {"calib-windows", "N", "calibration windows at most (64)"},
        {"sensitivity-windows", "N", "windows for the layers' sensitivities (4; 0: none)"},
        kThreadsFlag}},
      RunQuantize};
  return command;
}

}  // namespace grinqh
