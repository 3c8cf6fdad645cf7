#include "db/schema.hpp"

#include <string>
#include <vector>

#include "configs/config.hpp"

namespace e2e {

namespace {

// Migration k (0-based) takes the store from user_version k to k + 1. Append, never edit a released one.
const std::vector<std::string>& migrations() {
  static const std::vector<std::string> steps = {
      // 1: the initial schema.
      R"sql(
CREATE TABLE experiments (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  config_json TEXT NOT NULL,
  config_hash TEXT NOT NULL,
  dataset_fingerprint TEXT NOT NULL DEFAULT '',
  code_version TEXT NOT NULL DEFAULT '',
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE TABLE splits (
  experiment_id INTEGER NOT NULL REFERENCES experiments(id),
  fold INTEGER NOT NULL,
  case_id TEXT NOT NULL,
  role TEXT NOT NULL CHECK (role IN ('train', 'val')),
  PRIMARY KEY (experiment_id, fold, case_id)
) WITHOUT ROWID;
CREATE TABLE jobs (
  id INTEGER PRIMARY KEY,
  key TEXT NOT NULL UNIQUE,
  experiment_id INTEGER NOT NULL REFERENCES experiments(id),
  config_hash TEXT NOT NULL,
  fold INTEGER NOT NULL,
  sparsity REAL NOT NULL,
  seed INTEGER NOT NULL,
  status TEXT NOT NULL DEFAULT 'pending'
    CHECK (status IN ('pending', 'running', 'done', 'failed', 'preempted', 'interrupted')),
  attempts INTEGER NOT NULL DEFAULT 0,
  max_attempts INTEGER NOT NULL CHECK (max_attempts >= 1),
  worker_group INTEGER,
  node TEXT,
  created_at TEXT NOT NULL,
  started_at TEXT,
  finished_at TEXT,
  heartbeat_at TEXT,
  error TEXT,
  checkpoint_path TEXT,
  checkpoint_sha256 TEXT,
  checkpoint_iteration INTEGER
);
CREATE INDEX jobs_by_status ON jobs (status, id);
CREATE INDEX jobs_by_experiment ON jobs (experiment_id, sparsity, fold, seed);
CREATE TABLE events (
  id INTEGER PRIMARY KEY,
  job_id INTEGER NOT NULL REFERENCES jobs(id),
  time TEXT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('started', 'checkpointed', 'preempted', 'retried', 'failed', 'resumed',
                                     'interrupted', 'done')),
  message TEXT NOT NULL DEFAULT ''
);
CREATE INDEX events_by_job ON events (job_id, id);
CREATE TABLE epochs (
  job_id INTEGER NOT NULL REFERENCES jobs(id),
  epoch INTEGER NOT NULL,
  train_loss REAL,
  val_loss REAL,
  pseudo_dice TEXT NOT NULL DEFAULT '[]',
  mean_pseudo_dice REAL,
  learning_rate REAL,
  seconds REAL,
  loader_wait_fraction REAL,
  PRIMARY KEY (job_id, epoch)
) WITHOUT ROWID;
CREATE TABLE case_metrics (
  job_id INTEGER NOT NULL REFERENCES jobs(id),
  case_id TEXT NOT NULL,
  structure TEXT NOT NULL,
  position INTEGER NOT NULL,
  is_region INTEGER NOT NULL DEFAULT 0,
  dice REAL,
  nsd REAL,
  nsd_tolerance_mm REAL,
  hd95 REAL,
  hd_variant TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (job_id, case_id, structure)
) WITHOUT ROWID;
CREATE TABLE results (
  job_id INTEGER PRIMARY KEY REFERENCES jobs(id),
  mdice REAL,
  mnsd REAL,
  mhd95 REAL,
  params INTEGER,
  flops REAL,
  patch TEXT NOT NULL DEFAULT '[]',
  metrics_json TEXT NOT NULL DEFAULT '{}',
  created_at TEXT NOT NULL
);
CREATE TABLE masks (
  id INTEGER PRIMARY KEY,
  job_id INTEGER NOT NULL REFERENCES jobs(id),
  step INTEGER NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('final', 'periodic')),
  topology_hash TEXT NOT NULL,
  active INTEGER NOT NULL,
  total INTEGER NOT NULL,
  topology BLOB NOT NULL,
  UNIQUE (job_id, kind, step)
);
CREATE TABLE imports (
  bundle_sha256 TEXT PRIMARY KEY,
  job_id INTEGER NOT NULL REFERENCES jobs(id),
  source TEXT NOT NULL,
  imported_at TEXT NOT NULL
);
)sql",
      // 2: test-set ensembles (job kind and folds), splits and post-processing on metrics and results,
      //    the published-number metric variants, inference time per patch.
      R"sql(
ALTER TABLE jobs ADD COLUMN kind TEXT NOT NULL DEFAULT 'train' CHECK (kind IN ('train', 'ensemble'));
ALTER TABLE jobs ADD COLUMN folds TEXT NOT NULL DEFAULT '[]';
CREATE TABLE case_metrics_v2 (
  job_id INTEGER NOT NULL REFERENCES jobs(id),
  case_id TEXT NOT NULL,
  structure TEXT NOT NULL,
  postprocessed INTEGER NOT NULL DEFAULT 0,
  split TEXT NOT NULL DEFAULT 'cv' CHECK (split IN ('cv', 'test')),
  position INTEGER NOT NULL,
  is_region INTEGER NOT NULL DEFAULT 0,
  dice REAL,
  nsd REAL,
  nsd_tolerance_mm REAL,
  hd95 REAL,
  hd_variant TEXT NOT NULL DEFAULT '',
  nsd_fixed_spacing REAL,
  hd95_pooled REAL,
  PRIMARY KEY (job_id, case_id, structure, postprocessed)
) WITHOUT ROWID;
INSERT INTO case_metrics_v2 (job_id, case_id, structure, position, is_region, dice, nsd, nsd_tolerance_mm,
                             hd95, hd_variant)
  SELECT job_id, case_id, structure, position, is_region, dice, nsd, nsd_tolerance_mm, hd95, hd_variant
  FROM case_metrics;
DROP TABLE case_metrics;
ALTER TABLE case_metrics_v2 RENAME TO case_metrics;
ALTER TABLE results ADD COLUMN split TEXT NOT NULL DEFAULT 'cv' CHECK (split IN ('cv', 'test'));
ALTER TABLE results ADD COLUMN postprocessing TEXT NOT NULL DEFAULT '';
ALTER TABLE results ADD COLUMN cases_total INTEGER NOT NULL DEFAULT 0;
ALTER TABLE results ADD COLUMN cases_scored INTEGER NOT NULL DEFAULT 0;
ALTER TABLE results ADD COLUMN ms_per_patch_dense REAL;
ALTER TABLE results ADD COLUMN ms_per_patch_sparse REAL;
)sql",
  };
  return steps;
}

