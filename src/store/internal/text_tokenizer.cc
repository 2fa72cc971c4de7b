#include "store/internal/text_tokenizer.h"

#include <fmt/format.h>

#include <climits>

namespace locrit::store_internal {

Result<std::unique_ptr<TextTokenizer>> TextTokenizer::Create(Db& db) {
  // The documented way to reach the FTS5 API: "SELECT fts5(?1)" hands it out through a pointer
  // bound with the type "fts5_api_ptr".
  fts5_api* fts5 = nullptr;
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db.raw(), "SELECT fts5(?1)", -1, &stmt, nullptr);
  if (rc != SQLITE_OK) return db.Error(rc, "reaching the FTS5 API");
  sqlite3_bind_pointer(stmt, 1, static_cast<void*>(&fts5), "fts5_api_ptr", nullptr);
  rc = sqlite3_step(stmt);
  sqlite3_finalize(stmt);
  if (rc != SQLITE_ROW || fts5 == nullptr) return InternalError("SQLite has no FTS5 API");

  void* context = nullptr;
  fts5_tokenizer api{};
  rc = fts5->xFindTokenizer(fts5, "unicode61", &context, &api);
  if (rc != SQLITE_OK) return InternalError("FTS5 has no unicode61 tokenizer");
  // The arguments of the FTS tables' tokenize= option (schema.cc).
  const char* arguments[] = {"remove_diacritics", "2"};
  Fts5Tokenizer* tokenizer = nullptr;
  rc = api.xCreate(context, arguments, 2, &tokenizer);
  if (rc != SQLITE_OK) return InternalError(fmt::format("unicode61 tokenizer: error {}", rc));
  return std::unique_ptr<TextTokenizer>(new TextTokenizer(api, tokenizer));
}

TextTokenizer::~TextTokenizer() { api_.xDelete(tokenizer_); }

Status TextTokenizer::Run(std::string_view text, void* context, TokenCallback callback) {
  if (text.size() > static_cast<size_t>(INT_MAX)) {
    return InvalidArgumentError("text too long to tokenize");
  }
  const int rc = api_.xTokenize(tokenizer_, context, FTS5_TOKENIZE_DOCUMENT, text.data(),
                                static_cast<int>(text.size()), callback);
  if (rc == SQLITE_NOMEM) return ResourceExhaustedError("out of memory while tokenizing");
  if (rc != SQLITE_OK) return InternalError(fmt::format("tokenizing failed: error {}", rc));
  return Status::Ok();
}

}  // namespace locrit::store_internal
