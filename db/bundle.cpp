#include "db/bundle.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/file_io.hpp"
#include "configs/config.hpp"
#include "configs/hash.hpp"
#include "db/store.hpp"

namespace e2e {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kFormat = "e2e-result-bundle";
constexpr int kVersion = 1;

json number(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  return value;
}

// A JSON object with the path of the file and field it came from, for messages.
class Fields {
 public:
  Fields(const json& object, std::string where) : object_(object), where_(std::move(where)) {
    if (!object_.is_object()) fail("", "expected an object");
  }

  [[noreturn]] void fail(const std::string& field, const std::string& problem) const {
    throw InputError(where_ + (field.empty() ? "" : "." + field) + ": " + problem);
  }

  const json& at(const std::string& field) const {
    if (!object_.contains(field)) fail(field, "missing");
    return object_.at(field);
  }
  bool has(const std::string& field) const { return object_.contains(field) && !object_.at(field).is_null(); }

  std::string text(const std::string& field) const {
    const json& v = at(field);
    if (!v.is_string()) fail(field, "expected a string, got " + v.dump());
    return v.get<std::string>();
  }
  int64_t integer(const std::string& field) const {
    const json& v = at(field);
    if (!v.is_number_integer()) fail(field, "expected an integer, got " + v.dump());
    return v.get<int64_t>();
  }
  double real(const std::string& field) const {
    const json& v = at(field);
    if (v.is_number()) return v.get<double>();
    if (v.is_null() || v == "nan") return std::numeric_limits<double>::quiet_NaN();
    if (v == "inf") return std::numeric_limits<double>::infinity();
    if (v == "-inf") return -std::numeric_limits<double>::infinity();
    fail(field, "expected a number, got " + v.dump());
  }
  bool boolean(const std::string& field) const {
    const json& v = at(field);
    if (!v.is_boolean()) fail(field, "expected true or false, got " + v.dump());
    return v.get<bool>();
  }
  Fields object(const std::string& field) const { return Fields(at(field), where_ + "." + field); }
  std::vector<Fields> array(const std::string& field) const {
    const json& v = at(field);
    if (!v.is_array()) fail(field, "expected an array");
    std::vector<Fields> out;
    for (std::size_t i = 0; i < v.size(); ++i)
      out.emplace_back(v[i], fmt::format("{}.{}[{}]", where_, field, i));
    return out;
  }
  template <typename Parse>
  auto parsed(const std::string& field, Parse parse) const {
    try {
      return parse(text(field));
    } catch (const ConfigError& e) {
      fail(field, e.what());
    }
  }

