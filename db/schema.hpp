// The store's schema and its versioned migrations (PRAGMA user_version counts the migrations applied).
#pragma once

#include "db/sqlite.hpp"

namespace e2e {

// "E2ED": marks a file as an e2e experiment store (PRAGMA application_id).
constexpr int64_t kStoreApplicationId = 0x45324544;

// The schema version this build writes and reads.
int schema_version();

// Throws InputError naming the file when it is not an e2e store, or comes from a newer schema version, or
// (readers only) needs a migration. Reads only: the file is never written.
void check_schema(Database& db, bool allow_older);

// Applies the missing migrations, each in its own transaction. Call after check_schema.
void migrate(Database& db);

}  // namespace e2e