bool has_user_tables(Database& db) {
  Statement query = db.prepare("SELECT count(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'");
  return query.step() && query.int64(0) > 0;
}

}  // namespace

int schema_version() {
  return static_cast<int>(migrations().size());
}

void check_schema(Database& db, bool allow_older) {
  const int64_t application_id = db.pragma_int("application_id");
  const int64_t version = db.pragma_int("user_version");
  const std::string& path = db.path();
  if (application_id != 0 && application_id != kStoreApplicationId)
    throw InputError("store '" + path + "': an SQLite database of another application (application_id " +
                     std::to_string(application_id) + "), not an e2e store");
  if (application_id == 0 && has_user_tables(db))
    throw InputError("store '" + path + "': an SQLite database with tables of its own, not an e2e store");
  if (version > schema_version())
    throw InputError("store '" + path + "': schema version " + std::to_string(version) +
                     " is newer than this e2e understands (" + std::to_string(schema_version()) +
                     "); use a newer e2e (the store was left untouched)");
  if (!allow_older && version < schema_version()) {
    if (version == 0) throw InputError("store '" + path + "': an empty database, not an e2e store");
    throw InputError("store '" + path + "': schema version " + std::to_string(version) + " is older than " +
                     std::to_string(schema_version()) +
                     "; open it once with a writer (e2e sweep or e2e db import) "
                     "to migrate it");
  }
}

void migrate(Database& db) {
  const auto& steps = migrations();
  for (;;) {
    Transaction transaction(db);  // re-reads the version under the write lock
    const auto version = static_cast<std::size_t>(db.pragma_int("user_version"));
    if (version >= steps.size()) return;
    db.exec(steps[version]);
    db.exec("PRAGMA application_id = " + std::to_string(kStoreApplicationId));
    db.exec("PRAGMA user_version = " + std::to_string(version + 1));
    transaction.commit();
  }
}

}  // namespace e2e