 private:
  const json& object_;
  std::string where_;
};

// bundle → JSON

json epoch_json(const EpochRecord& e) {
  json dice = json::array();
  for (double d : e.pseudo_dice) dice.push_back(number(d));
  return {{"epoch", e.epoch},
          {"train_loss", number(e.train_loss)},
          {"val_loss", number(e.val_loss)},
          {"pseudo_dice", dice},
          {"mean_pseudo_dice", number(e.mean_pseudo_dice)},
          {"learning_rate", number(e.learning_rate)},
          {"seconds", number(e.seconds)},
          {"loader_wait_fraction", number(e.loader_wait_fraction)}};
}

json case_metric_json(const CaseMetricRow& r) {
  return {{"case", r.case_id},        {"structure", r.structure},
          {"is_region", r.is_region}, {"dice", number(r.dice)},
          {"nsd", number(r.nsd)},     {"nsd_tolerance_mm", number(r.nsd_tolerance_mm)},
          {"hd95", number(r.hd95)},   {"hd_variant", r.hd_variant}};
}

json result_json(const ResultSummary& s) {
  json metrics = json::parse(s.metrics_json.empty() ? "{}" : s.metrics_json, nullptr, false);
  return {{"mdice", number(s.mean_dice)},
          {"mnsd", number(s.mean_nsd)},
          {"mhd95", number(s.mean_hd95)},
          {"params", s.params},
          {"flops", number(s.flops)},
          {"patch", s.patch},
          {"metrics", metrics.is_discarded() ? json(s.metrics_json) : metrics}};
}

std::string mask_file_name(const MaskSnapshot& masks) {
  return masks.kind == MaskKind::Final ? "masks/final.e2et"
                                       : fmt::format("masks/periodic_{}.e2et", masks.step);
}

json mask_json(const MaskSnapshot& masks) {
  return {{"kind", to_string(masks.kind)},
          {"step", masks.step},
          {"topology_hash", masks.topology.hash_hex()},
          {"file", mask_file_name(masks)}};
}

json bundle_json(const ResultBundle& b) {
  const json config = json::parse(b.experiment.config_json, nullptr, false);
  json job = {{"key", b.key()},
              {"fold", b.fold},
              {"sparsity", b.sparsity},
              {"seed", b.seed},
              {"status", to_string(b.status)},
              {"attempts", b.attempts},
              {"max_attempts", b.max_attempts},
              {"node", b.node},
              {"error", b.error},
              {"checkpoint", nullptr}};
  if (b.checkpoint)
    job["checkpoint"] = {{"path", b.checkpoint->path},
                         {"sha256", b.checkpoint->sha256},
                         {"iteration", b.checkpoint->iteration}};
  json out = {{"format", kFormat},
              {"version", kVersion},
              {"experiment",
               {{"name", b.experiment.name},
                {"config", config.is_discarded() ? json(b.experiment.config_json) : config},
                {"config_hash", b.experiment.config_hash},
                {"dataset_fingerprint", b.experiment.dataset_fingerprint},
                {"code_version", b.experiment.code_version}}},
              {"job", job},
              {"result", nullptr},
              {"case_metrics", json::array()},
              {"epochs", json::array()},
              {"events", json::array()},
              {"masks", json::array()}};
  if (b.result) {
    out["result"] = result_json(b.result->summary);
    for (const CaseMetricRow& r : b.result->case_metrics) out["case_metrics"].push_back(case_metric_json(r));
    if (b.result->final_masks) out["masks"].push_back(mask_json(*b.result->final_masks));
  }
  for (const MaskSnapshot& m : b.periodic_masks) out["masks"].push_back(mask_json(m));
  for (const EpochRecord& e : b.epochs) out["epochs"].push_back(epoch_json(e));
  for (const BundleEvent& e : b.events)
    out["events"].push_back({{"time", e.time}, {"kind", to_string(e.kind)}, {"message", e.message}});
  return out;
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
  out.flush();
  if (!out) throw StoreError("cannot write '" + path.string() + "'");
}

// ----------------------------------------------------------------------------------------------------------
// JSON → bundle

EpochRecord read_epoch(const Fields& f) {
  EpochRecord e;
  e.epoch = f.integer("epoch");
  e.train_loss = f.real("train_loss");
  e.val_loss = f.real("val_loss");
  const json& dice = f.at("pseudo_dice");
  if (!dice.is_array()) f.fail("pseudo_dice", "expected an array");
  for (const json& value : dice) e.pseudo_dice.push_back(Fields(json{{"v", value}}, "pseudo_dice").real("v"));
  e.mean_pseudo_dice = f.real("mean_pseudo_dice");
  e.learning_rate = f.real("learning_rate");
  e.seconds = f.real("seconds");
  e.loader_wait_fraction = f.real("loader_wait_fraction");
  return e;
}

CaseMetricRow read_case_metric(const Fields& f) {
  return {f.text("case"), f.text("structure"),        f.boolean("is_region"), f.real("dice"),
          f.real("nsd"),  f.real("nsd_tolerance_mm"), f.real("hd95"),         f.text("hd_variant")};
}

ResultSummary read_result_summary(const Fields& f) {
  ResultSummary s;
  s.mean_dice = f.real("mdice");
  s.mean_nsd = f.real("mnsd");
  s.mean_hd95 = f.real("mhd95");
  s.params = f.integer("params");
  s.flops = f.real("flops");
  const json& patch = f.at("patch");
  if (!patch.is_array() || patch.size() != 3) f.fail("patch", "expected 3 integers");
  for (int k = 0; k < 3; ++k) {
    if (!patch[k].is_number_integer()) f.fail("patch", "expected 3 integers");
    s.patch[k] = patch[k].get<int64_t>();
  }
  const json& metrics = f.at("metrics");
  s.metrics_json = metrics.is_string() ? metrics.get<std::string>() : metrics.dump();
  return s;
}

MaskSnapshot read_mask(const Fields& f, const fs::path& dir) {
  MaskSnapshot m;
  m.kind = f.parsed("kind", [](const std::string& t) { return parse_mask_kind(t); });
  m.step = f.integer("step");
  const std::string file = f.text("file");
  if (file.find("..") != std::string::npos || fs::path(file).is_absolute())
    f.fail("file", "must be a path inside the bundle, got '" + file + "'");
  try {
    m.topology = Topology::deserialize(read_file(dir / file));
  } catch (const std::invalid_argument& e) {
    throw InputError("result bundle '" + (dir / file).string() + "': " + e.what());
  }
  if (m.topology.hash_hex() != f.text("topology_hash"))
    f.fail("topology_hash", "does not match the topology in " + file + " (" + m.topology.hash_hex() + ")");
  return m;
}

void read_job_fields(const Fields& job, ResultBundle& b) {
  b.fold = static_cast<int>(job.integer("fold"));
  b.sparsity = job.real("sparsity");
  b.seed = static_cast<uint64_t>(job.integer("seed"));
  b.status = job.parsed("status", [](const std::string& t) { return parse_job_status(t); });
  if (b.status != JobStatus::Done && b.status != JobStatus::Failed)
    job.fail("status", "expected done or failed, got '" + to_string(b.status) + "'");
  b.attempts = static_cast<int>(job.integer("attempts"));
  b.max_attempts = static_cast<int>(job.integer("max_attempts"));
  if (b.max_attempts < 1) job.fail("max_attempts", "expected at least 1");
  b.node = job.text("node");
  b.error = job.text("error");
  if (job.has("checkpoint")) {
    const Fields c = job.object("checkpoint");
    b.checkpoint = Checkpoint{c.text("path"), c.text("sha256"), c.integer("iteration")};
  }
  if (job.text("key") != b.key())
    job.fail("key", "does not match its experiment, fold, sparsity, seed and config hash (expected " +
                        b.key() + ")");
}

void check_complete(const ResultBundle& b) {
  if (b.experiment.name.empty() || b.experiment.config_hash.empty())
    throw ConfigError("result bundle: the experiment name and config hash are required");
  if (b.status == JobStatus::Done && !b.result)
    throw ConfigError("result bundle: a done job needs its result");
  if (b.status != JobStatus::Done && b.status != JobStatus::Failed)
    throw ConfigError("result bundle: status must be done or failed, got " + to_string(b.status));
}

}  // namespace

