// The `grinqh` subcommands. Each is defined in its NAME_command.cc: its spec (the flags it
// takes, which `grinqh NAME --help` lists) and how it runs, given those flags parsed. An
// error is for main to print; INVALID_ARGUMENT means the arguments were wrong.
#pragma once

#include "absl/status/status.h"
#include "server/flags.h"

namespace grinqh {

struct Command {
  CommandSpec spec;
  absl::Status (*run)(const Flags& flags);
};

// Flags several commands take, worded once.
inline const FlagSpec kModelFlag{"model", "PATH", "a Hugging Face model directory or a .grinqh file (required)"};
inline const FlagSpec kThreadsFlag{"threads", "N", "CPU threads (0: one per core)"};
inline const FlagSpec kBackendFlag{"backend", "NAME", "cpu, cuda or auto (default: CUDA when built with it and a GPU is present)"};
inline const FlagSpec kDecodeBitsFlag{"bits", "B", "GRINQH models: average bits per weight read at each decode step"};

const Command& ServeCommand();
const Command& ClientCommand();
const Command& GenerateCommand();
const Command& QuantizeCommand();
const Command& TokenizeCommand();
const Command& BenchCommand();
const Command& EvalCommand();

}  // namespace grinqh
