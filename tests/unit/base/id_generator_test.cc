#include "base/id_generator.h"

#include <gtest/gtest.h>

#include <set>
#include <thread>
#include <vector>

#include "tests/support/fake_clock.h"

namespace locrit {
namespace {

TEST(IdGeneratorTest, CanonicalUuidV7Shape) {
  testing::FakeClock clock;
  IdGenerator ids(&clock, 1);
  const std::string id = ids.Next();
  EXPECT_TRUE(IdGenerator::LooksLikeUuid(id)) << id;
  EXPECT_EQ(id[14], '7');  // version
  EXPECT_TRUE(id[19] == '8' || id[19] == '9' || id[19] == 'a' || id[19] == 'b') << id;  // variant
}

TEST(IdGeneratorTest, SameMicrosecondIdsDifferAndIncrease) {
  testing::FakeClock clock;  // Never advances.
  IdGenerator ids(&clock, 7);
  std::string previous = ids.Next();
  std::set<std::string> seen{previous};
  for (int i = 0; i < 100000; ++i) {
    std::string next = ids.Next();
    ASSERT_GT(next, previous);
    ASSERT_TRUE(seen.insert(next).second);
    previous = std::move(next);
  }
}

TEST(IdGeneratorTest, ClockSteppingBackStaysMonotonic) {
  testing::FakeClock clock;
  IdGenerator ids(&clock, 3);
  const std::string a = ids.Next();
  clock.AdvanceMicros(-5'000'000);
  const std::string b = ids.Next();
  EXPECT_GT(b, a);
}

TEST(IdGeneratorTest, EncodesTimeInTheFirstBits) {
  testing::FakeClock clock(0x0123456789ABLL * 1000);
  IdGenerator ids(&clock, 5);
  EXPECT_EQ(ids.Next().substr(0, 13), "01234567-89ab");
}

TEST(IdGeneratorTest, ConcurrentCallersNeverCollide) {
  testing::FakeClock clock;
  IdGenerator ids(&clock, 11);
  constexpr int kThreads = 8;
  constexpr int kPerThread = 20000;
  std::vector<std::vector<std::string>> results(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) results[t].push_back(ids.Next());
    });
  }
  for (auto& t : threads) t.join();
  std::set<std::string> all;
  for (const auto& r : results) all.insert(r.begin(), r.end());
  EXPECT_EQ(all.size(), static_cast<size_t>(kThreads * kPerThread));
}

TEST(IdGeneratorTest, LooksLikeUuidRejectsOtherShapes) {
  EXPECT_FALSE(IdGenerator::LooksLikeUuid("msg-000"));
  EXPECT_FALSE(IdGenerator::LooksLikeUuid("0192F7A0-3C4D-7E21-9F00-1A2B3C4D5E6F"));
  EXPECT_TRUE(IdGenerator::LooksLikeUuid("0192f7a0-3c4d-7e21-9f00-1a2b3c4d5e6f"));
}

}  // namespace
}  // namespace locrit