std::string ResultBundle::key() const {
  return job_key(experiment.name, fold, sparsity, seed, experiment.config_hash);
}

void write_result_bundle(const std::string& dir, const ResultBundle& bundle) {
  check_complete(bundle);
  fs::path target = fs::path(dir).lexically_normal();
  if (target.filename().empty()) target = target.parent_path();
  const fs::path staging = target.string() + ".partial";
  fs::remove_all(staging);
  fs::create_directories(staging / "masks");
  if (bundle.result && bundle.result->final_masks)
    write_bytes(staging / mask_file_name(*bundle.result->final_masks),
                bundle.result->final_masks->topology.serialize());
  for (const MaskSnapshot& m : bundle.periodic_masks)
    write_bytes(staging / mask_file_name(m), m.topology.serialize());
  write_bytes(staging / "bundle.json", bundle_json(bundle).dump(2) + "\n");
  replace_folder(staging, target);
}

ResultBundle read_result_bundle(const std::string& dir) {
  const fs::path path = fs::path(dir) / "bundle.json";
  const json root = json::parse(read_file(path), nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) throw InputError("result bundle '" + path.string() + "': not valid JSON");
  const Fields top(root, path.string());
  if (!root.contains("format") || root["format"] != kFormat)
    top.fail("format", std::string("expected \"") + kFormat + "\"");
  if (top.integer("version") != kVersion)
    top.fail("version", fmt::format("version {} is not supported (this e2e reads {})", top.integer("version"),
                                    kVersion));
  ResultBundle b;
  const Fields experiment = top.object("experiment");
  b.experiment.name = experiment.text("name");
  const json& config = experiment.at("config");
  b.experiment.config_json = config.is_string() ? config.get<std::string>() : config.dump(2);
  b.experiment.config_hash = experiment.text("config_hash");
  b.experiment.dataset_fingerprint = experiment.text("dataset_fingerprint");
  b.experiment.code_version = experiment.text("code_version");
  read_job_fields(top.object("job"), b);
  std::optional<MaskSnapshot> final_masks;
  for (const Fields& m : top.array("masks")) {
    MaskSnapshot masks = read_mask(m, dir);
    if (masks.kind == MaskKind::Final)
      final_masks = std::move(masks);
    else
      b.periodic_masks.push_back(std::move(masks));
  }
  if (top.has("result")) {
    b.result = JobResult{read_result_summary(top.object("result")), {}, std::move(final_masks)};
    for (const Fields& r : top.array("case_metrics")) b.result->case_metrics.push_back(read_case_metric(r));
  } else if (b.status == JobStatus::Done) {
    top.fail("result", "a done job needs its result");
  }
  if (b.result && b.status != JobStatus::Done)
    top.fail("result", "only a done job carries a result (the job is " + to_string(b.status) + ")");
  for (const Fields& e : top.array("epochs")) b.epochs.push_back(read_epoch(e));
  for (const Fields& e : top.array("events"))
    b.events.push_back({e.text("time"),
                        e.parsed("kind", [](const std::string& t) { return parse_event_kind(t); }),
                        e.text("message")});
  return b;
}

