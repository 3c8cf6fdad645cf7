#include "configs/config.hpp"

#include <yaml-cpp/yaml.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <optional>
#include <set>
#include <sstream>

#include "common/file_io.hpp"
#include "configs/config_json.hpp"

namespace e2e {
namespace {

std::string describe(const YAML::Node& node) {
  if (node.IsScalar()) return "'" + node.Scalar() + "'";
  if (node.IsSequence()) return "a list";
  if (node.IsMap()) return "a mapping";
  return "nothing";
}

// A YAML mapping with the dotted path that leads to it. Every key read is recorded so that finish() can
// reject keys nobody asked for (a typo must not be silently ignored).
class Section {
 public:
  Section(const YAML::Node& node, std::string path, std::string source)
      : node_(node), path_(std::move(path)), source_(std::move(source)) {
    if (node_ && !node_.IsNull() && !node_.IsMap()) fail(path_, "expected a mapping, got " + describe(node_));
  }

  [[noreturn]] void fail(const std::string& field, const std::string& what) const {
    throw ConfigError(source_ + ": " + field + ": " + what);
  }

  std::string field(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }

  YAML::Node get(const std::string& key) {
    seen_.insert(key);
    if (!node_ || node_.IsNull()) return YAML::Node();
    return node_[key];
  }

  Section section(const std::string& key) { return Section(get(key), field(key), source_); }

  // Whether `key` is left to the dataset's plan: absent, null or the word `plan`.
  bool left_to_plan(const std::string& key) {
    YAML::Node value = get(key);
    return !value || value.IsNull() || (value.IsScalar() && value.Scalar() == "plan");
  }

  template <typename T>
  void read(const std::string& key, T& out) {
    YAML::Node value = get(key);
    if (!value || value.IsNull()) return;  // keep the default
    out = convert<T>(value, field(key));
  }

  template <typename T>
  void read(const std::string& key, std::optional<T>& out) {
    YAML::Node value = get(key);
    if (!value || value.IsNull()) return;
    out = convert<T>(value, field(key));
  }

  template <typename T>
  void read_list(const std::string& key, std::vector<T>& out) {
    YAML::Node value = get(key);
    if (!value || value.IsNull()) return;
    if (!value.IsSequence()) fail(field(key), "expected a list, got " + describe(value));
    out.clear();
    for (std::size_t i = 0; i < value.size(); ++i)
      out.push_back(convert<T>(value[i], field(key) + "[" + std::to_string(i) + "]"));
  }

  void read_pair(const std::string& key, std::array<double, 2>& out) {
    YAML::Node value = get(key);
    if (!value || value.IsNull()) return;
    if (!value.IsSequence() || value.size() != 2)
      fail(field(key), "expected 2 numbers [min, max], got " + describe(value));
    out = {convert<double>(value[0], field(key) + "[0]"), convert<double>(value[1], field(key) + "[1]")};
  }

  void read_triple(const std::string& key, Int3& out) {
    YAML::Node value = get(key);
    if (!value || value.IsNull()) return;
    out = triple<int64_t>(value, field(key));
  }

  void read_triple(const std::string& key, std::optional<std::array<double, 3>>& out) {
    YAML::Node value = get(key);
    if (!value || value.IsNull()) return;
    out = triple<double>(value, field(key));
  }

  void read_triples(const std::string& key, std::vector<Int3>& out) {
    YAML::Node value = get(key);
    if (!value || value.IsNull()) return;
    if (!value.IsSequence()) fail(field(key), "expected a list of [d, h, w] triples, got " + describe(value));
    out.clear();
    for (std::size_t i = 0; i < value.size(); ++i)
      out.push_back(triple<int64_t>(value[i], field(key) + "[" + std::to_string(i) + "]"));
  }

