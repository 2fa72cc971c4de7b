// Snippets of search hits (store/internal/snippet.h), table-driven over SQLite's own unicode61
// tokenizer: the text as written with matches in [ ], the window with the most query words, some
// context before the first match, cut ends marked with "…".
#include "store/internal/snippet.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "store/internal/sqlite.h"
#include "store/internal/text_tokenizer.h"
#include "tests/support/matchers.h"

namespace locrit::store_internal {
namespace {

struct SnippetCase {
  std::string text;
  std::vector<std::string> words;  // Folded, as the keyword index gives them.
  size_t max_words;
  std::string expected;
};

TEST(SnippetTest, ShowsTheBestWindowAsWritten) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Db> db, Db::Open(":memory:", DbOpenOptions{}));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<TextTokenizer> tokenizer, TextTokenizer::Create(*db));
  const std::vector<SnippetCase> cases = {
      {"Le Chat et le chien", {"chat", "chien"}, 16, "Le [Chat] et le [chien]"},
      {"bonjour à tous", {"zebre"}, 16, "bonjour à tous"},
      {"", {"zebre"}, 16, ""},
      {"L'Éléphant rose", {"elephant"}, 16, "L'[Éléphant] rose"},
      {"Hello, world!", {"world"}, 16, "Hello, [world]!"},
      // Long texts: a window of max_words words, the first match after some context.
      {"a b c d e f zebra g h i j k", {"zebra"}, 4, "…f [zebra] g h…"},
      {"zebra a b c d e f", {"zebra"}, 4, "[zebra] a b c…"},
      {"a b c d e f zebra.", {"zebra"}, 4, "…d e f [zebra]."},
      // The window with both words wins over the first occurrence of one.
      {"cat x x x x x x dog x cat x x x", {"cat", "dog"}, 4, "…[dog] x [cat] x…"},
      // No match in a long text: its beginning.
      {"a b c d e f g", {"zebra"}, 3, "a b c…"},
      {"  spaced   out  words  ", {"out"}, 16, "  spaced   [out]  words  "},
  };
  for (const SnippetCase& c : cases) {
    ASSERT_OK_AND_ASSIGN(const std::string snippet,
                         MakeSnippet(*tokenizer, c.text, c.words, c.max_words));
    EXPECT_EQ(snippet, c.expected) << "text: " << c.text;
  }
}

}  // namespace
}  // namespace locrit::store_internal
