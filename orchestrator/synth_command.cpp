// e2e synth: writes the synthetic organ-like dataset (MSD format) used by the demo and the end-to-end tests.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <sstream>

#include "configs/config.hpp"
#include "data/synthetic.hpp"
#include "orchestrator/commands.hpp"

namespace e2e {

namespace {

struct SynthArguments {
  std::string out;
  std::string shape = "32,64,64";
  std::string spacing = "2.0,0.9,0.9";
  bool force = false;
  int threads = 0;
  SyntheticOptions options;
};

Spacing3 parse_spacing(const std::string& text) {
  Spacing3 out{};
  std::stringstream in(text);
  std::string item;
  int n = 0;
  while (std::getline(in, item, ',')) {
    std::size_t used = 0;
    double value = 0.0;
    try {
      value = std::stod(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (n >= 3 || used == 0 || used != item.size() || !(value > 0.0))
      throw ConfigError("--spacing: expected 3 positive numbers z,y,x in mm, got '" + text + "'");
    out[n++] = value;
  }
  if (n != 3) throw ConfigError("--spacing: expected 3 positive numbers z,y,x in mm, got '" + text + "'");
  return out;
}

void run_synth(SynthArguments arguments) {
  SyntheticOptions& options = arguments.options;
  options.shape = parse_int3(arguments.shape, "--shape");
  options.spacing = parse_spacing(arguments.spacing);
  options.validate();
  const auto start = std::chrono::steady_clock::now();
  const int64_t report_every = std::max<int64_t>(1, options.cases / 10);
  write_synthetic_dataset(arguments.out, options, arguments.force, arguments.threads,
                          [&](int64_t done, int64_t total) {
                            if (done % report_every == 0 || done == total)
                              spdlog::info("synth: {}/{} cases", done, total);
                          });
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  spdlog::info(
      "synth: wrote {} {} case(s) of {}x{}x{} voxels ({} classes, {} channel(s), seed {}) to {} in {:.2f} s",
      options.cases, options.modality, options.shape[0], options.shape[1], options.shape[2], options.classes,
      options.channels, options.seed, arguments.out, seconds);
}

}  // namespace

void add_synth_command(CLI::App& app) {
  auto arguments = std::make_shared<SynthArguments>();
  SyntheticOptions& o = arguments->options;
  CLI::App* cmd = app.add_subcommand(
      "synth",
      "Write a synthetic MSD-format dataset (dataset.json, imagesTr/, labelsTr/) of organ-like 3D images: a "
      "body "
      "with fat, soft tissue and bone, labelled organs of several sizes (1 large organ, 2 paired organ, 3 "
      "small "
      "lesions, 4 vessel, 5+ medium organs), texture, noise, a bias field and per-case jittered anisotropic "
      "spacing. The same seed always gives the same data.");
  cmd->add_option("--out", arguments->out, "output folder (created; must be empty or absent unless --force)")
      ->required();
  cmd->add_option("--cases", o.cases, "number of training cases")->capture_default_str();
  cmd->add_option("--classes", o.classes, "number of classes including background (2-32)")
      ->capture_default_str();
  cmd->add_option("--shape", arguments->shape, "volume size D,H,W in voxels (each 8-1024)")
      ->capture_default_str();
  cmd->add_option("--spacing", arguments->spacing, "base voxel spacing z,y,x in mm")->capture_default_str();
  cmd->add_option("--spacing-jitter", o.spacing_jitter,
                  "relative per-case spacing variation (0 = every case has exactly --spacing)")
      ->capture_default_str();
  cmd->add_option("--channels", o.channels, "image channels; > 1 writes one 4D file per case")
      ->capture_default_str();
  cmd->add_option("--modality", o.modality, "CT (Hounsfield-like) or MR (0 outside the body)")
      ->check(CLI::IsMember({"CT", "MR"}))
      ->capture_default_str();
  cmd->add_option("--seed", o.seed, "random seed")->capture_default_str();
  cmd->add_option("--threads", arguments->threads, "writer threads (0 = up to 2)")->capture_default_str();
  cmd->add_flag(
      "--force", arguments->force,
      "replace an existing dataset in --out (a folder holding a dataset.json; other folders are never "
      "replaced)");
  cmd->callback([arguments] { run_synth(*arguments); });
}

}  // namespace e2e
