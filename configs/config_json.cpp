#include "configs/config_json.hpp"

#include <nlohmann/json.hpp>

#include "configs/hash.hpp"

namespace e2e {

namespace {

// A field left to the plan is "plan" in the hash (the job identity is the YAML's), and in the JSON until the
// plan is applied; then the JSON holds the value and lists the field under "planned".
nlohmann::json planned_value(bool planned, bool show_value, const nlohmann::json& value) {
  return planned && !show_value ? nlohmann::json("plan") : value;
}

nlohmann::json results_sections(const Config& c, bool show_plan_values) {
  const PlannedFields& planned = c.planned;
  const bool show = show_plan_values && planned.applied;
  const ModelConfig& m = c.model;
  const SparsityConfig& s = c.sparsity;
  const TrainingConfig& t = c.training;
  const DataConfig& d = c.data;
  const EvalConfig& e = c.eval;
  nlohmann::json out;
  out["model"] = {{"levels", planned_value(planned.pools, show, m.levels)},
                  {"base_channels", m.base_channels},
                  {"max_channels", m.max_channels},
                  {"in_channels", m.in_channels},
                  {"num_classes", m.num_classes},
                  {"pools", planned_value(planned.pools, show, m.pools)},
                  {"conv_kernel", m.conv_kernel},
                  {"shift_size", m.shift_size},
                  {"shift_input", m.shift_input},
                  {"deep_supervision", m.deep_supervision}};
  out["sparsity"] = {
      {"levels", s.levels},
      {"update_interval", s.update_interval},
      {"prune_rate_start", s.prune_rate_start},
      {"prune_rate_end", s.prune_rate_end},
      {"level0_density", s.level0_density ? nlohmann::json(*s.level0_density) : nlohmann::json()}};
  out["training"] = {{"epochs", t.epochs},
                     {"iterations_per_epoch", t.iterations_per_epoch},
                     {"batch_size", planned_value(planned.batch_size, show, t.batch_size)},
                     {"patch_size", planned_value(planned.patch_size, show, t.patch_size)},
                     {"learning_rate", t.learning_rate},
                     {"momentum", t.momentum},
                     {"nesterov", t.nesterov},
                     {"weight_decay", t.weight_decay},
                     {"grad_clip", t.grad_clip},
                     {"poly_exponent", t.poly_exponent},
                     {"foreground_oversampling", t.foreground_oversampling},
                     {"validation_batches", t.validation_batches},
                     {"precision", t.precision},
                     {"seed", t.seed}};
  out["data"] = {{"dataset", d.dataset},
                 {"preprocessed", d.preprocessed},
                 {"target_spacing", d.target_spacing ? nlohmann::json(*d.target_spacing) : nlohmann::json()},
                 {"compress", d.compress}};
  // Only when not the default, so that the hashes of configs written before these fields stay the same.
  if (d.augment_device != "cpu") out["data"]["augment_device"] = d.augment_device;
  if (d.elastic_probability > 0) {
    out["data"]["elastic_probability"] = d.elastic_probability;
    out["data"]["elastic_alpha"] = d.elastic_alpha;
    out["data"]["elastic_sigma"] = d.elastic_sigma;
  }
  if (!d.test_cases.empty()) out["data"]["test_cases"] = d.test_cases;  // only when set (hash stability)
  if (t.batch_dice) out["training"]["batch_dice"] = true;  // only when set: older configs keep their hash
  nlohmann::json per_class = nlohmann::json::object();
  for (const auto& [cls, tol] : e.nsd_tolerance_per_class) per_class[std::to_string(cls)] = tol;
  out["eval"] = {{"nsd_tolerance_mm", e.nsd_tolerance_mm},
                 {"nsd_tolerance_per_class", per_class},
                 {"hd_variant", e.hd_variant},
                 {"tta", e.tta},
                 {"step_fraction", e.step_fraction}};
  if (e.postprocessing != "off") out["eval"]["postprocessing"] = e.postprocessing;
  return out;
}

}  // namespace

std::string config_to_json(const Config& c) {
  nlohmann::json out = results_sections(c, true);
  if (c.planned.any() && c.planned.applied) {
    out["planned"] = nlohmann::json::array();
    if (c.planned.patch_size) out["planned"].push_back("training.patch_size");
    if (c.planned.batch_size) out["planned"].push_back("training.batch_size");
    if (c.planned.pools) out["planned"].push_back("model.pools");
  }
  out["experiment"] = c.experiment;
  out["training"]["checkpoint_every_epochs"] = c.training.checkpoint_every_epochs;
  out["training"]["checkpoint_every_minutes"] = c.training.checkpoint_every_minutes;
  out["training"]["threads"] = c.training.threads;
  out["data"]["workers"] = c.data.workers;
  out["sweep"] = {{"folds", c.sweep.folds},
                  {"seeds", c.sweep.seeds},
                  {"gpus_per_job", c.sweep.gpus_per_job},
                  {"max_attempts", c.sweep.max_attempts}};
  out["store"] = {{"path", c.store.path}, {"wal", c.store.wal}, {"busy_timeout_ms", c.store.busy_timeout_ms}};
  return out.dump(2);
}

std::string config_hash(const Config& c) {
  return sha256_hex(results_sections(c, false).dump());
}

}  // namespace e2e
