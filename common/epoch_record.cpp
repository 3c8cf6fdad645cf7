#include "common/epoch_record.hpp"

#include <cmath>
#include <string>

#include "common/json_number.hpp"

namespace e2e {

namespace {

double number_or_nan(const nlohmann::json& json, const char* key, double absent) {
  if (!json.contains(key)) return absent;
  const nlohmann::json& value = json.at(key);
  return value.is_null() ? std::nan("") : value.get<double>();
}

}  // namespace

nlohmann::json EpochRecord::to_json() const {
  nlohmann::json dice = nlohmann::json::array();
  for (double d : pseudo_dice) dice.push_back(json_number(d));
  return {{"epoch", epoch},
          {"train_loss", json_number(train_loss)},
          {"val_loss", json_number(val_loss)},
          {"pseudo_dice", dice},
          {"mean_pseudo_dice", json_number(mean_pseudo_dice)},
          {"lr", json_number(learning_rate)},
          {"seconds", json_number(seconds)},
          {"iterations_per_second", json_number(iterations_per_second)},
          {"loader_wait_fraction", json_number(loader_wait_fraction)},
          {"allreduce_fraction", json_number(allreduce_fraction)},
          {"topology_updates", topology_updates}};
}

EpochRecord EpochRecord::from_json(const nlohmann::json& j) {
  EpochRecord r;
  r.epoch = j.at("epoch").get<int64_t>();
  r.train_loss = number_or_nan(j, "train_loss", std::nan(""));
  r.val_loss = number_or_nan(j, "val_loss", std::nan(""));
  for (const nlohmann::json& d : j.at("pseudo_dice"))
    r.pseudo_dice.push_back(d.is_null() ? std::nan("") : d.get<double>());
  r.mean_pseudo_dice = number_or_nan(j, "mean_pseudo_dice", std::nan(""));
  r.learning_rate = number_or_nan(j, "lr", 0.0);
  r.seconds = number_or_nan(j, "seconds", 0.0);
  r.iterations_per_second = number_or_nan(j, "iterations_per_second", 0.0);
  r.loader_wait_fraction = number_or_nan(j, "loader_wait_fraction", 0.0);
  r.allreduce_fraction = number_or_nan(j, "allreduce_fraction", 0.0);
  r.topology_updates = j.value("topology_updates", int64_t{0});
  return r;
}

}  // namespace e2e
