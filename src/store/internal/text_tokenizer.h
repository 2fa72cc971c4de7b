// The words of a text as the store's FTS5 tables see them: SQLite's own "unicode61
// remove_diacritics 2" tokenizer, borrowed from a connection through the FTS5 API. Code that
// indexes text outside FTS5 (the in-memory keyword index) thereby splits, lower-cases and folds
// accents exactly like the FTS tables do ("Éléphant" and "elephant" are one word).
//
// Thread-compatible; owned next to the Db it was created from, and destroyed before it.
#pragma once

#include <sqlite3.h>

#include <memory>
#include <string_view>
#include <type_traits>

#include "base/status.h"
#include "store/internal/sqlite.h"

namespace locrit::store_internal {

class TextTokenizer {
 public:
  static Result<std::unique_ptr<TextTokenizer>> Create(Db& db);
  ~TextTokenizer();
  TextTokenizer(const TextTokenizer&) = delete;
  TextTokenizer& operator=(const TextTokenizer&) = delete;

  // Calls `on_token(std::string_view word, size_t start, size_t end)` for each word of `text`, in
  // order: the word folded (lower case, no accents), and the bytes [start, end) of `text` it was
  // read from. `Visitor` is any callable; the word is valid only during the call.
  template <typename Visitor>
  Status Tokenize(std::string_view text, Visitor&& on_token) {
    return Run(text, &on_token,
               [](void* visitor, int, const char* token, int length, int start, int end) {
                 (*static_cast<std::remove_reference_t<Visitor>*>(visitor))(
                     std::string_view(token, static_cast<size_t>(length)),
                     static_cast<size_t>(start), static_cast<size_t>(end));
                 return SQLITE_OK;
               });
  }

 private:
  using TokenCallback = int (*)(void*, int, const char*, int, int, int);
  TextTokenizer(fts5_tokenizer api, Fts5Tokenizer* tokenizer) : api_(api), tokenizer_(tokenizer) {}
  Status Run(std::string_view text, void* context, TokenCallback callback);

  fts5_tokenizer api_;
  Fts5Tokenizer* tokenizer_;
};

}  // namespace locrit::store_internal