std::vector<std::string> find_bundles(const std::vector<std::string>& paths) {
  std::vector<std::string> bundles;
  for (const std::string& path : paths) {
    std::error_code ec;
    if (!fs::is_directory(path, ec)) throw InputError("result bundle '" + path + "': no such folder");
    if (fs::exists(fs::path(path) / "bundle.json")) {
      bundles.push_back(path);
      continue;
    }
    std::vector<std::string> inside;
    for (const auto& entry : fs::directory_iterator(path))
      if (entry.is_directory() && fs::exists(entry.path() / "bundle.json"))
        inside.push_back(entry.path().string());
    if (inside.empty())
      throw InputError("'" + path + "': neither a result bundle nor a folder of bundles (no bundle.json)");
    std::sort(inside.begin(), inside.end());
    bundles.insert(bundles.end(), inside.begin(), inside.end());
  }
  return bundles;
}

// ----------------------------------------------------------------------------------------------------------
// Import

// One bundle into the store, through the Store's own methods (the caller holds the transaction).
class BundleImporter {
 public:
  BundleImporter(Store& store, bool allow_config_change) : store_(store), allow_(allow_config_change) {}

  ImportOutcome import(const std::string& source, const ResultBundle& b, const std::string& bundle_sha256) {
    ImportOutcome outcome{source, 0, false, ""};
    if (const std::optional<int64_t> job = store_.imported_job(bundle_sha256)) {
      outcome.job_id = *job;
      outcome.note = "already imported";
      return outcome;
    }
    const int64_t experiment_id = find_or_add_experiment(source, b.experiment);
    outcome.job_id =
        store_.add_job(experiment_id, b.experiment.config_hash, b.fold, b.sparsity, b.seed, b.max_attempts);
    if (store_.job(outcome.job_id).status == JobStatus::Done) {
      outcome.note = "the job is already done";
    } else {
      write_job(outcome.job_id, b);
      outcome.imported = true;
    }
    store_.record_import(bundle_sha256, outcome.job_id, source);
    return outcome;
  }

 private:
  int64_t find_or_add_experiment(const std::string& source, const ExperimentInfo& info) {
    const auto found = store_.find_experiment(info.name);
    if (!found) return store_.upsert_experiment(info);
    if (found->second != info.config_hash && !allow_)
      throw InputError(
          fmt::format("result bundle '{}': experiment '{}' is in the store with another configuration "
                      "(config hash {}…, the bundle's {}…)",
                      source, info.name, found->second.substr(0, 12), info.config_hash.substr(0, 12)));
    return found->first;
  }

  void write_job(int64_t job_id, const ResultBundle& b) {
    const std::string now = utc_now();
    RecordedJobState state;
    state.status = b.status;
    state.attempts = b.attempts;
    state.max_attempts = b.max_attempts;
    state.node = b.node;
    state.error = b.error;
    state.started_at = b.events.empty() ? now : b.events.front().time;
    state.finished_at = b.events.empty() ? now : b.events.back().time;
    state.checkpoint = b.checkpoint;
    store_.restore_job_state(job_id, state);
    for (const BundleEvent& e : b.events) store_.add_event(job_id, e.kind, e.message, e.time);
    store_.record_epochs(job_id, b.epochs);
    for (const MaskSnapshot& m : b.periodic_masks) store_.record_masks(job_id, m);
    if (b.result) store_.record_result(job_id, *b.result);
  }

  Store& store_;
  bool allow_;
};

std::vector<ImportOutcome> import_bundles(Store& store, const std::vector<std::string>& bundle_dirs,
                                          bool allow_config_change) {
  std::vector<std::pair<ResultBundle, std::string>> bundles;
  for (const std::string& dir : bundle_dirs)
    bundles.emplace_back(read_result_bundle(dir), sha256_hex(read_file(fs::path(dir) / "bundle.json")));
  BundleImporter importer(store, allow_config_change);
  std::vector<ImportOutcome> outcomes;
  Transaction transaction(store.database());
  for (std::size_t i = 0; i < bundles.size(); ++i)
    outcomes.push_back(importer.import(bundle_dirs[i], bundles[i].first, bundles[i].second));
  transaction.commit();
  return outcomes;
}

}  // namespace e2e
