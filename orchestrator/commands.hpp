// The e2e subcommands. Each add_* function registers one CLI11 subcommand and its callback.
#pragma once

#include <CLI/CLI.hpp>

namespace e2e {

void add_count_command(CLI::App& app);
void add_db_command(CLI::App& app);
void add_predict_command(CLI::App& app);
void add_preprocess_command(CLI::App& app);
void add_evaluate_command(CLI::App& app);
void add_plan_command(CLI::App& app);
void add_synth_command(CLI::App& app);
void add_train_command(CLI::App& app);
void add_status_command(CLI::App& app);
void add_sweep_command(CLI::App& app);

}  // namespace e2e
