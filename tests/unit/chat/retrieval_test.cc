// Reciprocal rank fusion (chat/retrieval.h), table-tested: it is a pure function.
#include "chat/retrieval.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace locrit {
namespace {

using ::testing::ElementsAreArray;

// 1 / (60 + rank).
double R(int rank) { return 1.0 / (60.0 + rank); }

struct FusionCase {
  std::string name;
  std::vector<std::vector<std::string>> rankings;
  std::vector<std::string> ids;  // Fused, best first.
  std::vector<double> scores;
};

class FusionTest : public ::testing::TestWithParam<FusionCase> {};

TEST_P(FusionTest, FusesByReciprocalRank) {
  const FusionCase& c = GetParam();
  const std::vector<FusedRank> fused = FuseByReciprocalRank(c.rankings);
  std::vector<std::string> ids;
  for (const FusedRank& f : fused) ids.push_back(f.id);
  EXPECT_THAT(ids, ElementsAreArray(c.ids));
  ASSERT_EQ(fused.size(), c.scores.size());
  for (size_t i = 0; i < fused.size(); ++i) {
    EXPECT_DOUBLE_EQ(fused[i].score, c.scores[i]) << fused[i].id;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Table, FusionTest,
    ::testing::ValuesIn(std::vector<FusionCase>{
        {"NoRankings", {}, {}, {}},
        {"EmptyRankings", {{}, {}}, {}, {}},
        // bm25 alone (no vector): its order, unchanged.
        {"OneRanking", {{"a", "b", "c"}}, {"a", "b", "c"}, {R(1), R(2), R(3)}},
        // Found by both beats first in one only.
        {"AgreementWins",
         {{"a", "b", "c"}, {"c", "d", "b"}},
         {"c", "b", "a", "d"},
         {R(3) + R(1), R(2) + R(3), R(1), R(2)}},
        // Found by meaning only (a paraphrase bm25 misses) still comes in.
        {"VectorOnlyHit", {{"a"}, {"z", "a"}}, {"a", "z"}, {R(1) + R(2), R(1)}},
        // Equal scores keep the order of first appearance: the keyword ranking first.
        {"TiesKeepFirstAppearance", {{"a", "b"}, {"b", "a"}}, {"a", "b"},
         {R(1) + R(2), R(2) + R(1)}},
        {"TiesAcrossRankings", {{"a"}, {"z"}}, {"a", "z"}, {R(1), R(1)}},
        // An id listed twice in one ranking counts once, at its best rank.
        {"DuplicateCountsOnce", {{"a", "b", "a"}}, {"a", "b"}, {R(1), R(2)}},
        // Beyond the damping constant, deep ranks still add a little.
        {"DeepRanks",
         {{"x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9", "t"}, {"t"}},
         {"t", "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9"},
         {R(10) + R(1), R(1), R(2), R(3), R(4), R(5), R(6), R(7), R(8), R(9)}},
    }),
    [](const auto& test) { return test.param.name; });

}  // namespace
}  // namespace locrit
