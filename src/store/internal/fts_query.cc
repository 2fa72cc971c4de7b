#include "store/internal/fts_query.h"

#include <algorithm>
#include <cstdint>
#include <string_view>

namespace locrit::store_internal {
namespace {

// One character of the input: how many bytes it takes and whether it belongs to a term.
struct Unit {
  size_t length = 1;
  bool in_term = false;
};

bool IsAsciiAlnum(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

char AsciiLower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// Non-ASCII code points that the FTS5 unicode61 tokenizer treats as separators anyway and that
// commonly glue words together in real text (French "l’arbre", "« oui »", "fin…", emoji). Splitting
// on them keeps such words separate OR-ed terms instead of one phrase that needs them adjacent.
// Not exhaustive on purpose: any other character simply stays inside a (quoted) term.
bool IsSeparatorCodePoint(uint32_t cp) {
  if (cp <= 0x9F) return true;  // C1 controls.
  if (cp <= 0xBF) {
    // Latin-1 punctuation and symbols, but not the letters ª µ º nor the numbers ¹ ² ³ ¼ ½ ¾.
    constexpr std::string_view kWordChars = "\xAA\xB2\xB3\xB5\xB9\xBA\xBC\xBD\xBE";
    return kWordChars.find(static_cast<char>(cp)) == std::string_view::npos;
  }
  if (cp == 0xD7 || cp == 0xF7) return true;  // × ÷
  // Blocks made only of spaces, punctuation and symbols (no letters or numbers).
  struct Range {
    uint32_t first;
    uint32_t last;
  };
  static constexpr Range kSeparators[] = {
      {0x2000, 0x206F},    // General Punctuation: spaces, ’ “ ” … ‿, zero-width joiner.
      {0x2190, 0x245F},    // Arrows, mathematical operators, technical symbols, control pictures.
      {0x2500, 0x2775},    // Box drawing, shapes, miscellaneous symbols, dingbats.
      {0x2794, 0x2BFF},    // More dingbats, arrows, braille, mathematical symbols.
      {0x3000, 0x3002},    // Ideographic space, comma, full stop.
      {0xFE00, 0xFE0F},    // Variation selectors (text or emoji style).
      {0xFEFF, 0xFEFF},    // Byte order mark.
      {0x1F300, 0x1FAFF},  // Pictographs and emoji.
  };
  for (const Range& range : kSeparators) {
    if (cp >= range.first && cp <= range.last) return true;
  }
  return false;
}

// Decodes the character at `text[i]`. A byte that does not start a well-formed UTF-8 sequence
// (stray continuation, overlong form, surrogate, past U+10FFFF, truncated) is a one-byte separator.
Unit NextUnit(std::string_view text, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(i);
  if (lead < 0x80) return {1, IsAsciiAlnum(lead)};

  size_t length = 0;
  uint32_t cp = 0;
  unsigned char low = 0x80;   // Allowed range of the second byte (rules out overlong forms,
  unsigned char high = 0xBF;  // surrogates and code points past U+10FFFF).
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
    cp = lead & 0x1Fu;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    cp = lead & 0x0Fu;
    if (lead == 0xE0) low = 0xA0;
    if (lead == 0xED) high = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    cp = lead & 0x07u;
    if (lead == 0xF0) low = 0x90;
    if (lead == 0xF4) high = 0x8F;
  } else {
    return {1, false};
  }
  if (i + length > text.size()) return {1, false};
  for (size_t k = 1; k < length; ++k) {
    const unsigned char c = byte(i + k);
    const unsigned char min = k == 1 ? low : 0x80;
    const unsigned char max = k == 1 ? high : 0xBF;
    if (c < min || c > max) return {1, false};
    cp = (cp << 6) | (c & 0x3Fu);
  }
  return {length, !IsSeparatorCodePoint(cp)};
}

}  // namespace

std::vector<std::string> ExtractSearchTerms(std::string_view text, size_t max_terms,
                                            size_t max_term_bytes) {
  std::vector<std::string> terms;
  std::vector<std::string> folded;  // ASCII-lowercased terms, to drop repeats.
  size_t i = 0;
  while (i < text.size() && terms.size() < max_terms) {
    Unit unit = NextUnit(text, i);
    if (!unit.in_term) {
      i += unit.length;
      continue;
    }
    // A term: consume the whole run, keeping only whole characters within the byte cap.
    std::string term;
    bool cut = false;
    while (true) {
      cut = cut || term.size() + unit.length > max_term_bytes;
      if (!cut) term.append(text.substr(i, unit.length));
      i += unit.length;
      if (i >= text.size()) break;
      unit = NextUnit(text, i);
      if (!unit.in_term) break;
    }
    if (term.empty()) continue;  // Only possible when max_term_bytes is tiny.
    std::string key = term;
    std::transform(key.begin(), key.end(), key.begin(), AsciiLower);
    if (std::find(folded.begin(), folded.end(), key) != folded.end()) continue;
    folded.push_back(std::move(key));
    terms.push_back(std::move(term));
  }
  return terms;
}

std::string QuoteFtsString(std::string_view term) {
  std::string out;
  out.reserve(term.size() + 2);
  out += '"';
  for (const char c : term) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

std::string BuildFtsQuery(std::string_view text, size_t max_terms, size_t max_term_bytes) {
  std::string query;
  for (const std::string& term : ExtractSearchTerms(text, max_terms, max_term_bytes)) {
    if (!query.empty()) query += " OR ";
    query += QuoteFtsString(term);
  }
  return query;
}

}  // namespace locrit::store_internal
