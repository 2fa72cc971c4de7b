#include "store/internal/keyword_index.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "store/internal/fts_query.h"
#include "store/internal/snippet.h"

namespace locrit::store_internal {
namespace {

// FTS5's bm25() defaults (fts5_aux.c).
constexpr double kK1 = 1.2;
constexpr double kB = 0.75;
constexpr double kMinIdf = 1e-6;

// The counters the index follows; -1 when the row is missing (a store read before its
// migration to schema 3): the index then re-reads everything on every query.
struct Counters {
  int64_t messages = -1;
  int64_t message_edits = -1;
  int64_t memory_changes = -1;
};

Result<Counters> ReadCounters(Db& db) {
  ASSIGN_OR_RETURN(Stmt stmt, db.Prepare("SELECT name, value FROM counters WHERE name IN "
                                         "('messages', 'message_edits', 'memory_changes')"));
  Counters counters;
  while (true) {
    ASSIGN_OR_RETURN(const bool row, stmt.Step());
    if (!row) break;
    const std::string_view name = stmt.TextView(0);
    if (name == "messages") counters.messages = stmt.Int(1);
    if (name == "message_edits") counters.message_edits = stmt.Int(1);
    if (name == "memory_changes") counters.memory_changes = stmt.Int(1);
  }
  return counters;
}

}  // namespace

void KeywordIndex::Corpus::Clear() {
  docs.clear();
  postings.clear();
  norms.clear();
  single_weights.clear();
  norms_average = -1;
  last_rowid = 0;
  live_docs = 0;
  live_tokens = 0;
  loaded = false;
}

void KeywordIndex::Corpus::Remove(size_t doc) {
  if (!docs[doc].live) return;
  docs[doc].live = false;
  if (doc < norms.size()) norms[doc] = single_weights[doc] = -1;
  --live_docs;
  live_tokens -= docs[doc].length;
}

void KeywordIndex::Corpus::CompactIfSparse() {
  const int64_t removed = static_cast<int64_t>(docs.size()) - live_docs;
  if (removed < 64 || removed < live_docs) return;
  constexpr uint32_t kGone = std::numeric_limits<uint32_t>::max();
  std::vector<uint32_t> renumbered(docs.size(), kGone);
  size_t kept = 0;
  for (size_t i = 0; i < docs.size(); ++i) {
    if (!docs[i].live) continue;
    renumbered[i] = static_cast<uint32_t>(kept);
    docs[kept++] = std::move(docs[i]);
  }
  docs.resize(kept);
  norms.clear();  // Renumbered: recomputed on the next query.
  single_weights.clear();
  for (auto it = postings.begin(); it != postings.end();) {
    std::vector<Posting>& list = it->second;
    std::erase_if(list, [&](const Posting& p) { return renumbered[p.doc] == kGone; });
    for (Posting& p : list) p.doc = renumbered[p.doc];
    it = list.empty() ? postings.erase(it) : std::next(it);
  }
}

void KeywordIndex::Forget() {
  messages_.Clear();
  memories_.Clear();
  sessions_.clear();
  session_index_.clear();
}

uint32_t KeywordIndex::SessionIndex(std::string_view session_id) {
  const auto found = session_index_.find(session_id);
  if (found != session_index_.end()) return found->second;
  const auto index = static_cast<uint32_t>(sessions_.size());
  sessions_.emplace_back(session_id);
  session_index_.emplace(sessions_.back(), index);
  return index;
}

Status KeywordIndex::Load(Stmt& stmt, Corpus& corpus, bool with_session) {
  while (true) {
    ASSIGN_OR_RETURN(const bool row, stmt.Step());
    if (!row) break;
    const auto doc_index = static_cast<uint32_t>(corpus.docs.size());
    Doc& doc = corpus.docs.emplace_back();
    doc.rowid = stmt.Int(0);
    doc.id = stmt.Text(1);
    if (with_session) {
      doc.session = SessionIndex(stmt.TextView(3));
      doc.role = ParseRole(stmt.TextView(4)).value_or(Role::kUser);
    }
    // The newest document's postings are at the back of each of its words' lists.
    RETURN_IF_ERROR(tokenizer_->Tokenize(stmt.TextView(2), [&](std::string_view word, size_t, size_t) {
      auto found = corpus.postings.find(word);
      if (found == corpus.postings.end()) {
        found = corpus.postings.emplace(std::string(word), std::vector<Posting>{}).first;
      }
      std::vector<Posting>& list = found->second;
      if (list.empty() || list.back().doc != doc_index) {
        list.push_back(Posting{doc_index, 1});
      } else {
        ++list.back().frequency;
      }
      ++doc.length;
    }));
    corpus.last_rowid = std::max(corpus.last_rowid, doc.rowid);
    ++corpus.live_docs;
    corpus.live_tokens += doc.length;
  }
  return Status::Ok();
}

Status KeywordIndex::RemoveDeletedMessages(Db& db, int64_t count) {
  std::vector<Doc>& docs = messages_.docs;
  // Retention deletes the oldest messages: everything below the smallest seq left is gone.
  {
    ASSIGN_OR_RETURN(Stmt stmt, db.Prepare("SELECT min(seq) FROM messages"));
    ASSIGN_OR_RETURN(const bool row, stmt.Step());
    const bool empty = !row || stmt.IsNull(0);
    const int64_t oldest = empty ? std::numeric_limits<int64_t>::max() : stmt.Int(0);
    for (size_t i = 0; i < docs.size() && docs[i].rowid < oldest; ++i) messages_.Remove(i);
  }
  if (messages_.live_docs == count) return Status::Ok();
  // Any other deletion: one merge of the seqs left against the indexed ones (both ascending).
  ASSIGN_OR_RETURN(Stmt stmt, db.Prepare("SELECT seq FROM messages ORDER BY seq"));
  size_t i = 0;
  while (true) {
    ASSIGN_OR_RETURN(const bool row, stmt.Step());
    if (!row) break;
    const int64_t seq = stmt.Int(0);
    for (; i < docs.size() && docs[i].rowid < seq; ++i) messages_.Remove(i);
    if (i < docs.size() && docs[i].rowid == seq) ++i;
  }
  for (; i < docs.size(); ++i) messages_.Remove(i);
  return Status::Ok();
}

Status KeywordIndex::UpdateMessages(Db& db, int64_t count, int64_t edits) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    const bool reread = !messages_.loaded || edits < 0 || edits != message_edits_ || attempt > 0;
    if (reread) {
      messages_.Clear();
      sessions_.clear();
      session_index_.clear();
    }
    ASSIGN_OR_RETURN(Stmt stmt,
                     db.Prepare("SELECT seq, id, content, session_id, role FROM messages "
                                "WHERE seq > ?1 ORDER BY seq"));
    stmt.Bind(1, messages_.last_rowid);
    RETURN_IF_ERROR(Load(stmt, messages_, /*with_session=*/true));
    messages_.loaded = true;
    message_edits_ = edits;
    if (messages_.live_docs != count) RETURN_IF_ERROR(RemoveDeletedMessages(db, count));
    // Only a message inserted below the newest seq (which the store never does) can leave a
    // difference now; reading everything again settles it.
    if (messages_.live_docs == count) break;
  }
  messages_.CompactIfSparse();
  return Status::Ok();
}

