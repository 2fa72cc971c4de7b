#include "base/utf8.h"

#include <gtest/gtest.h>

namespace locrit {
namespace {

TEST(Utf8Test, AcceptsWellFormedText) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("hello"));
  EXPECT_TRUE(IsValidUtf8("éléphant cœur 日本語 🐘"));
  EXPECT_TRUE(IsValidUtf8(std::string_view("a\0b", 3)));
}

TEST(Utf8Test, RejectsMalformedText) {
  EXPECT_FALSE(IsValidUtf8("\xff"));
  EXPECT_FALSE(IsValidUtf8("\xc3"));              // truncated
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // past U+10FFFF
  EXPECT_FALSE(IsValidUtf8("ok\x80"));
}

TEST(Utf8Test, CountsCodePoints) {
  EXPECT_EQ(CountCodePoints("éa🐘"), 3u);
  EXPECT_EQ(CountCodePoints(""), 0u);
}

TEST(Utf8Test, PrefixNeverSplitsACharacter) {
  EXPECT_EQ(Utf8Prefix("éa🐘b", 0), "");
  EXPECT_EQ(Utf8Prefix("éa🐘b", 1), "é");
  EXPECT_EQ(Utf8Prefix("éa🐘b", 3), "éa🐘");
  EXPECT_EQ(Utf8Prefix("éa🐘b", 4), "éa🐘b");
  EXPECT_EQ(Utf8Prefix("éa🐘b", 99), "éa🐘b");
  EXPECT_EQ(Utf8Prefix("", 5), "");
}

}  // namespace
}  // namespace locrit
