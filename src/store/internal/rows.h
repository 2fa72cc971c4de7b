// Column lists and row readers shared by the store's queries, so every query that returns a node
// selects the same columns in the same order.
#pragma once

#include "core/memory_types.h"
#include "store/internal/sqlite.h"

namespace locrit::store_internal {

// SELECT these (optionally prefixed by a table alias with the *_AS forms) and read with Read*.
inline constexpr std::string_view kMessageColumns =
    "seq, id, session_id, user_id, role, content, created_at, metadata, status";
inline constexpr std::string_view kSessionColumns =
    "id, user_id, name, topic, created_at, last_activity, message_count";
inline constexpr std::string_view kMemoryColumns =
    "id, content, importance, created_at, last_accessed, metadata";
inline constexpr std::string_view kConceptColumns =
    "id, name, type, description, confidence, created_at";
inline constexpr std::string_view kTopicColumns = "id, name, description, category, created_at";

// Each reads the columns above starting at column `first`.
Message ReadMessage(const Stmt& s, int first = 0);
Session ReadSession(const Stmt& s, int first = 0);
Memory ReadMemory(const Stmt& s, int first = 0);
Concept ReadConcept(const Stmt& s, int first = 0);
Topic ReadTopic(const Stmt& s, int first = 0);

}  // namespace locrit::store_internal