Status KeywordIndex::Update(Db& db) {
  ASSIGN_OR_RETURN(const Counters counters, ReadCounters(db));
  if (counters.messages < 0) return CorruptionError("the counters table has no 'messages' row");
  RETURN_IF_ERROR(UpdateMessages(db, counters.messages, counters.message_edits));
  if (!memories_.loaded || counters.memory_changes < 0 ||
      counters.memory_changes != memory_changes_) {
    memories_.Clear();
    ASSIGN_OR_RETURN(Stmt stmt, db.Prepare("SELECT rid, id, content FROM memories ORDER BY rid"));
    RETURN_IF_ERROR(Load(stmt, memories_, /*with_session=*/false));
    memories_.loaded = true;
    memory_changes_ = counters.memory_changes;
  }
  return Status::Ok();
}

Status KeywordIndex::EnsureTokenizer(Db& db) {
  if (!tokenizer_) {
    ASSIGN_OR_RETURN(tokenizer_, TextTokenizer::Create(db));
  }
  return Status::Ok();
}

Result<std::string> KeywordIndex::Snippet(Db& db, std::string_view text,
                                          const std::vector<std::string>& words) {
  RETURN_IF_ERROR(EnsureTokenizer(db));
  return MakeSnippet(*tokenizer_, text, words);
}

Result<std::vector<std::string>> KeywordIndex::QueryWords(Db& db, std::string_view text) {
  RETURN_IF_ERROR(EnsureTokenizer(db));
  std::vector<std::string> words;
  const auto max_words = static_cast<size_t>(MemoryStore::kMaxSearchTerms);
  // The same terms Search gives FTS5, split into the tokenizer's words.
  for (const std::string& term : ExtractSearchTerms(text, max_words)) {
    RETURN_IF_ERROR(tokenizer_->Tokenize(term, [&](std::string_view word, size_t, size_t) {
      if (words.size() < max_words && std::find(words.begin(), words.end(), word) == words.end()) {
        words.emplace_back(word);
      }
    }));
  }
  return words;
}

