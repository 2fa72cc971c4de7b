// Retention: the count after any sequence of saves is exactly min(total, max_messages); the oldest
// go first, with their edges; sessions emptied by retention go too; space is reclaimed.
#include <gtest/gtest.h>

#include <deque>
#include <random>

#include "store/memory_store.h"
#include "tests/support/matchers.h"
#include "tests/support/store_fixture.h"

namespace locrit {
namespace {

using ::locrit::testing::CountRows;
using ::locrit::testing::FindBrokenInvariants;
using ::locrit::testing::IsOk;
using ::locrit::testing::StatusIs;
using ::locrit::testing::StoreHarness;
using ::testing::IsEmpty;

TEST(RetentionTest, CountIsExactlyMinOfTotalAndCapAfterEverySave) {
  constexpr int64_t kCap = 25;
  StoreHarness harness(kCap);
  ASSERT_OK_AND_ASSIGN(auto store, harness.Open());
  std::mt19937 rng(99);
  std::deque<std::string> expected;  // Ids that must survive, oldest first.
  for (int i = 0; i < 300; ++i) {
    const std::string session = "s" + std::to_string(rng() % 5);
    ASSERT_OK_AND_ASSIGN(auto saved,
                         store->SaveMessage(StoreHarness::UserMessage(session, std::to_string(i))));
    expected.push_back(saved.id);
    const bool over = static_cast<int64_t>(expected.size()) > kCap;
    if (over) expected.pop_front();
    EXPECT_EQ(saved.evicted, over ? 1 : 0);
    ASSERT_EQ(CountRows(harness.path(), "messages"), std::min<int64_t>(i + 1, kCap));
  }
  for (const auto& id : expected) EXPECT_THAT(store->GetMessage(id), IsOk());
  EXPECT_THAT(FindBrokenInvariants(harness.path()), IsEmpty());
}

TEST(RetentionTest, EvictionCascadesToEdgesAndEmptiedSessions) {
  StoreHarness harness(3);
  ASSERT_OK_AND_ASSIGN(auto store, harness.Open());
  ASSERT_OK_AND_ASSIGN(auto first, store->SaveMessage(StoreHarness::UserMessage("old", "a")));
  ASSERT_THAT(store->SaveMessage(StoreHarness::UserMessage("old", "b")), IsOk());
  ASSERT_THAT(store->SaveMessage(StoreHarness::UserMessage("keep", "c")), IsOk());
  ASSERT_THAT(store->SaveMessage(StoreHarness::UserMessage("keep", "d")), IsOk());
  // "a" is gone with its edges; "old" still has "b".
  EXPECT_THAT(store->GetMessage(first.id), StatusIs(StatusCode::kNotFound));
  ASSERT_OK_AND_ASSIGN(Session old_session, store->GetSession("old"));
  EXPECT_EQ(old_session.message_count, 1);
  ASSERT_THAT(store->SaveMessage(StoreHarness::UserMessage("keep", "e")), IsOk());
  // Now "old" is empty and goes too.
  EXPECT_THAT(store->GetSession("old"), StatusIs(StatusCode::kNotFound));
  EXPECT_EQ(CountRows(harness.path(), "messages"), 3);
  EXPECT_EQ(CountRows(harness.path(), "sessions"), 1);
  EXPECT_EQ(CountRows(harness.path(), "part_of"), 3);
  EXPECT_EQ(CountRows(harness.path(), "sent"), 3);
  EXPECT_EQ(CountRows(harness.path(), "responds_to"), 2);  // d->c, e->d
  EXPECT_THAT(FindBrokenInvariants(harness.path()), IsEmpty());
}

// Regression: retention that empties several sessions in one save deletes every one of them
// (a cached statement re-bound in a loop once silently re-ran with its first binding).
TEST(RetentionTest, OneSaveCanEmptySeveralSessions) {
  StoreHarness harness(0);
  {
    ASSERT_OK_AND_ASSIGN(auto store, harness.Open());
    for (const char* session : {"a", "b", "c"}) {
      ASSERT_THAT(store->SaveMessage(StoreHarness::UserMessage(session, "only")), IsOk());
    }
  }
  harness.options().max_messages = 1;
  ASSERT_OK_AND_ASSIGN(auto store, harness.Open());
  ASSERT_OK_AND_ASSIGN(auto saved, store->SaveMessage(StoreHarness::UserMessage("d", "new")));
  EXPECT_EQ(saved.evicted, 3);
  for (const char* session : {"a", "b", "c"}) {
    EXPECT_THAT(store->GetSession(session), StatusIs(StatusCode::kNotFound)) << session;
  }
  EXPECT_EQ(CountRows(harness.path(), "sessions"), 1);
  EXPECT_THAT(FindBrokenInvariants(harness.path()), IsEmpty());
}

TEST(RetentionTest, ZeroMeansUnlimited) {
  StoreHarness harness(0);
  ASSERT_OK_AND_ASSIGN(auto store, harness.Open());
  for (int i = 0; i < 200; ++i) {
    ASSERT_OK_AND_ASSIGN(auto saved, store->SaveMessage(StoreHarness::UserMessage("s", "m")));
    EXPECT_EQ(saved.evicted, 0);
  }
  EXPECT_EQ(CountRows(harness.path(), "messages"), 200);
}

TEST(RetentionTest, LoweringTheCapOnReopenTrimsOnTheNextSave) {
  StoreHarness harness(0);
  {
    ASSERT_OK_AND_ASSIGN(auto store, harness.Open());
    for (int i = 0; i < 40; ++i) {
      ASSERT_THAT(store->SaveMessage(StoreHarness::UserMessage("s", std::to_string(i))), IsOk());
    }
  }
  harness.options().max_messages = 10;
  ASSERT_OK_AND_ASSIGN(auto store, harness.Open());
  ASSERT_OK_AND_ASSIGN(auto saved, store->SaveMessage(StoreHarness::UserMessage("s", "new")));
  EXPECT_EQ(saved.evicted, 31);
  EXPECT_EQ(CountRows(harness.path(), "messages"), 10);
  ASSERT_OK_AND_ASSIGN(auto history, store->History({"s", 100, {}}));
  ASSERT_EQ(history.size(), 10u);
  EXPECT_EQ(history.front().content, "31");
  EXPECT_EQ(history.back().content, "new");
  EXPECT_THAT(FindBrokenInvariants(harness.path()), IsEmpty());
}

TEST(RetentionTest, EvictionReturnsSpaceToTheFileSystem) {
  StoreHarness harness(0);
  harness.options().durability = Durability::kRelaxed;  // Size, not durability, is under test.
  const std::string big(16 * 1024, 'z');
  {
    ASSERT_OK_AND_ASSIGN(auto store, harness.Open());
    for (int i = 0; i < 300; ++i) {
      ASSERT_THAT(store->SaveMessage(StoreHarness::UserMessage("s" + std::to_string(i % 3), big)),
                  IsOk());
    }
    ASSERT_OK_AND_ASSIGN(StorageInfo before, store->Storage());
    ASSERT_GT(before.page_count * before.page_size, 4 * 1024 * 1024);
  }
  harness.options().max_messages = 20;
  ASSERT_OK_AND_ASSIGN(auto store, harness.Open());
  ASSERT_THAT(store->SaveMessage(StoreHarness::UserMessage("s0", big)), IsOk());
  ASSERT_THAT(store->Checkpoint(), IsOk());
  ASSERT_OK_AND_ASSIGN(StorageInfo after, store->Storage());
  // 20 live messages of 16 KiB fit in about 1 MiB once the freed pages are given back.
  EXPECT_LT(after.page_count * after.page_size, 2 * 1024 * 1024);
  EXPECT_LT(after.freelist_count, 256);
  EXPECT_EQ(CountRows(harness.path(), "messages"), 20);
}

}  // namespace
}  // namespace locrit
