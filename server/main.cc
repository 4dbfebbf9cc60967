// `grinqh`: one CLI, with subcommands in the way `vllm serve` or `ollama run` read.
#include <iostream>
#include <string>
#include <vector>

#include "server/commands.h"
#include "server/version.h"

namespace {

// In the order `grinqh --help` lists them.
std::vector<const grinqh::Command*> AllCommands() {
  return {&grinqh::ServeCommand(),    &grinqh::ClientCommand(),   &grinqh::GenerateCommand(),
          &grinqh::QuantizeCommand(), &grinqh::TokenizeCommand(), &grinqh::BenchCommand(),
          &grinqh::EvalCommand()};
}

std::string Usage() {
  std::string text = "usage: grinqh <command> [flags]\n\ncommands:\n";
  for (const grinqh::Command* command : AllCommands()) {
    text += "  " + command->spec.name + std::string(11 - command->spec.name.size(), ' ') + command->spec.summary + "\n";
  }
  text += "  help       this text\n  version    the version, git revision, build type and backends (also --version)\n\n"
          "`grinqh <command> --help` lists the command's flags.\n";
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "help" || args[0] == "--help" || args[0] == "-h") {
    std::cout << Usage();
    return args.empty() ? 2 : 0;
  }
  if (args[0] == "--version" || args[0] == "version") {
    std::cout << grinqh::VersionText();
    return 0;
  }
  const std::string name = args[0];
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  for (const grinqh::Command* command : AllCommands()) {
    if (command->spec.name != name) continue;
    absl::StatusOr<grinqh::Flags> flags = grinqh::Flags::Parse(rest, command->spec);
    if (flags.ok() && flags->help()) {
      std::cout << grinqh::HelpText(command->spec);
      return 0;
    }
    const absl::Status status = flags.ok() ? command->run(*flags) : flags.status();
    if (!status.ok()) {
      std::cerr << "grinqh " << name << ": " << status.message() << std::endl;
      return absl::IsInvalidArgument(status) ? 2 : 1;
    }
    return 0;
  }
  std::cerr << "grinqh: unknown command '" << name << "'\n" << Usage();
  return 2;
}