  // A number for every class, or one number for all: {1: 5.0, 2: 3.0}.
  void read_int_double_map(const std::string& key, std::map<int, double>& out) {
    YAML::Node value = get(key);
    if (!value || value.IsNull()) return;
    if (!value.IsMap()) fail(field(key), "expected a mapping class → value, got " + describe(value));
    for (const auto& item : value) {
      int cls = convert<int>(item.first, field(key) + " (key)");
      out[cls] = convert<double>(item.second, field(key) + "." + std::to_string(cls));
    }
  }

  void finish() const {
    if (!node_ || node_.IsNull()) return;
    for (const auto& item : node_) {
      std::string key = item.first.Scalar();
      if (!seen_.count(key)) {
        std::string known;
        for (const auto& k : seen_) known += (known.empty() ? "" : ", ") + k;
        fail(field(key), "unknown key (known keys: " + known + ")");
      }
    }
  }

 private:
  template <typename T>
  T convert(const YAML::Node& value, const std::string& where) const;

  template <typename T>
  std::array<T, 3> triple(const YAML::Node& value, const std::string& where) const {
    if (!value.IsSequence() || value.size() != 3)
      fail(where, "expected 3 numbers [d, h, w], got " + describe(value));
    return {convert<T>(value[0], where + "[0]"), convert<T>(value[1], where + "[1]"),
            convert<T>(value[2], where + "[2]")};
  }

