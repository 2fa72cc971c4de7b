// Turning any user text into a safe FTS5 MATCH expression. Pure functions; thread-safe.
//
// The text is split into terms: runs of ASCII letters and digits and of non-ASCII characters, so
// UTF-8 words ("éléphant", "Größe") stay whole. A few non-ASCII characters that are plainly
// separators (Unicode spaces and punctuation such as ’ « » …, emoji) split terms too, and bytes
// that are not well-formed UTF-8 are dropped as separators. Each term becomes a quoted FTS5 string
// and the terms are OR-ed, so bm25 ranks documents by how many terms they share and how rare those
// are. Safety does not depend on the separator rules: whatever a term holds is inside quotes (inner
// quotes doubled), so quotes, operators (AND OR NOT NEAR * ^ + -), column filters (col:val) and
// brackets never reach FTS5 as syntax.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace locrit::store_internal {

// A term longer than this is cut (on a UTF-8 boundary): no real word is that long, and it bounds
// the size of the MATCH expression.
inline constexpr size_t kMaxFtsTermBytes = 64;

// The distinct terms of `text` in order of first appearance (duplicates compared ASCII
// case-insensitively), at most `max_terms` of them, each cut to at most `max_term_bytes` bytes
// without splitting a UTF-8 sequence.
std::vector<std::string> ExtractSearchTerms(std::string_view text, size_t max_terms,
                                            size_t max_term_bytes = kMaxFtsTermBytes);

// `term` as an FTS5 string: in double quotes, each inner double quote doubled.
std::string QuoteFtsString(std::string_view term);

// `"t1" OR "t2" OR ...`, or "" when `text` has no term (then there is nothing to search).
std::string BuildFtsQuery(std::string_view text, size_t max_terms,
                          size_t max_term_bytes = kMaxFtsTermBytes);

}  // namespace locrit::store_internal
