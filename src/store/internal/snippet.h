// The part of a text a search hit shows: about a sentence around the query's words, each
// occurrence wrapped in [ ], cut ends marked with "…". Words are compared as the keyword index
// sees them (the tokenizer's folded words), and the text is shown as written.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "store/internal/text_tokenizer.h"

namespace locrit::store_internal {

// Words of context a snippet shows at most: about a sentence.
inline constexpr size_t kSnippetWords = 16;

// `text` whole when it has at most `max_words` words; otherwise the `max_words` consecutive words
// that hold the most distinct query words (then the most occurrences; the earliest on a tie),
// moved back so the first match has some context before it. `words` are folded words (at most
// 32 are considered, as in a query).
Result<std::string> MakeSnippet(TextTokenizer& tokenizer, std::string_view text,
                                const std::vector<std::string>& words,
                                size_t max_words = kSnippetWords);

}  // namespace locrit::store_internal
