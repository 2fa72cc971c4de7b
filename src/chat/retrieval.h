// Recall for a chat turn: the memories and the older messages most relevant to the new message.
//
// Keyword relevance is FTS5 bm25 over messages and memories. Candidates are ranked by reciprocal
// rank (1 / (60 + rank)); a memory's score is then weighted by its importance (0.5 + importance),
// so an important memory outranks an equally relevant trivial one. Messages of the current
// session that are in the window (seq >= window_first_seq) and the new message are left out: the
// model already reads them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "chat/context.h"
#include "store/memory_store.h"

namespace locrit {

struct RecallQuery {
  std::string text;        // The new message.
  std::string session_id;  // The current session.
  // The seq of the oldest message in the window; messages of the session from it on are in the
  // window. Absent: nothing of the session is in the window.
  std::optional<int64_t> window_first_seq;
  std::string exclude_id;  // The new message itself.
  int limit = 8;
};

// Runs on a reader of the Locrit's memory. Best first.
Result<std::vector<RecalledItem>> Recall(MemoryStore& store, const RecallQuery& query);

}  // namespace locrit