void KeywordIndex::Score(Corpus& corpus, const std::vector<std::string>& words) {
  if (corpus.live_docs == 0) return;
  const auto rows = static_cast<double>(corpus.live_docs);
  const double average_length = static_cast<double>(corpus.live_tokens) / rows;
  std::vector<double>& norms = corpus.norms;
  if (norms.size() != corpus.docs.size() || corpus.norms_average != average_length) {
    // Only when the documents changed: the average length moves with every new message.
    norms.resize(corpus.docs.size());
    corpus.single_weights.resize(corpus.docs.size());
    for (size_t i = 0; i < norms.size(); ++i) {
      const Doc& doc = corpus.docs[i];
      norms[i] = doc.live ? kK1 * (1 - kB + kB * doc.length / average_length) : -1;
      corpus.single_weights[i] = doc.live ? (kK1 + 1) / (1 + norms[i]) : -1;
    }
    corpus.norms_average = average_length;
  }
  scores_.resize(corpus.docs.size(), 0.0);
  const std::vector<double>& single_weights = corpus.single_weights;
  const bool all_live = static_cast<int64_t>(corpus.docs.size()) == corpus.live_docs;
  for (const std::string& word : words) {
    const auto found = corpus.postings.find(word);
    if (found == corpus.postings.end()) continue;
    const std::vector<Posting>& list = found->second;
    int64_t hits = static_cast<int64_t>(list.size());
    if (!all_live) {
      hits = std::count_if(list.begin(), list.end(),
                           [&](const Posting& p) { return norms[p.doc] >= 0; });
    }
    if (hits == 0) continue;
    const auto n = static_cast<double>(hits);
    double idf = std::log((rows - n + 0.5) / (n + 0.5));
    if (idf <= 0) idf = kMinIdf;
    for (const Posting& p : list) {
      double weight = single_weights[p.doc];
      if (weight < 0) continue;
      if (p.frequency != 1) {
        const double tf = p.frequency;
        weight = tf * (kK1 + 1) / (tf + norms[p.doc]);
      }
      if (scores_[p.doc] == 0) touched_.push_back(p.doc);
      scores_[p.doc] += idf * weight;
    }
  }
}

Result<std::vector<KeywordHit>> KeywordIndex::Rank(Db& db, const KeywordQuery& query) {
  RETURN_IF_ERROR(EnsureTokenizer(db));
  // The counters and the rows they describe are read in one read transaction, so that a commit
  // in between cannot make them disagree. A transaction that has written may still roll back.
  const bool in_transaction = db.InTransaction();
  const bool may_roll_back = sqlite3_txn_state(db.raw(), "main") == SQLITE_TXN_WRITE;
  if (!in_transaction) RETURN_IF_ERROR(db.RunCached("BEGIN"));
  Status updated = Update(db);
  if (!in_transaction) {
    if (Status ended = db.RunCached("COMMIT"); !ended.ok()) {
      (void)db.RunCached("ROLLBACK");
      if (updated.ok()) updated = ended;
    }
  }
  if (!updated.ok()) {
    Forget();
    return updated;
  }

  struct Candidate {
    double score;
    bool memory;
    uint32_t doc;
  };
  std::vector<Candidate> candidates;
  ASSIGN_OR_RETURN(const std::vector<std::string> words, QueryWords(db, query.text));
  // A session or role filter is about messages: memories have neither.
  const bool messages_only = query.session_id.has_value() || query.role.has_value();
  std::optional<uint32_t> session;
  if (query.session_id) {
    const auto found = session_index_.find(*query.session_id);
    session = found == session_index_.end() ? std::numeric_limits<uint32_t>::max() : found->second;
  }
  const auto collect = [&](Corpus& corpus, bool memory) {
    touched_.clear();
    Score(corpus, words);
    const auto window = session_index_.find(query.window_session);
    const bool has_window =
        !memory && query.window_first_seq.has_value() && window != session_index_.end();
    for (const uint32_t doc : touched_) {
      const double score = scores_[doc];
      scores_[doc] = 0;
      const Doc& d = corpus.docs[doc];
      if (has_window && d.session == window->second && d.rowid >= *query.window_first_seq) {
        continue;
      }
      if (!memory && ((session && d.session != *session) || (query.role && d.role != *query.role))) {
        continue;
      }
      candidates.push_back(Candidate{score, memory, doc});
    }
  };
  if (query.messages) collect(messages_, false);
  if (query.memories && !messages_only) collect(memories_, true);

  const auto rowid = [&](const Candidate& c) {
    return (c.memory ? memories_ : messages_).docs[c.doc].rowid;
  };
  // Best first; equal scores: messages before memories, then oldest first.
  const auto better = [&](const Candidate& a, const Candidate& b) {
    if (a.score != b.score) return a.score > b.score;
    if (a.memory != b.memory) return !a.memory;
    return rowid(a) < rowid(b);
  };
  // One more than asked for, in case the excluded node is among them.
  const size_t wanted = std::min(candidates.size(), static_cast<size_t>(query.limit) + 1);
  std::partial_sort(candidates.begin(), candidates.begin() + static_cast<ptrdiff_t>(wanted),
                    candidates.end(), better);
  std::vector<KeywordHit> hits;
  for (size_t i = 0; i < wanted && hits.size() < static_cast<size_t>(query.limit); ++i) {
    const Doc& doc = (candidates[i].memory ? memories_ : messages_).docs[candidates[i].doc];
    if (!query.exclude_id.empty() && doc.id == query.exclude_id) continue;
    KeywordHit& hit = hits.emplace_back();
    hit.type = candidates[i].memory ? NodeType::kMemory : NodeType::kMessage;
    hit.id = doc.id;
    hit.score = candidates[i].score;
    if (!candidates[i].memory) hit.seq = doc.rowid;
  }
  // What a writing transaction showed may be rolled back: it is not kept.
  if (may_roll_back) Forget();
  return hits;
}

}  // namespace locrit::store_internal
