#include "store/internal/snippet.h"

#include <algorithm>
#include <bit>
#include <cstdint>

namespace locrit::store_internal {
namespace {

struct Token {
  size_t start = 0;
  size_t end = 0;
  uint32_t match = 0;  // Bit i: the token is query word i; 0: not a query word.
};

// The window of `width` tokens with the most distinct query words, then the most matches.
size_t BestWindow(const std::vector<Token>& tokens, size_t width) {
  size_t best = 0;
  int best_distinct = -1;
  int best_count = -1;
  for (size_t start = 0; start + width <= tokens.size(); ++start) {
    uint32_t seen = 0;
    int count = 0;
    for (size_t i = start; i < start + width; ++i) {
      seen |= tokens[i].match;
      count += tokens[i].match != 0;
    }
    const int distinct = std::popcount(seen);
    if (distinct > best_distinct || (distinct == best_distinct && count > best_count)) {
      best = start;
      best_distinct = distinct;
      best_count = count;
    }
  }
  return best;
}

}  // namespace

Result<std::string> MakeSnippet(TextTokenizer& tokenizer, std::string_view text,
                                const std::vector<std::string>& words, size_t max_words) {
  std::vector<Token> tokens;
  RETURN_IF_ERROR(tokenizer.Tokenize(text, [&](std::string_view word, size_t start, size_t end) {
    Token& token = tokens.emplace_back(Token{start, end, 0});
    for (size_t i = 0; i < words.size() && i < 32; ++i) {
      if (words[i] == word) token.match |= uint32_t{1} << i;
    }
  }));

  size_t first = 0;
  size_t last = tokens.size();  // One past the window.
  if (tokens.size() > max_words && max_words > 0) {
    first = BestWindow(tokens, max_words);
    // Context before the first match: the window is moved back by half of what its matches
    // leave free, so that a match does not open the snippet.
    size_t first_match = tokens.size();
    size_t last_match = 0;
    for (size_t i = first; i < first + max_words; ++i) {
      if (tokens[i].match == 0) continue;
      first_match = std::min(first_match, i);
      last_match = i;
    }
    if (first_match < tokens.size()) {
      const size_t lead = (max_words - (last_match - first_match + 1)) / 2;
      first = std::min(first_match - std::min(lead, first_match), tokens.size() - max_words);
    }
    last = first + max_words;
  }

  std::string out;
  size_t at = 0;  // Bytes of `text` before `at` are written (or cut).
  if (first > 0) {
    out += "…";
    at = tokens[first].start;
  }
  for (size_t i = first; i < last; ++i) {
    out.append(text.substr(at, tokens[i].start - at));
    const std::string_view word = text.substr(tokens[i].start, tokens[i].end - tokens[i].start);
    if (tokens[i].match != 0) {
      out += '[';
      out.append(word);
      out += ']';
    } else {
      out.append(word);
    }
    at = tokens[i].end;
  }
  if (last < tokens.size()) {
    out += "…";
  } else {
    out.append(text.substr(at));
  }
  return out;
}

}  // namespace locrit::store_internal