  YAML::Node node_;
  std::string path_;
  std::string source_;
  std::set<std::string> seen_;
};

template <typename T>
T Section::convert(const YAML::Node& value, const std::string& where) const {
  if (!value.IsScalar()) fail(where, std::string("expected a scalar, got ") + describe(value));
  const std::string& text = value.Scalar();
  if constexpr (std::is_same_v<T, std::string>) {
    return text;
  } else if constexpr (std::is_same_v<T, bool>) {
    if (text == "true" || text == "True" || text == "yes" || text == "on") return true;
    if (text == "false" || text == "False" || text == "no" || text == "off") return false;
    fail(where, "expected true or false, got '" + text + "'");
  } else if constexpr (std::is_integral_v<T>) {
    std::size_t used = 0;
    long long parsed = 0;
    try {
      parsed = std::stoll(text, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != text.size() || text.empty()) fail(where, "expected an integer, got '" + text + "'");
    if (std::is_unsigned_v<T> && parsed < 0)
      fail(where, "expected a non-negative integer, got '" + text + "'");
    return static_cast<T>(parsed);
  } else {
    std::size_t used = 0;
    double parsed = 0;
    try {
      parsed = std::stod(text, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != text.size() || text.empty() || !std::isfinite(parsed))
      fail(where, "expected a number, got '" + text + "'");
    return static_cast<T>(parsed);
  }
}

void parse_model(Section s, ModelConfig& m, PlannedFields& planned) {
  const bool levels_given = !s.left_to_plan("levels");
  if (levels_given) s.read("levels", m.levels);
  planned.pools = s.left_to_plan("pools");
  if (planned.pools && levels_given)
    s.fail(s.field("levels"),
           "expected no value without model.pools (the plan sets the depth: levels = planned pools + 1); "
           "give model.pools as well, or leave both to the plan");
  if (!planned.pools) s.read_triples("pools", m.pools);
  s.read("base_channels", m.base_channels);
  s.read("max_channels", m.max_channels);
  s.read("in_channels", m.in_channels);
  s.read("num_classes", m.num_classes);
  s.read_triple("conv_kernel", m.conv_kernel);
  s.read("shift_size", m.shift_size);
  s.read("shift_input", m.shift_input);
  s.read("deep_supervision", m.deep_supervision);
  s.finish();
}

void parse_sparsity(Section s, SparsityConfig& c) {
  s.read_list("levels", c.levels);
  s.read("update_interval", c.update_interval);
  s.read("prune_rate_start", c.prune_rate_start);
  s.read("prune_rate_end", c.prune_rate_end);
  s.read("level0_density", c.level0_density);
  s.finish();
}

void parse_training(Section s, TrainingConfig& t, PlannedFields& planned) {
  s.read("epochs", t.epochs);
  s.read("iterations_per_epoch", t.iterations_per_epoch);
  planned.batch_size = s.left_to_plan("batch_size");
  if (!planned.batch_size) s.read("batch_size", t.batch_size);
  planned.patch_size = s.left_to_plan("patch_size");
  if (!planned.patch_size) s.read_triple("patch_size", t.patch_size);
  s.read("learning_rate", t.learning_rate);
  s.read("momentum", t.momentum);
  s.read("nesterov", t.nesterov);
  s.read("weight_decay", t.weight_decay);
  s.read("grad_clip", t.grad_clip);
  s.read("poly_exponent", t.poly_exponent);
  s.read("foreground_oversampling", t.foreground_oversampling);
  s.read("batch_dice", t.batch_dice);
  s.read("validation_batches", t.validation_batches);
  s.read("checkpoint_every_epochs", t.checkpoint_every_epochs);
  s.read("checkpoint_every_minutes", t.checkpoint_every_minutes);
  s.read("precision", t.precision);
  s.read("threads", t.threads);
  s.read("seed", t.seed);
  s.finish();
}

void parse_data(Section s, DataConfig& d) {
  s.read("dataset", d.dataset);
  s.read("preprocessed", d.preprocessed);
  s.read_triple("target_spacing", d.target_spacing);
  s.read("compress", d.compress);
  s.read("workers", d.workers);
  s.read("augment_device", d.augment_device);
  s.read("elastic_probability", d.elastic_probability);
  s.read_pair("elastic_alpha", d.elastic_alpha);
  s.read_pair("elastic_sigma", d.elastic_sigma);
  s.read_list("test_cases", d.test_cases);
  s.finish();
}

void parse_eval(Section s, EvalConfig& e) {
  s.read("nsd_tolerance_mm", e.nsd_tolerance_mm);
  s.read_int_double_map("nsd_tolerance_per_class", e.nsd_tolerance_per_class);
  s.read("hd_variant", e.hd_variant);
  s.read("tta", e.tta);
  s.read("step_fraction", e.step_fraction);
  s.read("postprocessing", e.postprocessing);
  s.finish();
}

void parse_sweep(Section s, SweepConfig& w) {
  s.read_list("folds", w.folds);
  s.read_list("seeds", w.seeds);
  s.read("gpus_per_job", w.gpus_per_job);
  s.read("max_attempts", w.max_attempts);
  s.finish();
}

void parse_store(Section s, StoreConfig& st) {
  s.read("path", st.path);
  s.read("wal", st.wal);
  s.read("busy_timeout_ms", st.busy_timeout_ms);
  s.finish();
}

// `planned: [training.patch_size, ...]` (written by config_to_json once a plan is applied): these fields hold
// the plan's values. Every field named must have its value, and every field without one must be named.
void read_applied_plan(Section& top, PlannedFields& planned) {
  std::vector<std::string> names;
  top.read_list("planned", names);
  if (names.empty()) return;
  PlannedFields listed;
  for (const std::string& name : names) {
    if (name == "training.patch_size")
      listed.patch_size = true;
    else if (name == "training.batch_size")
      listed.batch_size = true;
    else if (name == "model.pools")
      listed.pools = true;
    else
      top.fail(
          "planned",
          "expected names among training.patch_size, training.batch_size, model.pools, got '" + name + "'");
  }
  const auto check = [&](bool without_value, bool named, const char* field) {
    if (without_value && named) top.fail("planned", std::string("names ") + field + ", which has no value");
    if (without_value) top.fail(field, "expected a value (the config names the plan's fields in `planned`)");
  };
  check(planned.patch_size, listed.patch_size, "training.patch_size");
  check(planned.batch_size, listed.batch_size, "training.batch_size");
  check(planned.pools, listed.pools, "model.pools");
  planned = listed;
  planned.applied = true;
}

// Field-level checks with messages in one format: "<source>: <field>: expected …, got …".
class Checker {
 public:
  explicit Checker(std::string source) : source_(std::move(source)) {}

  void require(bool ok, const std::string& field, const std::string& expected, const std::string& got) const {
    if (!ok) throw ConfigError(source_ + ": " + field + ": expected " + expected + ", got " + got);
  }
  template <typename T>
  void positive(T value, const std::string& field) const {
    require(value > 0, field, "a positive value", fmt(value));
  }
  template <typename T>
  void non_negative(T value, const std::string& field) const {
    require(value >= 0, field, "a value >= 0", fmt(value));
  }
  void positive3(const Int3& v, const std::string& field) const {
    require(v[0] > 0 && v[1] > 0 && v[2] > 0, field, "3 positive integers", fmt3(v));
  }
  void sparsity(double s, const std::string& field) const {
    require(s >= 0.0 && s < 1.0, field, "a sparsity in [0, 1)", fmt(s));
  }

  template <typename T>
  static std::string fmt(T value) {
    std::ostringstream out;
    out << value;
    return out.str();
  }
  static std::string fmt3(const Int3& v) {
    return "[" + fmt(v[0]) + ", " + fmt(v[1]) + ", " + fmt(v[2]) + "]";
  }

 private:
  std::string source_;
};

}  // namespace

int ModelConfig::channels(int level) const {
  int64_t c = base_channels;
  for (int i = 0; i < level && c < max_channels; ++i) c *= 2;
  return static_cast<int>(std::min<int64_t>(c, max_channels));
}

void validate(const Config& config) {
  Checker check(config.source);
  const ModelConfig& m = config.model;
  check.require(m.levels >= 3 && m.levels <= 8, "model.levels", "an integer in [3, 8]",
                Checker::fmt(m.levels));
  check.positive(m.base_channels, "model.base_channels");
  check.require(m.max_channels >= m.base_channels, "model.max_channels", ">= model.base_channels",
                Checker::fmt(m.max_channels));
  check.positive(m.in_channels, "model.in_channels");
  check.require(m.num_classes >= 2, "model.num_classes", "at least 2 (background + one class)",
                Checker::fmt(m.num_classes));
  const bool pools_pending = config.planned.pools && !config.planned.applied;
  if (!pools_pending)
    check.require(static_cast<int>(m.pools.size()) == m.levels - 1, "model.pools",
                  "model.levels - 1 = " + Checker::fmt(m.levels - 1) + " pool triples",
                  Checker::fmt(m.pools.size()));
  for (std::size_t i = 0; i < m.pools.size(); ++i)
    check.positive3(m.pools[i], "model.pools[" + std::to_string(i) + "]");
  check.positive3(m.conv_kernel, "model.conv_kernel");
  check.require(m.conv_kernel[0] % 2 == 1 && m.conv_kernel[1] % 2 == 1 && m.conv_kernel[2] % 2 == 1,
                "model.conv_kernel", "odd kernel sizes", Checker::fmt3(m.conv_kernel));
  check.require(m.shift_size >= 0 && (m.shift_size <= 1 || m.shift_size % 2 == 1), "model.shift_size",
                "0 or 1 (off) or an odd size such as 3 or 5", Checker::fmt(m.shift_size));

  const SparsityConfig& sp = config.sparsity;
  for (std::size_t i = 0; i < sp.levels.size(); ++i)
    check.sparsity(sp.levels[i], "sparsity.levels[" + std::to_string(i) + "]");
  check.non_negative(sp.update_interval, "sparsity.update_interval");
  check.require(sp.prune_rate_start > 0 && sp.prune_rate_start < 1, "sparsity.prune_rate_start",
                "a rate in (0, 1)", Checker::fmt(sp.prune_rate_start));
  check.require(sp.prune_rate_end >= 0 && sp.prune_rate_end <= sp.prune_rate_start, "sparsity.prune_rate_end",
                "a rate in [0, prune_rate_start]", Checker::fmt(sp.prune_rate_end));
  if (sp.level0_density)
    check.require(*sp.level0_density > 0 && *sp.level0_density <= 1, "sparsity.level0_density",
                  "a density in (0, 1]", Checker::fmt(*sp.level0_density));

  const TrainingConfig& t = config.training;
  check.positive(t.epochs, "training.epochs");
  check.positive(t.iterations_per_epoch, "training.iterations_per_epoch");
  check.positive(t.batch_size, "training.batch_size");
  check.positive3(t.patch_size, "training.patch_size");
  Int3 total_pool = {1, 1, 1};
  for (const Int3& p : m.pools)
    for (int a = 0; a < 3; ++a) total_pool[a] *= p[a];
  const bool patch_pending = config.planned.patch_size && !config.planned.applied;
  for (int a = 0; a < 3 && !patch_pending && !pools_pending; ++a)
    check.require(t.patch_size[a] % total_pool[a] == 0, "training.patch_size",
                  "sizes divisible by the product of model.pools " + Checker::fmt3(total_pool),
                  Checker::fmt3(t.patch_size));
  check.positive(t.learning_rate, "training.learning_rate");
  check.require(t.momentum >= 0 && t.momentum < 1, "training.momentum", "a value in [0, 1)",
                Checker::fmt(t.momentum));
  check.non_negative(t.weight_decay, "training.weight_decay");
  check.positive(t.grad_clip, "training.grad_clip");
  check.positive(t.poly_exponent, "training.poly_exponent");
  check.require(t.foreground_oversampling >= 0 && t.foreground_oversampling <= 1,
                "training.foreground_oversampling", "a fraction in [0, 1]",
                Checker::fmt(t.foreground_oversampling));
  check.non_negative(t.validation_batches, "training.validation_batches");
  check.positive(t.checkpoint_every_epochs, "training.checkpoint_every_epochs");
  check.positive(t.checkpoint_every_minutes, "training.checkpoint_every_minutes");
  check.require(t.precision == "bf16" || t.precision == "fp16" || t.precision == "fp32", "training.precision",
                "one of bf16, fp16, fp32", "'" + t.precision + "'");
  check.non_negative(t.threads, "training.threads");

  const DataConfig& d = config.data;
  if (d.target_spacing)
    for (int a = 0; a < 3; ++a)
      check.require((*d.target_spacing)[a] > 0, "data.target_spacing", "3 positive spacings (mm)",
                    Checker::fmt((*d.target_spacing)[a]));
  check.non_negative(d.workers, "data.workers");
  std::set<std::string> test_cases;
  for (const std::string& id : d.test_cases)
    check.require(!id.empty() && test_cases.insert(id).second, "data.test_cases",
                  "distinct, non-empty case ids", "'" + id + "'");
  check.require(d.augment_device == "cpu" || d.augment_device == "cuda", "data.augment_device", "cpu or cuda",
                "'" + d.augment_device + "'");
  check.require(d.elastic_probability >= 0 && d.elastic_probability <= 1, "data.elastic_probability",
                "a probability in [0, 1]", Checker::fmt(d.elastic_probability));
  check.require(d.elastic_probability == 0 || d.augment_device == "cuda", "data.elastic_probability",
                "0 unless data.augment_device is cuda (the CPU augmenter has no elastic deformation)",
                Checker::fmt(d.elastic_probability));
  check.require(d.elastic_alpha[0] >= 0 && d.elastic_alpha[0] <= d.elastic_alpha[1], "data.elastic_alpha",
                "[min, max] with 0 <= min <= max",
                "[" + Checker::fmt(d.elastic_alpha[0]) + ", " + Checker::fmt(d.elastic_alpha[1]) + "]");
  check.require(d.elastic_sigma[0] > 0 && d.elastic_sigma[0] <= d.elastic_sigma[1], "data.elastic_sigma",
                "[min, max] with 0 < min <= max",
                "[" + Checker::fmt(d.elastic_sigma[0]) + ", " + Checker::fmt(d.elastic_sigma[1]) + "]");

  const EvalConfig& e = config.eval;
  check.positive(e.nsd_tolerance_mm, "eval.nsd_tolerance_mm");
  for (const auto& [cls, tol] : e.nsd_tolerance_per_class) {
    check.require(cls >= 1 && cls < m.num_classes, "eval.nsd_tolerance_per_class",
                  "foreground class values 1.." + Checker::fmt(m.num_classes - 1), Checker::fmt(cls));
    check.positive(tol, "eval.nsd_tolerance_per_class." + std::to_string(cls));
  }
  check.require(e.hd_variant == "surfel" || e.hd_variant == "pooled" || e.hd_variant == "monai",
                "eval.hd_variant", "one of surfel, pooled, monai", "'" + e.hd_variant + "'");
  check.require(e.step_fraction > 0 && e.step_fraction <= 1, "eval.step_fraction", "a fraction in (0, 1]",
                Checker::fmt(e.step_fraction));
  check.require(e.postprocessing == "auto" || e.postprocessing == "off", "eval.postprocessing", "auto or off",
                "'" + e.postprocessing + "'");

  const SweepConfig& w = config.sweep;
  check.require(!w.folds.empty(), "sweep.folds", "at least one fold", "an empty list");
  for (int f : w.folds) check.require(f >= 0 && f < 5, "sweep.folds", "folds in 0..4", Checker::fmt(f));
  check.require(!w.seeds.empty(), "sweep.seeds", "at least one seed", "an empty list");
  check.positive(w.gpus_per_job, "sweep.gpus_per_job");
  check.positive(w.max_attempts, "sweep.max_attempts");

  check.require(!config.store.path.empty(), "store.path", "a file path", "an empty string");
  check.non_negative(config.store.busy_timeout_ms, "store.busy_timeout_ms");
}

Config parse_config(const std::string& yaml_text, const std::string& source_name) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    throw ConfigError(source_name + ": not valid YAML: " + e.what());
  }
  Config config;
  config.source = source_name;
  Section top(root, "", source_name);
  top.read("experiment", config.experiment);
  parse_model(top.section("model"), config.model, config.planned);
  parse_sparsity(top.section("sparsity"), config.sparsity);
  parse_training(top.section("training"), config.training, config.planned);
  read_applied_plan(top, config.planned);
  parse_data(top.section("data"), config.data);
  parse_eval(top.section("eval"), config.eval);
  parse_sweep(top.section("sweep"), config.sweep);
  parse_store(top.section("store"), config.store);
  top.finish();
  if (config.experiment.empty()) throw ConfigError(source_name + ": experiment: expected a name, got ''");
  validate(config);
  // Text values must be UTF-8: the config is stored and hashed as JSON.
  try {
    (void)config_to_json(config);
  } catch (const nlohmann::json::type_error&) {
    throw ConfigError(source_name + ": a text value is not valid UTF-8 (configs are stored as JSON)");
  }
  return config;
}

Config load_config(const std::string& path) {
  const std::optional<std::string> text = try_read_file(path);
  if (!text) throw ConfigError(path + ": cannot open config file (does it exist and is it readable?)");
  return parse_config(*text, path);
}

std::vector<double> parse_sparsity_list(const std::string& text) {
  std::vector<double> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    std::size_t used = 0;
    double value = 0;
    try {
      value = std::stod(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != item.size())
      throw ConfigError("--sparsity: expected comma-separated numbers, got '" + item + "'");
    if (!(value >= 0.0 && value < 1.0))
      throw ConfigError("--sparsity: expected values in [0, 1), got " + item);
    out.push_back(value);
  }
  if (out.empty()) throw ConfigError("--sparsity: expected at least one value");
  return out;
}

Int3 parse_int3(const std::string& text, const std::string& what) {
  Int3 out{};
  std::stringstream in(text);
  std::string item;
  int n = 0;
  while (std::getline(in, item, ',')) {
    std::size_t used = 0;
    long long value = 0;
    try {
      value = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (n >= 3 || used == 0 || used != item.size() || value <= 0)
      throw ConfigError(what + ": expected 3 positive integers D,H,W, got '" + text + "'");
    out[n++] = value;
  }
  if (n != 3) throw ConfigError(what + ": expected 3 positive integers D,H,W, got '" + text + "'");
  return out;
}

}  // namespace e2e
