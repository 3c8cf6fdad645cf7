// e2e: the one binary. Exit codes: 0 success, 1 failure, 2 bad usage or configuration, 3 preempted.
#include <spdlog/spdlog.h>

#include <c10/util/Exception.h>
#include <CLI/CLI.hpp>
#include <string>

#include "common/errors.hpp"
#include "orchestrator/build_info.hpp"
#include "orchestrator/commands.hpp"

namespace {

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"e2e: train, sweep and evaluate E2ENet (sparse 3D medical image segmentation)", "e2e"};
  app.require_subcommand(1);
  app.set_version_flag("--version", E2E_VERSION_LINE);
  e2e::add_count_command(app);
  e2e::add_status_command(app);
  e2e::add_db_command(app);
  e2e::add_preprocess_command(app);
  e2e::add_plan_command(app);
  e2e::add_evaluate_command(app);
  e2e::add_synth_command(app);
  e2e::add_train_command(app);
  e2e::add_predict_command(app);
  e2e::add_sweep_command(app);

  std::string known;
  bool found = false;
  for (const CLI::App* sub : app.get_subcommands({})) {
    known += (known.empty() ? "" : ", ") + sub->get_name();
    found = found || (argc > 1 && sub->get_name() == argv[1]);
  }
  if (argc > 1 && argv[1][0] != '-' && !found) {
    spdlog::error("unknown command '{}' (commands: {}); see e2e --help", argv[1], known);
    return kExitUsage;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::RuntimeError& e) {
    return e.get_exit_code();  // a command's own exit code (e.g. 3 = preempted)
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitUsage;
  } catch (const e2e::ConfigError& e) {
    spdlog::error("{}", e.what());
    return kExitUsage;
  } catch (const c10::Error& e) {
    spdlog::error("{}", e.what_without_backtrace());
    return kExitFailure;
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return kExitFailure;
  }
  return 0;
}
